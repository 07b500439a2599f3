"""A learned outcome verifier: P(correct) of a candidate from features of it *among its siblings*.

Trained from longthink's own stored traces (:mod:`longthink.rewards.train`, ``longthink rewards train``) and saved
as one JSON artifact (:class:`VerifierArtifact`); :class:`LearnedVerifier` is the :class:`Scorer` that applies it.

Features are computed only from what a scorer receives — the candidates passed together (the *siblings*) and the
problem — never from a reference, so best-of-N at N sees only its N siblings. They are, in the order of
:data:`SCALAR_FEATURES`:

==========================  ========================================================================================
``has_answer``              1 when an answer was extracted (or a program printed one)
``vote_share``              siblings (itself included) with the same answer / all siblings; 0 without an answer
``vote_share_answered``     the same, over the siblings that have an answer
``is_leader``               1 when its answer has the most votes (ties: every tied answer leads)
``distinct_ratio``          distinct answers / siblings (the same for every sibling: how split the group is)
``certainty``               exp(mean token logprob), 0 when unknown
``mean_logprob``            mean token logprob clipped to [-20, 0], 0 when unknown ...
``logprob_missing``         ... and then this flag is 1 (the model learns the offset)
``answer_certainty_gap``    mean certainty of the siblings with its answer minus the mean over all siblings (over
                            siblings with logprobs; 0 without an answer or logprobs)
``cut_off``                 finish_reason == "length"
``log_tokens``              log1p(completion tokens)
``log_siblings``            log(number of siblings): a vote share of 1.0 means more among 8 than alone
``program_mode``            the problem is in program mode (``Problem.mode``) or the candidate has an ``execution``
``executed_ok``             ``Candidate.execution`` is present and ``ok``
``answer_is_integer``       the answer reads as a number with an integral value
``answer_many_decimals``    the answer reads as a number with more than 2 decimals (trailing zeros aside)
``question_numbers_used``   share of the distinct numbers of the question that the candidate's text mentions (a
                            program or a derivation that ignores a given quantity is often wrong); 1 when the
                            question has no numbers or the text is not known
==========================  ========================================================================================

Optional embedding features: an :class:`~longthink.llm.embeddings.Embedder` embeds "question, blank line,
candidate text" (:func:`embedding_text`), a PCA fitted at training time reduces the vector to ``k`` components,
and they are appended as ``emb_0 .. emb_{k-1}``. Every feature is finite for any input.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from longthink.errors import ConfigError
from longthink.llm.embeddings import Embedder
from longthink.search.types import Candidate, Problem, Score

Array = npt.NDArray[np.float64]

SCALAR_FEATURES: tuple[str, ...] = (
    "has_answer",
    "vote_share",
    "vote_share_answered",
    "is_leader",
    "distinct_ratio",
    "certainty",
    "mean_logprob",
    "logprob_missing",
    "answer_certainty_gap",
    "cut_off",
    "log_tokens",
    "log_siblings",
    "program_mode",
    "executed_ok",
    "answer_is_integer",
    "answer_many_decimals",
    "question_numbers_used",
)

_MIN_LOGPROB = -20.0
_DECIMALS = re.compile(r"[-+]?\d*\.(\d+)(?:[eE][-+]?\d+)?")


def _logprob(c: Candidate) -> float | None:
    m = c.mean_logprob
    if m is None or isinstance(m, bool) or not isinstance(m, int | float) or math.isnan(m):
        return None
    return min(0.0, max(_MIN_LOGPROB, float(m)))


def _number_shape(answer: str | None) -> tuple[float, float]:
    """(is an integer, has more than 2 decimals) for an answer that reads as a number; (0, 0) otherwise."""
    if answer is None:
        return 0.0, 0.0
    text = answer.strip().replace(",", "").replace("_", "")
    try:
        value = float(text)
    except ValueError:
        return 0.0, 0.0
    if not math.isfinite(value):
        return 0.0, 0.0
    decimals = _DECIMALS.fullmatch(text)
    many = 1.0 if decimals is not None and len(decimals.group(1).rstrip("0")) > 2 else 0.0
    return (1.0 if value == math.floor(value) else 0.0), many


_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> set[str]:
    """The numbers a text mentions, normalised (``1,200`` and ``1200.0`` are ``1200``)."""
    out = set()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        out.add(value)
    return out


def numbers_used(question: str, text: str) -> float:
    """Share of the question's distinct numbers that ``text`` mentions (1.0 without numbers or without text)."""
    wanted = _numbers(question)
    if not wanted or not text:
        return 1.0
    return len(wanted & _numbers(text)) / len(wanted)


