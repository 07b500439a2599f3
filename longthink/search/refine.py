"""Generate, critique, revise: each round asks the model to check the best solution so far and write a
corrected one (n revisions in one batched call); the best candidate by reward over all rounds is kept."""

from __future__ import annotations

from dataclasses import dataclass, replace

from longthink.errors import BudgetExceeded, ConfigError
from longthink.llm.types import Message
from longthink.rewards.base import Scorer
from longthink.search.base import best_scored, result
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem, StepResult

CRITIQUE = (
    "Here is a proposed solution:\n\n{solution}\n\n"
    "Check it step by step for mistakes. Then write a complete corrected solution, ending with the final answer "
    "in the same format as asked."
)


@dataclass(frozen=True, slots=True)
class Refine:
    n: int = 4
    rounds: int = 2
    scorer: Scorer | None = None
    template: str = CRITIQUE
    name: str = "refine"

    def __post_init__(self) -> None:
        if self.n < 1 or self.rounds < 0:
            raise ConfigError(f"refine needs n >= 1 and rounds >= 0, got {self}", field="refine")

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        scorer = self.scorer or ctx.scorer
        if scorer is None:
            raise ConfigError("refine needs a scorer to keep the best revision", field="scorer")
        before = ctx.budget.spent.copy()
        everything: list[Candidate] = []
        stopped: str | None = None
        current = problem
        for round_ in range(self.rounds + 1):
            try:
                [cands] = await ctx.sample(current, self.n, strategy=f"{self.name}{round_}.")
            except BudgetExceeded:
                stopped = "budget"
                break
            everything.extend(await ctx.score(problem, cands, scorer))
            best = best_scored(everything, scorer.name)
            if best is None:
                break
            critique = Message.user(self.template.format(solution=best.text))
            current = replace(problem, prompt=(*problem.prompt, Message.assistant(best.text), critique))
        chosen = best_scored([c for c in everything if c.answer is not None] or everything, scorer.name)
        return result(ctx, problem, self.name, everything, chosen, f"best of {len(everything)} drafts and revisions "
                      f"by {scorer.name}", before, stopped=stopped)  # fmt: skip
