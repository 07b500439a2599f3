"""Test-time search: strategies that turn more inference compute into better answers."""

from longthink.search.adaptive import AdaptiveConsistency
from longthink.search.base import Strategy, best_scored, leader, tally
from longthink.search.beam import BeamSearch
from longthink.search.best_of_n import BestOfN
from longthink.search.context import Branch, SearchContext
from longthink.search.cot import ChainOfThought
from longthink.search.feedback import RefineWithFeedback
from longthink.search.refine import Refine
from longthink.search.registry import STRATEGIES, make_strategy
from longthink.search.self_consistency import SelfConsistency
from longthink.search.tree import TreeSearch
from longthink.search.types import Candidate, Problem, Reading, Score, StepResult
from longthink.search.weighted_best_of_n import WeightedBestOfN

__all__ = [
    "STRATEGIES",
    "AdaptiveConsistency",
    "BeamSearch",
    "BestOfN",
    "Branch",
    "Candidate",
    "ChainOfThought",
    "Problem",
    "Reading",
    "Refine",
    "RefineWithFeedback",
    "Score",
    "SearchContext",
    "SelfConsistency",
    "StepResult",
    "Strategy",
    "TreeSearch",
    "WeightedBestOfN",
    "best_scored",
    "leader",
    "make_strategy",
    "tally",
]
