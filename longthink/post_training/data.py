"""Training data from stored runs: verified solutions (SFT), preference pairs (DPO) and step labels (PRM).

Every stored search is a group of sibling candidates answering one prompt (:func:`longthink.store.step_lines`).
A candidate's *label* is its value under the first label scorer present in its group (by default ``correct``,
``reference``, ``tests``: a verifier that knows the answer), 1 when >= 1.0, else 0 — the rule of the learned
verifier's training (:mod:`longthink.rewards.train`).

- ``sft``: per prompt, the verified-best solutions: labelled 1, finished (not cut off, not a partial tree node),
  shortest first (then the most certain); up to ``per_problem`` distinct texts. A group without a label scorer
  gives its chosen candidate when the run verified the step (``verified`` true).
- ``dpo``: per prompt, up to ``pairs_per_problem`` pairs of a verified solution (chosen) and a labelled-0
  candidate of the *same prompt* (rejected; a cut-off or failed answer counts as wrong).
- ``prm``: step-level labels where a process signal exists. From tree and beam searches (nodes linked by
  ``parent_id``, each node's text extending its parent's): every labelled finished leaf gives its path, one step
  per node, a partial node labelled true when any labelled leaf below it is correct (a Monte-Carlo rollout
  estimate, as in Math-Shepherd) and the leaf by its own label. From a scorer that gave per-step values
  (``step_scores``): the text split at blank lines, when the count matches, true when the value is >= 0.5.

Candidates are pooled across runs by their exact prompt, so a problem sampled in several runs (the policy model's
own samples and a teacher's) is one problem; duplicates (the same whitespace-normalised text, pair or step list) are
dropped. The held-out split is by *problem*: a stable hash of the question (the last user message, without the
program-mode instruction longthink appends and any other instruction named in ``instructions``, whitespace-normalised
and lower-cased), so the text-mode and program-mode prompts of one question land on the same side and a rerun splits
the same way.

The files the examples are written to, and their manifest, are :mod:`.manifest`'s.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from longthink.errors import ConfigError
from longthink.llm.types import Message
from longthink.program import program_instruction

if TYPE_CHECKING:
    from longthink.store.protocol import Store

ExportFormat = Literal["sft", "dpo", "prm"]
FORMATS: tuple[ExportFormat, ...] = ("sft", "dpo", "prm")
LABEL_SCORERS: tuple[str, ...] = ("correct", "reference", "tests")

_ROLES = ("system", "user", "assistant", "tool")
_INSTRUCTIONS = tuple(program_instruction(kind) for kind in ("number", "expression", "choice", "text"))
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What to export and how (validated at construction, before the store is read)."""

    format: ExportFormat = "sft"
    heldout: float = 0.1
    per_problem: int = 1
    pairs_per_problem: int = 2
    label_scorers: tuple[str, ...] = LABEL_SCORERS
    models: tuple[str, ...] = ()
    step_threshold: float = 0.5
    instructions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}", field="format")
        if not 0.0 <= self.heldout < 1.0:
            raise ConfigError(f"heldout must be in [0, 1), got {self.heldout}", field="heldout")
        if self.per_problem < 1 or self.pairs_per_problem < 1:
            raise ConfigError("per_problem and pairs_per_problem must be >= 1", field="per_problem")
        if not self.label_scorers:
            raise ConfigError("label_scorers needs at least one scorer name", field="label_scorers")


@dataclass(frozen=True, slots=True)
class Source:
    """Where an example's text comes from."""

    run_id: str
    candidate_id: str
    model: str
    strategy: str | None
    label: str  # the label scorer, "step_verified" or a step-score signal
    completion_tokens: int

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "candidate_id": self.candidate_id,
            "model": self.model,
            "strategy": self.strategy,
            "label": self.label,
            "completion_tokens": self.completion_tokens,
        }


@dataclass(frozen=True, slots=True)
class SftExample:
    id: str
    problem: str
    prompt: tuple[Message, ...]
    completion: str
    source: Source

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "problem": self.problem,
            "prompt": _messages_json(self.prompt),
            "completion": [_assistant(self.completion)],
            "source": self.source.as_json(),
        }


@dataclass(frozen=True, slots=True)
class DpoPair:
    id: str
    problem: str
    prompt: tuple[Message, ...]
    chosen: str
    rejected: str
    chosen_source: Source
    rejected_source: Source

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "problem": self.problem,
            "prompt": _messages_json(self.prompt),
            "chosen": [_assistant(self.chosen)],
            "rejected": [_assistant(self.rejected)],
            "source": {"chosen": self.chosen_source.as_json(), "rejected": self.rejected_source.as_json()},
        }


