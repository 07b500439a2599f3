"""Self-certainty: a reward-free score from the generating model's own confidence in what it wrote."""

from __future__ import annotations

import math
from collections.abc import Sequence

from longthink.search.types import Candidate, Problem, Score


class SelfCertainty:
    """``value = exp(mean token log-probability)``: the geometric-mean probability of the candidate's tokens, in
    (0, 1]. A fallback when no verifier, judge or reward model applies; it prefers fluent, confident texts,
    which correlates with correctness only loosely.

    It needs logprobs from the backend (``SearchContext(logprobs=True)``); a candidate without them scores 0.0
    with the reason. For a step-search node, ``Candidate.mean_logprob`` covers the tokens of its last step only.
    """

    def __init__(self, name: str = "self_certainty") -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return [self._one(c) for c in candidates]

    def _one(self, candidate: Candidate) -> Score:
        m = candidate.mean_logprob
        if m is None:
            return Score(self._name, 0.0, rationale="no logprobs: the backend returned none for this candidate")
        if math.isnan(m):
            return Score(self._name, 0.0, rationale="mean logprob is NaN")
        value = min(1.0, math.exp(m))
        return Score(self._name, value, rationale=f"mean logprob {m:.4f}")
