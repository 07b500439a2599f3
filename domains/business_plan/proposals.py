"""Options as structured proposals, selected by the financial model: the projection is the domain's verifier.

Each option the model writes is turned into assumptions (levers, costs, investments, timing: the JSON of
:data:`~.sections.PROJECTION_PROMPT`), the financial model computes its table, and options are ranked by what the
table says, before any judge:

1. a proposal the tool could compute beats one it could not;
2. a **plausible** proposal beats an implausible one (:func:`plausibility`: bounded growth and uplifts, savings
   only on costs that exist, investments of a believable size);
3. one that **reaches the goal** beats one that does not, and among those that miss it, the one that comes
   closest wins (the shortfall in percentage points); one that keeps its costs beats a lean version calibrated
   without them;
4. then the option text's quality (:mod:`.quality`) and the rubric judge's score of it; then fewer soft
   warnings (revenue levers that cost nothing); then the smaller stretch (the sum of the uplifts, so the least
   heroic plan that reaches the goal).

Every proposal is also tried **calibrated** (:func:`calibrate`): its growth and levers scaled by one factor to the
least that reaches the goal within the bounds, so the plan states what each lever must deliver instead of the
model's guess (a proposal that overshoots is scaled down, one that falls short up to the bounds). When no option
reaches the goal, the best ones are refined with the tool's result as feedback
(:func:`refine_prompt`) within the budget; if none reaches it still, the plan says so (the document opens with
the best reachable figure; the step is not verified).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from longthink.domains.business_plan.figures import target_line
from longthink.domains.business_plan.model import Assumptions, Projection, project
from longthink.domains.business_plan.request import Target

MAX_GROWTH_PCT = Decimal(15)
"""The most organic revenue growth per period a plan may assume (beyond it the plan is a wish)."""
MAX_LEVER_UPLIFT_PCT = Decimal(20)
"""The most revenue one lever may add."""
MAX_TOTAL_UPLIFT_PCT = Decimal(30)
"""The most revenue all levers together may add (compounded)."""
MAX_FIRST_GROWTH_PCT = Decimal(35)
"""The most revenue may grow in the first period, organic growth and levers together."""
MAX_SAVING_PCT = Decimal(30)
"""The largest cut in variable costs one lever may claim."""
MAX_FIXED_CUT_PCT = Decimal(-20)
"""The deepest yearly cut in fixed costs a plan may assume."""
MAX_INVESTMENT_SHARE = Decimal(2)
"""One-off investments may not exceed this many times the baseline revenue."""


def plausibility(a: Assumptions) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The proposal's hard problems (it is implausible) and soft warnings (it is doubtful), each one sentence."""
    hard: list[str] = []
    soft: list[str] = []
    if a.revenue_growth_pct > MAX_GROWTH_PCT:
        hard.append(f"organic revenue growth of {a.revenue_growth_pct}% per {a.period} (at most {MAX_GROWTH_PCT}%)")
    if a.fixed_cost_growth_pct < MAX_FIXED_CUT_PCT:
        hard.append(f"fixed costs cut by {-a.fixed_cost_growth_pct}% per {a.period} (at most {-MAX_FIXED_CUT_PCT}%)")
    total = Decimal(1)
    for lever in a.levers:
        if lever.revenue_uplift_pct > MAX_LEVER_UPLIFT_PCT:
            hard.append(f"lever '{lever.name}' adds {lever.revenue_uplift_pct}% revenue (at most "
                        f"{MAX_LEVER_UPLIFT_PCT}% per lever)")  # fmt: skip
        if lever.cost_saving_pct > MAX_SAVING_PCT:
            hard.append(f"lever '{lever.name}' saves {lever.cost_saving_pct}% of variable costs (at most "
                        f"{MAX_SAVING_PCT}%)")  # fmt: skip
        if lever.cost_saving_pct > 0 and a.variable_cost_pct == 0:
            hard.append(f"lever '{lever.name}' saves on variable costs the business does not have")
        total *= 1 + lever.revenue_uplift_pct / 100
    if (total - 1) * 100 > MAX_TOTAL_UPLIFT_PCT:
        hard.append(f"the levers together add {(total - 1) * 100:.0f}% revenue (at most {MAX_TOTAL_UPLIFT_PCT}%)")
    first = (total * (1 + a.revenue_growth_pct / 100) - 1) * 100
    if first > MAX_FIRST_GROWTH_PCT:
        hard.append(f"revenue grows {first:.0f}% in the first {a.period} (growth and levers together: at most "
                    f"{MAX_FIRST_GROWTH_PCT}%)")  # fmt: skip
    base = a.revenue if a.revenue is not None else (a.price or Decimal(0)) * (a.volume or Decimal(0))
    invested = sum((i.amount for i in a.investments), Decimal(0))
    if base and invested > MAX_INVESTMENT_SHARE * base:
        hard.append(f"investments of {invested:,} exceed {MAX_INVESTMENT_SHARE}x the baseline revenue")
    raising = [lv.name for lv in a.levers if lv.revenue_uplift_pct > 0]
    if raising and not a.investments and a.fixed_cost_growth_pct <= 0:
        soft.append(f"revenue levers ({', '.join(raising)}) with no investment and no extra fixed costs")
    return tuple(hard), tuple(soft)


