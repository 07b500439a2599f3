"""The Strategy protocol and the small pure helpers strategies share (voting, tie-breaking, results)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from longthink.budget import Spend
from longthink.errors import BudgetExceeded
from longthink.events import SearchFinished
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem, StepResult


@runtime_checkable
class Strategy(Protocol):
    """Solves one problem under the context's budget. Small, immutable, no state kept between calls."""

    @property
    def name(self) -> str: ...

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult: ...


def tally(candidates: Sequence[Candidate], weights: Sequence[float] | None = None) -> dict[str, float]:
    """Votes per distinct answer (weighted when ``weights`` are given); candidates without an answer abstain."""
    votes: dict[str, float] = {}
    for i, c in enumerate(candidates):
        if c.answer is None:
            continue
        votes[c.answer] = votes.get(c.answer, 0.0) + (1.0 if weights is None else weights[i])
    return votes


def leader(votes: Mapping[str, float], candidates: Sequence[Candidate]) -> str | None:
    """The answer with the most votes. Ties are broken on purpose: first by the tied answers' summed
    self-certainty (mean token logprob, when known), then by which answer appeared first."""
    if not votes:
        return None
    top = max(votes.values())
    tied = [a for a, v in votes.items() if math.isclose(v, top, rel_tol=1e-12, abs_tol=1e-12)]
    if len(tied) == 1:
        return tied[0]

    def certainty(answer: str) -> float:
        values = [c.mean_logprob for c in candidates if c.answer == answer and c.mean_logprob is not None]
        return sum(math.exp(v) for v in values) if values else 0.0

    first_seen = {}
    for i, c in enumerate(candidates):
        if c.answer is not None and c.answer not in first_seen:
            first_seen[c.answer] = i
    return max(tied, key=lambda a: (certainty(a), -first_seen.get(a, 0)))


def best_scored(candidates: Sequence[Candidate], scorer: str | None = None) -> Candidate | None:
    """The highest-scored candidate (ties: has an answer, then higher self-certainty, then earlier)."""
    if not candidates:
        return None

    def key(item: tuple[int, Candidate]) -> tuple[float, int, float, int]:
        i, c = item
        value = c.score(scorer)
        return (
            -math.inf if value is None else value,
            1 if c.answer is not None else 0,
            c.mean_logprob if c.mean_logprob is not None else -math.inf,
            -i,
        )

    return max(enumerate(candidates), key=key)[1]


def result(
    ctx: SearchContext,
    problem: Problem,
    strategy: str,
    candidates: Sequence[Candidate],
    chosen: Candidate | None,
    reason: str,
    before: Spend,
    *,
    answer: str | None = None,
    votes: Mapping[str, float] | None = None,
    stopped: str | None = None,
) -> StepResult:
    """Build the StepResult (answer defaults to the chosen candidate's) and emit ``step_finished``."""
    final = answer if answer is not None else (chosen.answer if chosen else None)
    if final is None and not any(c.answer for c in candidates):
        reason = f"{reason}; no candidate produced a parsable answer" if candidates else f"{reason}; no candidates"
    out = StepResult(
        problem_id=problem.id,
        strategy=strategy,
        candidates=tuple(candidates),
        chosen=chosen,
        answer=final,
        reason=reason,
        spend=ctx.spend_since(before),
        votes=dict(votes or {}),
        stopped=stopped,
    )
    ctx.emit(
        SearchFinished(
            problem_id=problem.id,
            strategy=strategy,
            answer=final,
            chosen=chosen.id if chosen else None,
            reason=out.reason,
            candidates=len(candidates),
            stopped=stopped,
            spend=out.spend.copy(),
            votes={str(k): float(v) for k, v in (votes or {}).items()},
        )
    )
    return out


async def draw(ctx: SearchContext, problem: Problem, n: int, name: str) -> tuple[list[Candidate], str | None]:
    """One batched draw of up to ``n`` candidates, shrunk to what the budget allows.

    Returns the candidates and why fewer than ``n`` were drawn ("budget") or None."""
    fit = ctx.budget.fit_n(n, problem.max_tokens)
    if fit == 0:
        return [], "budget"
    try:
        [cands] = await ctx.sample(problem, fit, strategy=name)
    except BudgetExceeded:
        return [], "budget"
    return cands, ("budget" if fit < n else None)
