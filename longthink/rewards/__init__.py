"""Rewards: scorers of candidates (verifiers, judges, reward models, self-certainty) and aggregators."""

from longthink.rewards.base import AGGREGATORS, Aggregator, Scorer, last, mean, minimum, product
from longthink.rewards.ensemble import Aggregated, Ensemble
from longthink.rewards.judge import Judge, ProcessJudge, expected_rating, parse_rating, parse_yes_no, yes_probability
from longthink.rewards.reward_model import PoolingRewardClient, TransformersRewardModel, plain_pair
from longthink.rewards.self_certainty import SelfCertainty
from longthink.rewards.verifier import ReferenceMatch, Verdict, Verifier

__all__ = [
    "AGGREGATORS",
    "Aggregated",
    "Aggregator",
    "Ensemble",
    "Judge",
    "PoolingRewardClient",
    "ProcessJudge",
    "ReferenceMatch",
    "Scorer",
    "SelfCertainty",
    "TransformersRewardModel",
    "Verdict",
    "Verifier",
    "expected_rating",
    "last",
    "mean",
    "minimum",
    "parse_rating",
    "parse_yes_no",
    "plain_pair",
    "product",
    "yes_probability",
]