_TENTH = Decimal("0.1")


Costs = Literal["scaled", "kept", "dropped"]
"""What calibration does with the costs that come with a proposal's drivers (a positive growth of fixed costs, the
one-off investments): scale them with the drivers, keep them as proposed, or leave them out."""


def scaled(a: Assumptions, factor: Decimal, *, costs: Costs = "scaled") -> Assumptions:
    """``a`` with its ambition scaled by ``factor``: every driver (organic revenue growth, each lever's uplift and
    saving, a cut in fixed costs; each capped at its plausible bound and rounded to 0.1 point) and the costs that
    come with them as ``costs`` says; timing kept."""

    def scale(value: Decimal, cap: Decimal | None = None) -> Decimal:
        if value <= 0:
            return value
        out = value * factor
        return (out if cap is None else min(out, cap)).quantize(_TENTH)

    levers = [
        lv.model_copy(update={"revenue_uplift_pct": scale(lv.revenue_uplift_pct, MAX_LEVER_UPLIFT_PCT),
                              "cost_saving_pct": scale(lv.cost_saving_pct, MAX_SAVING_PCT)})
        for lv in a.levers
    ]  # fmt: skip
    fixed = a.fixed_cost_growth_pct
    if fixed < 0:  # a cut is a driver
        fixed = -scale(-fixed, -MAX_FIXED_CUT_PCT)
    elif costs == "scaled":
        fixed = scale(fixed)
    elif costs == "dropped":
        fixed = Decimal(0)
    investments = [i.model_copy(update={"amount": (i.amount * factor).quantize(Decimal(1))}) for i in a.investments]
    investments = a.investments if costs == "kept" else [] if costs == "dropped" else investments
    return a.model_copy(update={"revenue_growth_pct": scale(a.revenue_growth_pct, MAX_GROWTH_PCT), "levers": levers,
                                "fixed_cost_growth_pct": fixed,
                                "investments": investments})  # fmt: skip


_GRID = tuple(Decimal(2) ** k / 64 for k in range(17))  # 1/64 .. 1024
"""The factors tried first, smallest first; the answer is then refined between neighbours by bisection."""


