"""The event stream: every step of a run is a typed event; the store, the CLI, the HTTP stream and user callbacks
all consume the same events from an :class:`EventBus`.

The schema is a versioned public contract (:data:`SCHEMA_VERSION`; ``docs/events.schema.json`` is generated
from these models by :func:`json_schema` and a test keeps the two equal). One pydantic model per kind, each with
the envelope — ``run_id``, ``step_id`` (None for run-level events), a ``seq`` unique and increasing per run (so
replaying a stream is idempotent by ``(run_id, seq)``) and a timestamp ``ts`` — and its own typed fields.
Producers build the payload (``bus.emit(StepStarted(step_id="s1", goal=...))``); the bus stamps the envelope.
Unknown fields are refused when an event is built, so a typo in a producer fails in its tests, not in a
consumer.

Version history: 3 — the run and step status ``unverified`` (an answer that passed no check that could have failed
it: ``done`` now means it did), the ``answer`` event's ``reason`` and the ``verification`` event's ``unchecked``; a
version-2 reader refuses the new status.
2 — ``clarification_requested`` (a run asks for facts its request lacks, before planning) and
the run status ``awaiting_input``; every version-1 event reads the same, but a version-1 reader refuses the new
kind (the union of kinds is closed). 1 — typed events (this module); before it, free-form dicts (version 0).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from longthink.budget import Spend
from longthink.outcome import Status, StepOutcome
from longthink.trace import Candidate

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventBase(_Model):
    """The envelope every event carries (stamped by :meth:`EventBus.emit`)."""

    run_id: str = ""
    seq: int = 0
    ts: float = 0.0
    step_id: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The event's own fields (without the envelope and ``kind``), as JSON values."""
        return self.model_dump(mode="json", exclude=_ENVELOPE)


_ENVELOPE = {"kind", "run_id", "seq", "ts", "step_id"}


# -- payload parts -------------------------------------------------------------------------------------------
class ChatMessage(_Model):
    role: str
    content: str


class Question(_Model):
    """A fact a run needs and its request does not state (asked before planning; see
    :meth:`longthink.domains.pipeline.DomainPipeline.questions`). ``id`` names the answer (and labels it where it
    is added to the request); ``text`` is what a person is asked; ``default`` the stated value used, labelled as an
    assumption, when nobody answers; ``why`` what the run would otherwise have to invent."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    text: str = Field(min_length=1)
    default: str = Field(min_length=1)
    why: str = ""

    @property
    def label(self) -> str:
        """The answer's label where it is added to the request ("yearly_revenue" -> "yearly revenue")."""
        return self.id.replace("_", " ")


# -- the kinds -----------------------------------------------------------------------------------------------
class RunStarted(EventBase):
    """A run began: the request, what kind of answer it wants, the domain pack chosen, the run's options."""

    kind: Literal["run_started"] = "run_started"
    request: str
    answer_kind: str = "text"
    domain: str = "general"
    options: dict[str, Any] = Field(default_factory=dict)


class RunResumed(EventBase):
    """An interrupted or paused run goes on (after a plan decision, a crash or a kill)."""

    kind: Literal["run_resumed"] = "run_resumed"
    decision: str | None = None  # approve | edit | reject | answer | defaults, or None for a plain resume


class PlanProposed(EventBase):
    """One candidate plan the planner sampled (``plan`` None when it could not be read; ``error`` says why)."""

    kind: Literal["plan_proposed"] = "plan_proposed"
    plan_id: str
    candidate_id: str | None = None
    plan: dict[str, Any] | None = None
    score: float | None = None
    valid: bool = True
    error: str | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)


class PlanSelected(EventBase):
    """The plan the run follows (chosen by the planner, a pack's own plan, approved or edited by a person)."""

    kind: Literal["plan_selected"] = "plan_selected"
    plan_id: str
    plan: dict[str, Any]
    index: int | None = None
    reason: str = ""


class ApprovalRequested(EventBase):
    """The run waits for a person to approve, edit or reject ``plan``."""

    kind: Literal["approval_requested"] = "approval_requested"
    plan: dict[str, Any]
    error: str | None = None  # why the last edit was refused


class ClarificationRequested(EventBase):
    """The run waits, before planning, for a person to answer ``questions`` (or to accept their defaults);
    ``error`` says why the last answers were not enough (a figure that could not be read)."""

    kind: Literal["clarification_requested"] = "clarification_requested"
    questions: list[Question]
    error: str | None = None


