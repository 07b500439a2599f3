"""An independent feasibility check of routes: it trusts nothing the solver (or a model) claims.

:func:`verify` recomputes everything from the problem: every customer served exactly once, no unknown ids,
the load of each route within the capacity, no more routes than vehicles when the fleet is fixed, and with
time windows the schedule of each route (arrival = max(ready, previous departure + travel), arrival <= due,
departure = arrival + service, back at the depot by its due time). The distance is recomputed with the
problem's rounding. The verdict lists every violation with its culprit.

:class:`RoutingVerifier` is the same check as a longthink scorer: value = minus the cost when feasible,
else a large negative penalty that grows with the number of violations (so a near-miss ranks above a
mess, and any feasible solution above both).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from longthink.domains.routing.problem import TIME_TOLERANCE, Customer, Depot, RoutingProblem, RoutingSolution
from longthink.errors import ConfigError
from longthink.rewards.verifier import Verdict, Verifier
from longthink.search.types import Candidate, Problem, Score

ViolationKind = Literal[
    "missing",
    "duplicate",
    "unknown_id",
    "capacity",
    "fleet_size",
    "time_window",
    "depot_due",
    "vehicle_type",
    "route_limit",
]

PENALTY = 1e12
"""Value of an infeasible solution is ``-PENALTY * (1 + number of violations)``; real costs must stay below."""

UNREADABLE = -PENALTY * 1e3
"""Value of an answer that is not a list of routes at all."""


@dataclass(frozen=True, slots=True)
class Violation:
    kind: ViolationKind
    message: str
    route: int | None = None  # 0-based index of the route, when one is to blame
    customer: int | None = None  # the customer id, when one is to blame


@dataclass(frozen=True, slots=True)
class RoutingVerdict:
    """``cost`` is the recomputed total distance (also given when infeasible, for diagnosis); with a mixed fleet,
    what the routes cost (fixed costs plus cost per distance: ``distances`` keeps the lengths)."""

    feasible: bool
    cost: float
    distances: tuple[float, ...]
    loads: tuple[int, ...]
    violations: tuple[Violation, ...]

    @property
    def value(self) -> float:
        """Higher is better: minus the cost when feasible, else a penalty by the number of violations."""
        return -self.cost if self.feasible else -PENALTY * (1 + len(self.violations))

    def rationale(self, limit: int = 10) -> str:
        if self.feasible:
            return f"feasible: {len(self.distances)} routes, cost {self.cost:g}"
        shown = "; ".join(v.message for v in self.violations[:limit])
        more = len(self.violations) - limit
        return f"infeasible ({len(self.violations)} violations): {shown}" + (f"; and {more} more" if more > 0 else "")


def verify(
    problem: RoutingProblem, routes: RoutingSolution | Iterable[Sequence[int]], vehicle_types: Sequence[int] = ()
) -> RoutingVerdict:
    """Check ``routes`` (customer ids in visiting order; depot implicit at both ends) against ``problem``.

    Empty routes are ignored (a vehicle left at the depot). A solution's own cost, loads and distances are
    not read: everything is recomputed. With a mixed fleet each route names its vehicle type (the solution's
    ``vehicle_types``, or ``vehicle_types`` here): the route starts and ends at that type's depot, carries at most
    its capacity, stays within its distance and duration limits, the type's count bounds its routes, and the
    cost is each route's fixed cost plus its cost per distance.
    """
    if isinstance(routes, RoutingSolution):
        vehicle_types = vehicle_types or routes.vehicle_types
        routes = routes.routes
    pairs = [(tuple(r), vehicle_types[i] if i < len(vehicle_types) else None) for i, r in enumerate(routes)]
    pairs = [(r, t) for r, t in pairs if r]
    route_list = [r for r, _ in pairs]
    known = {c.id: c for c in problem.customers}
    violations: list[Violation] = []
    types = problem.vehicle_types

    counts = Counter(cid for r in route_list for cid in r)
    for cid, n in sorted(counts.items()):
        if cid not in known:
            where = [i for i, r in enumerate(route_list) if cid in r]
            violations.append(
                Violation("unknown_id", f"unknown customer id {cid} in route {where[0] + 1}", where[0], cid)
            )
        elif n > 1:
            where = [i + 1 for i, r in enumerate(route_list) for c in r if c == cid]
            violations.append(
                Violation("duplicate", f"{known[cid].label} is served {n} times (routes {where})", None, cid)
            )
    for c in problem.customers:
        if c.id not in counts:
            violations.append(Violation("missing", f"{c.label} is not served", None, c.id))

    vehicles = problem.fleet.vehicles
    if vehicles is not None and len(route_list) > vehicles:
        violations.append(Violation("fleet_size", f"{len(route_list)} routes but only {vehicles} vehicles"))

    used: Counter[int] = Counter()
    distances: list[float] = []
    costs: list[float] = []
    loads: list[int] = []
    for i, (route, kind) in enumerate(pairs):
        if kind is None and len(types) == 1:
            kind = 0
        typed = kind is not None and 0 <= kind < len(types)
        if not typed:  # the route's vehicle is unknown: its length (from the first depot) is kept for diagnosis
            given = "no vehicle type" if kind is None else f"vehicle type {kind + 1}, which the fleet does not have"
            violations.append(Violation("vehicle_type", f"route {i + 1} has {given}", i))
        kind = kind if typed and kind is not None else 0
        vtype, depot = types[kind], problem.all_depots[types[kind].depot]
        used[kind] += typed
        stops = [known[cid] for cid in route if cid in known]
        load = sum(c.demand for c in stops)
        loads.append(load)
        if typed and load > vtype.capacity:
            violations.append(
                Violation("capacity", f"route {i + 1} carries {load}, over the capacity {vtype.capacity}", i)
            )
        points = [(depot.x, depot.y), *((c.x, c.y) for c in stops), (depot.x, depot.y)]
        legs = [problem.travel(*a, *b) for a, b in itertools.pairwise(points)]
        distance = math.fsum(legs)
        distances.append(distance)
        costs.append(vtype.fixed_cost + vtype.unit_cost * distance)
        if not typed:
            continue
        if vtype.max_distance is not None and distance > vtype.max_distance + TIME_TOLERANCE:
            violations.append(Violation("route_limit", f"route {i + 1} is {distance:g} long, over its vehicle's limit "
                                        f"{vtype.max_distance:g}", i))  # fmt: skip
        work = distance + math.fsum(c.service for c in stops)
        if vtype.max_duration is not None and work > vtype.max_duration + TIME_TOLERANCE:
            violations.append(Violation("route_limit", f"route {i + 1} takes {work:g} (travel and service), over its "
                                        f"vehicle's limit {vtype.max_duration:g}", i))  # fmt: skip
        if problem.time_windows:
            violations.extend(_schedule(problem, i, stops, legs, depot))
    for kind, n in sorted(used.items()):
        count = types[kind].count
        if problem.fleet.types and count is not None and n > count:
            violations.append(Violation("fleet_size", f"{n} routes of vehicle type {kind + 1}, which has {count}"))

    return RoutingVerdict(
        feasible=not violations,
        cost=math.fsum(costs),
        distances=tuple(distances),
        loads=tuple(loads),
        violations=tuple(violations),
    )


def _schedule(
    problem: RoutingProblem, index: int, stops: Sequence[Customer], legs: Sequence[float], depot: Depot
) -> list[Violation]:
    """Time-window violations of one route (``legs[k]`` is the travel time into stop k, the last one home)."""
    out: list[Violation] = []
    time = depot.ready
    for stop, leg in zip(stops, legs, strict=False):
        arrival = max(stop.ready, time + leg)
        if stop.due is not None and arrival > stop.due + TIME_TOLERANCE:
            out.append(
                Violation(
                    "time_window",
                    f"route {index + 1}: {stop.label} is reached at {arrival:g}, after its due time {stop.due:g}",
                    index,
                    stop.id,
                )
            )
        time = arrival + stop.service
    back = time + legs[-1]
    due = depot.due
    if due is not None and back > due + TIME_TOLERANCE:
        out.append(
            Violation(
                "depot_due", f"route {index + 1} is back at the depot at {back:g}, after its due time {due:g}", index
            )
        )
    return out


def parse_routes(answer: str) -> list[list[int]]:
    """Routes from an answer's JSON: ``[[3, 1], [2]]`` or ``{"routes": [...]}`` (a route may also be an object
    with ``"stops"`` or ``"customers"``). A leading and trailing depot (0) are dropped. Raises ``ValueError``
    with the reason on anything else."""
    try:
        data = json.loads(answer)
    except json.JSONDecodeError as exc:
        raise ValueError(f"answer is not JSON: {exc}") from None
    except RecursionError:
        raise ValueError("answer is JSON nested too deeply to read") from None
    if isinstance(data, Mapping):
        if "routes" not in data:
            raise ValueError("answer has no 'routes' field")
        data = data["routes"]
    if not isinstance(data, list):
        raise ValueError(f"routes must be a list, got {type(data).__name__}")
    routes: list[list[int]] = []
    for i, raw in enumerate(data):
        route = raw
        if isinstance(raw, Mapping):
            route = raw.get("stops", raw.get("customers"))
        if not isinstance(route, list):
            raise ValueError(f"route {i + 1} is not a list of customer ids")
        ids: list[int] = []
        for v in route:
            if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
                raise ValueError(f"route {i + 1}: {v!r} is not a customer id")
            ids.append(int(v))
        if ids and ids[0] == 0:
            ids = ids[1:]
        if ids and ids[-1] == 0:
            ids = ids[:-1]
        routes.append(ids)
    return routes


def parse_vehicle_types(answer: str) -> list[int]:
    """Each route's vehicle type from an answer's JSON ``{"routes": [...], "vehicle_types": [0, 2]}`` (1-based in
    a route object's ``"vehicle_type"`` is not read: the JSON list is 0-based, as :class:`RoutingSolution` keeps
    it); empty when the answer gives none. Raises ``ValueError`` on a malformed list."""
    try:
        data = json.loads(answer)
    except (json.JSONDecodeError, RecursionError):
        return []
    kinds = data.get("vehicle_types") if isinstance(data, Mapping) else None
    if kinds is None:
        return []
    if not isinstance(kinds, list) or not all(isinstance(k, int) and not isinstance(k, bool) for k in kinds):
        raise ValueError("vehicle_types must be a list of vehicle type indices")
    return list(kinds)


def _problem_of(search_problem: Problem, fixed: RoutingProblem | None) -> RoutingProblem:
    if fixed is not None:
        return fixed
    raw = search_problem.metadata.get("routing_problem")
    if isinstance(raw, RoutingProblem):
        return raw
    if raw is None:
        raise ConfigError(
            f"RoutingVerifier has no routing problem: pass one or set metadata['routing_problem'] "
            f"on problem {search_problem.id!r}",
            field="routing_problem",
        )
    try:
        return RoutingProblem.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"metadata['routing_problem'] is not a valid routing problem: {exc}") from None


class RoutingVerifier:
    """A scorer: parses each candidate's answer into routes (see :func:`parse_routes`) and verifies them.

    The routing problem is the one given here, or else ``problem.metadata["routing_problem"]`` (a
    :class:`RoutingProblem` or its dict). Unreadable answers get :data:`UNREADABLE` with the reason.
    """

    def __init__(self, problem: RoutingProblem | None = None, name: str = "routing") -> None:
        self._problem = problem
        self._name = name
        self._inner = Verifier(self._check, name, floor=UNREADABLE)

    @property
    def name(self) -> str:
        return self._name

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        _problem_of(problem, self._problem)  # a missing problem is the caller's error: raise, don't score
        return await self._inner.score(problem, candidates)

    def _check(self, problem: Problem, candidate: Candidate) -> Verdict:
        routing = _problem_of(problem, self._problem)
        try:
            routes = parse_routes(candidate.answer or "")
            kinds = parse_vehicle_types(candidate.answer or "")
        except ValueError as exc:
            return Verdict(UNREADABLE, f"unreadable routes: {exc}")
        verdict = verify(routing, routes, kinds)
        return Verdict(verdict.value, verdict.rationale())