def calibrate(a: Assumptions, target: Target | None, *, rounds: int = 20) -> tuple[Assumptions, Decimal, Costs] | None:
    """The least version of ``a`` that reaches ``target``: its ambition scaled by one factor (:func:`scaled`) — the
    smallest on a doubling grid that reaches the goal, refined by bisection towards the previous one — and the
    factor, and what was done with the costs; None without a goal, without a driver to scale, or when no factor
    reaches the goal. What each lever must deliver, rather than what the model hoped.

    The costs that come with the drivers scale with them. When that never reaches the goal (the drivers stop at
    their bounds while a large investment keeps growing), the drivers alone are scaled, the costs kept as
    proposed: the same spend must buy more. When even that fails (the spend alone exceeds what capped drivers can
    earn in time), the costs are left out: a lean version of the option, which :func:`plausibility` flags as
    doubtful (levers that cost nothing)."""
    if target is None:
        return None
    drivers = [
        a.revenue_growth_pct,
        -a.fixed_cost_growth_pct,
        *(lv.revenue_uplift_pct for lv in a.levers),
        *(lv.cost_saving_pct for lv in a.levers),
    ]
    if not any(d > 0 for d in drivers):
        return None
    modes: tuple[Costs, ...] = ("scaled", "kept", "dropped")
    for costs in modes:

        def reaches(factor: Decimal, costs: Costs = costs) -> bool:
            return bool(target_line(project(scaled(a, factor, costs=costs)), target)[1])

        high = next((f for f in _GRID if reaches(f)), None)
        if high is None:
            continue
        low = high / 2 if high > _GRID[0] else Decimal(0)
        for _ in range(rounds):
            mid = (low + high) / 2
            if reaches(mid):
                high = mid
            else:
                low = mid
        return scaled(a, high, costs=costs), high.quantize(Decimal("0.001")), costs
    return None


def achieved(table: Projection, target: Target | None) -> Decimal | None:
    """What the table gives for the goal's metric at the goal's period: growth in percent since the baseline (or
    the change in margin points); None without a goal or a figure."""
    if target is None or target.period >= len(table.rows):
        return None
    if target.metric == "margin":
        return table.rows[target.period].margin - table.rows[0].margin
    return table.growth(target.metric, target.period, base=0)


def stretch(a: Assumptions) -> Decimal:
    """How heroic the proposal is: organic growth plus every lever's uplift and saving (percentage points)."""
    return abs(a.revenue_growth_pct) + sum((abs(lv.revenue_uplift_pct) + abs(lv.cost_saving_pct) for lv in a.levers),
                                           Decimal(0))  # fmt: skip


@dataclass
class Evaluated:
    """One proposal computed by the financial model: its table, whether it reaches ``target``, its problems."""

    assumptions: Assumptions
    table: Projection
    target: Target | None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    reached: Decimal | None = None
    met: bool | None = None
    line: str = ""
    factor: Decimal | None = None  # set when the drivers were scaled to the least that reaches the goal
    costs: Costs | None = None  # what that scaling did with the proposal's costs

    @classmethod
    def of(cls, a: Assumptions, table: Projection, target: Target | None, factor: Decimal | None = None) -> Evaluated:
        hard, soft = plausibility(a)
        line, met = target_line(table, target)
        return cls(a, table, target, hard, soft, achieved(table, target), met, line, factor)

    def calibrated(self) -> Evaluated | None:
        """This proposal scaled to the least that reaches the goal (:func:`calibrate`), or None."""
        found = calibrate(self.assumptions, self.target)
        if found is None:
            return None
        a, factor, costs = found
        return dataclasses.replace(Evaluated.of(a, project(a), self.target, factor), costs=costs)

    @property
    def plausible(self) -> bool:
        return not self.problems

    @property
    def shortfall(self) -> Decimal:
        """Percentage points still missing to the goal (0 when met or without a goal)."""
        if self.target is None or self.met or self.met is None:
            return Decimal(0)
        return self.target.pct - (self.reached if self.reached is not None else Decimal(-1000))

    def key(self, judge: float = 0.0) -> tuple[Any, ...]:
        """Higher is better (see the module docstring for the order)."""
        return (self.plausible, bool(self.met) or self.met is None, -self.shortfall, self.costs != "dropped", judge,
                -len(self.warnings), -stretch(self.assumptions))  # fmt: skip

    def value(self) -> float:
        """A score in [0, 1] for the trace: 1 for a plausible proposal that reaches the goal, less the further it
        falls short, a quarter of that when it is implausible."""
        if self.target is None or self.met:
            base = 1.0
        else:
            base = max(0.0, min(0.9, 0.9 * float((self.reached or Decimal(0)) / self.target.pct))) if self.target.pct \
                else 0.0  # fmt: skip
        return round(base if self.plausible else base / 4, 4)

    def verdict(self) -> str:
        parts = [self.line or "computed"]
        parts += [f"implausible: {p}" for p in self.problems]
        parts += [f"doubtful: {w}" for w in self.warnings]
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table.to_json(),
            "goal_met": self.met,
            "reached": None if self.reached is None else str(self.reached),
            "plausible": self.plausible,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "line": self.line,
            "scaled_by": None if self.factor is None else str(self.factor),
            "costs": self.costs,
        }


