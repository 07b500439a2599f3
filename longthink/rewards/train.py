"""Training a :class:`~longthink.rewards.learned.LearnedVerifier` from longthink's own stored traces.

1. :func:`labelled_groups` reads export lines (:func:`longthink.store.export.step_lines`): each line is one group of
   sibling candidates. A candidate's label is 1 when its value under the first *label scorer* present in the
   group (by default ``correct``, then ``reference``, then ``tests``) is >= 1.0, else 0. Groups without a label
   scorer and partial tree/beam nodes are left out; a sibling without that score stays a sibling (it counts in
   the vote features) but is no training example.
2. :func:`train_verifier` computes the features, holds out whole *problems* (every group answering the same
   prompt goes to one side: a group is never split, and a problem sampled in several runs cannot leak), fits an
   L2 logistic regression (Newton's method, deterministic) on the rest and measures the held-out AUROC, Brier
   score and ECE. The shipped model is the one that was measured.

Export lines do not carry ``Candidate.execution`` (the store does not persist it yet); when a line has no
``execution`` dict, it is inferred from the recorded errors, exactly as :class:`~longthink.search.SearchContext`
writes them: the problem is in program mode when its prompt holds the program instruction or a sibling's
``parse_error`` is a program error; a ``parse_error`` starting ``"program failed"``, ``"program killed"`` or
``"sandbox failed"`` is a failed run, ``"no program"`` is a reply without a program (no run), and any other
candidate of a program-mode problem ran (``ok``: it printed an answer, or ``"program printed ..."`` something
that is not one).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from longthink.errors import ConfigError
from longthink.llm.embeddings import Embedder
from longthink.llm.types import FinishReason, Message
from longthink.program import PROGRAM_INSTRUCTION, Execution
from longthink.rewards.learned import (
    SCALAR_FEATURES,
    Array,
    Metrics,
    TrainedOn,
    VerifierArtifact,
    candidate_features,
    embedding_text,
    sigmoid,
)
from longthink.search.types import Candidate, Problem

if TYPE_CHECKING:
    from longthink.store.protocol import Store

LABEL_SCORERS: tuple[str, ...] = ("correct", "reference", "tests")
MIN_EXAMPLES = 20

_ROLES = ("system", "user", "assistant", "tool")
_FAILED_RUN = ("program failed", "program killed", "sandbox failed")
_PROGRAM_ERRORS = (*_FAILED_RUN, "program ", "no program")


@dataclass(frozen=True, slots=True)
class LabelledGroup:
    """One group of sibling candidates (one step of one run) with a label per candidate (None: unlabelled)."""

    run_id: str
    step_id: str | None
    problem: Problem
    candidates: tuple[Candidate, ...]
    labels: tuple[int | None, ...]
    label_scorer: str
    strategy: str | None = None

    @property
    def key(self) -> str:
        """What the held-out split keeps together: the question when the prompt is known, else the problem id."""
        return self.problem.question or self.problem.id

    @property
    def examples(self) -> int:
        return sum(1 for y in self.labels if y is not None)


# -- export lines -> candidates ---------------------------------------------------------------------------------


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _is_program_error(error: Any) -> bool:
    return isinstance(error, str) and error.startswith(_PROGRAM_ERRORS)


def _execution(d: Mapping[str, Any], program_mode: bool) -> Execution | None:
    """The candidate's execution: the exported one, else inferred from its parse error (module docstring)."""
    exported = d.get("execution")
    if isinstance(exported, Mapping):
        return Execution(
            ok=bool(exported.get("ok")),
            output=str(exported.get("output") or ""),
            error=exported.get("error") if isinstance(exported.get("error"), str) else None,
            duration_s=_num(exported.get("duration_s")),
            sandboxed_by=str(exported.get("sandboxed_by") or "unknown"),
        )
    error = d.get("parse_error")
    if not program_mode or (isinstance(error, str) and error.startswith("no program")):
        return None
    failed = isinstance(error, str) and error.startswith(_FAILED_RUN)
    return Execution(ok=not failed, output="", error=error if failed else None, duration_s=0.0, sandboxed_by="inferred")