def candidate_features(candidates: Sequence[Candidate], *, program_mode: bool = False, question: str = "") -> Array:
    """The :data:`SCALAR_FEATURES` of each candidate among ``candidates`` (its siblings): shape ``(n, len)``.
    ``question`` is the problem's question (for ``question_numbers_used``)."""
    n = len(candidates)
    out = np.zeros((n, len(SCALAR_FEATURES)), dtype=np.float64)
    if n == 0:
        return out
    votes: dict[str, int] = {}
    for c in candidates:
        if c.answer is not None:
            votes[c.answer] = votes.get(c.answer, 0) + 1
    answered = sum(votes.values())
    top = max(votes.values(), default=0)
    certainties = [math.exp(lp) if (lp := _logprob(c)) is not None else None for c in candidates]
    known = [v for v in certainties if v is not None]
    overall = sum(known) / len(known) if known else 0.0
    by_answer: dict[str, list[float]] = {}
    for c, v in zip(candidates, certainties, strict=True):
        if c.answer is not None and v is not None:
            by_answer.setdefault(c.answer, []).append(v)
    for i, c in enumerate(candidates):
        lp = _logprob(c)
        certainty = certainties[i]
        same = votes.get(c.answer, 0) if c.answer is not None else 0
        group = by_answer.get(c.answer, []) if c.answer is not None else []
        is_integer, many_decimals = _number_shape(c.answer)
        execution = c.execution
        out[i] = (
            1.0 if c.answer is not None else 0.0,
            same / n,
            same / answered if answered else 0.0,
            1.0 if same and same == top else 0.0,
            len(votes) / n,
            certainty if certainty is not None else 0.0,
            lp if lp is not None else 0.0,
            1.0 if lp is None else 0.0,
            (sum(group) / len(group) - overall) if group else 0.0,
            1.0 if c.finish_reason == "length" else 0.0,
            math.log1p(max(0, int(c.completion_tokens or 0))),
            math.log(n),
            1.0 if program_mode or execution is not None else 0.0,
            1.0 if execution is not None and execution.ok else 0.0,
            is_integer,
            many_decimals,
            numbers_used(question, c.text),
        )
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def embedding_text(question: str, candidate: Candidate) -> str:
    """What the embedder reads for one candidate: the problem's question, a blank line, the candidate's text."""
    return f"{question}\n\n{candidate.text}" if question else candidate.text


# -- the artifact -----------------------------------------------------------------------------------------------

ARTIFACT_FORMAT: Final = "longthink.learned_verifier"
ARTIFACT_VERSION: Final = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrainedOn(_Frozen):
    """Provenance of the training data."""

    rows_sha256: str  # sha256 of the canonical training rows (see longthink.rewards.train.canonical_rows)
    examples: int
    groups: int
    positives: int
    label_source: tuple[str, ...]  # the scorers whose values were the labels
    sources: tuple[str, ...]  # the strategies that generated the candidates
    policy_models: tuple[str, ...]
    runs: int


class Metrics(_Frozen):
    """Quality on the held-out groups (never seen in training; None where undefined, e.g. one class only)."""

    heldout_auroc: float | None
    heldout_brier: float | None
    heldout_ece: float | None  # 10 equal-width bins
    heldout_examples: int
    heldout_groups: int
    train_auroc: float | None


class VerifierArtifact(_Frozen):
    """A trained learned verifier, saved as one JSON file (:meth:`save`, :meth:`load`).

    ``value = sigmoid(bias + weights . (features - means) / stds)`` where features are the scalar features
    followed, when ``embedder_model`` is set, by the embedding's projection ``(e - pca_mean) @ pca_components.T``.
    """

    format: Literal["longthink.learned_verifier"] = ARTIFACT_FORMAT
    version: Literal[1] = ARTIFACT_VERSION
    feature_names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    pca_components: tuple[tuple[float, ...], ...] | None = None
    pca_mean: tuple[float, ...] | None = None
    embedder_model: str | None = None
    settings: dict[str, float | int | str]  # l2, heldout, seed, pca_dim, draws, subsets
    trained_on: TrainedOn
    metrics: Metrics
    created_at: str
    longthink_version: str
    provenance: dict[str, Any] | None = None  # the benchmark run that wrote it (commit, settings, date); not scored

    @model_validator(mode="after")
    def _consistent(self) -> VerifierArtifact:
        k = len(self.feature_names)
        if not (len(self.means) == len(self.stds) == len(self.weights) == k):
            raise ValueError(f"{k} feature names but {len(self.means)}/{len(self.stds)}/{len(self.weights)} values")
        if self.feature_names[: len(SCALAR_FEATURES)] != SCALAR_FEATURES:
            raise ValueError(f"scalar features {list(self.feature_names)} differ from {list(SCALAR_FEATURES)}")
        n_emb = k - len(SCALAR_FEATURES)
        if (self.embedder_model is None) != (n_emb == 0):
            raise ValueError("embedding features need an embedder model, and an embedder model needs them")
        if n_emb:
            if self.pca_components is None or self.pca_mean is None or len(self.pca_components) != n_emb:
                raise ValueError(f"{n_emb} embedding features need as many PCA components and a PCA mean")
            if any(len(row) != len(self.pca_mean) for row in self.pca_components):
                raise ValueError("every PCA component must have the width of the PCA mean")
        values = [*self.means, *self.stds, *self.weights, self.bias, *(self.pca_mean or ())]
        values += [v for row in self.pca_components or () for v in row]
        if not all(math.isfinite(v) for v in values) or any(s <= 0 for s in self.stds):
            raise ValueError("weights, means, PCA values must be finite and stds > 0")
        return self

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the artifact as JSON (atomically: a temporary file renamed); returns the path."""
        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VerifierArtifact:
        """Read and check an artifact; a missing file, another format or version, or bad values: ConfigError."""
        source = Path(path).expanduser()
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the verifier artifact {source}: {exc}", field="path") from exc
        except ValueError as exc:
            raise ConfigError(f"{source} is not JSON: {exc}", field="path") from exc
        return cls.from_dict(data, source=str(source))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "the artifact") -> VerifierArtifact:
        if not isinstance(data, dict) or data.get("format") != ARTIFACT_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"{source} is not a {ARTIFACT_FORMAT} artifact (format {found!r})", field="path")
        if data.get("version") != ARTIFACT_VERSION:
            raise ConfigError(
                f"{source} is a {ARTIFACT_FORMAT} artifact of version {data.get('version')!r}; this longthink "
                f"reads version {ARTIFACT_VERSION}: retrain it with `longthink rewards train`",
                field="path",
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{source} is an invalid verifier artifact: {exc}", field="path") from exc

    def project(self, embeddings: Array) -> Array:
        """Embeddings (rows) reduced to the artifact's PCA components."""
        if self.pca_mean is None or self.pca_components is None:
            return np.zeros((len(embeddings), 0))
        mean = np.asarray(self.pca_mean, dtype=np.float64)
        if embeddings.ndim != 2 or embeddings.shape[1] != mean.shape[0]:
            raise ConfigError(
                f"embeddings of shape {embeddings.shape} do not fit the artifact's PCA width {mean.shape[0]} "
                f"(trained with embedder {self.embedder_model!r})",
                field="embedder",
            )
        return np.asarray((embeddings - mean) @ np.asarray(self.pca_components, dtype=np.float64).T)

    def logits(self, features: Array) -> Array:
        z = (features - np.asarray(self.means)) / np.asarray(self.stds)
        return np.asarray(z @ np.asarray(self.weights) + self.bias)


