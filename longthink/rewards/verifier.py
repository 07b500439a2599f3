"""Programmatic verifiers: check an answer, run tests, compute a cost — any callable becomes a scorer.

A verifier's function is user code: whatever it raises is recorded on the candidate's score (value = the
verifier's ``floor``, the exception in the rationale) and never propagates, so one broken check cannot end a
search. Candidates without an extracted answer are not passed to the function at all.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from longthink.answers import extract_answer
from longthink.errors import ConfigError
from longthink.search.types import Candidate, Problem, Score


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verifier's result with its reason: ``value`` is higher-is-better (1/0, a reward, or minus a cost)."""

    value: float
    rationale: str = ""


Outcome: TypeAlias = bool | float | Verdict
VerifyFn: TypeAlias = Callable[[Problem, Candidate], Outcome | Awaitable[Outcome]]


class Verifier:
    """A scorer from ``fn(problem, candidate)``, sync or async, returning a bool, a float or a :class:`Verdict`.

    ``True``/``False`` become 1.0/0.0 and a float is taken as it is. To minimise a *cost* (route length,
    runtime, price), return it negated: values are always higher-is-better. Candidates with no answer
    (``candidate.answer is None``) get ``floor`` with their ``parse_error`` as rationale, without calling
    ``fn``; an exception raised by ``fn`` and a non-finite result also get ``floor``, with the reason.
    ``floor`` is 0.0, the lowest value of a check; a cost verifier should set it below every real cost
    (for example ``-math.inf`` or a large negative number), or unverifiable candidates would beat costly ones.

    Async functions run concurrently over the candidates; a sync function runs in the event loop, one candidate
    after the other — with ``in_thread=True`` it runs in a worker thread instead (for slow checks such as
    running a test suite).
    """

    def __init__(self, fn: VerifyFn, name: str = "verifier", *, floor: float = 0.0, in_thread: bool = False) -> None:
        if not callable(fn):
            raise ConfigError(f"Verifier needs a callable, got {fn!r}", field="fn")
        if math.isnan(floor):
            raise ConfigError("Verifier floor must not be NaN", field="floor")
        self._fn = fn
        self._name = name
        self._floor = floor
        self._in_thread = in_thread

    @property
    def name(self) -> str:
        return self._name

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return list(await asyncio.gather(*(self._one(problem, c) for c in candidates)))

    async def _one(self, problem: Problem, candidate: Candidate) -> Score:
        if candidate.answer is None:
            return Score(self._name, self._floor, rationale=candidate.parse_error or "no answer")
        try:
            if self._in_thread:
                result = await asyncio.to_thread(self._fn, problem, candidate)
            else:
                result = self._fn(problem, candidate)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # noqa: BLE001 - user code: its failure is recorded as data, never raised
            return Score(self._name, self._floor, rationale=f"verifier raised {type(exc).__name__}: {exc}")
        return self._to_score(result)

    def _to_score(self, result: object) -> Score:
        rationale = ""
        if isinstance(result, Verdict):
            value, rationale = result.value, result.rationale
        elif isinstance(result, bool):
            value, rationale = (1.0, "passed") if result else (0.0, "failed")
        elif isinstance(result, int | float):
            value = result
        else:
            return Score(self._name, self._floor, rationale=f"verifier returned {type(result).__name__}, not a number")
        if not isinstance(value, int | float) or not math.isfinite(value):
            return Score(self._name, self._floor, rationale=f"verifier returned a non-finite value {value!r}")
        return Score(self._name, float(value), rationale=rationale)


class ReferenceMatch:
    """1.0 when the candidate's answer equals the problem's known ``reference``, else 0.0 (for benchmarks).

    The reference is compared both as written and normalised like an extracted answer of the problem's
    ``answer_kind`` (so a reference "1,200" matches the answer "1200"). A problem without a reference is a
    caller error (``ConfigError``).
    """

    def __init__(self, name: str = "exact") -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        if problem.reference is None:
            raise ConfigError(f"ReferenceMatch needs a reference answer; problem {problem.id!r} has none")
        accepted = {problem.reference}
        normalized = extract_answer(problem.reference, problem.answer_kind).value
        if normalized is not None:
            accepted.add(normalized)
        scores = []
        for c in candidates:
            if c.answer is None:
                scores.append(Score(self._name, 0.0, rationale=c.parse_error or "no answer"))
            elif c.answer in accepted:
                scores.append(Score(self._name, 1.0, rationale="matches the reference"))
            else:
                scores.append(Score(self._name, 0.0, rationale=f"{c.answer!r} != reference {problem.reference!r}"))
        return scores
