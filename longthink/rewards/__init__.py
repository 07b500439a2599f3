"""Rewards: scorers of candidates (verifiers, judges, reward models, self-certainty) and aggregators."""

from longthink.rewards.base import AGGREGATORS, Aggregator, Scorer, last, mean, minimum, product

__all__ = ["AGGREGATORS", "Aggregator", "Scorer", "last", "mean", "minimum", "product"]
