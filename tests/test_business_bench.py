"""The business-plan benchmark's data and scoring plumbing: WritingBench rows from the installed inspect-evals data
file, the query selection, the rubric built from a criterion, and the judge over documents (with a double)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from longthink.llm.types import SamplingParams
from longthink.testing import FunctionLLM

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_business", ROOT / "benchmarks" / "business.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


business = _load()


def test_writingbench_rows_and_the_selected_queries() -> None:
    rows = business.load_queries()
    assert len(rows) == 1000  # WritingBench's benchmark_all.jsonl
    chosen = business.select(rows, 10)
    assert len(chosen) == 10
    indices = [int(r["index"]) for r in chosen]
    assert indices == sorted(indices) and indices[:4] == [88, 89, 91, 92]  # the queries the results report
    for r in chosen:
        assert r["domain1"] == "Finance & Business" and business.is_english(r["query"])
        assert len(r["checklist"]) == 5
    assert not business.is_english("为我们的面包店写一份商业计划书")
    assert [int(r["index"]) for r in business.select(rows, 10, [104, 89])] == [89, 104]  # a check of a few
    with pytest.raises(ValueError, match=r"\[87\]"):
        business.select(rows, 10, [87])


def test_criterion_rubric_has_the_five_bands() -> None:
    [row] = business.select(business.load_queries(), 1)
    rubric = business.criterion_rubric(row["checklist"][0])
    assert rubric.startswith("Criterion: ") and [f"{i}: " in rubric for i in range(1, 6)] == [True] * 5


async def test_judge_documents_orders_documents_by_the_judges_verdict() -> None:
    def judge(prompt: str, params: SamplingParams, index: int) -> str:
        return "5" if "GOOD DOCUMENT" in prompt else "1"

    criteria = business.select(business.load_queries(), 1)[0]["checklist"][:2]
    settings = business.parse(["--quick"])
    scores = await business.judge_documents(FunctionLLM(judge), "a plan", ["GOOD DOCUMENT", "bad"], criteria, settings)
    assert len(scores) == 2 and all(len(row) == 2 for row in scores)
    assert min(scores[0]) > max(scores[1])


def _row(index: int, single: float, longthink: float) -> dict[str, object]:
    return {"index": index, "domain2": "Market Analysis", "rubric_single": single, "rubric_longthink": longthink,
            "numbers_consistent": True, "single_has_table": False, "single_figures": 3, "tokens_single": 500,
            "tokens_longthink": 2000}  # fmt: skip


def test_results_carry_provenance_and_finalize_keeps_the_runs_own(tmp_path: Path) -> None:
    """A stopped run becomes the result only through --finalize, which keeps the run's provenance (commit,
    settings, date, CPU count) and records the finalizing note; a file without provenance is refused."""
    out = tmp_path / "business.json"
    s = business.parse(["--queries", "3", "--out", str(out), "--cache", str(tmp_path / "cache")])
    partial = business.write(s, [_row(88, 0.7, 0.8)], final=False)
    block = partial["provenance"]
    assert {"commit", "dirty", "settings", "date", "cpu_count"} <= set(block)
    assert block["settings"]["queries"] == 3 and block["cpu_count"] >= 1
    assert str(tmp_path) not in out.read_text()  # no machine paths in the results

    assert business.main(["--out", str(out), "--finalize", "stopped after 1 of 3 queries"]) == 0
    final = json.loads(out.read_text())
    assert final["summary"]["final"] is True and final["summary"]["note"] == "stopped after 1 of 3 queries"
    assert {k: v for k, v in final["provenance"].items() if k != "finalized"} == block
    assert final["provenance"]["finalized"]["settings"] == {"note": "stopped after 1 of 3 queries"}

    out.write_text(json.dumps({"rows": [_row(88, 0.7, 0.8)]}))  # rows with no provenance: never merged
    with pytest.raises(SystemExit, match="no provenance"):
        business.main(["--out", str(out), "--finalize", "x"])


async def test_the_longthink_arm_reads_the_run_result(tmp_path: Path) -> None:
    """The benchmark's longthink arm runs the pack through the Agent API and reads its typed result."""
    import test_business_plan as pack_tests

    s = business.Settings(queries=1, cache=tmp_path)
    doc, info, tokens = await business.longthink(FunctionLLM(pack_tests.reply), pack_tests.STATED, s, "bench-1")
    assert doc.startswith("# Business plan") and info["status"] == "done" and tokens > 0
    assert info["numbers"]["consistent"] is True and info["missing"] == []


def test_the_summary_has_the_paired_interval_and_the_goals_part(tmp_path: Path) -> None:
    from stats import mean_ci

    s = business.parse(["--out", str(tmp_path / "business.json"), "--cache", str(tmp_path / "cache")])
    out = business.write(s, [_row(88, 0.7, 0.8), _row(89, 0.6, 0.75), _row(91, 0.7, 0.7)], final=True)
    low, high = out["summary"]["rubric_diff_ci95"]
    assert 0.0 <= low <= out["summary"]["rubric_diff"] <= high <= 0.15
    assert mean_ci([0.1]) is None and mean_ci([0.1, 0.1]) == [0.1, 0.1]
    goals = tmp_path / "business_goals.json"
    goals.write_text(json.dumps({"summary": {"goal_reached_share": 0.9, "honest_share": 1.0, "requests": 20,
                                             "figures_agree_share": 0.95}, "provenance": {"commit": "abc"}}))  # fmt: skip
    part = business.goals_summary(goals)
    assert part["goal_reached_share"] == 0.9 and part["goals_requests"] == 20 and part["goals_commit"] == "abc"
    assert business.goals_summary(tmp_path / "none.json") == {}
