"""The routing pack's solver tool on PyVRP (the ``routing`` extra), and a search over solver configurations.

The tool (:class:`RouteSolver`) is listed in the pack's ``DomainPack.tools``; it is not one of the engine's
generic default tools.

:func:`solve` maps a :class:`RoutingProblem` onto PyVRP's integer data: distances under the problem's
rounding are scaled to integers ("round": x1, "dimacs": x10, "exact": x1000 rounded; exact travel times are
rounded *up*, so a schedule PyVRP finds feasible is feasible in exact arithmetic too), time windows and
service times scaled the same way (ready and service rounded up, due rounded down). It blocks for the time
limit; the tool and :func:`solve_configs` run it in a worker thread.

:func:`solve_configs` is test-time search at this level: several seeds and time limits, each result checked
by the independent verifier (:func:`longthink.domains.routing.verify.verify`), the best feasible one kept.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field, field_validator, model_validator

from longthink.domains.routing.io import read_problem
from longthink.domains.routing.problem import RoutingProblem, RoutingSolution
from longthink.domains.routing.verify import RoutingVerdict, verify
from longthink.errors import ConfigError
from longthink.tools.base import ToolResult

SCALE: dict[str, int] = {"round": 1, "dimacs": 10, "exact": 1000}
"""Integer units per distance unit handed to PyVRP, by the problem's rounding."""


def cost_scale(problem: RoutingProblem) -> int:
    """A mixed fleet's costs per distance go to PyVRP as integers: in units (1), tenths (1.1 per km: 11) or
    hundredths (1.15: 115), the coarsest that holds them all (finer ones are rounded to hundredths; the verifier
    recomputes the exact cost of the routes PyVRP returns). Larger numbers than needed make PyVRP's penalties for
    overloads too weak to find a feasible solution."""
    for scale in (1, 10):
        if all(abs(t.unit_cost * scale - round(t.unit_cost * scale)) < 1e-9 for t in problem.vehicle_types):
            return scale
    return 100


def distance_matrices(problem: RoutingProblem) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """PyVRP's (distance, duration) matrices in scaled integer units; the depots come first, then the customers."""
    depots = problem.all_depots
    xs = np.array([*(d.x for d in depots), *(c.x for c in problem.customers)], dtype=np.float64)
    ys = np.array([*(d.y for d in depots), *(c.y for c in problem.customers)], dtype=np.float64)
    exact = np.hypot(xs[:, None] - xs[None, :], ys[:, None] - ys[None, :])
    if problem.rounding == "round":
        dist = np.floor(exact + 0.5).astype(np.int64)
        return dist, dist
    if problem.rounding == "dimacs":
        dist = np.floor(10.0 * exact + 1e-9).astype(np.int64)
        return dist, dist
    scaled = 1000.0 * exact
    return np.round(scaled).astype(np.int64), np.ceil(scaled - 1e-9).astype(np.int64)