@dataclass(frozen=True, slots=True)
class PrmExample:
    id: str
    problem: str
    prompt: tuple[Message, ...]
    steps: tuple[str, ...]
    labels: tuple[bool, ...]
    source: Source

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "problem": self.problem,
            "prompt": _messages_json(self.prompt),
            "completions": list(self.steps),
            "labels": list(self.labels),
            "source": self.source.as_json(),
        }


Example = SftExample | DpoPair | PrmExample


@dataclass(frozen=True, slots=True)
class Dataset:
    """The examples of one export, split by problem, with the counts the manifest reports."""

    format: ExportFormat
    train: tuple[Example, ...]
    heldout: tuple[Example, ...]
    runs: tuple[str, ...]
    models: Mapping[str, int]
    strategies: Mapping[str, int]
    label_scorers: Mapping[str, int]
    scorers: tuple[str, ...]
    counts: Mapping[str, int]


# -- reading export lines ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Cand:
    run_id: str
    id: str
    model: str
    text: str
    finish_reason: str | None
    partial: bool
    parent_id: str | None
    completion_tokens: int
    mean_logprob: float | None
    label: int | None
    step_scores: Mapping[str, tuple[float | None, ...]]
    strategy: str | None

    @property
    def finished(self) -> bool:
        return not self.partial and self.finish_reason == "stop" and bool(self.text.strip())

    def source(self, label: str) -> Source:
        return Source(self.run_id, self.id, self.model, self.strategy, label, self.completion_tokens)


@dataclass(slots=True)
class _Group:
    """Every candidate answering one exact prompt, across runs."""

    prompt: tuple[Message, ...]
    question: str
    candidates: list[_Cand] = field(default_factory=list)
    label_scorer: str | None = None
    verified_chosen: list[_Cand] = field(default_factory=list)


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _prompt(line: Mapping[str, Any]) -> tuple[Message, ...]:
    return tuple(
        Message(m["role"], m["content"])
        for m in line.get("prompt") or ()
        if isinstance(m, Mapping) and m.get("role") in _ROLES and isinstance(m.get("content"), str)
    )


def question_key(prompt: Sequence[Message], instructions: Sequence[str] = ()) -> str:
    """What the held-out split keeps together: the last user message without the instructions appended to it (the
    program-mode instruction longthink appends, and ``instructions``), whitespace-normalised and lower-cased."""
    text = next((m.content for m in reversed(prompt) if m.role == "user"), "").strip()
    known = sorted({*_INSTRUCTIONS, *(i.strip() for i in instructions if i.strip())}, key=len, reverse=True)
    stripped = True
    while stripped:
        stripped = False
        for instruction in known:
            if text.endswith(instruction) and len(text) > len(instruction):
                text, stripped = text[: -len(instruction)].rstrip(), True
                break
    return _norm(text).lower()


def heldout_share(key: str) -> float:
    """A stable number in [0, 1) for a question key: below the held-out fraction means held out."""
    return int(hashlib.sha256(f"split:{key}".encode()).hexdigest()[:13], 16) / float(1 << 52)


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _prompt_id(prompt: Sequence[Message]) -> str:
    return _digest(*(f"{m.role}:{m.content}" for m in prompt))


