"""The Scorer protocol and pure aggregators of step scores."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # the search package imports this protocol; keep the import one-way at run time
    from longthink.search.types import Candidate, Problem, Score


@runtime_checkable
class Scorer(Protocol):
    """Scores a problem's candidates. Returns one :class:`Score` per candidate, in order.

    Values are "higher is better": probabilities or rewards in [0, 1], or negative costs. A scorer that
    cannot judge a candidate (it has no answer, the judge's reply is unreadable) gives it its lowest value
    with the reason in ``rationale``; it never raises for bad model output.
    """

    @property
    def name(self) -> str: ...

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]: ...


Aggregator = Callable[[Sequence[float]], float]


def last(values: Sequence[float]) -> float:
    return values[-1] if values else 0.0


def minimum(values: Sequence[float]) -> float:
    return min(values) if values else 0.0


def product(values: Sequence[float]) -> float:
    return math.prod(values) if values else 0.0


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


AGGREGATORS: dict[str, Aggregator] = {"last": last, "min": minimum, "product": product, "mean": mean}