class StepStarted(EventBase):
    """A plan step (``step_id``) starts: its goal, how it is solved, and the prompt when a model answers it."""

    kind: Literal["step_started"] = "step_started"
    goal: str = ""
    step_kind: str | None = None
    strategy: str = ""
    answer_mode: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    inputs: dict[str, str] = Field(default_factory=dict)
    budget_tokens: int | None = None
    problem_id: str | None = None
    plan_id: str | None = None
    prompt: list[ChatMessage] | None = None


class CandidateGenerated(EventBase):
    """A sampled candidate, as :class:`~longthink.trace.Candidate` (its typed ``payload`` and program
    ``execution`` included; its scores come as ``candidate_scored`` events)."""

    kind: Literal["candidate_generated"] = "candidate_generated"
    problem_id: str
    candidate: Candidate

    @field_validator("candidate", mode="before")
    @classmethod
    def _finite_latency(cls, value: Any) -> Any:
        """A latency that is not a finite number (stored as null) reads as 0: the candidate itself is kept."""
        if isinstance(value, Candidate) and not math.isfinite(value.latency_s):
            return dataclasses.replace(value, latency_s=0.0)
        if isinstance(value, Mapping) and not isinstance(value.get("latency_s"), int | float):
            return {**value, "latency_s": 0.0}
        return value


class CandidateScored(EventBase):
    kind: Literal["candidate_scored"] = "candidate_scored"
    problem_id: str | None = None
    candidate_id: str
    scorer: str
    value: float | None = None
    steps: list[float | None] = Field(default_factory=list)
    rationale: str = ""


class SearchFinished(EventBase):
    """A search strategy chose (or failed to choose) an answer for ``problem_id``. Outside a plan (no
    ``step_id``) the search is its own step; inside one, the step's outcome follows as ``step_finished``."""

    kind: Literal["search_finished"] = "search_finished"
    problem_id: str
    strategy: str
    answer: str | None = None
    chosen: str | None = None
    reason: str = ""
    candidates: int = 0
    stopped: str | None = None
    spend: Spend = Field(default_factory=Spend)
    votes: dict[str, float] = Field(default_factory=dict)


class StepFinished(EventBase):
    """A plan step ended, whatever ran it; ``outcome.status`` is the step's final status."""

    kind: Literal["step_finished"] = "step_finished"
    outcome: StepOutcome

    @property
    def status(self) -> Status:
        return self.outcome.status


class Verification(EventBase):
    """A step's verdict: ``passed`` when a check that could have failed the answer passed it; ``unchecked`` when
    the answer stands with no such check (reported ``unverified``); neither: the step failed its check."""

    kind: Literal["verification"] = "verification"
    passed: bool
    unchecked: bool = False
    reason: str = ""
    answer: str | None = None
    artifacts: list[str] = Field(default_factory=list)


class Replan(EventBase):
    kind: Literal["replan"] = "replan"
    reason: str
    attempt: int | None = None


class ToolCalled(EventBase):
    kind: Literal["tool_called"] = "tool_called"
    call_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    ok: bool = True
    result: Any = None
    error: str | None = None
    latency_s: float | None = None


class BudgetUpdate(EventBase):
    """What the whole run has spent so far (after a model request), against its token cap."""

    kind: Literal["budget"] = "budget"
    spend: Spend = Field(default_factory=Spend)
    cap_tokens: int | None = None
    exhausted: bool = False


class Answer(EventBase):
    """The run ended: its final status, answer and spend; ``reason``: why that status (what verified the answer, or
    why it is ``unverified`` or ``partial``)."""

    kind: Literal["answer"] = "answer"
    status: Status
    answer: str | None = None
    justification: str = ""
    spend: Spend | None = None
    reason: str = ""


class Error(EventBase):
    """Something failed: with a ``step_id`` that step, without one the run."""

    kind: Literal["error"] = "error"
    message: str
    error_type: str | None = None
    where: str | None = None


Event: TypeAlias = Annotated[
    RunStarted
    | RunResumed
    | PlanProposed
    | PlanSelected
    | ApprovalRequested
    | ClarificationRequested
    | StepStarted
    | CandidateGenerated
    | CandidateScored
    | SearchFinished
    | StepFinished
    | Verification
    | Replan
    | ToolCalled
    | BudgetUpdate
    | Answer
    | Error,
    Field(discriminator="kind"),
]
EVENT_TYPES: tuple[type[EventBase], ...] = tuple(get_args(get_args(Event)[0]))
EVENT_KINDS: frozenset[str] = frozenset(t.model_fields["kind"].default for t in EVENT_TYPES)
_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_BY_KIND: dict[str, type[EventBase]] = {t.model_fields["kind"].default: t for t in EVENT_TYPES}


