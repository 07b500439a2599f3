"""The peers benchmark's pure parts (no server, no network): the schedule's interleaving, the server meter's parsing,
aggregation with Wilson intervals, the summary ratios, partial results written whole, the drivers' answer extractor;
and one ``--quick`` run against a real vLLM server (slow)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from bench_modules import load_benchmark

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


_load = load_benchmark


P = _load("peers")


def run(setting: str, tool: str, pid: str, correct: bool, wall: float, gen: float, **kw: Any) -> dict[str, Any]:
    strategy, _, n = setting.partition("@")
    return {"setting": setting, "strategy": strategy, "n": int(n) if n else None, "tool": tool, "problem_id": pid,
            "correct": correct, "wall_s": wall, "gen_tokens": gen, "prompt_tokens": 10.0, "http_requests": 1.0,
            "engine_requests": 4.0, "n_sum": 4.0, "prefix_hits": 5.0, "prefix_queries": 10.0,
            "concurrency_mean": 1.0, "concurrency_max": 2.0, "samples": 4, "error": None, **kw}  # fmt: skip


# -- statistics ----------------------------------------------------------------------------------------------------
def test_wilson_interval() -> None:
    assert P.wilson(0, 0) is None
    lo, hi = P.wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert P.wilson(0, 10)[0] == 0.0 and P.wilson(10, 10)[1] == 1.0
    lo, hi = P.wilson(3, 30)
    assert lo < 0.1 < hi


def test_geomean_skips_nonpositive() -> None:
    assert P.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert P.geomean([]) is None and P.geomean([0.0]) is None


def test_ratio_ci_of_a_constant_ratio_is_tight() -> None:
    lo, hi = P.ratio_ci([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], 200, 0)
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)
    assert P.ratio_ci([1.0], [1.0], 100, 0) is None


# -- the schedule --------------------------------------------------------------------------------------------------
def test_settings_rows_follow_the_design() -> None:
    rows = P.settings_rows(P.Settings())
    assert [r.label for r in rows] == ["sc@4", "sc@8", "sc@16", "bon@4", "bon@8", "bon@16", "tree", "best@16"]


def test_schedule_interleaves_tools_per_problem_and_rotates_who_goes_first() -> None:
    rows = P.settings_rows(P.Settings(ns=(4, 8), strategies=("sc", "tree", "best")))
    order = P.schedule(rows, 6, P.TOOLS)
    # every runnable (row, problem, tool) exactly once; its_hub has no tree search, only longthink runs "best"
    assert len(order) == len(set(order)) == 2 * 6 * 3 + 6 * 2 + 6
    assert not any(rows[r].strategy == "tree" and t == "its_hub" for r, _, t in order)
    # all tools finish a problem before the next problem starts (A B C A B C ...)
    blocks = [order[i : i + 3] for i in range(0, 2 * 6 * 3, 3)]
    assert all(len({(r, p) for r, p, _ in b}) == 1 and {t for *_, t in b} == set(P.TOOLS) for b in blocks)
    # each tool goes first equally often in a row
    first = Counter(b[0][2] for b in blocks[:6])
    assert set(first.values()) == {2}


# -- the meter -----------------------------------------------------------------------------------------------------
METRICS = """# HELP vllm:generation_tokens_total Number of generation tokens processed.
vllm:generation_tokens_total{engine="0",model_name="m"} 120.0
vllm:generation_tokens_total{engine="1",model_name="m"} 30.0
vllm:request_params_n_sum{model_name="m"} 9.0
vllm:request_params_n_count{model_name="m"} 3.0
vllm:num_requests_running{model_name="m"} 2.0
http_requests_total{handler="/v1/chat/completions",method="POST",status="2xx"} 4.0
http_requests_total{handler="/metrics",method="GET",status="2xx"} 40.0
process_cpu_seconds_total 12.5
"""


def test_parse_metrics_sums_over_labels() -> None:
    m = P.parse_metrics(METRICS)
    assert m["vllm:generation_tokens_total"] == 150.0 and m["vllm:request_params_n_count"] == 3.0
    assert "process_cpu_seconds_total" not in m and not any(k.startswith("http") for k in m)
    after = dict(m, **{"vllm:generation_tokens_total": 250.0, "vllm:request_params_n_count": 5.0})
    d = P.metered(m, after)
    assert d["gen_tokens"] == 100.0 and d["http_requests"] == 2.0 and d["prefix_hits"] == 0.0


# -- aggregation and the summary -----------------------------------------------------------------------------------
def test_aggregate_compares_only_problems_every_tool_finished() -> None:
    runs = [
        run("sc@4", "longthink", "a", True, 10, 400),
        run("sc@4", "its_hub", "a", False, 20, 420),
        run("sc@4", "longthink", "b", True, 10, 400),  # its_hub has not run "b" yet (partial results)
    ]
    table = P.aggregate(runs)
    lt = next(r for r in table if r["tool"] == "longthink")
    assert lt["problems"] == 1 and lt["accuracy"] == 1.0 and lt["wall_s_per_problem"] == 10
    assert lt["mean_n_per_request"] == 4.0 and lt["prefix_hit_rate"] == 0.5
    assert lt["ci95"] == pytest.approx(P.wilson(1, 1))


def test_compare_ratios_and_losses() -> None:
    runs = []
    for pid in "abcd":
        runs += [
            run("sc@4", "longthink", pid, True, 10, 400),
            run("sc@4", "its_hub", pid, pid != "a", 30, 420),  # longthink: equal or better, 3x faster
            run("sc@4", "optillm", pid, True, 40, 380),
            run("bon@4", "longthink", pid, pid in "ab", 10, 500),  # less accurate than optillm: a loss
            run("bon@4", "optillm", pid, True, 50, 600),
            run("bon@4", "its_hub", pid, pid == "a", 15, 700),  # equal accuracy, 1.5x only: a loss on speed
            run("best@16", "longthink", pid, True, 12, 200),
        ]
    table = P.aggregate(runs)
    sm = P.compare(table, runs, boots=100, seed=0)
    assert sm["wall_ratio_its_hub"] == pytest.approx(math.sqrt(3.0 * 1.5))
    assert sm["wall_ratio_optillm"] == pytest.approx(4.0)  # bon@4 is not counted: longthink is less accurate
    # the best row (accuracy 1.0, 200 tokens) against every matched peer row it equals or beats
    assert sm["token_ratio_optillm"] == pytest.approx(math.sqrt(200 / 380 * 200 / 600))
    assert sm["token_ratio_its_hub"] == pytest.approx(math.sqrt(200 / 420 * 200 / 700))
    # frontier: optillm bon@4 (acc 1.0, 50 s) vs the fastest longthink row with acc 1.0 (sc@4, 10 s)
    assert sm["wall_ratio_optillm_frontier"] == pytest.approx(math.sqrt(4.0 * 5.0))
    row = next(r for r in sm["rows_its_hub"] if r["setting"] == "sc@4")
    assert row["equal_or_better"] and row["wall_ratio_ci95"] == pytest.approx([3.0, 3.0])
    assert any(x.startswith("bon@4 vs optillm: accuracy") for x in sm["losses"])
    assert any(x.startswith("bon@4 vs its_hub: 1.50x faster only") for x in sm["losses"])
    assert not any(x.startswith("tokens vs") for x in sm["losses"])  # 0.37 and 0.42: the goal is met


def test_estimate_full_run_scales_matched_rows_by_n() -> None:
    table = [
        {"tool": t, "strategy": s, "n": 2 if s in P.MATCHED else None, "wall_s_per_problem": 10.0}
        for t in P.TOOLS
        for s in ("sc", "bon", "tree", "best")
        if s in P.SUPPORTED[t]
    ]
    full = P.Settings(problems=30, ns=(4, 8, 16))
    # per tool: sc and bon at 5 s per sample x 28 samples x 30 problems; tree and best: 10 s x 30 problems
    expected = (3 * 2 * 5 * 28 * 30 + 2 * 10 * 30 + 10 * 30) / 3600
    assert P.estimate_full_run(table, full) == {"hours": pytest.approx(expected), "missing": []}
    assert "its_hub sc" in P.estimate_full_run(table[:1], full)["missing"]


def test_partial_results_are_written_whole(tmp_path: Path) -> None:
    s = P.Settings(problems=1, ns=(4,), out=tmp_path)
    runs = [run("sc@4", "longthink", "a", True, 10, 400), run("sc@4", "its_hub", "a", True, 20, 400)]
    path = tmp_path / "peers.json"
    P.write_json(path, P.assemble(s, runs, {"not_run": []}, partial=True))
    data = json.loads(path.read_text())
    assert data["summary"]["partial"] is True and data["summary"]["wall_ratio_its_hub"] == pytest.approx(2.0)
    assert {"commit", "dirty", "settings", "date", "cpu_count"} <= data["provenance"].keys()
    assert len(data["runs"]) == 2 and data["table"] and data["why"]
    with pytest.raises(TypeError):  # a write that fails midway leaves the last complete file in place
        P.write_json(path, {"summary": object()})
    assert json.loads(path.read_text())["summary"]["partial"] is True


def test_plot_writes_a_png(tmp_path: Path) -> None:
    runs = [run("sc@4", t, "a", True, w, 400) for t, w in (("longthink", 5), ("optillm", 20), ("its_hub", 9))]
    P.plot(P.aggregate(runs), tmp_path / "peers.png")
    assert (tmp_path / "peers.png").read_bytes()[:4] == b"\x89PNG"


def test_quick_flags_shrink_the_design() -> None:
    s = P.parse_args(["--quick", "--tools", "longthink", "its_hub"])
    assert (s.problems, s.ns, s.max_tokens, s.tools) == (2, (2,), 128, ("longthink", "its_hub"))
    assert s.out != P.RESULTS
    s = P.parse_args(["--problems", "8", "--n", "4", "8", "--strategies", "sc", "best"])
    assert (s.problems, s.ns, s.strategies, s.out) == (8, (4, 8), ("sc", "best"), P.RESULTS)


def test_driver_reads_answers_with_longthinks_extractor_without_importing_the_package() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import its_hub_driver as d\n"
        "f = d.load_extractor(sys.argv[2])\n"
        "print(f('so 6 + 7 = 13.\\nAnswer: 13', 'number').value, f('\\\\boxed{1,200}', 'number').value)\n"
        "print(hasattr(sys.modules['longthink'], '__file__'))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(BENCH / "peers_drivers"), str(ROOT)],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": ""})  # fmt: skip
    assert out.stdout.split() == ["13", "1200", "False"]


# -- a real run (a vLLM server and the peers' environments) --------------------------------------------------------
@pytest.mark.slow
@pytest.mark.real_model
def test_quick_run_end_to_end(tmp_path: Path) -> None:
    endpoint = os.environ.get("LONGTHINK_PEERS_ENDPOINT")
    if not endpoint:
        pytest.skip("set LONGTHINK_PEERS_ENDPOINT to a running vLLM server's base URL")
    cmd = [sys.executable, str(BENCH / "peers.py"), "--quick", "--endpoint", endpoint, "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=3600)
    data = json.loads((tmp_path / "peers.json").read_text())
    assert data["summary"]["partial"] is False
    assert {r["tool"] for r in data["table"]} == set(P.TOOLS)
    assert {"wall_ratio_optillm", "wall_ratio_its_hub", "token_ratio_optillm", "token_ratio_its_hub"} <= set(
        data["summary"]
    )
    assert (tmp_path / "peers.png").is_file()