def _pyvrp_data(problem: RoutingProblem) -> Any:
    try:
        import pyvrp
    except ImportError:
        raise ConfigError('the route solver needs PyVRP: pip install "longthink[routing]"') from None
    scale = SCALE[problem.rounding]
    timed = problem.time_windows
    serviced = timed or any(t.max_duration is not None for t in problem.vehicle_types)  # service counts as work
    big = np.iinfo(np.int64).max

    def early(t: float) -> int:
        return math.ceil(t * scale - 1e-9) if timed else 0

    def late(t: float | None) -> int:
        return math.floor(t * scale + 1e-9) if timed and t is not None else big

    all_depots = problem.all_depots
    first = len(all_depots)
    locations = [pyvrp.Location(x=d.x, y=d.y) for d in all_depots]
    locations += [pyvrp.Location(x=c.x, y=c.y, name=str(c.id)) for c in problem.customers]
    clients = [
        pyvrp.Client(
            location=first + i,
            delivery=[c.demand],
            service_duration=math.ceil(c.service * scale - 1e-9) if serviced else 0,
            tw_early=early(c.ready),
            tw_late=late(c.due),
            name=str(c.id),
        )
        for i, c in enumerate(problem.customers)
    ]
    depots = [pyvrp.Depot(location=i, tw_early=early(d.ready), tw_late=late(d.due)) for i, d in enumerate(all_depots)]
    mixed = problem.fleet.mixed
    costs = cost_scale(problem)
    vehicles = []
    for t in problem.vehicle_types:
        home = all_depots[t.depot]
        vehicles.append(
            pyvrp.VehicleType(
                num_available=problem.type_routes(t) if mixed else problem.max_routes,  # unlimited: one per customer
                capacity=[t.capacity],
                start_depot=t.depot,
                end_depot=t.depot,
                fixed_cost=round(t.fixed_cost * scale * costs) if mixed else 0,
                unit_distance_cost=round(t.unit_cost * costs) if mixed else 1,
                tw_early=early(home.ready),
                tw_late=late(home.due),
                max_distance=math.floor(t.max_distance * scale + 1e-9) if t.max_distance is not None else big,
                shift_duration=math.floor(t.max_duration * scale + 1e-9) if t.max_duration is not None else big,
                name=t.name,
            )
        )
    dist, dur = distance_matrices(problem)
    matrices: tuple[list[Any], list[Any]] = ([dist], [dur])  # PyVRP's stub spells the array type oddly
    return pyvrp.ProblemData(locations, clients, depots, vehicles, *matrices)


def solve(problem: RoutingProblem, *, time_limit_s: float = 1.0, seed: int = 0) -> RoutingSolution:
    """Run PyVRP on ``problem`` for ``time_limit_s`` seconds (blocking). The result may be infeasible: check it
    with :func:`~longthink.domains.routing.verify.verify`."""
    if not (time_limit_s > 0 and math.isfinite(time_limit_s)):
        raise ConfigError(
            f"time_limit_s must be a positive number of seconds, got {time_limit_s!r}", field="time_limit_s"
        )
    data = _pyvrp_data(problem)  # first: it explains a missing PyVRP
    from pyvrp import PenaltyParams, SolveParams
    from pyvrp import solve as pyvrp_solve
    from pyvrp.exceptions import PenaltyBoundWarning
    from pyvrp.stop import MaxRuntime

    # An overload is priced per unit by a penalty PyVRP caps; a vehicle's fixed cost above that cap makes overloading
    # a cheaper vehicle "pay" (a real mixed-fleet instance came back infeasible), so the cap follows the fixed costs.
    fixed = max((v.fixed_cost for v in data.vehicle_types()), default=0)
    params = SolveParams(penalty=PenaltyParams(max_penalty=max(100_000.0, 10.0 * fixed)))
    with warnings.catch_warnings():  # PyVRP warns when its penalties peak; the verifier judges the result anyway
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = pyvrp_solve(data, MaxRuntime(time_limit_s), seed=seed, collect_stats=False, display=False,
                             params=params)  # fmt: skip
    scale = SCALE[problem.rounding]
    types = problem.vehicle_types
    routes, kinds, distances, loads, costs = [], [], [], [], []
    for route in result.best.routes():
        ids = tuple(problem.customers[a.idx].id for a in route.schedule() if a.is_client())
        if not ids:
            continue
        kind = route.vehicle_type()
        routes.append(ids)
        kinds.append(kind)
        distances.append(route.distance() / scale)
        loads.append(int(route.delivery()[0]))
        costs.append(types[kind].fixed_cost + types[kind].unit_cost * distances[-1])
    return RoutingSolution(
        routes=tuple(routes),
        cost=math.fsum(costs) if problem.fleet.mixed else result.best.distance() / scale,
        vehicle_types=tuple(kinds) if problem.fleet.mixed else (),
        distances=tuple(distances),
        loads=tuple(loads),
        solver=f"pyvrp {importlib.metadata.version('pyvrp')}",
        runtime_s=float(result.runtime),
        seed=seed,
    )


@dataclass(frozen=True, slots=True)
class SolverConfig:
    seed: int = 0
    time_limit_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Attempt:
    config: SolverConfig
    solution: RoutingSolution
    verdict: RoutingVerdict