def groups_from_lines(
    lines: Iterable[Mapping[str, Any]], options: ExportOptions, counts: Counter[str] | None = None
) -> dict[str, _Group]:
    """Export lines pooled by exact prompt, each candidate labelled (see the module docstring)."""
    counts = counts if counts is not None else Counter()
    groups: dict[str, _Group] = {}
    for line in lines:
        counts["lines"] += 1
        prompt = _prompt(line)
        if not prompt or not any(m.role == "user" for m in prompt):
            counts["skipped_no_prompt"] += 1
            continue
        dicts = [c for c in line.get("candidates") or () if isinstance(c, Mapping)]
        if options.models:
            dicts = [c for c in dicts if c.get("model") in options.models]
        present = {name for c in dicts for name, v in (c.get("scores") or {}).items() if _number(v) is not None}
        scorer = next((name for name in options.label_scorers if name in present), None)
        pid = _prompt_id(prompt)
        group = groups.setdefault(pid, _Group(prompt, question_key(prompt, options.instructions)))
        group.label_scorer = group.label_scorer or scorer
        strategy = line.get("strategy") if isinstance(line.get("strategy"), str) else None
        run_id = str(line.get("run_id"))
        for d in dicts:
            counts["candidates"] += 1
            value = _number((d.get("scores") or {}).get(scorer)) if scorer else None
            steps = {
                str(k): tuple(_number(x) for x in v)
                for k, v in (d.get("step_scores") or {}).items()
                if isinstance(v, Sequence) and not isinstance(v, str)
            }
            cand = _Cand(
                run_id=run_id,
                id=str(d.get("id")),
                model=str(d.get("model") or "unknown"),
                text=str(d.get("text") or ""),
                finish_reason=d.get("finish_reason") if isinstance(d.get("finish_reason"), str) else None,
                partial=bool(d.get("partial")),
                parent_id=d.get("parent_id") if isinstance(d.get("parent_id"), str) else None,
                completion_tokens=int(_number(d.get("completion_tokens")) or 0),
                mean_logprob=_number(d.get("mean_logprob")),
                label=None if value is None or d.get("partial") else int(value >= 1.0),
                step_scores=steps,
                strategy=strategy,
            )
            group.candidates.append(cand)
            counts["labelled"] += cand.label is not None
            counts["verified"] += cand.label == 1
            if scorer is None and line.get("verified") is True and d.get("id") == line.get("chosen"):
                group.verified_chosen.append(cand)
    return groups


# -- the three formats -------------------------------------------------------------------------------------------
def _best_first(cands: Iterable[_Cand]) -> list[_Cand]:
    """Shortest first, then the most certain, then a stable order."""
    return sorted(cands, key=lambda c: (c.completion_tokens, -(c.mean_logprob or -1e9), c.run_id, c.id))


def _distinct(cands: Iterable[_Cand], seen: set[str]) -> list[_Cand]:
    out = []
    for c in cands:
        key = _norm(c.text)
        if key and key not in seen:
            seen.add(key)
            out.append(c)
    return out


def sft_examples(pid: str, group: _Group, options: ExportOptions, counts: Counter[str]) -> list[SftExample]:
    if group.label_scorer is not None:
        pool, label = [c for c in group.candidates if c.label == 1 and c.finished], group.label_scorer
    else:
        pool, label = [c for c in group.verified_chosen if c.finished], "step_verified"
    ranked = _best_first(pool)
    kept = _distinct(ranked, set())
    counts["duplicates"] += len(ranked) - len(kept)
    return [
        SftExample(_digest(pid, c.text), pid, group.prompt, c.text, c.source(label))
        for c in kept[: options.per_problem]
    ]


def dpo_pairs(pid: str, group: _Group, options: ExportOptions, counts: Counter[str]) -> list[DpoPair]:
    if group.label_scorer is None:
        return []
    chosen = _distinct(_best_first(c for c in group.candidates if c.label == 1 and c.finished), set())
    seen = {_norm(c.text) for c in chosen}
    wrong = [c for c in group.candidates if c.label == 0]
    rejected = _distinct(wrong, seen)
    counts["duplicates"] += len(wrong) - len(rejected)
    if not chosen or not rejected:
        return []
    label = group.label_scorer
    pairs = []
    for k, bad in enumerate(rejected[: options.pairs_per_problem]):
        good = chosen[k % len(chosen)]
        pairs.append(
            DpoPair(
                _digest(pid, good.text, bad.text),
                pid,
                group.prompt,
                good.text,
                bad.text,
                good.source(label),
                bad.source(label),
            )
        )
    return pairs


