"""Scorers made of scorers: a weighted ensemble, and step values reduced to one value by an aggregator."""

from __future__ import annotations

import asyncio
import difflib
import math
from collections.abc import Sequence

from longthink.errors import ConfigError
from longthink.rewards.base import AGGREGATORS, Aggregator, Scorer
from longthink.search.types import Candidate, Problem, Score


def _check(scorer: Scorer, scores: Sequence[Score], n: int) -> None:
    if len(scores) != n:
        raise ConfigError(f"scorer {scorer.name!r} returned {len(scores)} scores for {n} candidates")


class Ensemble:
    """``value = sum(weight * member value)`` over ``members`` (scorer, weight) pairs; members run concurrently.

    The rationale lists every member's value and weight. Weights may be negative (to subtract a penalty) but
    must be finite; member names must differ so the rationale can tell them apart.
    """

    def __init__(self, members: Sequence[tuple[Scorer, float]], name: str = "ensemble") -> None:
        if not members:
            raise ConfigError("Ensemble needs at least one (scorer, weight) member", field="members")
        names = [s.name for s, _ in members]
        if len(set(names)) != len(names):
            raise ConfigError(f"Ensemble member names must differ, got {names}", field="members")
        for scorer, weight in members:
            if not isinstance(weight, int | float) or not math.isfinite(weight):
                raise ConfigError(f"weight of {scorer.name!r} must be a finite number, got {weight!r}", field="members")
        self._members = [(s, float(w)) for s, w in members]
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        results = await asyncio.gather(*(s.score(problem, candidates) for s, _ in self._members))
        for (scorer, _), scores in zip(self._members, results, strict=True):
            _check(scorer, scores, len(candidates))
        out = []
        for i in range(len(candidates)):
            pairs = [(s, w, scores[i].value) for (s, w), scores in zip(self._members, results, strict=True)]
            value = sum(w * v for _, w, v in pairs)
            out.append(Score(self._name, value, rationale="; ".join(f"{s.name}={v:.4g}x{w:g}" for s, w, v in pairs)))
        return out


class Aggregated:
    """Turns a process scorer's per-step values (``Score.steps``) into one value with an aggregator:
    ``"min"`` (the weakest step), ``"last"``, ``"product"`` or ``"mean"`` (see :mod:`longthink.rewards.base`),
    or any callable. A score without step values keeps the inner scorer's value. The steps are kept.
    """

    def __init__(self, process_scorer: Scorer, aggregator: str | Aggregator = "min", name: str | None = None) -> None:
        if isinstance(aggregator, str):
            fn = AGGREGATORS.get(aggregator)
            if fn is None:
                close = difflib.get_close_matches(aggregator, AGGREGATORS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"unknown aggregator {aggregator!r} (known: {', '.join(AGGREGATORS)}){hint}", field="aggregator"
                )
            label = aggregator
        elif callable(aggregator):
            fn, label = aggregator, getattr(aggregator, "__name__", "aggregate")
        else:
            raise ConfigError(f"aggregator must be a name or a callable, got {aggregator!r}", field="aggregator")
        self._inner = process_scorer
        self._fn = fn
        self._label = label
        self._name = name or f"{label}({process_scorer.name})"

    @property
    def name(self) -> str:
        return self._name

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        scores = await self._inner.score(problem, candidates)
        _check(self._inner, scores, len(candidates))
        out = []
        for s in scores:
            if s.steps:
                value = float(self._fn(s.steps))
                why = f"{self._label} of {len(s.steps)} step values"
            else:
                value, why = s.value, "no step values: the inner value"
            rationale = f"{why}; {s.rationale}" if s.rationale else why
            out.append(Score(self._name, value, steps=s.steps, rationale=rationale))
        return out
