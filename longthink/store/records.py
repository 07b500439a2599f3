"""The rows of a trace as plain frozen dataclasses — what the rest of longthink sees of the store.

One record type per table: :class:`RunRecord`, :class:`PlanRecord`, :class:`StepRecord`,
:class:`CandidateRecord`, :class:`ScoreRecord`, :class:`ToolCallRecord`, :class:`BudgetRecord`; events are
kept as :class:`longthink.events.Event`. :class:`RunDetail` is one run with everything under it.

Runs, plans and steps change during a run, so their upserts *merge*: a field left ``None`` keeps the stored
value (or takes the default of a new row: status ``"running"``, ``created_at`` now, ``selected`` False), and
the creation time stamps (``created_at``, ``started_at``) are kept from the first write.
Candidates, scores, tool calls and budget snapshots are facts: the first write of a natural id wins and
later writes of the same id are ignored.

Values are cleaned the same way by every backend (:func:`clean`): NUL characters become U+FFFD (PostgreSQL
cannot store them) and non-finite floats become ``None``; JSON fields go through :mod:`.codec`.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from longthink.llm.types import Message
from longthink.search.types import Candidate, Score

JSON = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One request from intake to answer. ``status``: running, finished, failed, interrupted (free text)."""

    id: str
    status: str | None = None
    request: str | None = None
    answer: str | None = None
    error: str | None = None
    plan_id: str | None = None
    meta: JSON | None = None
    spend: JSON | None = None
    created_at: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """A proposed plan (the planner's output as JSON), its score, and whether it was selected."""

    run_id: str
    id: str
    plan: JSON | None = None
    score: float | None = None
    selected: bool | None = None
    created_at: float | None = None


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A step of a plan, or one search outside a plan (then its id is the problem id)."""

    run_id: str
    id: str
    plan_id: str | None = None
    problem_id: str | None = None
    goal: str | None = None
    kind: str | None = None
    strategy: str | None = None
    status: str | None = None
    prompt: tuple[Message, ...] | None = None
    depends_on: tuple[str, ...] | None = None
    answer: str | None = None
    chosen_id: str | None = None
    reason: str | None = None
    stopped: str | None = None
    verified: bool | None = None
    error: str | None = None
    spend: JSON | None = None
    votes: JSON | None = None
    started_at: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """One sampled solution (see :class:`longthink.search.types.Candidate`), keyed by ``(run_id, id)``."""

    run_id: str
    id: str
    step_id: str | None = None
    problem_id: str | None = None
    index: int = 0
    text: str = ""
    reasoning: str | None = None
    answer: str | None = None
    parse_error: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float | None = None
    model: str | None = None
    prompt_hash: str | None = None
    seed: int | None = None
    parent_id: str | None = None
    depth: int = 0
    mean_logprob: float | None = None
    partial: bool = False
    created_at: float | None = None

    @staticmethod
    def of(
        run_id: str, candidate: Candidate, *, step_id: str | None = None, created_at: float | None = None
    ) -> CandidateRecord:
        c = candidate
        return CandidateRecord(
            run_id, c.id, step_id, c.problem_id, c.index, c.text, None, c.answer, c.parse_error, c.finish_reason,
            c.prompt_tokens, c.completion_tokens, c.latency_s, c.model, c.prompt_hash, c.seed, c.parent_id, c.depth,
            c.mean_logprob, c.partial, created_at,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """A scorer's verdict on a candidate, keyed by ``(run_id, candidate_id, scorer)``."""

    run_id: str
    candidate_id: str
    scorer: str
    value: float | None = None
    steps: tuple[float | None, ...] = ()
    rationale: str = ""
    step_id: str | None = None
    created_at: float | None = None

    @staticmethod
    def of(run_id: str, candidate_id: str, score: Score, *, step_id: str | None = None) -> ScoreRecord:
        return ScoreRecord(run_id, candidate_id, score.scorer, score.value, score.steps, score.rationale, step_id)


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call from a step: arguments and result as JSON, or the error."""

    run_id: str
    id: str
    step_id: str | None = None
    tool: str = ""
    args: JSON | None = None
    result: Any = None
    error: str | None = None
    latency_s: float | None = None
    created_at: float | None = None


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    """A snapshot of a budget's spend, keyed by the ``budget`` event that carried it: ``(run_id, seq)``."""

    run_id: str
    seq: int
    step_id: str | None = None
    ts: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    samples: int = 0
    requests: int = 0
    cost: float | None = None
    exhausted: bool = False


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One run with its plans, steps, candidates, scores, tool calls and budget snapshots, in order."""

    run: RunRecord
    plans: tuple[PlanRecord, ...] = ()
    steps: tuple[StepRecord, ...] = ()
    candidates: tuple[CandidateRecord, ...] = ()
    scores: tuple[ScoreRecord, ...] = ()
    tool_calls: tuple[ToolCallRecord, ...] = ()
    budgets: tuple[BudgetRecord, ...] = ()

    def candidates_of(self, step_id: str | None) -> list[CandidateRecord]:
        return [c for c in self.candidates if c.step_id == step_id]

    def scores_of(self, candidate_id: str) -> list[ScoreRecord]:
        return [s for s in self.scores if s.candidate_id == candidate_id]


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs to list: by status (one or several), created at or after ``since``, newest first."""

    status: str | Sequence[str] | None = None
    since: float | datetime | None = None
    limit: int | None = None

    def statuses(self) -> tuple[str, ...] | None:
        if self.status is None:
            return None
        return (self.status,) if isinstance(self.status, str) else tuple(self.status)

    def since_ts(self) -> float | None:
        if isinstance(self.since, datetime):
            return self.since.timestamp()
        return self.since