def candidate_from_export(d: Mapping[str, Any], problem_id: str, *, program_mode: bool = False) -> Candidate:
    """A :class:`Candidate` rebuilt from an export line's candidate dict (scores are not carried over)."""
    mean_logprob = d.get("mean_logprob")
    finish: FinishReason = "length" if d.get("finish_reason") == "length" else "stop"
    return Candidate(
        id=str(d.get("id")),
        problem_id=problem_id,
        index=int(_num(d.get("index"))),
        text=str(d.get("text") or ""),
        answer=d.get("answer") if isinstance(d.get("answer"), str) else None,
        parse_error=d.get("parse_error") if isinstance(d.get("parse_error"), str) else None,
        finish_reason=finish,
        prompt_tokens=int(_num(d.get("prompt_tokens"))),
        completion_tokens=int(_num(d.get("completion_tokens"))),
        latency_s=_num(d.get("latency_s")),
        model=str(d.get("model") or ""),
        prompt_hash=str(d.get("prompt_hash") or ""),
        seed=d.get("seed") if isinstance(d.get("seed"), int) else None,
        parent_id=d.get("parent_id") if isinstance(d.get("parent_id"), str) else None,
        depth=int(_num(d.get("depth"))),
        mean_logprob=_num(mean_logprob) if isinstance(mean_logprob, int | float) else None,
        partial=bool(d.get("partial")),
        execution=_execution(d, program_mode),
    )


def problem_from_export(line: Mapping[str, Any], cands: Sequence[Mapping[str, Any]] = ()) -> Problem:
    """The problem of an export line: its id and prompt, in program mode when the prompt or errors say so."""
    prompt = tuple(
        Message(m["role"], m["content"])
        for m in line.get("prompt") or ()
        if isinstance(m, Mapping) and m.get("role") in _ROLES and isinstance(m.get("content"), str)
    )
    program = any(PROGRAM_INSTRUCTION in m.content for m in prompt if m.role == "user")
    program = program or any(_is_program_error(c.get("parse_error")) for c in cands)
    pid = line.get("problem_id") or line.get("step_id") or "problem"
    return Problem(str(pid), prompt, mode="program" if program else "text")


def labelled_groups(
    lines: Iterable[Mapping[str, Any]], label_scorer: str | Sequence[str] = LABEL_SCORERS
) -> list[LabelledGroup]:
    """The groups of export ``lines`` whose correctness is known, labelled (see the module docstring)."""
    names = (label_scorer,) if isinstance(label_scorer, str) else tuple(label_scorer)
    if not names:
        raise ConfigError("label_scorer needs at least one scorer name", field="label_scorer")
    out = []
    for line in lines:
        dicts = [c for c in line.get("candidates") or () if isinstance(c, Mapping) and not c.get("partial")]
        present = {name for c in dicts for name, v in (c.get("scores") or {}).items() if v is not None}
        scorer = next((name for name in names if name in present), None)
        if scorer is None:
            continue
        problem = problem_from_export(line, dicts)
        cands = tuple(candidate_from_export(c, problem.id, program_mode=problem.mode == "program") for c in dicts)
        labels: list[int | None] = []
        for c in dicts:
            value = (c.get("scores") or {}).get(scorer)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                labels.append(1 if value >= 1.0 else 0)
            else:
                labels.append(None)
        out.append(
            LabelledGroup(
                run_id=str(line.get("run_id")),
                step_id=line.get("step_id"),
                problem=problem,
                candidates=cands,
                labels=tuple(labels),
                label_scorer=scorer,
                strategy=line.get("strategy") if isinstance(line.get("strategy"), str) else None,
            )
        )
    return out


