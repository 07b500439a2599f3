"""The SQL store: :class:`SqlStore` for SQLite (default) and PostgreSQL.

The models in :mod:`longthink.store.tables` are the schema (created by the Alembic revisions in
``migrations/``, never by ``create_all`` in product code). Runs, plans, steps and tool calls are tied by foreign
keys; the high-volume, append-only tables (events, candidates, scores, budget snapshots) have none: the store
writes their run and step first, in the same transaction, and on PostgreSQL the two checks per candidate cost
about a fifth of the write (measured: ~14 of ~70 µs per event). Nothing outside this package sees the models —
:class:`SqlStore` returns the plain records of :mod:`longthink.store.records`. Writes use Core
``INSERT ... ON CONFLICT`` statements of the dialect: ``DO NOTHING`` for events (by ``(run_id, seq)``) and facts
(candidates, scores, tool calls, budget snapshots, by natural id), ``DO UPDATE`` of the given columns only for
runs, plans and steps.

SQLite files are opened in WAL mode (readers never block the writer) with ``synchronous=NORMAL``, foreign keys
on and a busy timeout (10 s by default). PostgreSQL is reached by URL (``postgresql+psycopg://user@host/db``);
the tables go into the connection's current schema (set ``?options=-csearch_path%3Dmyschema`` to choose one).
Every operation rides out a restart of the server: one that fails on a lost connection is tried again for up to
``retry_s`` seconds (:mod:`longthink.retry`; writes are idempotent, so a transaction that died with its
connection is simply written again).
"""

from __future__ import annotations

import contextlib
import operator
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url

from longthink.events import Event, event_from_row
from longthink.retry import retrying
from longthink.store import codec
from longthink.store.engine import is_memory, make_engine
from longthink.store.export import export_jsonl
from longthink.store.migrations import migrate as run_migrations
from longthink.store.projection import Changes, project
from longthink.store.protocol import UpsertByKind
from longthink.store.records import (
    INSERT_ONLY,
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
    messages,
    order_detail,
    provided,
    row,
    with_defaults,
)
from longthink.store.tables import BUDGETS, CANDIDATES, EVENTS, PLANS, RUNS, SCORES, STEPS, TOOL_CALLS, Base


class _BulkInsert:
    """``INSERT ... ON CONFLICT DO NOTHING`` of many rows by the driver's fastest path (the hot path of the
    observer: events and candidates): ``executemany`` of tuples on SQLite; on PostgreSQL ``COPY`` straight into
    the table under a savepoint, and when a row exists already (a unique violation), ``COPY`` into a temporary
    staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. Row values come from the record (or event)
    attributes named like the columns; JSON columns go through the store's codec."""

    def __init__(
        self, table: sa.Table, dialect: sa.Dialect, serialise: Mapping[str, Callable[[Any], str]] | None = None
    ) -> None:
        self.columns = tuple(table.c.keys())
        serialise = serialise or {}
        # a column named in ``serialise`` is written as what its function makes of the record (already JSON text)
        self._get = operator.attrgetter(*(c if c not in serialise else "__class__" for c in self.columns))
        self._own = [(i, serialise[c]) for i, c in enumerate(self.columns) if c in serialise]
        self._json_at = [i for i, c in enumerate(table.c) if isinstance(c.type, sa.JSON) and c.name not in serialise]
        self.postgresql = dialect.name == "postgresql"
        q = dialect.identifier_preparer.quote
        cols, name = ", ".join(q(c) for c in self.columns), q(table.name)
        self.sql: tuple[str, ...]
        if self.postgresql:
            stage = q(f"_lt_stage_{table.name}")
            self.sql = (
                f"COPY {name} ({cols}) FROM STDIN",
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {name}) ON COMMIT DELETE ROWS",
                f"COPY {stage} ({cols}) FROM STDIN",
                f"INSERT INTO {name} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING",
                f"TRUNCATE {stage}",
            )
        else:
            marks = ", ".join("?" * len(self.columns))
            self.sql = (f"INSERT INTO {name} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING",)

    def rows(self, records: Iterable[Any]) -> list[tuple[Any, ...]]:
        get, json, own, dumps = self._get, self._json_at, self._own, codec.dumps
        if not json and not own:
            return [get(r) for r in records]
        out: list[tuple[Any, ...]] = []
        for r in records:
            values = list(get(r))
            for i in json:
                if values[i] is not None:
                    values[i] = dumps(values[i])
            for i, serialise in own:
                values[i] = serialise(r)
            out.append(tuple(values))
        return out

    def __call__(self, conn: Connection, records: Iterable[Any]) -> None:
        rows = self.rows(records)
        if not rows:
            return
        if not self.postgresql:
            conn.exec_driver_sql(self.sql[0], rows)
            return
        import psycopg

        direct, create, copy, insert, clear = self.sql
        with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
            # Straight into the table under a savepoint: the rows are new unless another writer or a redone piece
            # of work wrote them first, and then (a unique violation) they go through the staging table instead.
            cur.execute("SAVEPOINT lt_copy")
            try:
                with cur.copy(direct) as stream:
                    for row in rows:
                        stream.write_row(row)
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT lt_copy")
            else:
                cur.execute("RELEASE SAVEPOINT lt_copy")
                return
            cur.execute(create)
            with cur.copy(copy) as stream:
                for row in rows:
                    stream.write_row(row)
            cur.execute(insert)
            cur.execute(clear)