# -- ordering (every backend returns rows in this order) ------------------------------------------------------
def _t(value: float | None) -> float:
    return -math.inf if value is None else value


def order_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """Newest first; ties by id, descending."""
    return sorted(runs, key=lambda r: (_t(r.created_at), r.id), reverse=True)


def order_detail(detail: RunDetail) -> RunDetail:
    return RunDetail(
        detail.run,
        tuple(sorted(detail.plans, key=lambda p: (_t(p.created_at), p.id))),
        tuple(sorted(detail.steps, key=lambda s: (_t(s.started_at), s.id))),
        tuple(sorted(detail.candidates, key=lambda c: (_t(c.created_at), c.id))),
        tuple(sorted(detail.scores, key=lambda s: (_t(s.created_at), s.candidate_id, s.scorer))),
        tuple(sorted(detail.tool_calls, key=lambda t: (_t(t.created_at), t.id))),
        tuple(sorted(detail.budgets, key=lambda b: b.seq)),
    )


# -- cleaning and merging -------------------------------------------------------------------------------------
R = TypeVar("R")


_TYPED: dict[type, tuple[tuple[str, ...], Any, tuple[str, ...], Any]] = {}
_NAMES: dict[type, tuple[str, ...]] = {}


def _typed_fields(cls: type) -> tuple[tuple[str, ...], Any, tuple[str, ...], Any]:
    """The names of the text and the float fields of a record class, with getters of their values."""
    if cls not in _TYPED:
        fields = dataclasses.fields(cls)
        strs = tuple(f.name for f in fields if "str" in str(f.type) and "tuple" not in str(f.type))
        floats = tuple(f.name for f in fields if str(f.type).startswith("float"))
        _TYPED[cls] = (strs, _getter(strs), floats, _getter(floats))
    return _TYPED[cls]


def _getter(names: tuple[str, ...]) -> Any:
    """A function of a record giving the tuple of its ``names`` fields."""
    if not names:
        return lambda record: ()
    if len(names) == 1:
        get = operator.attrgetter(names[0])
        return lambda record: (get(record),)
    return operator.attrgetter(*names)


def clean_text(value: str) -> str:
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def finite(value: float | None) -> float | None:
    if value is None or math.isfinite(value):
        return value
    return None


