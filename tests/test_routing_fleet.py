"""Several depots and mixed fleets: vehicle types (capacity, count, depot, fixed cost and cost per distance, longest
route by distance or by work), the verifier's checks for each, PyVRP on them, and the readers of Cordeau's
multi-depot and Taillard's mixed-fleet instances (VRPSolverEasy's data files).

Every solver run here is at most 1 s (the machine is shared)."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.domains.pipeline import attach_files
from longthink.domains.routing import (
    RoutingProblem,
    RoutingSolution,
    VehicleType,
    read_cordeau,
    read_problem,
    read_taillard,
    verify,
)
from longthink.domains.routing.solver import cost_scale, solve
from longthink.errors import ConfigError
from longthink.llm.types import SamplingParams
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM


def _data(kind: str) -> Path | None:
    spec = importlib.util.find_spec("VRPSolverEasy")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "demos" / "data" / kind
    return folder if folder.is_dir() else None


MDVRP, HFVRP = _data("MDVRP"), _data("HFVRP")


def two_depots(**fleet: Any) -> dict[str, Any]:
    """Depot 1 at (0, 0) with customers 1-2 near it, depot 2 at (100, 0) with customers 3-4 near it."""
    types = [
        {"name": "van", "capacity": 10, "count": 1, "depot": 0, "fixed_cost": 50.0},
        {"name": "truck", "capacity": 20, "count": 1, "depot": 1, "unit_cost": 2.0},
    ]
    return {
        "depots": [{"x": 0, "y": 0}, {"x": 100, "y": 0}],
        "customers": [
            {"id": 1, "x": 0, "y": 3, "demand": 4},
            {"id": 2, "x": 4, "y": 0, "demand": 5},
            {"id": 3, "x": 100, "y": 6, "demand": 8},
            {"id": 4, "x": 108, "y": 0, "demand": 9},
        ],
        "fleet": {"types": types, **fleet},
    }


def test_a_mixed_fleet_fills_its_totals_and_round_trips_as_json() -> None:
    problem = RoutingProblem.model_validate(two_depots())
    assert problem.depot == problem.all_depots[0] and len(problem.all_depots) == 2
    assert (problem.fleet.capacity, problem.fleet.vehicles, problem.fleet.mixed) == (20, 2, True)
    assert [t.name for t in problem.vehicle_types] == ["van", "truck"]
    assert RoutingProblem.model_validate_json(problem.model_dump_json()) == problem
    assert "van: 1 x capacity 10, at depot 1, cost 50 + 1/distance" in problem.fleet.describe()
    plain = RoutingProblem.model_validate({**two_depots(), "depots": (), "depot": {"x": 0, "y": 0},
                                           "fleet": {"vehicles": 2, "capacity": 20}})  # fmt: skip
    assert plain.vehicle_types == (VehicleType(capacity=20, count=2),) and not plain.fleet.mixed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fleet": {"capacity": 20, "vehicles": 2}}, "with several depots, give the fleet as vehicle types"),
        ({"fleet": {"types": [{"capacity": 20, "depot": 2}]}}, "vehicle type 1: depot 3, but there are 2"),
        ({"fleet": {"types": [{"capacity": 20}], "capacity": 30}}, "not the largest vehicle type's"),
        ({"fleet": {"types": [{"capacity": 20, "count": 1}], "vehicles": 3}}, "the types add up to 1"),
        ({"fleet": {"types": [{"capacity": 20, "count": 1}]}}, "total demand 26 exceeds the fleet's capacity 20"),
        ({"depot": {"x": 5, "y": 5}}, "depot must be the first of depots"),
    ],
)
def test_fleet_and_depot_mistakes_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RoutingProblem.model_validate({**two_depots(), **change})


def test_the_verifier_prices_each_route_by_its_vehicle_type_from_its_own_depot() -> None:
    problem = RoutingProblem.model_validate(two_depots())
    verdict = verify(problem, RoutingSolution(routes=((1, 2), (3, 4)), cost=0.0, vehicle_types=(0, 1)))
    van = 3 + 5 + 4  # depot 1 -> (0, 3) -> (4, 0) -> depot 1
    truck = 6 + 10 + 8  # depot 2 -> (100, 6) -> (108, 0) -> depot 2
    assert verdict.feasible, verdict.rationale()
    assert verdict.distances == pytest.approx((van, truck))
    assert verdict.cost == pytest.approx(50 + van + 2 * truck)


def test_the_verifier_names_each_fleet_violation() -> None:
    problem = RoutingProblem.model_validate(two_depots())
    kinds = lambda routes, types: {v.kind for v in verify(problem, routes, types).violations}  # noqa: E731
    assert kinds([(1, 2), (3, 4)], ()) == {"vehicle_type"}  # a mixed fleet: each route names its type
    assert kinds([(1, 2), (3, 4)], (0, 5)) == {"vehicle_type"}
    assert kinds([(1,), (2,), (3, 4)], (0, 0, 1)) == {"fleet_size"}  # one van only
    assert kinds([(3, 4), (1, 2)], (0, 1)) == {"capacity"}  # 17 in the van of capacity 10
    limited = RoutingProblem.model_validate(
        two_depots(
            types=[
                {"capacity": 20, "count": 2, "max_distance": 20.0},
                {"capacity": 20, "count": 1, "depot": 1, "max_duration": 30.0},
            ]
        )
    )
    too_long = verify(limited, [(1, 2), (3, 4)], (0, 1))
    assert too_long.feasible, too_long.rationale()  # 12 long; 24 of work
    slow = limited.model_copy(
        update={"customers": tuple(c.model_copy(update={"service": 4.0}) for c in limited.customers)}
    )
    assert [v.kind for v in verify(slow, [(1, 2), (3, 4)], (0, 1)).violations] == ["route_limit"]  # 24 + 8 > 30
    assert [v.kind for v in verify(limited, [(1, 2, 3, 4)], (0,)).violations] == ["capacity", "route_limit"]


def test_pyvrp_serves_each_customer_from_the_depot_near_it_and_prices_the_fleet() -> None:
    problem = RoutingProblem.model_validate(two_depots(types=[
        {"capacity": 10, "count": 2, "depot": 0, "fixed_cost": 50.0},
        {"capacity": 20, "count": 2, "depot": 1, "unit_cost": 1.5},
    ]))  # fmt: skip
    assert cost_scale(problem) == 10
    solution = solve(problem, time_limit_s=0.5)
    verdict = verify(problem, solution)
    assert verdict.feasible, verdict.rationale()
    assert sorted(zip(solution.vehicle_types, solution.routes, strict=True))[0][0] == 0
    served = {c: t for t, route in zip(solution.vehicle_types, solution.routes, strict=True) for c in route}
    assert served == {1: 0, 2: 0, 3: 1, 4: 1}
    assert solution.cost == pytest.approx(verdict.cost, abs=0.01)
    assert "vehicle type 1" in solution.summary() and "total cost" in solution.summary()


def test_one_vehicle_type_with_a_route_limit_is_kept_by_pyvrp() -> None:
    data = two_depots(types=[{"capacity": 100, "max_distance": 35.0}])
    data["depots"] = [{"x": 0, "y": 0}]
    data["customers"] = [{"id": 1, "x": 0, "y": 10, "demand": 1}, {"id": 2, "x": 0, "y": -10, "demand": 1},
                         {"id": 3, "x": 10, "y": 0, "demand": 1}]  # fmt: skip
    problem = RoutingProblem.model_validate(data)
    assert not verify(problem, [(1, 3, 2)]).feasible  # one route through all three is 48.3 long
    solution = solve(problem, time_limit_s=0.5)
    verdict = verify(problem, solution)
    assert verdict.feasible, verdict.rationale()
    assert max(verdict.distances) <= 35.0 and len(solution.routes) == 2


def test_cordeau_and_taillard_files_are_read_and_misread_ones_named(tmp_path: Path) -> None:
    md = tmp_path / "md1"
    md.write_text("2 2 3 2\n50 30\n0 30\n1 1 1 5 10 1 2 1 2\n2 9 9 0 10 1 2 1 2\n3 5 5 0 10 1 2 1 2\n"
                  "4 0 0 0 0\n5 10 10 0 0\n")  # fmt: skip
    problem = read_problem(md)
    assert [(d.x, d.y) for d in problem.all_depots] == [(0, 0), (10, 10)]
    assert [(t.count, t.capacity, t.depot, t.max_duration) for t in problem.vehicle_types] == [(2, 30, 0, 50.0),
                                                                                               (2, 30, 1, None)]  # fmt: skip
    assert problem.customer(1).service == 5 and problem.customer(3).demand == 10
    hf = tmp_path / "hf.txt"
    hf.write_text("2\n0 0 0 0\n1 3 4 5\n2 6 8 7\n2\n10 20 1.0 0 3\n30 50 1.5 0 1\n")
    mixed = read_problem(hf)
    assert [(t.capacity, t.fixed_cost, t.unit_cost, t.count) for t in mixed.vehicle_types] == [
        (10, 20.0, 1.0, 3), (30, 50.0, 1.5, 1)]  # fmt: skip
    (tmp_path / "bad").write_text("2 2 3 2\n50 30\n")
    with pytest.raises(ConfigError, match="need 8"):
        read_cordeau(tmp_path / "bad")
    (tmp_path / "worse.txt").write_text("2\n0 0 0 0\n1 3 4 5\n2 6 x 7\n")
    with pytest.raises(ConfigError, match="line 4 is not a row of numbers"):
        read_taillard(tmp_path / "worse.txt")


@pytest.mark.skipif(MDVRP is None or HFVRP is None, reason="VRPSolverEasy (data only) is not installed")
def test_real_multi_depot_and_mixed_fleet_instances_solve_feasibly() -> None:
    assert MDVRP is not None and HFVRP is not None
    p01 = read_problem(MDVRP / "p01")
    assert (len(p01.customers), len(p01.all_depots), p01.fleet.vehicles, p01.fleet.capacity) == (50, 4, 16, 80)
    hd = read_problem(HFVRP / "c50_13hd.txt")
    assert [t.count for t in hd.vehicle_types] == [4, 2, 4, 4, 2, 1]
    for problem in (p01, hd):
        solution = solve(problem, time_limit_s=1.0)
        verdict = verify(problem, solution)
        assert verdict.feasible, verdict.rationale()
        assert math.isclose(solution.cost, verdict.cost, rel_tol=1e-4)


def _agent(tmp_path: Path) -> Agent:
    def no_model(prompt: str, params: SamplingParams, index: int) -> str:
        raise AssertionError("an attached file is read without the model")

    opts = AgentOptions(domain="routing", artifacts_dir=str(tmp_path / "artifacts"))
    return Agent(llm=FunctionLLM(no_model), options=opts, store=MemoryStore(), checkpoints=None)


async def test_an_attached_mixed_fleet_problem_is_routed_verified_and_reported_per_vehicle_type(tmp_path: Path) -> None:
    problem = RoutingProblem.model_validate(two_depots(types=[
        {"name": "van", "capacity": 10, "count": 2, "depot": 0, "fixed_cost": 50.0},
        {"name": "truck", "capacity": 20, "count": 2, "depot": 1, "unit_cost": 1.5},
    ]))  # fmt: skip
    request = attach_files("Plan the routes, time limit 0.5 s.", {"fleet.json": problem.model_dump_json()})
    result = await _agent(tmp_path).asolve(request)
    assert result.status == "done", result.justification
    report = result.steps["report"].data
    assert {(r["type_name"], r["depot"]) for r in report["routes"]} == {("van", 1), ("truck", 2)}
    assert report["total_cost"] > report["total_distance"]  # the vans' fixed cost and the trucks' 1.5 per distance
    assert result.answer is not None, result.justification
    assert re.search(r"vehicle \d \(van\): depot 1 -> \d -> \d -> depot 1 \| load 9/10", result.answer), result.answer
    assert re.search(r"vehicle \d \(truck\): depot 2 -> \d -> \d -> depot 2 \| load 17/20", result.answer)
    assert "Total cost" in result.answer and "verified feasible" in result.answer
    assert Path(report["plot"]).is_file()


@pytest.mark.skipif(MDVRP is None, reason="VRPSolverEasy (data only) is not installed")
async def test_an_attached_cordeau_file_is_solved_against_its_published_best_known(tmp_path: Path) -> None:
    assert MDVRP is not None
    request = attach_files("Route these deliveries, time limit 1 s.", {"p01.txt": (MDVRP / "p01").read_text()})
    result = await _agent(tmp_path).asolve(request)
    assert result.status == "done", result.justification
    report = result.steps["report"].data
    assert report["best_known"] == 576.87 and report["gap_pct"] is not None and report["gap_pct"] > -0.01
    assert {r["depot"] for r in report["routes"]} == {1, 2, 3, 4}


def test_a_fixed_cost_far_above_the_overload_penalty_still_gives_feasible_routes() -> None:
    customers = [{"id": i, "x": 10.0 * (i % 5), "y": 10.0 * (i // 5), "demand": 9} for i in range(1, 13)]
    problem = RoutingProblem.model_validate({
        "depot": {"x": 20, "y": 10}, "customers": customers,
        "fleet": {"types": [{"capacity": 30, "fixed_cost": 3500.0, "unit_cost": 1.4},
                            {"capacity": 20, "fixed_cost": 1000.0}]},
    })  # fmt: skip
    solution = solve(problem, time_limit_s=0.5)
    verdict = verify(problem, solution)
    assert verdict.feasible, verdict.rationale()