# -- the store -----------------------------------------------------------------------------------------------
R = TypeVar("R")
_KEYS: dict[sa.Table, tuple[str, ...]] = {
    RUNS: ("id",),
    PLANS: ("run_id", "id"),
    STEPS: ("run_id", "id"),
}


class SqlStore(UpsertByKind):
    """A :class:`~longthink.store.protocol.Store` on SQLite or PostgreSQL.

    ``migrate=True`` (the default) brings the schema to the latest Alembic revision when opened. ``retry_s``: how
    long an operation that lost its connection is retried (a database restart) before its error is raised.
    """

    def __init__(
        self, url: str | URL, *, migrate: bool = True, busy_timeout_s: float = 10.0, retry_s: float = 30.0
    ) -> None:
        self.url = make_url(url)
        self.retry_s = retry_s
        self.engine = make_engine(self.url, busy_timeout_s=busy_timeout_s)
        self.dialect = self.engine.dialect.name
        self._insert: Callable[[sa.Table], Any] = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._bulk = {t: _BulkInsert(t, self.engine.dialect) for t in (CANDIDATES, SCORES, TOOL_CALLS, BUDGETS)}
        self._bulk[EVENTS] = _BulkInsert(EVENTS, self.engine.dialect, {"data": codec.event_data})
        # One in-memory SQLite connection is shared by every thread: take turns.
        self._guard: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if is_memory(self.url) else contextlib.nullcontext()
        )
        if migrate:
            self._retrying(lambda: run_migrations(self.engine), "migrating the store")

    def __repr__(self) -> str:
        return f"SqlStore({self.url.render_as_string(hide_password=True)!r})"

    def _retrying(self, operation: Callable[[], R], what: str) -> R:
        return retrying(operation, window_s=self.retry_s, what=f"store: {what}")

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._guard, self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._guard, self.engine.connect() as conn:
            yield conn

    # -- events ---------------------------------------------------------------------------------------------
    def _append(self, conn: Connection, events: list[Event]) -> list[Event]:
        """Store the events not stored yet; returns them. The runs they belong to are inserted first, which
        also takes SQLite's write lock before the read of what is stored."""
        stub = Changes()
        seqs: dict[str, list[int]] = {}
        for e in events:
            stub.need_run(e.run_id, e.ts)
            seqs.setdefault(e.run_id, []).append(e.seq)
        self._insert_new(conn, RUNS, stub.new_runs.values())
        stored: set[tuple[str, int]] = set()
        for run_id, numbers in seqs.items():
            q = sa.select(EVENTS.c.seq).where(
                EVENTS.c.run_id == run_id, EVENTS.c.seq.between(min(numbers), max(numbers))
            )
            stored.update((run_id, seq) for seq in conn.execute(q).scalars())
        fresh = []
        for e in events:
            key = (e.run_id, e.seq)
            if key not in stored:
                stored.add(key)  # a duplicate within the batch counts once
                fresh.append(e)
        # ON CONFLICT DO NOTHING still guards against a concurrent writer of the same run (PostgreSQL); both
        # writers then write the same rows, which the upserts make harmless.
        self._bulk[EVENTS](conn, fresh)
        return fresh

    def apply(self, events: Iterable[Event]) -> int:
        events = list(events)
        if not events:
            return 0

        def apply() -> int:
            with self._begin() as conn:
                fresh = self._append(conn, events)
                changes = project(fresh)
                changes.new_runs.clear()  # inserted by _append already
                self._write(conn, changes)
            return len(fresh)

        return self._retrying(apply, f"writing {len(events)} events")

    def append_events(self, events: Iterable[Event]) -> int:
        events = list(events)
        if not events:
            return 0

        def append() -> int:
            with self._begin() as conn:
                return len(self._append(conn, events))

        return self._retrying(append, f"writing {len(events)} events")

    def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        stmt = sa.select(EVENTS).where(EVENTS.c.run_id == run_id, EVENTS.c.seq > after).order_by(EVENTS.c.seq)

        def read() -> list[Event]:
            with self._connect() as conn:
                return [
                    event_from_row(r.kind, r.run_id, r.seq, r.ts, r.step_id, r.data if r.data is not None else {})
                    for r in conn.execute(stmt)
                ]

        return self._retrying(read, f"reading the events of run {run_id}")

    def last_seq(self, run_id: str) -> int:
        def read() -> int:
            with self._connect() as conn:
                value = conn.execute(sa.select(sa.func.max(EVENTS.c.seq)).where(EVENTS.c.run_id == run_id)).scalar()
            return int(value or 0)

        return self._retrying(read, f"reading the last event of run {run_id}")

    # -- writing rows ---------------------------------------------------------------------------------------
    def _insert_new(self, conn: Connection, table: sa.Table, records: Iterable[Any]) -> None:
        """Insert rows, skipping those whose primary key exists (facts: first write wins)."""
        rows = [row(r) for r in records]
        if rows:
            conn.execute(self._insert(table).on_conflict_do_nothing(), rows)

    def _merge(self, conn: Connection, table: sa.Table, records: Sequence[R], now: float) -> None:
        """Insert rows or update the given (non-None) columns of existing ones (runs, plans, steps)."""
        keys = _KEYS[table]
        merged: dict[tuple[Any, ...], R] = {}
        for r in records:  # one statement may not touch a row twice: merge the batch's updates first
            key = tuple(getattr(r, k) for k in keys)
            merged[key] = merge(merged[key], r) if key in merged else r
        groups: dict[tuple[frozenset[str], frozenset[str]], list[dict[str, Any]]] = {}
        for r in merged.values():
            values = provided(with_defaults(r, now))
            update = frozenset(provided(r)) - set(keys) - INSERT_ONLY
            groups.setdefault((frozenset(values), update), []).append(values)
        for (_, update), rows in groups.items():
            stmt = self._insert(table)
            if update:
                stmt = stmt.on_conflict_do_update(
                    index_elements=list(keys), set_={c: stmt.excluded[c] for c in sorted(update)}
                )
            else:
                stmt = stmt.on_conflict_do_nothing()
            conn.execute(stmt, rows)

    def _write(self, conn: Connection, ch: Changes) -> None:
        now = time.time()
        self._insert_new(conn, RUNS, (with_defaults(clean(r), now) for r in ch.new_runs.values()))
        self._merge(conn, RUNS, [clean(r) for r in ch.runs], now)
        self._merge(conn, PLANS, [clean(p) for p in ch.plans], now)
        self._insert_new(conn, STEPS, (with_defaults(clean(s), now) for s in ch.new_steps.values()))
        self._merge(conn, STEPS, [clean(s) for s in ch.steps], now)
        self._bulk[CANDIDATES](conn, (with_defaults(clean(c), now) for c in ch.candidates))
        self._bulk[SCORES](conn, (with_defaults(clean(s), now) for s in ch.scores))
        self._bulk[TOOL_CALLS](conn, (with_defaults(clean(t), now) for t in ch.tool_calls))
        self._bulk[BUDGETS](conn, (clean(b) for b in ch.budgets))

    def _upsert(self, **rows: Any) -> None:
        changes = Changes(**rows)
        changes.parents()

        def write() -> None:
            with self._begin() as conn:
                self._write(conn, changes)

        self._retrying(write, "writing rows")

    # -- queries --------------------------------------------------------------------------------------------
    def list_runs(self, query: RunQuery | None = None) -> list[RunRecord]:
        query = query or RunQuery()
        stmt = sa.select(RUNS)
        statuses, since = query.statuses(), query.since_ts()
        if statuses is not None:
            stmt = stmt.where(RUNS.c.status.in_(statuses))
        if since is not None:
            stmt = stmt.where(RUNS.c.created_at >= since)
        by_id = RUNS.c.id.collate("C") if self.dialect == "postgresql" else RUNS.c.id  # code point order
        stmt = stmt.order_by(RUNS.c.created_at.desc(), by_id.desc())
        if query.limit is not None:
            stmt = stmt.limit(max(0, query.limit))

        def read() -> list[RunRecord]:
            with self._connect() as conn:
                return [RunRecord(**r._mapping) for r in conn.execute(stmt)]

        return self._retrying(read, "listing runs")

    def get_run(self, run_id: str) -> RunDetail | None:
        return self._retrying(lambda: self._get_run(run_id), f"reading run {run_id}")

    def _get_run(self, run_id: str) -> RunDetail | None:
        def rows(table: sa.Table) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in conn.execute(sa.select(table).where(table.c.run_id == run_id))]

        with self._connect() as conn:
            run = conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).first()
            if run is None:
                return None
            detail = RunDetail(
                RunRecord(**run._mapping),
                tuple(PlanRecord(**r) for r in rows(PLANS)),
                tuple(_step(r) for r in rows(STEPS)),
                tuple(CandidateRecord(**r) for r in rows(CANDIDATES)),
                tuple(ScoreRecord(**{**r, "steps": tuple(r["steps"] or ())}) for r in rows(SCORES)),
                tuple(ToolCallRecord(**r) for r in rows(TOOL_CALLS)),
                tuple(BudgetRecord(**r) for r in rows(BUDGETS)),
            )
        return order_detail(detail)

    def export(self, out: TextIO, *, run_ids: Sequence[str] | None = None, query: RunQuery | None = None) -> int:
        return export_jsonl(self, out, run_ids=run_ids, query=query)

    def close(self) -> None:
        self.engine.dispose()


def _step(row: dict[str, Any]) -> StepRecord:
    deps = row["depends_on"]
    return StepRecord(
        **{**row, "prompt": messages(row["prompt"]), "depends_on": tuple(deps) if deps is not None else None}
    )


__all__ = ["Base", "SqlStore", "make_engine"]  # Base and make_engine: re-exported for callers of this module
