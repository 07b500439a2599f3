"""Refine with feedback: ``n`` drafts, then rounds in which the best candidates so far are each shown what is
wrong with them — failing test output, violated checks, a verifier's rationale — and ``children`` revisions of
each are sampled (every revision of every parent in one batched call; each records its parent). Rounds stop
once a candidate is done (by default: full marks from the reward) or the budget is spent; the best candidate
over all rounds is kept.

The parts are injected: ``feedback`` (default: the rationales of the parent's scores), ``revise`` (the prompt
of a revision; default: the problem, the parent's reply and ``template`` with the feedback), ``extra`` scorers
recorded before the reward, ``select`` (default: the best by reward) and ``done``. With ``rounds=0`` this is
best-of-N under those parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from longthink.errors import BudgetExceeded, ConfigError
from longthink.llm.types import Message
from longthink.rewards.base import Scorer
from longthink.search.base import best_scored, result
from longthink.search.context import Branch, SearchContext
from longthink.search.types import Candidate, Problem, StepResult

FeedbackFn = Callable[[Candidate], str]
"""What is wrong with a candidate, in words the model can act on."""
Reviser = Callable[[Problem, Candidate, str], Problem]
"""The problem a revision is sampled from: ``revise(problem, parent, feedback)``."""
Selector = Callable[[Sequence[Candidate]], Candidate | None]
"""Picks the kept candidate among every scored one (in the order they were drawn)."""
Done = Callable[[Candidate], bool]

ASK = "That is not right yet:\n{feedback}\n\nWrite a complete corrected solution, in the same format as asked."


def rationales(c: Candidate) -> str:
    """The default feedback: every score's rationale (or the parse error of a reply that could not be read)."""
    lines = [f"{s.scorer}: {s.rationale}" for s in c.scores if s.rationale]
    return "\n".join(lines) or c.parse_error or "it was judged wrong"


@dataclass(frozen=True, slots=True)
class RefineWithFeedback:
    """``n`` drafts; then up to ``rounds`` rounds of ``children`` revisions of each of the ``parents`` best
    candidates so far (by the reward; those with an answer first), while none is ``done``. ``prefix``, ``stop``,
    ``max_tokens`` and ``temperature`` shape every sample; ``scorer`` overrides the context's reward."""

    feedback: FeedbackFn | None = None
    n: int = 4
    rounds: int = 1
    parents: int = 1
    children: int = 2
    scorer: Scorer | None = None
    extra: tuple[Scorer, ...] = ()
    template: str = ASK
    revise: Reviser | None = None
    select: Selector | None = None
    done: Done | None = None
    prefix: str = ""
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None
    name: str = "refine_feedback"

    def __post_init__(self) -> None:
        if self.n < 1 or self.rounds < 0 or self.parents < 1 or self.children < 1:
            raise ConfigError(
                f"refine_feedback needs n, parents and children >= 1 and rounds >= 0, got n={self.n}, "
                f"rounds={self.rounds}, parents={self.parents}, children={self.children}",
                field="refine_feedback",
            )
        if "{feedback}" not in self.template:
            raise ConfigError("refine_feedback's template must contain {feedback}", field="template")

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        reward = self.scorer or ctx.scorer
        if reward is None:
            raise ConfigError("refine_feedback needs a scorer (pass one or set SearchContext.scorer)", field="scorer")
        before = ctx.budget.spent.copy()
        limit = self.max_tokens or problem.max_tokens
        everything: list[Candidate] = []
        stopped: str | None = None
        rounds = 0
        fit = ctx.budget.fit_n(self.n, limit)
        short = fit < self.n
        try:
            if fit == 0:
                raise BudgetExceeded(ctx.budget.describe())
            [drafts] = await ctx.sample(problem, fit, branches=[Branch(self.prefix)], max_tokens=self.max_tokens,
                                        stop=self.stop, strategy=self.name, temperature=self.temperature)  # fmt: skip
        except BudgetExceeded:
            return result(ctx, problem, self.name, [], None, "budget spent before sampling", before, stopped="budget")
        everything.extend(await self._scored(problem, ctx, drafts, reward))
        for round_ in range(1, self.rounds + 1):
            if any(self._done(c, reward) for c in everything):
                break
            parents = self._parents(everything, reward)
            want = self.children * len(parents)
            fit = ctx.budget.fit_n(want, limit)
            if fit == 0:
                stopped = "budget"
                break
            per = min(self.children, fit)
            parents = parents[: max(1, fit // per)]
            asks = [self._revision(problem, p) for p in parents]
            try:
                rows = await ctx.sample(asks, per, branches=[Branch(self.prefix, parent=p) for p in parents],
                                        max_tokens=self.max_tokens, stop=self.stop, strategy=f"{self.name}{round_}.",
                                        temperature=self.temperature)  # fmt: skip
            except BudgetExceeded:
                stopped = "budget"
                break
            rounds = round_
            everything.extend(await self._scored(problem, ctx, [c for row in rows for c in row], reward))
            if per * len(parents) < want:
                stopped = "budget"
                break
        if self.select is not None:
            chosen = self.select(everything)
        else:
            chosen = best_scored([c for c in everything if c.answer is not None] or everything, reward.name)
        revised = sum(1 for c in everything if c.parent_id is not None)
        reason = (f"best of {len(everything)} by {reward.name} ({len(everything) - revised} drafts, {revised} "
                  f"revisions in {rounds} rounds)")  # fmt: skip
        out = result(ctx, problem, self.name, everything, chosen, reason, before,
                     stopped=stopped or ("budget" if short else None))  # fmt: skip
        return replace(out, rounds=rounds)

    async def _scored(
        self, problem: Problem, ctx: SearchContext, cands: list[Candidate], reward: Scorer
    ) -> list[Candidate]:
        """The candidates with the ``extra`` scores, then the reward, attached (all scored against ``problem``)."""
        for scorer in (*self.extra, reward):
            cands = await ctx.score(problem, cands, scorer)
        return cands

    def _done(self, c: Candidate, reward: Scorer) -> bool:
        return self.done(c) if self.done is not None else (c.score(reward.name) or 0.0) >= 1.0

    def _parents(self, everything: Sequence[Candidate], reward: Scorer) -> list[Candidate]:
        """The ``parents`` best by reward among those with an answer (earlier first among equals); when none has
        an answer, the first ones, revised as they are."""
        answered = [c for c in everything if c.answer is not None]
        ranked = sorted(answered, key=lambda c: -(c.score(reward.name) or 0.0))
        return (ranked or list(everything))[: self.parents]

    def _revision(self, problem: Problem, parent: Candidate) -> Problem:
        feedback = (self.feedback or rationales)(parent)
        if self.revise is not None:
            return self.revise(problem, parent, feedback)
        ask = Message.user(self.template.format(feedback=feedback.strip()))
        return replace(problem, prompt=(*problem.prompt, Message.assistant(parent.text), ask))
