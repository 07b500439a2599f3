"""The batch benchmark's pure parts (the order of the batches, one batch's figures, the summary) and one tiny run of
both runners into PostgreSQL; the results file itself is written only from committed code."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from bench_modules import BENCH, load_benchmark

B = load_benchmark("batch")


def result(task_id: str, answer: str | None, state: str = "done") -> SimpleNamespace:
    return SimpleNamespace(id=task_id, answer=answer, state=state, seconds=0.5, worker=1, error=None)


def test_the_runners_alternate_which_goes_first() -> None:
    assert B.order(3) == [(0, "pool"), (0, "ray"), (1, "ray"), (1, "pool"), (2, "pool"), (2, "ray")]


def test_figures_count_wrong_answers_by_the_task_s_reference() -> None:
    results = [result("gsm8k-1@pool0", "15"), result("gsm8k-2@pool0", "7"), result("gsm8k-3@pool0", None, "failed")]
    summary = SimpleNamespace(results=results, seconds=2.0, done=2, failed=1, skipped=0)
    f = B.figures("pool", 0, summary, {"gsm8k-1": "15", "gsm8k-2": "8", "gsm8k-3": "1"})
    assert (f["requests"], f["done"], f["failed"], f["wrong"], f["requests_per_s"]) == (3, 2, 1, 1, 1.5)


def test_the_summary_is_the_ratio_of_the_mean_wall_times() -> None:
    batches = [
        {"runner": "pool", "wall_s": 10.0, "requests": 20, "failed": 0, "wrong": 0},
        {"runner": "ray", "wall_s": 12.0, "requests": 20, "failed": 1, "wrong": 0},
        {"runner": "ray", "wall_s": 14.0, "requests": 20, "failed": 0, "wrong": 2},
        {"runner": "pool", "wall_s": 12.0, "requests": 20, "failed": 0, "wrong": 0},
    ]
    s = B.summarize(batches, ray_init_s=3.0)
    assert tuple(s) == B.SUMMARY_KEYS
    assert s["ray_overhead_ratio"] == pytest.approx(13.0 / 11.0, abs=1e-3)
    assert (s["pool_wall_s"], s["ray_wall_s"], s["errors"], s["wrong"], s["repetitions"]) == (11.0, 13.0, 1, 2, 2)
    assert s["pool_requests_per_s"] == pytest.approx(20 / 11, abs=0.01)


def test_a_tiny_run_of_both_runners_into_postgres(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    for name in ("PYTHONPATH", B.ANSWERS_ENV, "LONGTHINK_TEST_DELAY_S"):  # set by the run: put back afterwards
        monkeypatch.setenv(name, "")
    monkeypatch.syspath_prepend(str(BENCH))
    out = tmp_path / "batch.json"
    data = B.main(["--n", "4", "--reps", "1", "--delay-s", "0", "--db", pg_url, "--out", str(out)])
    assert json.loads(out.read_text()) == data
    s = data["summary"]
    assert (s["requests"], s["repetitions"], s["errors"], s["wrong"]) == (4, 1, 0, 0)
    assert s["ray_overhead_ratio"] == pytest.approx(s["ray_wall_s"] / s["pool_wall_s"], abs=2e-3)
    assert [b["runner"] for b in data["batches"]] == ["pool", "ray"] and all(b["done"] == 4 for b in data["batches"])
    assert data["rerun"] == {"runner": "pool", "requests": 4, "skipped": 4, "rerun_s": data["rerun"]["rerun_s"]}
    assert set(data["provenance"]) >= {"commit", "dirty", "settings", "date", "cpu_count"}
    assert data["provenance"]["settings"]["db"] == "given" and "postgres@" not in json.dumps(data)


def test_the_committed_results_have_the_summary() -> None:
    path = BENCH / "results" / "batch.json"
    if not path.exists():
        pytest.skip("benchmarks/results/batch.json is written by benchmarks/batch.py from a committed tree")
    data = json.loads(path.read_text())
    s = data["summary"]
    assert tuple(s) == B.SUMMARY_KEYS and s["requests"] >= 200 and s["errors"] == 0 and s["wrong"] == 0
    assert s["ray_overhead_ratio"] == pytest.approx(s["ray_wall_s"] / s["pool_wall_s"], abs=2e-3)
    assert {b["runner"] for b in data["batches"]} == set(B.RUNNERS) and data["provenance"]["dirty"] is False
