"""The goal benchmark's requests (generated, read back exactly by the pack's request reader, out-of-reach ones
beyond what the pack accepts as plausible) and its scoring, end to end with a scripted model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from longthink.domains.business_plan.request import read_request
from longthink.testing import FunctionLLM

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_business_goals", ROOT / "benchmarks" / "business_goals.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


goals = _load()


def test_requests_are_read_back_exactly() -> None:
    reqs = goals.requests(20)
    assert len(reqs) == 20 and len({r.text for r in reqs}) == 20
    assert sum(not r.reachable for r in reqs) == 4
    assert goals.requests(20) == reqs and goals.requests_hash(reqs) == goals.requests_hash(goals.requests(20))
    for r in reqs:
        facts = read_request(r.text)
        assert facts.figures.get("revenue") == r.revenue, r.text
        assert facts.figures.get("profit") == r.profit, r.text
        assert facts.figures.get("variable_cost_pct") == r.var_pct, r.text
        assert facts.target is not None and (facts.target.metric, facts.target.pct, facts.target.period) == (
            r.metric, r.goal, 1), r.text  # fmt: skip
        if not r.reachable:
            assert r.goal > goals.MAX_PLAUSIBLE_REVENUE_GROWTH


async def test_a_run_scores_reached_honest_and_figures(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_business_plan import SMALL, proposals_by_option

    # first proposals miss every goal; refined ones (shown the financial model's result) add 10% growth and a 20%
    # lever: enough for any profit goal here, never for revenue +60% or more
    big = {"revenue_growth_pct": 10, "levers": [{"name": "new market", "revenue_uplift_pct": 20}],
           "investments": [{"name": "sales team", "amount": 5000, "period": 1}]}  # fmt: skip
    fn, shown = proposals_by_option(SMALL, big)
    s = goals.parse(["--quick", "--out", str(tmp_path / "r.json"), "--cache", str(tmp_path)])
    result = await goals.run(s, FunctionLLM(fn))
    assert shown
    rows = {r["reachable"]: r for r in result["rows"]}
    assert rows[True]["reached"] and rows[True]["said_not_reached"] is False
    out = rows[False]  # revenue +60% or more: the scripted levers cannot reach it, and the plan says so
    assert not out["reached"] and out["said_not_reached"] and out["honest"] and out["status"] != "done"
    summary = result["summary"]
    assert summary["goal_reached_share"] == 1.0 and summary["honest_share"] == 1.0 and summary["false_reached"] == 0
    assert set(result["provenance"]) >= {"commit", "date"} and result["settings"]["requests_sha256_16"]
