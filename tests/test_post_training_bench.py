"""The post-training benchmark: its ``--quick`` design, the metrics and summary it reports, and one real quick run."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from bench_modules import load_benchmark

from longthink.search.types import Candidate, Problem

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"

pytest.importorskip("reasoning_gym")
_saved = list(sys.path)
P = load_benchmark("post_training")
sys.path[:] = _saved  # the benchmark puts its folder first (its `datasets` module); keep that out of later tests


def test_quick_shrinks_everything_and_writes_outside_the_results() -> None:
    s, collect_only = P.parse(["--quick"])
    assert not collect_only and s.quick
    assert s.model == "smollm2-135m-instruct" and s.teacher == "qwen2.5-coder-0.5b-instruct"
    assert (s.problems, s.samples, s.teacher_samples, s.eval_problems, s.eval_samples, s.max_steps) == (
        1,
        2,
        2,
        2,
        2,
        2,
    )
    for path in (s.db, s.work, s.out, s.cache):
        assert not path.resolve().is_relative_to(BENCH.resolve())
    full, _ = P.parse([])
    assert full.model == "qwen2.5-coder-0.5b-instruct" and full.teacher == "qwen2.5-coder-1.5b-instruct"
    assert full.out == BENCH / "results" / "post_training.json" and full.eval_samples == 8
    alone, only = P.parse(["--teacher", "none", "--collect-only"])
    assert alone.teacher is None and only


def _cand(i: int, answer: str | None, tokens: int, logprob: float = -1.0) -> Candidate:
    return Candidate(
        id=f"c{i}",
        problem_id="p",
        index=i,
        text="",
        answer=answer,
        parse_error=None,
        finish_reason="stop",
        prompt_tokens=5,
        completion_tokens=tokens,
        latency_s=0.0,
        model="m",
        prompt_hash="h",
        mean_logprob=logprob,
    )


def test_rows_metrics_and_summary() -> None:
    p = Problem.from_text("p", "What is 2 + 2?", answer_kind="number", reference="4")
    # 2 of 4 right; the vote ties 4 and 5 (2 each) and the tie goes to the more certain answer
    row = P.problem_row(
        p,
        [_cand(0, "4", 10, -0.1), _cand(1, "5", 20, -2.0), _cand(2, "4", 30, -0.1), _cand(3, "5", 40, -2.0)],
        [True, False, True, False],
    )
    assert row["vote"] == "4" and row["vote_correct"] and row["tokens"] == [10, 20, 30, 40]
    wrong = {"correct": [False, False, False, False], "tokens": [50, 50, 50, 50], "vote_correct": False}
    m = P.metrics([row, wrong])
    assert m["single"] == 0.25 and m["sc4"] == 0.5 and m["oracle"] == 0.5
    assert (
        m["tokens_per_sample"] == 37.5
        and m["tokens_per_solved_single"] == 150.0
        and m["tokens_per_solved_sc4"] == 300.0
    )
    assert P.metrics([wrong])["tokens_per_solved_single"] is None  # nothing solved: no ratio, not a division by 0

    def side(single: float, sc: float, per_single: float, per_sc: float) -> dict:
        m = {
            "single": single,
            "sc8": sc,
            "tokens_per_solved_single": per_single,
            "tokens_per_solved_sc8": per_sc,
            "problems": 40,
        }
        return {"metrics": m}

    before = {"text": side(0.2, 0.35, 1300, 2000), "program": side(0.25, 0.35, 600, 1500)}
    after = {"text": side(0.36, 0.4, 450, 2100), "program": side(0.3, 0.36, 400, 1200)}
    summary = P.summarise(before, after, 8)
    for key in (
        "single_before",
        "single_after",
        "sc8_before",
        "sc8_after",
        "tokens_per_solved_before",
        "tokens_per_solved_after",
    ):
        assert key in summary and key in summary["program"]
    assert summary["tokens_per_solved_before"] == 2000 and summary["tokens_per_solved_after"] == 450
    assert summary["goal_met"] and not summary["program"]["goal_met"]  # program: 0.30 < 0.35
    assert "| text | 0.2 | 0.36 | 0.35 | 0.4 | 2000 | 450 |" in P.table(summary)


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.skipif(find_spec("trl") is None, reason="needs the train extra")
def test_quick_run_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "post_training.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "post_training.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    summary = result["summary"]
    assert summary["samples"] == 2 and summary["problems"] == 2
    assert result["training"]["global_steps"] == 2 and result["export"]["format"] == "sft"
    assert result["before"]["model"] == "smollm2-135m-instruct"
    assert result["after"]["model"].startswith("smollm2-135m-instruct-sft-")
    assert {"commit", "dirty", "settings", "date", "cpu_count"} <= set(result["provenance"])
    assert "goal met" in proc.stdout
