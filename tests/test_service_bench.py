"""The service benchmark's pure parts (percentiles, per-arm figures, the summary's shape, the SSE reader) and the
committed ``benchmarks/results/service.json``; nothing here runs the benchmark."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import sys
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "service.json"


def _load() -> ModuleType:
    """benchmarks/service.py under a private name, leaving ``sys.path`` as it was (benchmarks/datasets.py must not
    shadow the HF package for later tests)."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("bench_service", ROOT / "benchmarks" / "service.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


B = _load()


def sample(wall: float, status: str | None = "done", error: str | None = None) -> object:
    return B.Sample(wall, status, error=error)


# -- percentiles --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 7, 50, 101])
def test_percentile_matches_numpy_linear_interpolation(n: int) -> None:
    rng = random.Random(n)
    xs = [rng.uniform(0, 10) for _ in range(n)]
    for q in (0, 1, 25, 50, 90, 99, 100):
        assert B.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))


def test_percentile_of_known_values_and_bad_input() -> None:
    assert B.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert B.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert B.percentile(list(map(float, range(1, 101))), 99) == pytest.approx(99.01)
    with pytest.raises(ValueError, match="no values"):
        B.percentile([], 50)
    with pytest.raises(ValueError, match="q must be"):
        B.percentile([1.0], 101)


# -- figures, ratio, summary ----------------------------------------------------------------------------------
def test_figures_count_failed_and_errored_runs_and_rate_runs_by_elapsed_time() -> None:
    xs = [sample(1.0), sample(2.0, "partial"), sample(3.0, "failed"), sample(4.0, None, "HTTP 500: boom")]
    xs[0] = B.Sample(1.0, "done", completion_tokens=40)
    f = B.figures(xs, elapsed_s=8.0)
    assert f == {"runs": 4, "errors": 2, "p50_s": 2.5, "p99_s": pytest.approx(3.97), "runs_per_s": 0.5, "mean_s": 2.5,
                 "completion_tokens_per_s": 5.0}  # fmt: skip
    assert B.figures([], 1.0)["p50_s"] is None


def test_overhead_ratio_is_mean_service_over_mean_api() -> None:
    assert B.overhead_ratio([sample(2.0), sample(4.0)], [sample(1.0), sample(3.0)]) == 1.5
    assert B.overhead_ratio([sample(1.0)], []) is None


def test_an_arm_has_the_summary_keys_and_the_summary_exactly_them() -> None:
    svc = [B.Round([sample(1.1), sample(1.3)], 1.5, own_cpu_s=0.1, server_cpu_s=0.4)]
    api = [B.Round([sample(1.0), sample(1.2)], 1.3, own_cpu_s=0.3)]
    arm = B.arm(svc, api)
    assert set(B.SUMMARY_KEYS) <= arm.keys()
    assert arm["overhead_ratio"] == pytest.approx(1.0909, abs=1e-4) and arm["meets_goal"] is False
    assert arm["cpu_s_per_run"] == {"service": {"own": 0.05, "server": 0.2}, "api": 0.15}
    assert arm["api"]["runs"] == 2 and arm["failures"] == []
    summary = B.summary_of(arm)
    assert tuple(summary) == B.SUMMARY_KEYS == ("runs", "errors", "p50_s", "p99_s", "runs_per_s", "overhead_ratio")
    only_service = B.arm(svc, [])
    assert only_service["overhead_ratio"] is None and "api" not in only_service


def test_cpu_per_run_without_proc_says_none() -> None:
    rounds = [B.Round([sample(1.0)], 1.0, own_cpu_s=0.2, server_cpu_s=math.nan)]
    assert B.cpu_per_run(rounds) == {"own": 0.2, "server": None}


def test_questions_differ_and_carry_their_sums() -> None:
    qs = [B.question(i) for i in range(60)]
    assert len({q for q, _ in qs}) == 60
    for q, a in qs:
        x, y = (int(t) for t in q.removeprefix("What is ").removesuffix("?").split(" + "))
        assert str(x + y) == a


def test_a_failure_names_the_steps_that_did_not_finish() -> None:
    why = B.failure("failed", None, [{"id": "s1", "status": "done"}, {"id": "s2", "status": "failed", "error": "x"}])
    assert why == "failed: None; steps: s2 failed: x"


async def test_the_sse_reader_returns_the_end_status_and_counts_the_events_before_it() -> None:
    body = (
        ': keepalive\n\nid: 1\nevent: run_started\ndata: {"seq": 1}\n\n'
        'id: 2\nevent: answer\ndata: {"seq": 2}\n\nevent: end\ndata: {"status": "done", "last_event_id": 2}\n\n'
    )
    assert await B.end_status(httpx.Response(200, content=body.encode())) == ("done", 2)
    assert await B.end_status(httpx.Response(200, content=b"id: 1\nevent: x\ndata: {}\n\n")) == (None, 1)


# -- the committed results ------------------------------------------------------------------------------------------
def test_the_committed_results_have_the_summary_and_both_arms() -> None:
    data = json.loads(RESULTS.read_text())
    assert tuple(data["summary"]) == B.SUMMARY_KEYS
    assert data["summary"]["runs"] >= 50 and data["summary"]["errors"] == 0
    assert data["summary"] == {k: data["arms"]["test_backend"][k] for k in B.SUMMARY_KEYS}
    for name in ("test_backend", "embedded"):
        arm = data["arms"][name]
        assert set(B.SUMMARY_KEYS) <= arm.keys(), name
        assert arm["runs"] > 0 and arm["p50_s"] <= arm["p99_s"] and arm["runs_per_s"] > 0
        assert arm["api"]["runs"] == arm["runs"]  # the same runs through the API
    assert data["arms"]["embedded"]["model"] and data["provenance"]["settings"]["embedded_model"]
    assert data["provenance"]["dirty"] is False