def labelled_from_store(
    store: Store, run_ids: Sequence[str] | None = None, label_scorer: str | Sequence[str] = LABEL_SCORERS
) -> list[LabelledGroup]:
    """:func:`labelled_groups` of the stored runs (by id, else all)."""
    from longthink.store.export import stored_step_lines

    lines = stored_step_lines(store, run_ids)
    return labelled_groups(lines, label_scorer)


# -- metrics ----------------------------------------------------------------------------------------------------


def auroc(labels: Sequence[int] | Array, scores: Sequence[float] | Array) -> float | None:
    """Area under the ROC curve (ties count one half); None unless both classes are present."""
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def brier(labels: Sequence[int] | Array, probs: Sequence[float] | Array) -> float | None:
    """Mean squared error of the probabilities; None for no examples."""
    y, p = np.asarray(labels, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if len(y) else None


def ece(labels: Sequence[int] | Array, probs: Sequence[float] | Array, bins: int = 10) -> float | None:
    """Expected calibration error over ``bins`` equal-width bins of [0, 1] (1.0 falls in the last bin)."""
    y, p = np.asarray(labels, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    if not len(y):
        return None
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += float(mask.sum()) / len(y) * abs(float(p[mask].mean()) - float(y[mask].mean()))
    return total


# -- the model --------------------------------------------------------------------------------------------------


def fit_logistic(
    x: Array, y: Array, *, l2: float = 1.0, max_iter: int = 100, tol: float = 1e-10
) -> tuple[Array, float]:
    """L2-regularised logistic regression by Newton's method (IRLS); the bias is not penalised.

    Minimises ``sum(log-loss) + l2/2 * |w|^2`` on the rows of ``x`` (standardise them first). Deterministic.
    """
    if l2 <= 0 or not math.isfinite(l2):
        raise ConfigError(f"l2 must be a finite number > 0, got {l2!r}", field="l2")
    n, d = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0

    def loss(t: Array) -> float:
        z = a @ t
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * t * t))

    current = loss(theta)
    for _ in range(max_iter):
        p = sigmoid(a @ theta)
        grad = a.T @ (p - y) + penalty * theta
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-8:  # backtracking keeps every step a descent
            candidate = theta - t * step
            new = loss(candidate)
            if new <= current:
                break
            t /= 2
        else:
            break
        theta, gain, current = candidate, current - new, new
        if gain < tol * max(1.0, abs(current)):
            break
    return theta[:-1].copy(), float(theta[-1])


def canonical_rows(groups: Sequence[LabelledGroup]) -> str:
    """The training data as canonical JSON (sorted groups; what features and labels are made of)."""
    rows = []
    for g in sorted(groups, key=lambda g: (g.run_id, g.step_id or "", g.problem.id)):
        rows.append(
            {
                "run": g.run_id,
                "step": g.step_id,
                "problem": g.problem.id,
                "question": g.problem.question,
                "mode": g.problem.mode,
                "label_scorer": g.label_scorer,
                "candidates": [
                    {
                        "id": c.id,
                        "text": c.text,
                        "answer": c.answer,
                        "parse_error": c.parse_error,
                        "finish_reason": c.finish_reason,
                        "completion_tokens": c.completion_tokens,
                        "mean_logprob": c.mean_logprob,
                        "executed": None if c.execution is None else c.execution.ok,
                        "label": y,
                    }
                    for c, y in zip(g.candidates, g.labels, strict=True)
                ],
            }
        )
    return json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _split(groups: Sequence[LabelledGroup], heldout: float, seed: int) -> tuple[list[int], list[int]]:
    keys = sorted({g.key for g in groups})
    order = np.random.default_rng(seed).permutation(len(keys))
    n_out = 0 if heldout <= 0 or len(keys) < 2 else min(len(keys) - 1, max(1, round(heldout * len(keys))))
    out_keys = {keys[i] for i in order[:n_out]}
    train = [i for i, g in enumerate(groups) if g.key not in out_keys]
    test = [i for i, g in enumerate(groups) if g.key in out_keys]
    return train, test


