"""Best-first tree search with value estimates from a (process) reward.

A frontier of partial solutions is kept in order of their value. Each iteration pops the ``frontier_batch``
most promising nodes and expands each with ``expand`` children of one step — in one batched call — scores
the children and pushes the partial ones back. Children see their parent's text (the prefix they continue).
Stops when ``target_finished`` solutions are complete, after ``max_expansions`` iterations, or when the
budget is spent; the best-scored finished solution is chosen.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from longthink.errors import BudgetExceeded, ConfigError
from longthink.rewards.base import Scorer
from longthink.search.base import best_scored, result
from longthink.search.context import Branch, SearchContext
from longthink.search.types import Candidate, Problem, StepResult


@dataclass(frozen=True, slots=True)
class TreeSearch:
    expand: int = 3
    frontier_batch: int = 2
    max_expansions: int = 6
    target_finished: int = 4
    step_tokens: int = 160
    scorer: Scorer | None = None
    name: str = "tree"

    def __post_init__(self) -> None:
        if min(self.expand, self.frontier_batch, self.max_expansions, self.target_finished, self.step_tokens) < 1:
            raise ConfigError(f"tree search needs positive parameters, got {self}", field="tree")

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        scorer = self.scorer or ctx.process_scorer or ctx.scorer
        if scorer is None:
            raise ConfigError("tree search needs a scorer (SearchContext.process_scorer)", field="scorer")
        before = ctx.budget.spent.copy()
        tie = itertools.count()
        frontier: list[tuple[float, int, Branch]] = [(0.0, next(tie), Branch())]
        everything: list[Candidate] = []
        finished: list[Candidate] = []
        stopped: str | None = "max_expansions"
        for _ in range(self.max_expansions):
            if not frontier:
                stopped = None
                break
            take = [heapq.heappop(frontier)[2] for _ in range(min(self.frontier_batch, len(frontier)))]
            try:
                rows = await ctx.sample(problem, self.expand, branches=take, max_tokens=self.step_tokens,
                                        stop=(problem.step_delimiter,), partial_on_stop=True,
                                        strategy=f"{self.name}.")  # fmt: skip
            except BudgetExceeded:
                stopped = "budget"
                break
            children = await ctx.score(problem, [c for row in rows for c in row], scorer)
            everything.extend(children)
            for c in children:
                value = c.score(scorer.name) or 0.0
                if c.partial and c.completion_tokens < problem.max_tokens:
                    heapq.heappush(frontier, (-value, next(tie), Branch(prefix=c.text, parent=c)))
                else:
                    finished.append(c)
            if len(finished) >= self.target_finished:
                stopped = None
                break
        pool = [c for c in finished if c.answer is not None] or finished
        chosen = best_scored(pool, scorer.name)
        reason = f"best of {len(finished)} finished leaves ({len(everything)} nodes) by {scorer.name}"
        return result(ctx, problem, self.name, everything, chosen, reason, before, stopped=stopped)
