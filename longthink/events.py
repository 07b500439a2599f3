"""The event stream: every step of a run is an :class:`Event`; the store, the CLI, the HTTP stream and user
callbacks all consume the same events from an :class:`EventBus`.

Each event carries the run id, an optional step id, a monotonic sequence number (unique per bus, so
replaying a stream is idempotent by ``(run_id, seq)``) and a timestamp. Payloads are plain JSON-able dicts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

log = logging.getLogger(__name__)

EventKind = Literal[
    "run_started",
    "plan_proposed",
    "plan_selected",
    "step_started",
    "candidate_generated",
    "candidate_scored",
    "step_finished",
    "verification",
    "replan",
    "tool_called",
    "budget",
    "answer",
    "error",
]
EVENT_KINDS: frozenset[str] = frozenset(get_args(EventKind))


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    run_id: str
    seq: int
    ts: float
    step_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


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

    def emit(self, kind: EventKind, step_id: str | None = None, **data: Any) -> Event:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        event = Event(kind, self.run_id, next(self._seq), time.time(), step_id, data)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the run
                log.exception("event listener %r failed on %s", listener, kind)
        for q in self._queues:
            q.put_nowait(event)
        return event

    def close(self) -> None:
        for q in self._queues:
            q.put_nowait(None)


class Recorder:
    """A listener that keeps every event (handy in tests and for small runs)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind == kind]
