"""Weighted best-of-N: sum the reward of every candidate per distinct answer; the heaviest answer wins."""

from __future__ import annotations

from dataclasses import dataclass

from longthink.errors import ConfigError
from longthink.rewards.base import Scorer
from longthink.search.base import best_scored, draw, leader, result, tally
from longthink.search.context import SearchContext
from longthink.search.types import Problem, StepResult


@dataclass(frozen=True, slots=True)
class WeightedBestOfN:
    n: int = 8
    scorer: Scorer | None = None
    name: str = "weighted_best_of_n"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"weighted_best_of_n needs n >= 1, got {self.n}", field="n")

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        scorer = self.scorer or ctx.scorer
        if scorer is None:
            raise ConfigError("weighted_best_of_n needs a scorer", field="scorer")
        before = ctx.budget.spent.copy()
        cands, stopped = await draw(ctx, problem, self.n, self.name)
        if not cands:
            return result(ctx, problem, self.name, [], None, "budget spent before sampling", before, stopped=stopped)
        n = len(cands)
        scored = await ctx.score(problem, cands, scorer)
        weights = [max(0.0, c.score(scorer.name) or 0.0) for c in scored]
        votes = tally(scored, weights)
        answer = leader(votes, scored)
        chosen = best_scored([c for c in scored if c.answer == answer], scorer.name) if answer else None
        reason = f"answer with the largest summed {scorer.name} over {n} samples"
        return result(ctx, problem, self.name, scored, chosen, reason, before, votes=votes,
                      stopped=stopped)  # fmt: skip
