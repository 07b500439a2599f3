"""Plans robust to uncertain demand and to a vehicle breaking down: sample scenarios, evaluate every candidate plan
on all of them, choose by the stated criterion. Test-time search with a simulator as the reward.

A request may say that demand is uncertain ("demand may be up to 20% higher"): :func:`find_uncertainty` reads that
by rule (the share, and the criterion: the worst case by default, "on average" for the expected cost, "as often as
possible" for the share of scenarios a plan serves without an extra trip).

:func:`sample_scenarios` draws K demand scenarios: the first is the stated extreme (every demand at its highest),
the others draw each customer's demand uniformly between its stated value and that highest value (rounded up).

:func:`evaluate` drives a plan's routes through a scenario as a dispatcher would: a vehicle that cannot take the
next stop's demand returns to its depot to unload and carries on (the detour-to-depot recourse of the stochastic
VRP literature; a demand above a whole vehicle takes further round trips). The outcome is the plan's cost in that
scenario (fixed costs plus cost per distance, detours included), the number of detours, and whether it needed none
(*feasible as planned*).

:func:`robust_plans` makes the candidates: PyVRP plans for the stated demands inflated by a buffer (0, a quarter,
half, three quarters and all of the stated share; each buffer one solver run per seed), each verified on the stated
problem, each evaluated on every scenario; the one best by the criterion is chosen (ties: the cheaper stated cost).
The plan solved for half the share is the *mean-scenario plan* (its demands are the scenarios' mean), the natural
baseline: the benchmark compares the chosen plan's worst case with it, on scenarios drawn afresh.

A request may also say that a vehicle may break down ("one truck may break down", "in case a van breaks down"):
then every vehicle of a fixed fleet, in turn, is out of service in one scenario (at the stated demands). A plan
loses the route of the vehicle that is down; a spare vehicle (one the plan leaves unused, of a type that carries
the route's load) drives it from its own depot, at its own costs, as planned; without a spare, a vehicle already on
the road drives it as a second trip from its depot (an extra trip; time windows and route limits are not checked
again for it). The candidates then also hold back one vehicle of each type in turn (solved with one fewer), so that
a spare is there; the baseline is the cheapest plan with nothing held back. A second trip costs no more distance
than the route did, but it runs late, so with breakdowns alone the default criterion is the share of scenarios
served as planned (then the cost), not the worst-case cost.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from longthink.domains.routing.lexicon import BREAKDOWN, UNCERTAIN_DEMAND
from longthink.domains.routing.problem import RoutingProblem, RoutingSolution
from longthink.domains.routing.verify import verify

Criterion = Literal["worst", "expected", "feasible_share"]

_EXPECTED = re.compile(r"\b(?:on\s+average|expected\s+cost|average\s+cost|in\s+expectation)\b", re.I)
_SHARE_WORDS = re.compile(
    r"\b(?:as\s+often\s+as\s+possible|most\s+(?:days|scenarios)|share\s+of\s+(?:days|scenarios))\b", re.I
)


@dataclass(frozen=True, slots=True)
class Uncertainty:
    """Each customer's demand may be up to ``share`` higher than stated (0: demand is certain), and with
    ``breakdown`` any one vehicle may be out of service; plans are chosen by ``criterion`` over ``samples`` demand
    scenarios (and one scenario per vehicle down)."""

    share: float
    criterion: Criterion = "worst"
    samples: int = 20
    breakdown: bool = False

    def describe(self) -> str:
        what = {"worst": "the worst case", "expected": "the expected cost", "feasible_share": "the share served"}
        parts = [f"demand up to {100 * self.share:g}% higher; {self.samples} scenarios"] if self.share > 0 else []
        if self.breakdown:
            parts.append("any one vehicle may break down (one scenario per vehicle)")
        return f"{'; '.join(parts)}, chosen by {what[self.criterion]}"


def find_uncertainty(text: str) -> Uncertainty | None:
    """The uncertainty a request states ("demand may be 20% higher", "one truck may break down"), or None."""
    m = UNCERTAIN_DEMAND.search(text)
    share = float(m.group(1)) / 100.0 if m is not None else 0.0
    if not 0 <= share <= 2:
        share = 0.0
    breakdown = BREAKDOWN.search(text) is not None
    if share == 0 and not breakdown:
        return None
    criterion: Criterion = "worst" if share > 0 else "feasible_share"
    if _EXPECTED.search(text):
        criterion = "expected"
    elif _SHARE_WORDS.search(text):
        criterion = "feasible_share"
    return Uncertainty(share, criterion, breakdown=breakdown)


@dataclass(frozen=True, slots=True)
class Scenario:
    """Each customer's demand in one scenario, by id; ``down``: the vehicle out of service (its type, and which
    one of that type, counted from 0), None when every vehicle runs."""

    index: int
    demands: Mapping[int, int]
    label: str = ""
    down: tuple[int, int] | None = None


def has_scenarios(problem: RoutingProblem, uncertainty: Uncertainty) -> bool:
    """Whether :func:`sample_scenarios` gives any: uncertain demand, or a breakdown with a fixed count of vehicles."""
    return uncertainty.share > 0 or (uncertainty.breakdown and any(t.count for t in problem.vehicle_types))


def sample_scenarios(problem: RoutingProblem, uncertainty: Uncertainty, *, seed: int = 0) -> list[Scenario]:
    """The demand scenarios (``uncertainty.samples``, at least one, when demand is uncertain: the extreme one
    first, then uniform draws, seeded), then with ``breakdown`` one scenario per vehicle of a fixed fleet out of
    service, at the stated demands (an unlimited type has always another vehicle: none of its own)."""
    out: list[Scenario] = []
    if uncertainty.share > 0:
        rng = random.Random(f"scenarios:{seed}")
        top = {c.id: math.ceil(c.demand * (1 + uncertainty.share) - 1e-9) for c in problem.customers}
        out.append(Scenario(0, top, f"every demand {100 * uncertainty.share:g}% higher"))
        for k in range(1, max(1, uncertainty.samples)):
            demands = {
                c.id: math.ceil(c.demand * (1 + rng.uniform(0, uncertainty.share)) - 1e-9) for c in problem.customers
            }
            out.append(Scenario(k, demands, f"sample {k}"))
    if uncertainty.breakdown:
        stated = {c.id: c.demand for c in problem.customers}
        types = problem.vehicle_types
        for t, vtype in enumerate(types):
            for j in range(vtype.count or 0):
                name = f"{vtype.name} " if vtype.name and len(types) > 1 else ""
                out.append(Scenario(len(out), stated, f"{name}vehicle {j + 1} out of service", (t, j)))
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """A plan in one scenario: what it costs with the detours it needs, how many, and whether it needed none."""

    cost: float
    detours: int

    @property
    def feasible(self) -> bool:
        return self.detours == 0


def evaluate(problem: RoutingProblem, solution: RoutingSolution, scenario: Scenario) -> Outcome:
    """Drive ``solution``'s routes through ``scenario`` with the detour-to-depot recourse, and with a vehicle out of
    service, the spare or second-trip recourse (module docstring)."""
    kinds = [solution.vehicle_types[i] if i < len(solution.vehicle_types) else 0 for i in range(len(solution.routes))]
    where = {c.id: (c.x, c.y) for c in problem.customers}
    lost = None
    if scenario.down is not None:
        t, j = scenario.down
        mine = [i for i, k in enumerate(kinds) if k == t]
        lost = mine[j] if j < len(mine) else None  # a vehicle the plan leaves unused: nothing lost
    total, detours = 0.0, 0
    for i, route in enumerate(solution.routes):
        if i == lost:
            continue
        cost, extra = _drive(problem, where, route, kinds[i], scenario.demands)
        total, detours = total + cost, detours + extra
    if lost is not None:
        cost, extra = _take_over(problem, where, solution.routes[lost], kinds, lost, scenario.demands)
        total, detours = total + cost, detours + extra
    return Outcome(total, detours)


def _drive(
    problem: RoutingProblem, where: Mapping[int, tuple[float, float]], route: Sequence[int], kind: int,
    demands: Mapping[int, int],
) -> tuple[float, int]:  # fmt: skip
    """One route driven by a vehicle of type ``kind`` from its depot (``where``: each customer's place by id): its
    cost and the detours to unload."""
    vtype = problem.vehicle_types[kind]
    depot = problem.all_depots[vtype.depot]
    home = (depot.x, depot.y)
    here, load, distance, detours = home, 0, 0.0, 0
    for cid in route:
        there, demand = where[cid], demands[cid]
        if load > 0 and load + demand > vtype.capacity:  # unload at the depot first
            distance += problem.travel(*here, *home)
            here, load, detours = home, 0, detours + 1
        distance += problem.travel(*here, *there)
        while demand > vtype.capacity:  # more than a vehicle holds: round trips for the rest
            distance += 2 * problem.travel(*there, *home)
            demand, detours = demand - vtype.capacity, detours + 1
        here, load = there, load + demand
    distance += problem.travel(*here, *home)
    return vtype.fixed_cost + vtype.unit_cost * distance, detours


def _take_over(
    problem: RoutingProblem, where: Mapping[int, tuple[float, float]], route: Sequence[int], kinds: Sequence[int],
    lost: int, demands: Mapping[int, int],
) -> tuple[float, int]:  # fmt: skip
    """The cost of the route of a vehicle out of service, driven by the cheapest spare that carries its load (as
    planned), else as a second trip by the vehicle on the road whose type makes it cheapest (one extra trip, no
    second fixed cost; its own unloading detours counted)."""
    types = problem.vehicle_types
    load = sum(demands[c] for c in route)
    used = [sum(1 for k in kinds if k == t) for t in range(len(types))]  # the vehicle down is not free either
    spares = [t for t, v in enumerate(types) if (v.count is None or v.count > used[t]) and v.capacity >= load]
    if spares:
        return min(_drive(problem, where, route, t, demands) for t in spares)
    on_road = sorted({k for i, k in enumerate(kinds) if i != lost}) or [kinds[lost]]
    trips = [(t, *_drive(problem, where, route, t, demands)) for t in on_road]
    cost, detours = min((c - types[t].fixed_cost, d) for t, c, d in trips)
    return cost, detours + 1


@dataclass(frozen=True, slots=True)
class Plan:
    """A candidate: the buffer its demands were inflated by, the solver seed, its routes, its cost on the stated
    problem and its outcome in every scenario; ``spare``: the vehicle type it held back (-1: none)."""

    buffer: float
    seed: int
    solution: RoutingSolution
    stated_cost: float
    outcomes: tuple[Outcome, ...]
    spare: int = -1

    @property
    def worst(self) -> float:
        return max(o.cost for o in self.outcomes)

    @property
    def expected(self) -> float:
        return statistics.fmean(o.cost for o in self.outcomes)

    @property
    def feasible_share(self) -> float:
        return sum(o.feasible for o in self.outcomes) / len(self.outcomes)

    def key(self, criterion: Criterion) -> tuple[float, float]:
        """Smaller is better: the criterion, then the stated cost."""
        primary = {"worst": self.worst, "expected": self.expected, "feasible_share": -self.feasible_share}[criterion]
        return (round(primary, 6), self.stated_cost)

    def summary(self) -> dict[str, float | int]:
        return {"buffer": self.buffer, "seed": self.seed, "stated_cost": round(self.stated_cost, 4),
                "worst": round(self.worst, 4), "expected": round(self.expected, 4),
                "feasible_share": round(self.feasible_share, 4), "routes": len(self.solution.routes),
                "spare": self.spare}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RobustSearch:
    uncertainty: Uncertainty
    scenarios: tuple[Scenario, ...]
    plans: tuple[Plan, ...]
    chosen: int
    mean_plan: int | None
    skipped: tuple[str, ...] = field(default=())

    @property
    def best(self) -> Plan:
        return self.plans[self.chosen]


BUFFERS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The candidates' demand buffers, as shares of the stated uncertainty (0.5: the mean scenario)."""


def held_back(problem: RoutingProblem, kind: int) -> RoutingProblem | None:
    """``problem`` with one vehicle of type ``kind`` fewer (None: an unlimited type, its last vehicle, or a fleet
    that no longer carries the demand)."""
    types = problem.vehicle_types
    count = types[kind].count
    if count is None or (count <= 1 and len(types) == 1):
        return None
    data = problem.model_dump()
    if problem.fleet.types:
        kept = [t.model_dump() | ({"count": count - 1} if i == kind else {}) for i, t in enumerate(types)]
        data["fleet"] = {"types": [t for t in kept if t["count"] is None or t["count"] >= 1]}
        if len(data["fleet"]["types"]) < len(types):
            return None  # a type would vanish and the others' indices shift: not a candidate worth the trouble
    else:
        data["fleet"] = {"vehicles": count - 1, "capacity": problem.fleet.capacity}
    try:
        return RoutingProblem.model_validate(data)
    except ValueError:
        return None


def inflated(problem: RoutingProblem, share: float) -> RoutingProblem | None:
    """``problem`` with every demand raised by ``share`` (rounded up, at most the largest capacity), or None when
    the raised demand no longer fits a fixed fleet."""
    cap = problem.fleet.capacity
    customers = tuple(c.model_copy(update={"demand": min(cap, math.ceil(c.demand * (1 + share) - 1e-9))})
                      for c in problem.customers)  # fmt: skip
    try:
        return RoutingProblem.model_validate({**problem.model_dump(), "customers": [c.model_dump() for c in customers]})
    except ValueError:
        return None


async def robust_plans(
    problem: RoutingProblem,
    uncertainty: Uncertainty,
    *,
    time_limit_s: float = 1.0,
    seeds: Sequence[int] = (0,),
    scenario_seed: int = 0,
) -> RobustSearch:
    """Candidate plans for each buffer in :data:`BUFFERS` (only 0 when demand is certain), each vehicle type held
    back (with ``breakdown``) and each seed, evaluated on the sampled scenarios; the chosen one is best by the
    uncertainty's criterion among those feasible on the stated problem. ``mean_plan`` is the baseline: the plan for
    the mean scenario (buffer ½, nothing held back), or with certain demand the plan with nothing held back.
    Raises ``ValueError`` when no candidate is feasible on the stated problem."""
    from longthink.domains.routing.solver import solve

    if not has_scenarios(problem, uncertainty):
        raise ValueError("no scenario to plan for: the fleet is unlimited, so a breakdown changes nothing")
    scenarios = sample_scenarios(problem, uncertainty, seed=scenario_seed)
    plans: list[Plan] = []
    skipped: list[str] = []
    mean_plan: int | None = None
    baseline = 0.5 if uncertainty.share > 0 else 0.0
    spares = [-1] + (list(range(len(problem.vehicle_types))) if uncertainty.breakdown else [])
    for buffer in BUFFERS if uncertainty.share > 0 else (0.0,):
        raised = inflated(problem, buffer * uncertainty.share)
        if raised is None:
            skipped.append(f"buffer {buffer:g}: the raised demand does not fit the fleet")
            continue
        for spare in spares:
            target = raised if spare < 0 else held_back(raised, spare)
            if target is None:
                skipped.append(f"buffer {buffer:g}, holding back a vehicle of type {spare + 1}: not possible")
                continue
            for seed in seeds:
                solution = await asyncio.to_thread(solve, target, time_limit_s=time_limit_s, seed=seed)
                verdict = verify(problem, solution)
                if not verdict.feasible:
                    skipped.append(f"buffer {buffer:g}, spare {spare + 1}, seed {seed}: {verdict.rationale(2)}")
                    continue
                outcomes = tuple(evaluate(problem, solution, s) for s in scenarios)
                if buffer == baseline and spare < 0 and mean_plan is None:
                    mean_plan = len(plans)
                plans.append(Plan(buffer, seed, solution, verdict.cost, outcomes, spare))
    if not plans:
        raise ValueError("no candidate plan is feasible on the stated problem: " + "; ".join(skipped[:3]))
    chosen = min(range(len(plans)), key=lambda i: plans[i].key(uncertainty.criterion))
    return RobustSearch(uncertainty, tuple(scenarios), tuple(plans), chosen, mean_plan, tuple(skipped))