@dataclass(frozen=True, slots=True)
class ConfigSearch:
    """Every attempt, and the best feasible one by the verifier (None when no attempt was feasible)."""

    attempts: tuple[Attempt, ...]
    best: Attempt | None

    @property
    def solution(self) -> RoutingSolution | None:
        return None if self.best is None else self.best.solution


DEFAULT_CONFIGS: tuple[SolverConfig, ...] = (SolverConfig(0, 1.0), SolverConfig(1, 1.0), SolverConfig(2, 1.0))


async def solve_configs(
    problem: RoutingProblem,
    configs: Iterable[SolverConfig | tuple[int, float]] = DEFAULT_CONFIGS,
) -> ConfigSearch:
    """Solve ``problem`` once per configuration (``SolverConfig`` or ``(seed, time_limit_s)``), one after the
    other in a worker thread, verify each result independently and keep the cheapest feasible one (ties: the
    earlier configuration)."""
    plan = [c if isinstance(c, SolverConfig) else SolverConfig(int(c[0]), float(c[1])) for c in configs]
    if not plan:
        raise ConfigError("solve_configs needs at least one configuration", field="configs")
    attempts: list[Attempt] = []
    for config in plan:
        solution = await asyncio.to_thread(solve, problem, time_limit_s=config.time_limit_s, seed=config.seed)
        attempts.append(Attempt(config, solution, verify(problem, solution)))
    feasible = [a for a in attempts if a.verdict.feasible]
    best = min(feasible, key=lambda a: a.verdict.cost) if feasible else None
    return ConfigSearch(tuple(attempts), best)


class RouteSolverArgs(BaseModel):
    """The problem (inline, as the model or JSON text) or a file path, and the solver's budget."""

    problem: RoutingProblem | None = Field(default=None, description="the routing problem (JSON shape)")
    path: str | None = Field(default=None, description="a .vrp, Solomon/Cordeau/Taillard .txt, .csv or .json file")
    vehicles: int | None = Field(
        default=None, ge=1, description="at most this many vehicles (default: the file's fleet field, else unlimited)"
    )
    capacity: int | None = Field(default=None, ge=1, description="vehicle capacity (needed for a CSV file)")
    time_limit_s: float = Field(default=1.0, gt=0, le=600, description="solver time in seconds")
    seed: int = Field(default=0, ge=0, description="solver random seed")

    @field_validator("problem", mode="before")
    @classmethod
    def _json_text(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"problem is not valid JSON: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.problem is None) == (self.path is None):
            raise ValueError("give exactly one of 'problem' and 'path'")
        return self

    def load(self) -> RoutingProblem:
        """The problem, read from ``path`` when it was not given inline (blocking file I/O)."""
        if self.problem is not None:
            return self.problem
        return read_problem(self.path or "", vehicles=self.vehicles, capacity=self.capacity)


@dataclass(frozen=True, slots=True)
class RouteSolver:
    """Solve a vehicle routing problem with PyVRP and verify the result; ``data`` is the RoutingSolution."""

    name: str = "route_solver"
    description: str = (
        "solve a capacitated vehicle routing problem (optionally with time windows, several depots or a mixed "
        "fleet of vehicle types): returns routes per vehicle with load and distance, checked for feasibility"
    )
    args_model: type[BaseModel] = RouteSolverArgs

    def timeout_for(self, args: RouteSolverArgs) -> float:
        """Seconds :func:`~longthink.tools.base.call_tool` must allow: the solver's time limit plus reading the
        file, building the model and verifying (a 30 s default would cut off a 30 s solve)."""
        return args.time_limit_s + 30.0

    async def run(self, args: RouteSolverArgs) -> ToolResult:
        problem = await asyncio.to_thread(args.load)
        solution = await asyncio.to_thread(solve, problem, time_limit_s=args.time_limit_s, seed=args.seed)
        verdict = verify(problem, solution)
        output = f"{problem.name} ({problem.fleet.describe()}): {solution.summary()}\nverifier: {verdict.rationale()}"
        if not verdict.feasible:
            return ToolResult(self.name, False, output, f"no feasible solution found: {verdict.rationale()}", solution)
        return ToolResult(self.name, True, output, data=solution)
