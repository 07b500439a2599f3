"""The in-memory reference store: the behaviour every other backend must match (thread-safe, not durable).

JSON fields are kept as they read back from a database (through :func:`longthink.store.codec.roundtrip`), so
that what this store returns is exactly what SQLite and PostgreSQL return.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO, TypeVar

from longthink.events import Event, event_from_row
from longthink.store import codec
from longthink.store.export import export_jsonl
from longthink.store.projection import Changes, project
from longthink.store.protocol import UpsertByKind
from longthink.store.records import (
    BudgetRecord,
    CandidateRecord,
    PlanRecord,
    RunDetail,
    RunQuery,
    RunRecord,
    ScoreRecord,
    StepRecord,
    ToolCallRecord,
    clean,
    merge,
    order_detail,
    order_runs,
    with_defaults,
)

R = TypeVar("R")
_JSON_FIELDS = ("meta", "spend", "plan", "votes", "args", "result")


def _stored(record: R) -> R:
    """``record`` as a database gives it back: cleaned, JSON fields round-tripped."""
    record = clean(record)
    changes: dict[str, Any] = {}
    for name in _JSON_FIELDS:
        if hasattr(record, name) and getattr(record, name) is not None:
            changes[name] = codec.roundtrip(getattr(record, name))
    return dataclasses.replace(record, **changes) if changes else record  # type: ignore[type-var]


class MemoryStore(UpsertByKind):
    """A :class:`~longthink.store.protocol.Store` in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._events: dict[str, dict[int, Event]] = {}
        self._runs: dict[str, RunRecord] = {}
        self._plans: dict[tuple[str, str], PlanRecord] = {}
        self._steps: dict[tuple[str, str], StepRecord] = {}
        self._candidates: dict[tuple[str, str], CandidateRecord] = {}
        self._scores: dict[tuple[str, str, str], ScoreRecord] = {}
        self._tool_calls: dict[tuple[str, str], ToolCallRecord] = {}
        self._budgets: dict[tuple[str, int], BudgetRecord] = {}

    # -- events ---------------------------------------------------------------------------------------------
    def _append(self, events: Iterable[Event]) -> list[Event]:
        fresh = []
        for e in events:
            log = self._events.setdefault(e.run_id, {})
            if e.seq in log:
                continue
            data = codec.roundtrip(dict(e.data))
            log[e.seq] = event_from_row(e.kind, e.run_id, e.seq, e.ts, e.step_id, data)
            fresh.append(e)
        return fresh

    def apply(self, events: Iterable[Event]) -> int:
        with self._lock:
            fresh = self._append(events)
            self._write(project(fresh))
            return len(fresh)

    def append_events(self, events: Iterable[Event]) -> int:
        events = list(events)
        with self._lock:
            changes = Changes()
            for e in events:
                changes.need_run(e.run_id, e.ts)
            self._write(changes)
            return len(self._append(events))

    def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        with self._lock:
            log = self._events.get(run_id, {})
            return [log[s] for s in sorted(log) if s > after]

    def last_seq(self, run_id: str) -> int:
        with self._lock:
            return max(self._events.get(run_id, {}) or [0])

    # -- rows -----------------------------------------------------------------------------------------------
    def _write(self, ch: Changes) -> None:
        now = time.time()
        for r in ch.new_runs.values():
            self._runs.setdefault(r.id, _stored(with_defaults(r, now)))
        for r in ch.runs:
            self._runs[r.id] = _merge_into(self._runs.get(r.id), r, now)
        for p in ch.plans:
            key = (p.run_id, p.id)
            self._plans[key] = _merge_into(self._plans.get(key), p, now)
        for key, s in ch.new_steps.items():
            self._steps.setdefault(key, _stored(with_defaults(s, now)))
        for s in ch.steps:
            key = (s.run_id, s.id)
            self._steps[key] = _merge_into(self._steps.get(key), s, now)
        for c in ch.candidates:
            self._candidates.setdefault((c.run_id, c.id), _stored(with_defaults(c, now)))
        for sc in ch.scores:
            self._scores.setdefault((sc.run_id, sc.candidate_id, sc.scorer), _stored(with_defaults(sc, now)))
        for t in ch.tool_calls:
            self._tool_calls.setdefault((t.run_id, t.id), _stored(with_defaults(t, now)))
        for b in ch.budgets:
            self._budgets.setdefault((b.run_id, b.seq), _stored(b))

    def _upsert(self, **rows: Any) -> None:
        changes = Changes(**rows)
        changes.parents()
        with self._lock:
            self._write(changes)

    # -- queries --------------------------------------------------------------------------------------------
    def list_runs(self, query: RunQuery | None = None) -> list[RunRecord]:
        query = query or RunQuery()
        statuses, since = query.statuses(), query.since_ts()
        with self._lock:
            runs = [
                r
                for r in self._runs.values()
                if (statuses is None or r.status in statuses)
                and (since is None or (r.created_at is not None and r.created_at >= since))
            ]
        runs = order_runs(runs)
        return runs if query.limit is None else runs[: max(0, query.limit)]

    def get_run(self, run_id: str) -> RunDetail | None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return None
            return order_detail(
                RunDetail(
                    run,
                    tuple(p for p in self._plans.values() if p.run_id == run_id),
                    tuple(s for s in self._steps.values() if s.run_id == run_id),
                    tuple(c for c in self._candidates.values() if c.run_id == run_id),
                    tuple(s for s in self._scores.values() if s.run_id == run_id),
                    tuple(t for t in self._tool_calls.values() if t.run_id == run_id),
                    tuple(b for b in self._budgets.values() if b.run_id == run_id),
                )
            )

    def export(self, out: TextIO, *, run_ids: Sequence[str] | None = None, query: RunQuery | None = None) -> int:
        return export_jsonl(self, out, run_ids=run_ids, query=query)

    def close(self) -> None:
        pass


def _merge_into(old: R | None, new: R, now: float) -> R:
    new = _stored(new)
    return with_defaults(new, now) if old is None else merge(old, new)
