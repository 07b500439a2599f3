"""Plans robust to uncertain demand: the request's statement read by rule (and kept out of the problem's values),
scenarios drawn with the extreme one first, the detour-to-depot recourse computed by hand, the search choosing by
the stated criterion against the mean-scenario plan, and the pipeline reporting the plan per scenario."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.domains.routing import RoutingProblem, RoutingSolution
from longthink.domains.routing.scenarios import (
    Scenario,
    Uncertainty,
    evaluate,
    find_uncertainty,
    inflated,
    robust_plans,
    sample_scenarios,
)
from longthink.domains.routing.structure import read_request
from longthink.llm.types import SamplingParams
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM


def rule_agent(tmp_path: Path) -> Agent:
    """The routing agent with a model that must not be called: these requests are read whole by rule."""

    def no_model(prompt: str, params: SamplingParams, index: int) -> str:
        raise AssertionError("a request the rules read whole needs no model")

    opts = AgentOptions(domain="routing", artifacts_dir=str(tmp_path / "artifacts"))
    return Agent(llm=FunctionLLM(no_model), options=opts, store=MemoryStore(), checkpoints=None)


LINE = RoutingProblem.model_validate({
    "depot": {"x": 0, "y": 0},
    "customers": [{"id": 1, "x": 3, "y": 0, "demand": 4}, {"id": 2, "x": 6, "y": 0, "demand": 4},
                  {"id": 3, "x": 0, "y": 8, "demand": 6}],
    "fleet": {"capacity": 10},
})  # fmt: skip


@pytest.mark.parametrize(
    ("text", "share", "criterion"),
    [
        ("Demand may be up to 20% higher, plan for the worst case.", 0.2, "worst"),
        ("demands could rise by 15 percent; keep the cost low on average", 0.15, "expected"),
        ("Each shop's demand might be 30% more; serve it as planned as often as possible.", 0.3, "feasible_share"),
        ("Deliver 20% of the stock first.", None, None),
    ],
)
def test_the_uncertainty_a_request_states_is_read_by_rule(
    text: str, share: float | None, criterion: str | None
) -> None:
    found = find_uncertainty(text)
    assert (found.share if found else None) == share and (found.criterion if found else None) == criterion


def test_the_uncertainty_is_not_read_as_a_value_of_the_problem() -> None:
    text = ("Depot at (0, 0). 2 vans, capacity 10 crates each.\n- Ash at (3, 0): 4 crates\n- Elm at (6, 0): 4 crates\n"
            "Demand may be up to 25% higher than this.")  # fmt: skip
    reading = read_request(text)
    assert reading.complete and not reading.unread, reading.incomplete
    assert ("uncertainty", "Demand may be up to 25%") in [(k, t) for k, _, t in reading.ignored]


def test_scenarios_start_with_the_extreme_and_stay_between_stated_and_highest() -> None:
    scenarios = sample_scenarios(LINE, Uncertainty(0.5, samples=30), seed=3)
    assert len(scenarios) == 30 and scenarios[0].demands == {1: 6, 2: 6, 3: 9}
    assert all(4 <= s.demands[1] <= 6 and 6 <= s.demands[3] <= 9 for s in scenarios)
    assert len({tuple(s.demands.values()) for s in scenarios}) > 3
    assert sample_scenarios(LINE, Uncertainty(0.5, samples=30), seed=3) == scenarios  # seeded


def test_a_full_vehicle_goes_back_to_unload_and_the_detour_is_paid() -> None:
    plan = RoutingSolution(routes=((1, 2, 3),), cost=0.0)
    stated = evaluate(LINE, plan, Scenario(0, {1: 4, 2: 4, 3: 2}))
    assert stated.feasible and stated.cost == pytest.approx(6 + math.hypot(6, 8) + 8)  # 0 -> 3 -> 6 -> (0, 8) -> 0
    full = evaluate(LINE, plan, Scenario(1, {1: 4, 2: 4, 3: 6}))  # 14 > 10: home after customer 2, then out again
    assert full.detours == 1 and full.cost == pytest.approx(6 + 6 + 8 + 8)
    huge = evaluate(LINE, RoutingSolution(routes=((3,),), cost=0.0), Scenario(2, {1: 0, 2: 0, 3: 25}))
    assert huge.detours == 2 and huge.cost == pytest.approx(16 + 2 * 16)  # two more round trips for 15 over 10


def test_inflated_demand_is_capped_at_the_capacity_and_rejected_when_a_fixed_fleet_cannot_carry_it() -> None:
    more = inflated(LINE, 0.5)
    assert more is not None and [c.demand for c in more.customers] == [6, 6, 9]
    fixed = RoutingProblem.model_validate({**LINE.model_dump(), "fleet": {"capacity": 10, "vehicles": 2}})
    assert inflated(fixed, 0.5) is None  # 21 > 2 x 10


async def test_the_robust_plan_wins_its_criterion_against_the_mean_scenario_plan() -> None:
    search = await robust_plans(LINE, Uncertainty(0.5, "worst", samples=10), time_limit_s=0.2)
    best, mean = search.best, search.plans[search.mean_plan or 0]
    assert search.mean_plan is not None and mean.buffer == 0.5
    assert best.worst <= min(p.worst for p in search.plans) + 1e-9 and best.worst <= mean.worst
    assert len(best.outcomes) == 10 and {p.buffer for p in search.plans} == {0.0, 0.25, 0.5, 0.75, 1.0}


async def test_the_pipeline_reports_the_chosen_plan_per_scenario(tmp_path: Path) -> None:
    agent = rule_agent(tmp_path)
    request = ("Depot at (0, 0). Vans carry 10 crates each, as many as it takes.\n- Ash at (3, 0): 4 crates\n"
               "- Elm at (6, 0): 4 crates\n- Fir at (0, 8): 6 crates\nDemand may be up to 50% higher, plan for "
               "the worst case. Time limit 0.2 s.")  # fmt: skip
    result = await agent.asolve(request)
    assert result.status == "done", result.justification
    solve = result.steps["solve"]
    assert solve.strategy == "scenarios" and solve.data["scenarios"]["criterion"] == "worst"
    per = solve.data["scenarios"]["per_scenario"]
    assert len(per) == 20 and per[0]["scenario"] == "every demand 50% higher"
    assert max(r["cost"] for r in per) == solve.data["scenarios"]["chosen"]["worst"]
    assert result.answer is not None and "Uncertain demand (demand up to 50% higher" in result.answer
    assert "the plan for the mean scenario: worst" in result.answer


# -- a vehicle may break down --------------------------------------------------------------------------------------
CLUSTERS = RoutingProblem.model_validate({
    "depot": {"x": 0, "y": 0},
    "customers": [{"id": 1, "x": 20, "y": 2, "demand": 10}, {"id": 2, "x": 22, "y": -3, "demand": 10},
                  {"id": 3, "x": -19, "y": 8, "demand": 10}, {"id": 4, "x": -21, "y": 5, "demand": 10},
                  {"id": 5, "x": 2, "y": -22, "demand": 10}, {"id": 6, "x": -3, "y": -20, "demand": 9}],
    "fleet": {"vehicles": 3, "capacity": 30},
})  # fmt: skip


@pytest.mark.parametrize(
    ("text", "breakdown", "criterion"),
    [
        ("One truck may break down tomorrow.", True, "feasible_share"),
        ("Plan for it in case a van breaks down; keep the cost low on average.", True, "expected"),
        ("Demand may be 20% higher and one of our vans might be out of service.", True, "worst"),
        ("We have one truck and 2 vans.", False, None),
    ],
)
def test_a_vehicle_that_may_break_down_is_read_by_rule(text: str, breakdown: bool, criterion: str | None) -> None:
    found = find_uncertainty(text)
    assert (found is not None and found.breakdown) == breakdown
    assert (found.criterion if found else None) == criterion


def test_a_breakdown_statement_is_not_a_fleet_size() -> None:
    text = "Depot at (0, 0). We have 3 vans, 30 boxes each; one van may break down.\n- A: (1, 2), 5 boxes\n"
    reading = read_request(text)
    assert reading.problem is not None and reading.problem.fleet.vehicles == 3 and not reading.issues
    assert "breakdown" in [k for k, _, _ in reading.ignored]


def test_a_vehicle_down_is_covered_by_a_spare_or_by_a_second_trip() -> None:
    scenarios = sample_scenarios(CLUSTERS, Uncertainty(0.0, breakdown=True))
    assert [s.down for s in scenarios] == [(0, 0), (0, 1), (0, 2)]
    three = RoutingSolution(routes=((1, 2), (3, 4), (5, 6)), cost=0.0)
    two = RoutingSolution(routes=((1, 2, 5), (3, 4, 6)), cost=0.0)
    stated = {c.id: c.demand for c in CLUSTERS.customers}
    plain3 = evaluate(CLUSTERS, three, Scenario(0, stated)).cost
    for s in scenarios:  # every vehicle is on the road: the lost route is a second trip, at the same distance
        assert evaluate(CLUSTERS, three, s).detours == 1 and evaluate(CLUSTERS, three, s).cost == pytest.approx(plain3)
    plain2 = evaluate(CLUSTERS, two, Scenario(0, stated)).cost
    for s in scenarios:  # one van is free: it drives the lost route as planned
        assert evaluate(CLUSTERS, two, s) == evaluate(CLUSTERS, two, Scenario(0, stated))
    assert plain2 > plain3


def test_a_spare_of_another_type_takes_over_at_its_own_costs() -> None:
    mixed = RoutingProblem.model_validate({
        "depot": {"x": 0, "y": 0},
        "customers": [{"id": 1, "x": 3, "y": 4, "demand": 8}],
        "fleet": {"types": [{"name": "van", "capacity": 10, "count": 1},
                            {"name": "truck", "capacity": 20, "count": 1, "fixed_cost": 7, "unit_cost": 2}]},
    })  # fmt: skip
    plan = RoutingSolution(routes=((1,),), cost=0.0, vehicle_types=(0,))
    down = evaluate(mixed, plan, Scenario(0, {1: 8}, "van down", (0, 0)))
    assert down.detours == 0 and down.cost == pytest.approx(7 + 2 * 10)  # the truck: fixed cost + 2 x (5 + 5)
    assert evaluate(mixed, plan, Scenario(0, {1: 8}, "truck down", (1, 0))).cost == pytest.approx(10)  # unused


async def test_the_search_holds_back_a_spare_when_breakdowns_are_judged_by_the_share_served() -> None:
    search = await robust_plans(CLUSTERS, Uncertainty(0.0, "feasible_share", breakdown=True), time_limit_s=0.2)
    best, cheapest = search.best, search.plans[search.mean_plan or 0]
    assert search.mean_plan is not None and cheapest.spare == -1 and {p.spare for p in search.plans} == {-1, 0}
    held = [p for p in search.plans if p.spare == 0]
    assert held and all(len(p.solution.routes) <= 2 and p.feasible_share == 1.0 for p in held)
    assert best.feasible_share == 1.0  # a plan with a spare exists, so the chosen one covers every breakdown
    if cheapest.feasible_share < 1.0:  # the solver used all three vans (the cheapest plan): the spare plan wins
        assert best.spare == 0 and best.stated_cost > cheapest.stated_cost
    with pytest.raises(ValueError, match="unlimited"):
        await robust_plans(LINE, Uncertainty(0.0, breakdown=True), time_limit_s=0.2)


async def test_the_pipeline_plans_for_a_breakdown_and_reports_every_vehicle_down(tmp_path: Path) -> None:
    agent = rule_agent(tmp_path)
    request = ("Depot at (0, 0). We have 3 vans carrying 30 boxes each; one van may break down tomorrow. Stops: Ames "
               "at (20, 2), 10 boxes; Birch at (22, -3), 10 boxes; Cole at (-19, 8), 10 boxes; Dunn at (-21, 5), 10 "
               "boxes; Elm at (2, -22), 10 boxes; Fox at (-3, -20), 9 boxes. Time limit 0.3 s.")  # fmt: skip
    result = await agent.asolve(request)
    assert result.status == "done", result.justification
    data = result.steps["solve"].data["scenarios"]
    assert data["breakdown"] and data["share"] == 0 and data["criterion"] == "feasible_share"
    assert [r["scenario"] for r in data["per_scenario"]] == [f"vehicle {k} out of service" for k in (1, 2, 3)]
    assert data["chosen"]["feasible_share"] == 1.0 and len(result.steps["solve"].data["solution"]["routes"]) <= 2
    assert result.answer is not None and "any one vehicle may break down" in result.answer
    assert "the cheapest plan with no spare" in result.answer and "(as planned)" in result.answer


async def test_a_breakdown_with_an_unlimited_fleet_is_planned_as_usual(tmp_path: Path) -> None:
    agent = rule_agent(tmp_path)
    request = ("Depot at (0, 0). Vans carry 10 crates each, as many as it takes; a van may break down.\n"
               "- Ash at (3, 0): 4 crates\n- Elm at (6, 0): 4 crates\n- Fir at (0, 8): 6 crates\nTime limit 0.2 s.")  # fmt: skip
    result = await agent.asolve(request)
    assert result.status == "done", result.justification
    assert result.steps["solve"].strategy == "solver_configs"
