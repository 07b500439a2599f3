"""The storage protocol. :class:`~longthink.store.memory.MemoryStore` is the reference implementation;
:class:`~longthink.store.sql.SqlStore` (SQLite, PostgreSQL) must behave the same, which one conformance
suite (``tests/test_store.py``) checks against every backend.

The store is synchronous on purpose: it is written from the observer's background thread
(:class:`~longthink.store.observer.StoreObserver`), never from the event loop. Async callers reading it use
``asyncio.to_thread``.

Idempotence: ``apply`` and ``append_events`` keep an event once per ``(run_id, seq)``; only events new to the
store change rows, so replaying a stream (or any part of it, in any order of batches) after a crash never
duplicates or rolls back anything. The upserts follow the rules in :mod:`longthink.store.records`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TextIO, runtime_checkable

from longthink.events import Event
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
)


@runtime_checkable
class Store(Protocol):
    # -- events ---------------------------------------------------------------------------------------------
    def apply(self, events: Iterable[Event]) -> int:
        """Append ``events`` and write the rows they describe (see :mod:`.projection`), in one transaction.
        Events already stored are skipped entirely. Returns how many events were new."""
        ...

    def append_events(self, events: Iterable[Event]) -> int:
        """Append raw events only (idempotent by ``(run_id, seq)``); returns how many were new. No rows are
        derived from them, and a later ``apply`` of the same events skips them: the observer uses ``apply``."""
        ...

    def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        """The run's stored events with ``seq > after``, in sequence order."""
        ...

    def last_seq(self, run_id: str) -> int:
        """The highest stored sequence number of the run (0 if none): where a resumed run's bus goes on."""
        ...

    # -- rows -----------------------------------------------------------------------------------------------
    def upsert_runs(self, runs: Iterable[RunRecord]) -> None: ...

    def upsert_plans(self, plans: Iterable[PlanRecord]) -> None: ...

    def upsert_steps(self, steps: Iterable[StepRecord]) -> None: ...

    def upsert_candidates(self, candidates: Iterable[CandidateRecord]) -> None: ...

    def upsert_scores(self, scores: Iterable[ScoreRecord]) -> None: ...

    def upsert_tool_calls(self, calls: Iterable[ToolCallRecord]) -> None: ...

    def upsert_budgets(self, budgets: Iterable[BudgetRecord]) -> None: ...

    # -- queries --------------------------------------------------------------------------------------------
    def list_runs(self, query: RunQuery | None = None) -> list[RunRecord]:
        """Runs matching ``query``, newest first."""
        ...

    def get_run(self, run_id: str) -> RunDetail | None:
        """One run with everything under it, or None if unknown."""
        ...

    def export(self, out: TextIO, *, run_ids: Sequence[str] | None = None, query: RunQuery | None = None) -> int:
        """Write the runs (by id, or matching ``query``; all runs if neither) as JSONL training data, in
        the shape documented in :mod:`longthink.store.export`. Returns the number of lines written."""
        ...

    def close(self) -> None: ...


class UpsertByKind:
    """The ``upsert_*`` methods of a store, each a call of its ``_upsert(**rows)`` with one kind of row."""

    def _upsert(self, **rows: Any) -> None:
        raise NotImplementedError

    def upsert_runs(self, runs: Iterable[RunRecord]) -> None:
        self._upsert(runs=list(runs))

    def upsert_plans(self, plans: Iterable[PlanRecord]) -> None:
        self._upsert(plans=list(plans))

    def upsert_steps(self, steps: Iterable[StepRecord]) -> None:
        self._upsert(steps=list(steps))

    def upsert_candidates(self, candidates: Iterable[CandidateRecord]) -> None:
        self._upsert(candidates=list(candidates))

    def upsert_scores(self, scores: Iterable[ScoreRecord]) -> None:
        self._upsert(scores=list(scores))

    def upsert_tool_calls(self, calls: Iterable[ToolCallRecord]) -> None:
        self._upsert(tool_calls=list(calls))

    def upsert_budgets(self, budgets: Iterable[BudgetRecord]) -> None:
        self._upsert(budgets=list(budgets))
