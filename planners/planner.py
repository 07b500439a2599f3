"""Deliberate planning: sample K candidate plans in one batch, score them (structure + an optional rubric
judge), select one; and replanning of the remaining work when a step fails its verification."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from longthink.errors import BudgetExceeded
from longthink.events import PlanProposed, PlanSelected
from longthink.intake import COMMON_CONSTANTS, numeric_steps, quantities
from longthink.llm.types import Message
from longthink.planners.plan import ParsedPlan, Plan, PlanStep, parse_plan, single_step_plan
from longthink.rewards.base import Scorer
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem, Score

SYSTEM = (
    "You are a careful planner. Break the user's request into a short plan of concrete steps that can each be "
    "answered on their own. Independent steps must not depend on each other."
)
FORMAT = (
    "Reply with JSON only, in this shape:\n"
    '{"steps": [{"id": "s1", "goal": "...", "depends_on": [], "answer_kind": "text", "success_check": "..."}, '
    '{"id": "s2", "goal": "...", "depends_on": ["s1"], "answer_kind": "number", "success_check": "..."}]}\n'
    "answer_kind is number when the step's result is a single number, otherwise text. Use {lo} to {hi} steps.\n"
    'A step that is pure arithmetic can call a tool instead: add "tool": "calculator", "tool_args": '
    '{"expression": "120*3"}.'
)
RUBRIC = (
    "Judge the plan for the request. Good plans cover everything the request asks, order steps so that each "
    "uses only results of earlier steps, and have steps that are feasible and specific."
)


def _worked_out(used: set[str], stated: set[str]) -> set[str]:
    """Those of ``used`` that at most two operations (+, -, *, /) make of stated numbers (one, when the request states
    more than 24): "120 * 3 = 360" and "(120 * 3) + (40 * 12) = 840" are results worked out, not quantities made up."""
    values = {Decimal(q) for q in stated}
    first: set[Decimal] = set()
    for a in values:
        for b in values:
            first |= {a + b, a - b, a * b} | ({a / b} if b else set())
    first -= {Decimal(0), Decimal(1)}  # a - a and a / a: no partner makes anything of them
    if len(values) > 24:  # a pasted table: two operations would be thousands of pairs per number; one is checked
        return {q for q in used if Decimal(q) in values | first}
    known = (values | first) - {Decimal(0)}
    out: set[str] = set()
    for q in used:
        u = Decimal(q)
        # u = f op k for f one operation away and k stated or one operation away: look for the partner k
        if u in known or (
            u != 0 and any(u - f in known or f - u in known or u / f in known or f / u in known or u * f in known
                           for f in first)
        ):  # fmt: skip
            out.add(q)
    return out


def invented_quantities(plan: Plan, request: str) -> list[str]:
    """Numbers the plan's goals, checks and tool arguments use that the request does not state, that are not
    common constants and that no single operation on two stated numbers gives: quantities the planner made up
    ("convert to euros at 0.92"), not results it worked out ("120 * 3 = 360")."""
    given = quantities(request)
    used: set[str] = set()
    for step in plan.steps:
        used |= quantities(" ".join([step.goal, step.success_check, json.dumps(step.tool_args)]))
    invented = used - given - COMMON_CONSTANTS
    if invented:
        invented -= _worked_out(invented, given)
    return sorted(invented, key=lambda q: (len(q), q))


@dataclass(frozen=True, slots=True)
class PlanStructure:
    """A programmatic plan scorer: 1.0 for a valid DAG with a sensible number of specific steps, less for
    repairs, too few or too many steps, vague goals, and (with the ``request``) quantities the request does not
    state; 0.0 when no plan can be read."""

    min_steps: int = 2
    max_steps: int = 6
    name: str = "plan_structure"
    request: str = ""

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return [self.judge(parse_plan(c.text, goal=problem.question)) for c in candidates]

    def judge(self, parsed: ParsedPlan) -> Score:
        if parsed.plan is None:
            return Score(self.name, 0.0, rationale=parsed.error or "no plan")
        plan = parsed.plan
        value, why = 1.0, []
        n = len(plan.steps)
        if n < self.min_steps or n > self.max_steps:
            value -= 0.3
            why.append(f"{n} steps (wanted {self.min_steps}-{self.max_steps})")
        vague = [s.id for s in plan.steps if len(s.goal.split()) < 3]
        if vague:
            value -= 0.1 * len(vague)
            why.append(f"vague goals: {vague}")
        if parsed.repaired:
            value -= 0.05 * len(parsed.repaired)
            why.append("repaired: " + "; ".join(parsed.repaired))
        invented = invented_quantities(plan, self.request) if self.request else []
        if invented:
            value -= min(0.45, 0.15 * len(invented))
            why.append(f"quantities not in the request: {', '.join(invented[:5])}")
        return Score(self.name, max(0.05, value), rationale="; ".join(why) or "valid plan")


@dataclass(frozen=True, slots=True)
class PlanChoice:
    plan: Plan
    candidates: tuple[Candidate, ...]
    parsed: tuple[ParsedPlan, ...]
    chosen_index: int | None  # None: every candidate failed; a one-step fallback plan was used
    reason: str


@dataclass(frozen=True, slots=True)
class Planner:
    """``candidates`` plans are sampled in one call; ``judge`` (a rubric scorer) adds to the structural score."""

    candidates: int = 3
    max_tokens: int = 400
    min_steps: int = 2
    max_steps: int = 6
    judge: Scorer | None = None
    judge_weight: float = 0.5
    hints: str = ""
    structure: PlanStructure = field(default_factory=PlanStructure)

    def _problem(self, request: str, extra: str = "", *, pid: str = "plan") -> Problem:
        fmt = FORMAT.replace("{lo}", str(self.min_steps)).replace("{hi}", str(self.max_steps))
        hint = f"\n{self.hints}" if self.hints else ""
        user = f"Request: {request}\n{extra}{hint}\n{fmt}"
        return Problem(pid, (Message.system(SYSTEM), Message.user(user)), "json", max_tokens=self.max_tokens)

    async def propose(self, request: str, ctx: SearchContext) -> PlanChoice:
        problem = self._problem(request, pid=ctx.step_id or "plan")
        [cands] = await ctx.sample(problem, self._fit(ctx), strategy="plan")
        return await self._choose(request, problem, cands, ctx)

    async def replan(
        self,
        request: str,
        plan: Plan,
        finished: Mapping[str, str],
        failed: PlanStep,
        reason: str,
        ctx: SearchContext,
        *,
        attempt: int = 1,
    ) -> PlanChoice:
        """A revised plan: the finished steps are kept; the rest is re-planned with the failure as context."""
        done = "\n".join(f"- {sid} ({plan.step(sid).goal}): {ans}" for sid, ans in finished.items()) or "- none"
        extra = (
            f"Steps already done and their results:\n{done}\n"
            f"This step failed: {failed.id} ({failed.goal}). Why: {reason}\n"
            "Plan only the remaining work, taking a different approach to the failed step. New steps may depend "
            "on the ids of the steps already done."
        )
        problem = self._problem(request, extra, pid=f"replan{attempt}")
        [cands] = await ctx.sample(problem, self._fit(ctx), strategy=f"replan{attempt}")
        choice = await self._choose(request, problem, cands, ctx)
        return _merge(plan, finished, choice, prefix=f"r{attempt}")

    def _fit(self, ctx: SearchContext) -> int:
        """How many of the ``candidates`` plans the budget admits (at least one, unless it is spent)."""
        fit = ctx.budget.fit_n(self.candidates, self.max_tokens)
        if fit == 0:
            raise BudgetExceeded(f"no budget left to plan: {ctx.budget.describe()}")
        return fit

    async def _choose(self, request: str, problem: Problem, cands: list[Candidate], ctx: SearchContext) -> PlanChoice:
        parsed = [parse_plan(c.text, goal=request) for c in cands]
        structure = replace(self.structure, request=request)  # plans are checked against the request's quantities
        scored = await ctx.score(problem, cands, structure)
        valid = [c for c, p in zip(scored, parsed, strict=True) if p.plan is not None]
        judge = self.judge
        judge_note = ""
        if judge is not None and valid:
            try:
                judged = {c.id: c for c in await ctx.score(problem, valid, judge)}
            except BudgetExceeded as exc:  # the plans are kept; they are chosen by structure alone
                judge, judge_note = None, f"; not judged: {exc}"
            else:
                scored = [judged.get(c.id, c) for c in scored]
        for c, p in zip(scored, parsed, strict=True):
            ctx.emit(
                PlanProposed(
                    plan_id=c.id,
                    candidate_id=c.id,
                    score=c.score(self.structure.name),
                    valid=p.plan is not None,
                    error=p.error,
                    plan=p.plan.model_dump() if p.plan else None,
                    scores={s.scorer: s.value for s in c.scores},
                )
            )
        best_i: int | None = None
        best_plan: Plan | None = None
        best_value = -1.0
        for i, (c, p) in enumerate(zip(scored, parsed, strict=True)):
            if p.plan is None:
                continue
            value = (c.score(self.structure.name) or 0.0) * (1 - self.judge_weight if judge else 1.0)
            if judge is not None:
                value += self.judge_weight * (c.score(judge.name) or 0.0)
            if value > best_value:
                best_i, best_plan, best_value = i, p.plan, value
        if best_plan is None or best_i is None:
            plan = single_step_plan(request)
            reason = f"no readable plan among {len(cands)} candidates; solving the request as one step"
        else:
            plan = numeric_steps(best_plan, request)  # a quantity a step asks for is a number, whatever it says
            reason = f"plan {best_i + 1} of {len(cands)} (score {best_value:.2f}){judge_note}"
        chosen_id = scored[best_i].id if best_i is not None else f"{problem.id}/fallback"
        ctx.emit(PlanSelected(plan_id=chosen_id, plan=plan.model_dump(), index=best_i, reason=reason))
        return PlanChoice(plan, tuple(scored), tuple(parsed), best_i, reason)


def _merge(old: Plan, finished: Mapping[str, str], choice: PlanChoice, *, prefix: str) -> PlanChoice:
    """Finished steps of ``old`` followed by the new steps (ids prefixed so they never collide)."""
    kept = [s for s in old.steps if s.id in finished]
    rename = {s.id: f"{prefix}_{s.id}" for s in choice.plan.steps}
    new_steps = [
        s.model_copy(update={"id": rename[s.id], "depends_on": [rename.get(d, d) for d in s.depends_on]})
        for s in choice.plan.steps
    ]
    known = {s.id for s in kept} | set(rename.values())
    for s in new_steps:
        s.depends_on = [d for d in s.depends_on if d in known]
    merged = Plan(goal=old.goal, steps=[*kept, *new_steps][:12])
    return PlanChoice(merged, choice.candidates, choice.parsed, choice.chosen_index, f"replanned: {choice.reason}")
