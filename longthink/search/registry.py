"""Strategies by name, with a helpful error for unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from longthink.errors import ConfigError
from longthink.search.adaptive import AdaptiveConsistency
from longthink.search.base import Strategy
from longthink.search.beam import BeamSearch
from longthink.search.best_of_n import BestOfN
from longthink.search.cot import ChainOfThought
from longthink.search.feedback import RefineWithFeedback
from longthink.search.refine import Refine
from longthink.search.self_consistency import SelfConsistency
from longthink.search.tree import TreeSearch
from longthink.search.weighted_best_of_n import WeightedBestOfN

STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "cot": ChainOfThought,
    "self_consistency": SelfConsistency,
    "best_of_n": BestOfN,
    "weighted_best_of_n": WeightedBestOfN,
    "beam": BeamSearch,
    "tree": TreeSearch,
    "refine": Refine,
    "refine_feedback": RefineWithFeedback,
    "adaptive": AdaptiveConsistency,
}


def make_strategy(name: str, **options: Any) -> Strategy:
    """Build the strategy called ``name`` with ``options``; unknown names and options fail clearly."""
    key = name.strip().lower().replace("-", "_")
    factory = STRATEGIES.get(key)
    if factory is None:
        near = difflib.get_close_matches(key, STRATEGIES, n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
        raise ConfigError(f"unknown strategy {name!r}{hint} (known: {', '.join(STRATEGIES)})", field="strategy")
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for strategy {key!r}: {exc}", field="strategy") from None
