"""Adaptive compute: sample in batches and stop as soon as the vote is decided.

Two stopping rules, checked after every batch:

- **decided**: the leader cannot be overtaken by the samples still allowed (leader - runner-up > remaining);
- **confident**: under a Beta posterior over the two leading answers' shares (Adaptive-Consistency,
  Aggarwal et al. 2023), P(leader's share > runner-up's) >= ``confidence``, after at least ``min_samples``.

Easy problems (early agreement) stop after one batch; hard ones use up to ``max_samples``. The same rules
applied to a pool of already drawn samples give the benchmark's simulation (:func:`stop_point`).

With a reward (``scorer``, e.g. a learned verifier or a judge) and ``reward_threshold``, a third rule:

- **verified**: the best candidate so far scores at least ``reward_threshold`` (the reward is a calibrated
  P(correct)); the answer is then the reward-weighted vote. All candidates so far are re-scored after each
  batch, since a verifier that reads agreement between siblings changes its mind as more arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from longthink.errors import BudgetExceeded, ConfigError
from longthink.rewards.base import Scorer
from longthink.search.base import best_scored, leader, result, tally
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem, StepResult

_GRID = np.linspace(0.0, 1.0, 2001)


def prob_leader_ahead(a: float, b: float) -> float:
    """P(p_a > p_b) for p_a ~ Beta(a + 1, b + 1) (the leader's share between the two top answers)."""
    log_pdf = a * np.log(np.clip(_GRID, 1e-300, None)) + b * np.log(np.clip(1 - _GRID, 1e-300, None))
    pdf = np.exp(log_pdf - log_pdf.max())
    mass = pdf.sum()
    return float(pdf[_GRID > 0.5].sum() / mass) if mass > 0 else 0.5


def decision(votes: dict[str, float], drawn: int, max_samples: int, confidence: float, min_samples: int) -> str | None:
    """Why sampling can stop now ("decided", "confident"), or None to go on."""
    if not votes:
        return None
    ranked = sorted(votes.values(), reverse=True)
    first, second = ranked[0], (ranked[1] if len(ranked) > 1 else 0.0)
    if first - second > max_samples - drawn:
        return "decided"
    if drawn >= min_samples and prob_leader_ahead(first, second) >= confidence:
        return "confident"
    return None


def stop_point(
    answers: Sequence[str | None], *, batch: int, max_samples: int, confidence: float, min_samples: int
) -> tuple[int, str | None]:
    """How many of the pre-drawn ``answers`` (in order) the adaptive rule would use, and why it stopped."""
    drawn = 0
    while drawn < min(max_samples, len(answers)):
        drawn = min(drawn + batch, max_samples, len(answers))
        votes: dict[str, float] = {}
        for a in answers[:drawn]:
            if a is not None:
                votes[a] = votes.get(a, 0.0) + 1
        why = decision(votes, drawn, max_samples, confidence, min_samples)
        if why:
            return drawn, why
    return drawn, None


def reward_stop(rewards: Sequence[float], threshold: float | None) -> bool:
    """The "verified" rule: the best reward so far reaches ``threshold`` (never when there is no threshold)."""
    return threshold is not None and bool(rewards) and max(rewards) >= threshold


def weighted_answer(cands: Sequence[Candidate], rewards: Sequence[float]) -> str | None:
    """The reward-weighted vote (ties broken as :func:`leader` does)."""
    return leader(tally(cands, [max(0.0, r) for r in rewards]), cands)


@dataclass(frozen=True, slots=True)
class AdaptiveConsistency:
    max_samples: int = 16
    batch: int = 4
    confidence: float = 0.95
    min_samples: int = 4
    scorer: Scorer | None = None
    reward_threshold: float | None = None
    name: str = "adaptive"

    def __post_init__(self) -> None:
        if self.batch < 1 or self.max_samples < 1 or not (0.5 < self.confidence <= 1):
            raise ConfigError(f"adaptive needs batch, max_samples >= 1 and confidence in (0.5, 1], got {self}")
        if self.reward_threshold is not None and not 0 < self.reward_threshold <= 1:
            raise ConfigError("adaptive's reward_threshold must be in (0, 1]", field="reward_threshold")

    async def solve(self, problem: Problem, ctx: SearchContext) -> StepResult:
        before = ctx.budget.spent.copy()
        cands: list[Candidate] = []
        stopped: str | None = None
        while len(cands) < self.max_samples:
            n = ctx.budget.fit_n(min(self.batch, self.max_samples - len(cands)), problem.max_tokens)
            if n == 0:
                stopped = "budget"
                break
            try:
                [batch] = await ctx.sample(problem, n, strategy=f"{self.name}{len(cands)}.")
            except BudgetExceeded:
                stopped = "budget"
                break
            cands.extend(batch)
            scorer = self.scorer or (ctx.scorer if self.reward_threshold is not None else None)
            if scorer is not None:
                cands = await ctx.score(problem, _unscored(cands, scorer.name), scorer)
                if reward_stop([c.score(scorer.name) or 0.0 for c in cands], self.reward_threshold):
                    stopped = "verified"
                    break
            why = decision(tally(cands), len(cands), self.max_samples, self.confidence, self.min_samples)
            if why:
                stopped = why
                break
        scorer = self.scorer or (ctx.scorer if self.reward_threshold is not None else None)
        if scorer is not None and cands:
            rewards = [c.score(scorer.name) or 0.0 for c in cands]
            votes = tally(cands, [max(0.0, r) for r in rewards])
            answer = leader(votes, cands)
            chosen = best_scored([c for c in cands if c.answer == answer], scorer.name) if answer else None
            how = f"{scorer.name}-weighted vote"
        else:
            votes = tally(cands)
            answer = leader(votes, cands)
            chosen = next((c for c in cands if c.answer == answer), None) if answer else None
            how = "vote"
        reason = f"{how} after {len(cands)} of at most {self.max_samples} samples ({stopped or 'all drawn'})"
        return result(ctx, problem, self.name, cands, chosen, reason, before, votes=votes, stopped=stopped)


def _unscored(cands: Sequence[Candidate], scorer: str) -> list[Candidate]:
    """The candidates without ``scorer``'s earlier scores (they are re-scored together with the new batch)."""
    return [replace(c, scores=tuple(s for s in c.scores if s.scorer != scorer)) for c in cands]