def clean(record: R) -> R:
    """``record`` with NUL characters replaced and non-finite floats set to None (the same object if clean)."""
    strs, get_strs, floats, get_floats = _typed_fields(type(record))
    if not isinstance(record, ScoreRecord | StepRecord):  # the hot path: one check of all the text, one of the floats
        try:
            if "\x00" not in "".join(filter(None, get_strs(record))) and math.isfinite(
                sum(filter(None, get_floats(record)))
            ):
                return record
        except (TypeError, OverflowError):  # not all text, or not all numbers: field by field below
            pass
    changes: dict[str, Any] = {}
    for name, value in zip(strs, get_strs(record), strict=True):
        if type(value) is str and "\x00" in value:
            changes[name] = clean_text(value)
    for name, value in zip(floats, get_floats(record), strict=True):
        if type(value) is float and not math.isfinite(value):
            changes[name] = None
    if isinstance(record, ScoreRecord) and any(v is not None and not math.isfinite(v) for v in record.steps):
        changes["steps"] = tuple(finite(v) for v in record.steps)
    if isinstance(record, StepRecord) and record.prompt and any("\x00" in m.content for m in record.prompt):
        changes["prompt"] = messages(record.prompt)
    return dataclasses.replace(record, **changes) if changes else record  # type: ignore[type-var]


#: Creation time stamps: kept from the first write of a row, never updated by a merge.
INSERT_ONLY = frozenset({"created_at", "started_at"})


def merge(old: R, new: R) -> R:
    """``old`` updated with the fields of ``new`` that are not None (the merge rule of runs, plans, steps);
    creation time stamps are kept."""
    changes = {k: v for k, v in provided(new).items() if k not in INSERT_ONLY or getattr(old, k) is None}
    return dataclasses.replace(old, **changes)  # type: ignore[type-var]


def provided(record: Any) -> dict[str, Any]:
    """The fields of ``record`` that are set (not None)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if getattr(record, f.name) is not None}


def with_defaults(record: R, now: float) -> R:
    """``record`` as a new row: status ``"running"`` for runs and steps, ``selected`` False for plans, and
    the time stamp (``created_at``, or ``started_at`` of a step) now when not given."""
    changes: dict[str, Any] = {}
    if isinstance(record, RunRecord | StepRecord) and record.status is None:
        changes["status"] = "running"
    if isinstance(record, PlanRecord) and record.selected is None:
        changes["selected"] = False
    stamp = "started_at" if isinstance(record, StepRecord) else "created_at"
    if getattr(record, stamp, 0) is None:
        changes[stamp] = now
    return dataclasses.replace(record, **changes) if changes else record  # type: ignore[type-var]


def field_names(cls: type) -> tuple[str, ...]:
    if cls not in _NAMES:
        _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return _NAMES[cls]


def row(record: Any) -> dict[str, Any]:
    """Every field of ``record`` by name (None included)."""
    return {name: getattr(record, name) for name in field_names(type(record))}


def messages(value: Any) -> tuple[Message, ...] | None:
    """Prompt messages from what an event carries: Messages, ``{"role", "content"}`` dicts, or a string."""
    if value is None:
        return None
    if isinstance(value, str):
        return (Message.user(value),)
    out = []
    if isinstance(value, Sequence):
        for m in value:
            if isinstance(m, Message):
                out.append(m)
            elif isinstance(m, Mapping) and isinstance(m.get("content"), str):
                role = m.get("role")
                out.append(Message(role if role in ("system", "user", "assistant", "tool") else "user", m["content"]))
    return tuple(Message(m.role, clean_text(m.content)) for m in out)


__all__ = [
    "BudgetRecord",
    "CandidateRecord",
    "PlanRecord",
    "RunDetail",
    "RunQuery",
    "RunRecord",
    "ScoreRecord",
    "StepRecord",
    "ToolCallRecord",
    "clean",
    "merge",
    "order_detail",
    "order_runs",
]
