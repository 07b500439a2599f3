"""Chain of thought: one sample, its answer taken as is."""

from __future__ import annotations

from dataclasses import dataclass

from longthink.errors import BudgetExceeded
from longthink.search.base import result
from longthink.search.context import SearchContext
from longthink.search.types import Problem, StepResult


@dataclass(frozen=True, slots=True)
class ChainOfThought:
    """A single chain of thought at the context's temperature (``temperature=0`` for greedy)."""

    temperature: float | None = None
    name: str = "cot"

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        before = ctx.budget.spent.copy()
        try:
            [[cand]] = await ctx.sample(problem, 1, strategy=self.name, temperature=self.temperature)
        except BudgetExceeded:
            return result(ctx, problem, self.name, [], None, "budget spent before sampling", before, stopped="budget")
        return result(ctx, problem, self.name, [cand], cand, "single chain of thought", before)
