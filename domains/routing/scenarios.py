"""Plans robust to uncertain demand: sample scenarios, evaluate every candidate plan on all of them, choose by the
stated criterion. Test-time search with a simulator as the reward.

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

from longthink.domains.routing.lexicon import UNCERTAIN_DEMAND
from longthink.domains.routing.problem import RoutingProblem, RoutingSolution
from longthink.domains.routing.verify import verify

Criterion = Literal["worst", "expected", "feasible_share"]

_EXPECTED = re.compile(r"\b(?:on\s+average|expected\s+cost|average\s+cost|in\s+expectation)\b", re.I)
_SHARE_WORDS = re.compile(
    r"\b(?:as\s+often\s+as\s+possible|most\s+(?:days|scenarios)|share\s+of\s+(?:days|scenarios))\b", re.I
)


@dataclass(frozen=True, slots=True)
class Uncertainty:
    """Each customer's demand may be up to ``share`` higher than stated; plans are chosen by ``criterion`` over
    ``samples`` scenarios."""

    share: float
    criterion: Criterion = "worst"
    samples: int = 20

    def describe(self) -> str:
        what = {"worst": "the worst case", "expected": "the expected cost", "feasible_share": "the share served"}
        return f"demand up to {100 * self.share:g}% higher; {self.samples} scenarios, chosen by {what[self.criterion]}"


def find_uncertainty(text: str) -> Uncertainty | None:
    """The demand uncertainty a request states ("demand may be 20% higher"), or None."""
    m = UNCERTAIN_DEMAND.search(text)
    if m is None:
        return None
    share = float(m.group(1)) / 100.0
    if not 0 < share <= 2:
        return None
    criterion: Criterion = "worst"
    if _EXPECTED.search(text):
        criterion = "expected"
    elif _SHARE_WORDS.search(text):
        criterion = "feasible_share"
    return Uncertainty(share, criterion)


@dataclass(frozen=True, slots=True)
class Scenario:
    """Each customer's demand in one scenario, by id."""

    index: int
    demands: Mapping[int, int]
    label: str = ""


def sample_scenarios(problem: RoutingProblem, uncertainty: Uncertainty, *, seed: int = 0) -> list[Scenario]:
    """``uncertainty.samples`` scenarios (at least one): the extreme one first, then uniform draws (seeded)."""
    rng = random.Random(f"scenarios:{seed}")
    top = {c.id: math.ceil(c.demand * (1 + uncertainty.share) - 1e-9) for c in problem.customers}
    out = [Scenario(0, top, f"every demand {100 * uncertainty.share:g}% higher")]
    for k in range(1, max(1, uncertainty.samples)):
        demands = {
            c.id: math.ceil(c.demand * (1 + rng.uniform(0, uncertainty.share)) - 1e-9) for c in problem.customers
        }
        out.append(Scenario(k, demands, f"sample {k}"))
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
    """Drive ``solution``'s routes through ``scenario`` with the detour-to-depot recourse (module docstring)."""
    types, depots = problem.vehicle_types, problem.all_depots
    where = {c.id: (c.x, c.y) for c in problem.customers}
    total, detours = 0.0, 0
    for i, route in enumerate(solution.routes):
        kind = solution.vehicle_types[i] if i < len(solution.vehicle_types) else 0
        vtype = types[kind]
        home = (depots[vtype.depot].x, depots[vtype.depot].y)
        here, load, distance = home, 0, 0.0
        for cid in route:
            there, demand = where[cid], scenario.demands[cid]
            if load > 0 and load + demand > vtype.capacity:  # unload at the depot first
                distance += problem.travel(*here, *home)
                here, load, detours = home, 0, detours + 1
            distance += problem.travel(*here, *there)
            while demand > vtype.capacity:  # more than a vehicle holds: round trips for the rest
                distance += 2 * problem.travel(*there, *home)
                demand, detours = demand - vtype.capacity, detours + 1
            here, load = there, load + demand
        distance += problem.travel(*here, *home)
        total += vtype.fixed_cost + vtype.unit_cost * distance
    return Outcome(total, detours)


@dataclass(frozen=True, slots=True)
class Plan:
    """A candidate: the buffer its demands were inflated by, the solver seed, its routes, its cost on the stated
    problem and its outcome in every scenario."""

    buffer: float
    seed: int
    solution: RoutingSolution
    stated_cost: float
    outcomes: tuple[Outcome, ...]

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
                "feasible_share": round(self.feasible_share, 4), "routes": len(self.solution.routes)}  # fmt: skip


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
    """Candidate plans for each buffer in :data:`BUFFERS` and each seed, evaluated on the sampled scenarios; the
    chosen one is best by the uncertainty's criterion among those feasible on the stated problem. Raises
    ``ValueError`` when no candidate is feasible on the stated problem."""
    from longthink.domains.routing.solver import solve

    scenarios = sample_scenarios(problem, uncertainty, seed=scenario_seed)
    plans: list[Plan] = []
    skipped: list[str] = []
    mean_plan: int | None = None
    for buffer in BUFFERS:
        target = inflated(problem, buffer * uncertainty.share)
        if target is None:
            skipped.append(f"buffer {buffer:g}: the raised demand does not fit the fleet")
            continue
        for seed in seeds:
            solution = await asyncio.to_thread(solve, target, time_limit_s=time_limit_s, seed=seed)
            verdict = verify(problem, solution)
            if not verdict.feasible:
                skipped.append(f"buffer {buffer:g}, seed {seed}: {verdict.rationale(2)}")
                continue
            outcomes = tuple(evaluate(problem, solution, s) for s in scenarios)
            if buffer == 0.5 and mean_plan is None:
                mean_plan = len(plans)
            plans.append(Plan(buffer, seed, solution, verdict.cost, outcomes))
    if not plans:
        raise ValueError("no candidate plan is feasible on the stated problem: " + "; ".join(skipped[:3]))
    chosen = min(range(len(plans)), key=lambda i: plans[i].key(uncertainty.criterion))
    return RobustSearch(uncertainty, tuple(scenarios), tuple(plans), chosen, mean_plan, tuple(skipped))