def sigmoid(x: Array) -> Array:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))  # stable for any x


# -- the scorer -------------------------------------------------------------------------------------------------


class LearnedVerifier:
    """Scores each candidate with P(correct) in [0, 1] from a trained :class:`VerifierArtifact` (or its path).

    Features come from the candidates it is given (their siblings), so a best-of-N at N uses only those N. When
    the artifact was trained with embeddings and no ``embedder`` is given, a
    :class:`~longthink.llm.embeddings.LlamaCppEmbedder` of the artifact's model is built on first use (in a worker
    thread); an embedder of another model is a ConfigError. The rationale names the three features that moved the
    value most (their standardised contribution to the logit).
    """

    def __init__(
        self,
        artifact: VerifierArtifact | str | os.PathLike[str],
        embedder: Embedder | None = None,
        name: str = "learned_verifier",
    ) -> None:
        self._artifact = artifact if isinstance(artifact, VerifierArtifact) else VerifierArtifact.load(artifact)
        wanted = self._artifact.embedder_model
        if embedder is not None and wanted is not None and embedder.model != wanted:
            raise ConfigError(
                f"the artifact was trained with embedder {wanted!r}, not {embedder.model!r}", field="embedder"
            )
        self._embedder = embedder if wanted is not None else None
        self._name = name
        self._build_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def artifact(self) -> VerifierArtifact:
        return self._artifact

    def _get_embedder(self) -> Embedder:
        with self._build_lock:
            if self._embedder is None:
                from longthink.llm.embeddings import LlamaCppEmbedder

                self._embedder = LlamaCppEmbedder(str(self._artifact.embedder_model))
            return self._embedder

    async def features(self, problem: Problem, candidates: Sequence[Candidate]) -> Array:
        """The artifact's feature rows for ``candidates`` (scalars, then the projected embedding if any)."""
        scalars = candidate_features(candidates, program_mode=problem.mode == "program", question=problem.question)
        if self._artifact.embedder_model is None:
            return scalars
        embedder = self._embedder
        if embedder is None:
            embedder = await asyncio.to_thread(self._get_embedder)
        texts = [embedding_text(problem.question, c) for c in candidates]
        embeddings = np.asarray(await asyncio.to_thread(embedder.embed, texts), dtype=np.float64)
        return np.hstack([scalars, np.nan_to_num(self._artifact.project(embeddings))])

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        if not candidates:
            return []
        art = self._artifact
        x = await self.features(problem, candidates)
        values = sigmoid(art.logits(x))
        contributions = (x - np.asarray(art.means)) / np.asarray(art.stds) * np.asarray(art.weights)
        scores = []
        for i in range(len(candidates)):
            top = np.argsort(-np.abs(contributions[i]), kind="stable")[:3]
            why = ", ".join(f"{art.feature_names[j]} {contributions[i, j]:+.2f}" for j in top)
            scores.append(Score(self._name, float(values[i]), rationale=f"P(correct) {values[i]:.3f}: {why}"))
        return scores


__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_VERSION",
    "SCALAR_FEATURES",
    "LearnedVerifier",
    "Metrics",
    "TrainedOn",
    "VerifierArtifact",
    "candidate_features",
    "embedding_text",
    "sigmoid",
]
