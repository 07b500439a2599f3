"""Step-level beam search with a process reward.

Solutions are generated one step at a time (a step ends at the problem's ``step_delimiter``). Each round
expands every kept beam with ``expand`` continuations — all beams in one batched call — scores the partial
solutions with the process scorer, and keeps the best ``width``. Finished solutions (the model ended them)
leave the beam; the best-scored finished solution is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from longthink.errors import BudgetExceeded, ConfigError
from longthink.rewards.base import Scorer
from longthink.search.base import best_scored, result
from longthink.search.context import Branch, SearchContext
from longthink.search.types import Candidate, Problem, StepResult


@dataclass(frozen=True, slots=True)
class BeamSearch:
    width: int = 2
    expand: int = 4
    max_steps: int = 8
    step_tokens: int = 160
    scorer: Scorer | None = None
    name: str = "beam"

    def __post_init__(self) -> None:
        if self.width < 1 or self.expand < 1 or self.max_steps < 1 or self.step_tokens < 1:
            raise ConfigError(f"beam needs positive width/expand/max_steps/step_tokens, got {self}", field="beam")

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        scorer = self.scorer or ctx.process_scorer or ctx.scorer
        if scorer is None:
            raise ConfigError("beam search needs a process scorer (SearchContext.process_scorer)", field="scorer")
        before = ctx.budget.spent.copy()
        beams: list[Branch] = [Branch()]
        everything: list[Candidate] = []
        finished: list[Candidate] = []
        stopped: str | None = None
        for step in range(self.max_steps):
            n = self.expand * (self.width if step == 0 else 1)
            try:
                rows = await ctx.sample(problem, n, branches=beams, max_tokens=self.step_tokens,
                                        stop=(problem.step_delimiter,), partial_on_stop=True,
                                        strategy=f"{self.name}{step}.")  # fmt: skip
            except BudgetExceeded:
                stopped = "budget"
                break
            children = [c for row in rows for c in row]
            scored = await ctx.score(problem, children, scorer)
            everything.extend(scored)
            over = [c for c in scored if c.partial and c.completion_tokens >= problem.max_tokens]
            finished.extend(c for c in scored if not c.partial or c in over)
            alive = sorted(
                (c for c in scored if c.partial and c not in over),
                key=lambda c: c.score(scorer.name) or 0.0,
                reverse=True,
            )[: self.width]
            if len(finished) >= self.width or not alive:
                break
            beams = [Branch(prefix=c.text, parent=c) for c in alive]
        else:
            stopped = "max_steps"
        pool = [c for c in finished if c.answer is not None] or finished
        chosen = best_scored(pool, scorer.name)
        reason = f"best of {len(finished)} finished beams by {scorer.name}"
        return result(ctx, problem, self.name, everything, chosen, reason, before, stopped=stopped)
