"""Best-of-N: sample N in one batch, score every candidate with the reward, keep the best."""

from __future__ import annotations

from dataclasses import dataclass

from longthink.errors import ConfigError
from longthink.rewards.base import Scorer
from longthink.search.base import best_scored, draw, result
from longthink.search.context import SearchContext
from longthink.search.types import Problem, StepResult


@dataclass(frozen=True, slots=True)
class BestOfN:
    """``scorer`` overrides the context's outcome scorer."""

    n: int = 8
    scorer: Scorer | None = None
    name: str = "best_of_n"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"best_of_n needs n >= 1, got {self.n}", field="n")

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        scorer = self.scorer or ctx.scorer
        if scorer is None:
            raise ConfigError("best_of_n needs a scorer (pass one or set SearchContext.scorer)", field="scorer")
        before = ctx.budget.spent.copy()
        cands, stopped = await draw(ctx, problem, self.n, self.name)
        if not cands:
            return result(ctx, problem, self.name, [], None, "budget spent before sampling", before, stopped=stopped)
        n = len(cands)
        scored = await ctx.score(problem, cands, scorer)
        chosen = best_scored(scored, scorer.name)
        value = chosen.score(scorer.name) if chosen else None
        return result(ctx, problem, self.name, scored, chosen, f"best of {n} by {scorer.name} ({value})", before,
                      stopped=stopped)  # fmt: skip