def parse_event(raw: Mapping[str, Any]) -> Event:
    """An event from its JSON form (``{"kind": ..., "run_id": ..., ...fields}``); raises ``ValueError`` (a
    pydantic ``ValidationError``) for an unknown kind or a bad field."""
    return _ADAPTER.validate_python(dict(raw))


def event_from_row(kind: str, run_id: str, seq: int, ts: float, step_id: str | None, data: Mapping[str, Any]) -> Event:
    """An event read back from storage: the envelope columns and the stored fields. Fields this version does not
    know (written by an older version) are dropped rather than refused."""
    cls = _BY_KIND.get(kind)
    known = {k: v for k, v in data.items() if cls is None or k in cls.model_fields}
    return parse_event({**known, "kind": kind, "run_id": run_id, "seq": seq, "ts": ts, "step_id": step_id})


def to_json(event: EventBase) -> dict[str, Any]:
    """The event's JSON form (what the store's ``events`` table and the service's stream carry)."""
    return event.model_dump(mode="json")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the event stream (the union of every kind), with its version."""
    schema = _ADAPTER.json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://longthink.dev/schemas/events/v{SCHEMA_VERSION}.json",
        "title": f"longthink event (schema version {SCHEMA_VERSION})",
        "x-schema-version": SCHEMA_VERSION,
        **schema,
    }


Listener = Callable[[Event], None]


class EventBus:
    """Fan-out of events to listeners (sync callbacks) and async queues. Listeners never break a run: an
    exception in one is logged and the run goes on."""

    def __init__(self, run_id: str | None = None, *, first_seq: int = 1) -> None:
        """``first_seq`` continues a resumed run's numbering after the events already stored."""
        self.run_id = run_id or uuid.uuid4().hex
        self._seq = itertools.count(first_seq)
        self._listeners: list[Listener] = []
        self._queues: list[asyncio.Queue[Event | None]] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every later event; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def queue(self, maxsize: int = 0) -> asyncio.Queue[Event | None]:
        """An asyncio queue that receives every later event (and ``None`` when the bus is closed)."""
        q: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self._queues.append(q)
        return q

    def emit(self, event: Event, *, step_id: str | None = None) -> Event:
        """Stamp ``event`` with this run's id, the next sequence number and the time (and ``step_id`` when
        given and the event has none), then hand it to every listener and queue."""
        if not isinstance(event, EventBase):
            raise TypeError(f"emit() takes a typed event (one of longthink.events.EVENT_TYPES), not {event!r}")
        stamp: dict[str, Any] = {"run_id": self.run_id, "seq": next(self._seq), "ts": time.time()}
        if event.step_id is None and step_id is not None:
            stamp["step_id"] = step_id
        stamped: Event = event.model_copy(update=stamp)
        for listener in list(self._listeners):
            try:
                listener(stamped)
            except Exception:  # a broken listener must not stop the run
                log.exception("event listener %r failed on %s", listener, stamped.kind)
        for q in self._queues:
            q.put_nowait(stamped)
        return stamped

    def close(self) -> None:
        for q in self._queues:
            q.put_nowait(None)


class Recorder:
    """A listener that keeps every event (handy in tests and for small runs)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]


__all__ = [
    "EVENT_KINDS",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Answer",
    "ApprovalRequested",
    "BudgetUpdate",
    "CandidateGenerated",
    "CandidateScored",
    "ChatMessage",
    "ClarificationRequested",
    "Error",
    "Event",
    "EventBase",
    "EventBus",
    "PlanProposed",
    "PlanSelected",
    "Question",
    "Recorder",
    "Replan",
    "RunResumed",
    "RunStarted",
    "SearchFinished",
    "StepFinished",
    "StepOutcome",
    "StepStarted",
    "ToolCalled",
    "Verification",
    "event_from_row",
    "json_schema",
    "parse_event",
    "to_json",
    "write_schema",
]


def write_schema(path: str | None = None) -> str:
    """The JSON Schema as text (what ``docs/events.schema.json`` holds); written to ``path`` when given.
    Regenerate the file with ``python -m longthink.events docs/events.schema.json``."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:
        write_schema(sys.argv[1])
    else:
        sys.stdout.write(write_schema())