def _pca(e: Array, k: int) -> tuple[Array, Array]:
    mean = e.mean(axis=0)
    _, _, vt = np.linalg.svd(e - mean, full_matrices=False)
    components = vt[:k]
    for row in components:  # a sign convention, so the same data gives the same components
        j = int(np.argmax(np.abs(row)))
        if row[j] < 0:
            row *= -1
    return mean, components


def train_verifier(
    groups: Sequence[LabelledGroup],
    *,
    embedder: Embedder | None = None,
    heldout: float = 0.2,
    seed: int = 0,
    l2: float = 1.0,
    pca_dim: int = 32,
    min_examples: int = MIN_EXAMPLES,
    subsets: Sequence[int] = (1, 2, 4),
    draws: int = 2,
) -> VerifierArtifact:
    """Fit a learned verifier on ``groups`` (see the module docstring); the artifact carries its provenance and
    held-out metrics. Too few examples, one class only, or no usable training split: ConfigError.

    The features of a candidate depend on its siblings, and a verifier scores groups of any size (best-of-N at
    N = 1, 2, 4, ...), so every training group is also seen through ``draws`` random sub-groups of each size in
    ``subsets`` smaller than it (seeded); the held-out metrics are computed on whole groups only."""
    if not 0 <= heldout < 1:
        raise ConfigError(f"heldout must be in [0, 1), got {heldout!r}", field="heldout")
    if pca_dim < 1:
        raise ConfigError(f"pca_dim must be >= 1, got {pca_dim!r}", field="pca_dim")
    groups = [g for g in groups if g.examples]
    labels_all = [y for g in groups for y in g.labels if y is not None]
    positives = sum(labels_all)
    if len(labels_all) < min_examples:
        raise ConfigError(
            f"only {len(labels_all)} labelled examples (need at least {min_examples}): score more runs with a "
            f"label scorer such as {' or '.join(repr(s) for s in LABEL_SCORERS)}",
            field="groups",
        )
    if positives in (0, len(labels_all)):
        which = "correct" if positives else "incorrect"
        raise ConfigError(
            f"all {len(labels_all)} labelled examples are {which}: both classes are needed", field="groups"
        )

    rows: list[Array] = []
    ys: list[Array] = []
    texts: list[list[str]] = []
    extra: list[list[tuple[Array, Array, list[int]]]] = []  # per group: (features, labels, rows of ``texts``)
    rng = np.random.default_rng(seed)
    for g in groups:
        program = g.problem.mode == "program"
        feats = candidate_features(g.candidates, program_mode=program, question=g.problem.question)
        keep = [i for i, y in enumerate(g.labels) if y is not None]
        rows.append(feats[keep])
        ys.append(np.asarray([g.labels[i] for i in keep], dtype=np.float64))
        texts.append([embedding_text(g.problem.question, g.candidates[i]) for i in keep])
        views = []
        for size in sorted({k for k in subsets if 0 < k < len(g.candidates)}):
            for _ in range(draws):
                view = sorted(int(i) for i in rng.choice(len(g.candidates), size=size, replace=False))
                sub = candidate_features(
                    [g.candidates[i] for i in view], program_mode=program, question=g.problem.question
                )
                pos = [j for j, i in enumerate(view) if g.labels[i] is not None]
                views.append(
                    (
                        sub[pos],
                        np.asarray([g.labels[view[j]] for j in pos], dtype=np.float64),
                        [keep.index(view[j]) for j in pos],
                    )
                )
        extra.append(views)
    train_idx, test_idx = _split(groups, heldout, seed)
    y_train = np.concatenate([ys[i] for i in train_idx])
    if y_train.min() == y_train.max():
        raise ConfigError("the training split has one class only: add runs or lower --heldout", field="groups")

    names = list(SCALAR_FEATURES)
    x_all = list(rows)
    pca_mean = pca_components = None
    if embedder is not None:
        flat = [t for ts in texts for t in ts]
        emb = np.asarray(embedder.embed(flat), dtype=np.float64)
        if emb.ndim != 2 or emb.shape[0] != len(flat) or not np.isfinite(emb).all():
            raise ConfigError(
                f"embedder {embedder.model!r} returned a bad array of shape {emb.shape}", field="embedder"
            )
        bounds = np.cumsum([0] + [len(ts) for ts in texts])
        per_group = [emb[bounds[i] : bounds[i + 1]] for i in range(len(groups))]
        train_emb = np.concatenate([per_group[i] for i in train_idx])
        k = min(pca_dim, train_emb.shape[0] - 1, train_emb.shape[1])
        if k >= 1:
            pca_mean, pca_components = _pca(train_emb, k)
            names += [f"emb_{j}" for j in range(k)]
            x_all = [np.hstack([r, (e - pca_mean) @ pca_components.T]) for r, e in zip(rows, per_group, strict=True)]

    x_parts = [x_all[i] for i in train_idx]
    y_parts = [ys[i] for i in train_idx]
    for i in train_idx:
        for feats, labels, at in extra[i]:
            tail = x_all[i][at, len(SCALAR_FEATURES) :]  # the candidates' own embedding components, if any
            x_parts.append(np.hstack([feats, tail]))
            y_parts.append(labels)
    x_train, y_train = np.concatenate(x_parts), np.concatenate(y_parts)
    means = x_train.mean(axis=0)
    stds = x_train.std(axis=0)
    stds = np.where(stds > 1e-12, stds, 1.0)
    weights, bias = fit_logistic((x_train - means) / stds, y_train, l2=l2)

    def predict(x: Array) -> Array:
        return sigmoid(((x - means) / stds) @ weights + bias)

    metrics = Metrics(heldout_auroc=None, heldout_brier=None, heldout_ece=None, heldout_examples=0,
                      heldout_groups=len(test_idx), train_auroc=auroc(y_train, predict(x_train)))  # fmt: skip
    if test_idx:
        x_test = np.concatenate([x_all[i] for i in test_idx])
        y_test = np.concatenate([ys[i] for i in test_idx])
        p_test = predict(x_test)
        metrics = metrics.model_copy(
            update={
                "heldout_auroc": auroc(y_test, p_test),
                "heldout_brier": brier(y_test, p_test),
                "heldout_ece": ece(y_test, p_test),
                "heldout_examples": len(y_test),
            }
        )
    from longthink import __version__

    trained_on = TrainedOn(
        rows_sha256=hashlib.sha256(canonical_rows(groups).encode()).hexdigest(),
        examples=len(labels_all),
        groups=len(groups),
        positives=positives,
        label_source=tuple(sorted({g.label_scorer for g in groups})),
        sources=tuple(sorted({g.strategy for g in groups if g.strategy})),
        policy_models=tuple(sorted({c.model for g in groups for c in g.candidates if c.model})),
        runs=len({g.run_id for g in groups}),
    )
    return VerifierArtifact(
        feature_names=tuple(names),
        means=tuple(float(v) for v in means),
        stds=tuple(float(v) for v in stds),
        weights=tuple(float(v) for v in weights),
        bias=bias,
        pca_components=None if pca_components is None else tuple(tuple(float(v) for v in r) for r in pca_components),
        pca_mean=None if pca_mean is None else tuple(float(v) for v in pca_mean),
        embedder_model=embedder.model if embedder is not None and pca_mean is not None else None,
        settings={
            "l2": l2,
            "heldout": heldout,
            "seed": seed,
            "pca_dim": pca_dim,
            "subsets": ",".join(str(k) for k in subsets),
            "draws": draws,
        },
        trained_on=trained_on,
        metrics=metrics,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        longthink_version=__version__,
    )


__all__ = [
    "LABEL_SCORERS",
    "MIN_EXAMPLES",
    "LabelledGroup",
    "auroc",
    "brier",
    "candidate_from_export",
    "canonical_rows",
    "ece",
    "fit_logistic",
    "labelled_from_store",
    "labelled_groups",
    "problem_from_export",
    "train_verifier",
]