def prm_examples(pid: str, group: _Group, options: ExportOptions, counts: Counter[str]) -> list[PrmExample]:
    out: list[PrmExample] = []
    seen: set[tuple[str, ...]] = set()
    nodes = {(c.run_id, c.id): c for c in group.candidates}
    children: dict[tuple[str, str], list[_Cand]] = {}
    for c in group.candidates:
        if c.parent_id is not None:
            children.setdefault((c.run_id, c.parent_id), []).append(c)
    memo: dict[tuple[str, str], bool | None] = {}

    def reaches_correct(c: _Cand) -> bool | None:
        """True when a labelled leaf below (or at) ``c`` is correct, False when all are wrong, None if none."""
        key = (c.run_id, c.id)
        if key not in memo:
            if c.label is not None:
                memo[key] = c.label == 1
            else:
                below = [reaches_correct(k) for k in children.get(key, [])]
                known = [b for b in below if b is not None]
                memo[key] = any(known) if known else None
        return memo[key]

    def add(example: PrmExample) -> None:
        key = tuple(_norm(s) for s in example.steps)
        if key in seen:
            counts["duplicates"] += 1
            return
        seen.add(key)
        out.append(example)

    rollout_leaves: set[tuple[str, str]] = set()
    for leaf in group.candidates:
        if leaf.label is None or leaf.parent_id is None:
            continue
        path = [leaf]
        while path[-1].parent_id is not None and (path[-1].run_id, path[-1].parent_id) in nodes:
            path.append(nodes[(path[-1].run_id, path[-1].parent_id)])
        path.reverse()
        if path[0].parent_id is not None or len(path) < 2:
            counts["skipped_broken_tree"] += 1
            continue
        steps, labels, prefix = [], [], ""
        for node in path:
            if not node.text.startswith(prefix):
                break
            steps.append(node.text[len(prefix) :])
            labels.append(bool(reaches_correct(node)))
            prefix = node.text
        else:
            rollout_leaves.add((leaf.run_id, leaf.id))
            label = f"rollouts:{group.label_scorer}"
            add(PrmExample(_digest(pid, *steps), pid, group.prompt, tuple(steps), tuple(labels), leaf.source(label)))
            continue
        counts["skipped_broken_tree"] += 1
    for c in group.candidates:
        if c.partial or (c.run_id, c.id) in rollout_leaves or not c.text.strip():
            continue
        for scorer, values in sorted(c.step_scores.items()):
            parts = [p for p in c.text.split("\n\n") if p.strip()]
            if len(parts) != len(values) or any(v is None for v in values):
                counts["skipped_step_mismatch"] += 1
                continue
            texts = (*(p + "\n\n" for p in parts[:-1]), parts[-1])
            marks = tuple(v is not None and v >= options.step_threshold for v in values)
            add(PrmExample(_digest(pid, *texts), pid, group.prompt, texts, marks, c.source(f"step_scores:{scorer}")))
            break
    return out


Builder = Callable[[str, _Group, ExportOptions, Counter[str]], Sequence[Example]]
BUILDERS: dict[str, Builder] = {"sft": sft_examples, "dpo": dpo_pairs, "prm": prm_examples}


def _sources(example: Example) -> list[Source]:
    if isinstance(example, DpoPair):
        return [example.chosen_source, example.rejected_source]
    return [example.source]


def build_dataset(lines: Iterable[Mapping[str, Any]], options: ExportOptions) -> Dataset:
    """The examples of ``lines`` (export lines of stored runs) in ``options.format``, split by problem."""
    counts: Counter[str] = Counter()
    lines = list(lines)
    groups = groups_from_lines(lines, options, counts)
    build = BUILDERS[options.format]
    train: list[Example] = []
    heldout: list[Example] = []
    for pid, group in groups.items():
        examples = build(pid, group, options, counts)
        side = heldout if heldout_share(group.question) < options.heldout else train
        side.extend(examples)
    counts["prompts"] = len(groups)
    counts["questions"] = len({g.question for g in groups.values()})
    counts["examples"] = len(train) + len(heldout)
    used = [s for e in (*train, *heldout) for s in _sources(e)]
    scorers = sorted(
        {
            str(k)
            for line in lines
            for c in line.get("candidates") or ()
            if isinstance(c, Mapping)
            for k in (c.get("scores") or {})
        }
    )
    return Dataset(
        format=options.format,
        train=tuple(train),
        heldout=tuple(heldout),
        runs=tuple(dict.fromkeys(str(line.get("run_id")) for line in lines)),
        models=dict(Counter(s.model for s in used).most_common()),
        strategies=dict(Counter(s.strategy or "unknown" for s in used).most_common()),
        label_scorers=dict(Counter(g.label_scorer for g in groups.values() if g.label_scorer).most_common()),
        scorers=tuple(scorers),
        counts=dict(sorted(counts.items())),
    )


def dataset_from_store(store: Store, options: ExportOptions, run_ids: Sequence[str] | None = None) -> Dataset:
    """:func:`build_dataset` of the stored runs (by id, else all)."""
    from longthink.store.export import stored_step_lines

    lines = stored_step_lines(store, run_ids)
    return build_dataset(lines, options)


def _messages_json(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}