@dataclass
class OptionPlan:
    """One option: its text and judge score, and the best proposal the financial model computed for it."""

    index: int
    name: str
    text: str
    judge: float | None
    quality: float = 1.0
    best: Evaluated | None = None
    tried: int = 0
    errors: list[str] = field(default_factory=list)
    refined: int = 0

    def key(self) -> tuple[Any, ...]:
        """Higher is better: the best proposal's rank (see the module docstring), the option's text quality coming
        just before the judge."""
        judge = self.judge or 0.0
        if self.best is None:
            return (False, False, False, Decimal(-1000), False, self.quality, judge, 0, Decimal(0))
        plausible, met, shortfall, costs, *rest = self.best.key(judge)
        return (True, plausible, met, shortfall, costs, self.quality, *rest)

    def offer(self, ev: Evaluated) -> bool:
        """Keep ``ev`` when it ranks above the current best; True when it does."""
        if self.best is None or ev.key(self.judge or 0.0) > self.best.key(self.judge or 0.0):
            self.best = ev
            return True
        return False

    def outcome(self) -> str:
        """The option's result in words, for the document and the step's reason."""
        if self.best is None:
            return "no computable proposal" + (f" ({self.errors[-1][:120]})" if self.errors else "")
        out = self.best.line or "computed"
        if self.best.factor is not None:
            how = {"kept": ", its costs as proposed", "dropped": ", without its investments and extra fixed costs"}
            out += (f" (the proposal's growth and levers scaled x{self.best.factor}{how.get(self.best.costs or '', '')}"
                    ": the least that reaches the goal)")  # fmt: skip
        if self.best.problems:
            out += " — implausible: " + "; ".join(self.best.problems)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "text": self.text,
            "judge": self.judge,
            "quality": self.quality,
            "proposals": self.tried,
            "refined": self.refined,
            "errors": self.errors[-3:],
            **(
                {"assumptions": self.best.assumptions.model_dump(mode="json"), **self.best.to_json()}
                if self.best
                else {"table": None, "goal_met": None}
            ),
        }


def choose(options: list[OptionPlan]) -> OptionPlan:
    """The best of a non-empty list of options (the earliest among equals)."""
    return max(options, key=lambda o: (*o.key(), -o.index))


def refine_prompt(base_prompt: str, option: OptionPlan, target: Target | None) -> str:
    """The projection prompt again, shown the option's best proposal and what the financial model made of it."""
    best = option.best
    if best is None:
        why = option.errors[-1] if option.errors else "the reply had no usable JSON"
        return f"{base_prompt}\n\nYour previous reply could not be used: {why}. Reply with valid JSON only."
    shown = best.assumptions.model_dump(mode="json", include={"revenue_growth_pct", "fixed_cost_growth_pct",
                                                                   "levers", "investments"})  # fmt: skip
    lines = [
        f"Your previous assumptions: {json.dumps(shown)}",
        f"The financial model computed: {best.line or 'no goal stated'}",
    ]
    lines += [f"Not plausible: {p}." for p in best.problems]
    if target is not None and not best.met:
        lines.append(
            f"Revise the assumptions so the plan reaches the goal ({target.metric} +{target.pct}%) while staying "
            f"plausible: organic growth at most {MAX_GROWTH_PCT}% per period, each lever at most "
            f"{MAX_LEVER_UPLIFT_PCT}% more revenue or {MAX_SAVING_PCT}% lower variable costs, revenue at most "
            f"{MAX_FIRST_GROWTH_PCT}% higher in the first period, and the investments "
            "the levers need. Combine levers (price, volume, cost savings) if one is not enough."
        )
    else:
        lines.append("Revise the assumptions so every figure is plausible.")
    return base_prompt + "\n\n" + "\n".join(lines) + "\nReply with the JSON only."
