"""Rewards: scorers of candidates (verifiers, judges, reward models, self-certainty, learned verifiers trained
from stored runs) and aggregators."""

from longthink.rewards.base import AGGREGATORS, Aggregator, Scorer, last, mean, minimum, product
from longthink.rewards.ensemble import Aggregated, Ensemble
from longthink.rewards.judge import Judge, ProcessJudge, expected_rating, parse_rating, parse_yes_no, yes_probability
from longthink.rewards.learned import SCALAR_FEATURES, LearnedVerifier, VerifierArtifact, candidate_features
from longthink.rewards.reward_model import PoolingRewardClient, TransformersRewardModel, plain_pair
from longthink.rewards.self_certainty import SelfCertainty
from longthink.rewards.train import LabelledGroup, labelled_from_store, labelled_groups, train_verifier
from longthink.rewards.verifier import ReferenceMatch, Verdict, Verifier

__all__ = [
    "AGGREGATORS",
    "SCALAR_FEATURES",
    "Aggregated",
    "Aggregator",
    "Ensemble",
    "Judge",
    "LabelledGroup",
    "LearnedVerifier",
    "PoolingRewardClient",
    "ProcessJudge",
    "ReferenceMatch",
    "Scorer",
    "SelfCertainty",
    "TransformersRewardModel",
    "Verdict",
    "Verifier",
    "VerifierArtifact",
    "candidate_features",
    "expected_rating",
    "labelled_from_store",
    "labelled_groups",
    "last",
    "mean",
    "minimum",
    "parse_rating",
    "parse_yes_no",
    "plain_pair",
    "product",
    "train_verifier",
    "yes_probability",
]
