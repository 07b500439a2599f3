"""Self-consistency (Wang et al. 2022): sample N reasoning paths in one batch, majority vote on answers."""

from __future__ import annotations

from dataclasses import dataclass

from longthink.errors import ConfigError
from longthink.search.base import draw, leader, result, tally
from longthink.search.context import SearchContext
from longthink.search.types import Problem, StepResult


@dataclass(frozen=True, slots=True)
class SelfConsistency:
    """Sample ``n`` candidates (one batched call, shrunk to what the budget allows) and vote."""

    n: int = 8
    name: str = "self_consistency"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"self_consistency needs n >= 1, got {self.n}", field="n")

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        before = ctx.budget.spent.copy()
        cands, stopped = await draw(ctx, problem, self.n, self.name)
        if not cands:
            return result(ctx, problem, self.name, [], None, "budget spent before sampling", before, stopped=stopped)
        n = len(cands)
        votes = tally(cands)
        answer = leader(votes, cands)
        chosen = next((c for c in cands if c.answer == answer), None) if answer else None
        reason = f"majority of {n}: {votes.get(answer, 0):.0f} votes" if answer else f"majority of {n}"
        return result(ctx, problem, self.name, cands, chosen, reason, before, votes=votes,
                      stopped=stopped)  # fmt: skip
