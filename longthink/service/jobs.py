"""What the service keeps beside the run store, in the same database: jobs (who asked for which run, with which
options, where it stands in the queue), API keys (stored as SHA-256 hashes, each mapped to a tenant with an
optional token cap) and webhook deliveries.

The run store (:mod:`longthink.store`) stays the record of what each run did; a job row is the service's view
of it: its tenant, its request and options (so a restarted server can start or resume it), its status as the
API reports it, and what it spent. Tables are created if missing (``create_all`` is idempotent); an in-memory
store URL gives an in-memory job table (nothing survives a restart then).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longthink.retry import retrying
from longthink.store.engine import make_engine

JobStatus = Literal[
    "queued", "running", "awaiting_input", "awaiting_approval", "interrupted", "done", "unverified", "partial",
    "failed", "rejected", "cancelled",
]  # fmt: skip
FINISHED: frozenset[str] = frozenset({"done", "unverified", "partial", "failed", "rejected", "cancelled"})
"""Statuses after which a job never runs again (``awaiting_input`` and ``awaiting_approval`` wait for a person;
``interrupted`` and ``running`` jobs found at start-up are resumed)."""

meta = sa.MetaData()
jobs_table = sa.Table(
    "service_jobs",
    meta,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(128), nullable=False, index=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("domain", sa.String(64)),
    sa.Column("answer", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("webhook_url", sa.Text),
    sa.Column("artifacts", sa.JSON),
    sa.Column("source", sa.String(16), nullable=False, default="runs"),
    sa.Column("budget_tokens", sa.Integer),
    sa.Column("prompt_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("completion_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("requests", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
)
keys_table = sa.Table(
    "service_api_keys",
    meta,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(128), nullable=False, index=True),
    sa.Column("label", sa.String(128)),
    sa.Column("token_cap", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)
deliveries_table = sa.Table(
    "service_webhook_deliveries",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("delivery_id", sa.String(64)),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("duration_s", sa.Float),
)


@dataclass(frozen=True, slots=True)
class Job:
    run_id: str
    tenant: str
    request: str
    options: Mapping[str, Any]
    status: str
    created_at: float
    updated_at: float
    domain: str | None = None
    answer: str | None = None
    error: str | None = None
    webhook_url: str | None = None
    artifacts: Sequence[str] = ()
    source: str = "runs"
    budget_tokens: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True, slots=True)
class Tenant:
    """Who a request comes from: the tenant its API key maps to, and that tenant's token cap (None: no cap)."""

    name: str
    token_cap: int | None = None


@dataclass(frozen=True, slots=True)
class JobQuery:
    tenant: str
    status: Sequence[str] = ()
    domain: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    offset: int = 0


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


F = TypeVar("F", bound=Callable[..., Any])


def _retried(method: F) -> F:
    """``method``, tried again while the database is unreachable (a restart), for up to ``JobStore.retry_s``."""

    @functools.wraps(method)
    def run(self: JobStore, *args: Any, **kwargs: Any) -> Any:
        return retrying(lambda: method(self, *args, **kwargs), window_s=self.retry_s, what=f"jobs: {method.__name__}")

    return cast(F, run)


class JobStore:
    """The service's tables. Synchronous (SQLAlchemy Core); the app calls it through ``asyncio.to_thread``. What the
    runs need (jobs, API keys) rides out a restart of the database: an operation that lost its connection is tried
    again for up to ``retry_s`` seconds (updates set values, so doing one twice is harmless)."""

    retry_s = 30.0

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine("sqlite://" if url.startswith("memory") else url)
        meta.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- jobs -----------------------------------------------------------------------------------------------
    @_retried
    def add(self, job: Job) -> None:
        row = {f: getattr(job, f) for f in Job.__dataclass_fields__}
        row["options"], row["artifacts"] = dict(job.options), list(job.artifacts)
        with self.engine.begin() as conn:
            conn.execute(jobs_table.insert().values(**row))

    @_retried
    def update(self, run_id: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        if "artifacts" in values:
            values["artifacts"] = list(values["artifacts"])
        with self.engine.begin() as conn:
            conn.execute(jobs_table.update().where(jobs_table.c.run_id == run_id).values(**values))

    @_retried
    def get(self, run_id: str, tenant: str | None = None) -> Job | None:
        q = sa.select(jobs_table).where(jobs_table.c.run_id == run_id)
        if tenant is not None:
            q = q.where(jobs_table.c.tenant == tenant)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _job(row) if row else None

    @_retried
    def page(self, query: JobQuery) -> tuple[list[Job], int]:
        """A page of the tenant's jobs (newest first) and how many match in all."""
        c = jobs_table.c
        where = [c.tenant == query.tenant]
        if query.status:
            where.append(c.status.in_(list(query.status)))
        if query.domain:
            where.append(c.domain == query.domain)
        if query.since is not None:
            where.append(c.created_at >= query.since)
        if query.until is not None:
            where.append(c.created_at < query.until)
        q = sa.select(jobs_table).where(*where).order_by(c.created_at.desc(), c.run_id.desc())
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(jobs_table).where(*where)).scalar_one()
            rows = conn.execute(q.limit(query.limit).offset(query.offset)).mappings().all()
        return [_job(r) for r in rows], int(total)

    @_retried
    def unfinished(self) -> list[Job]:
        """Jobs a restarted server must start or resume (queued, running, interrupted), oldest first."""
        q = sa.select(jobs_table).where(jobs_table.c.status.in_(["queued", "running", "interrupted"]))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(jobs_table.c.created_at)).mappings().all()
        return [_job(r) for r in rows]

    @_retried
    def committed_tokens(self, tenant: str) -> int:
        """Tokens the tenant has spent, plus the budgets of its runs not finished yet (what they may still
        spend): what a new run's budget is added to before it is checked against the tenant's cap."""
        c = jobs_table.c
        open_budget = sa.case((c.status.in_(list(FINISHED)), 0), else_=sa.func.coalesce(c.budget_tokens, 0))
        spent = sa.func.coalesce(sa.func.sum(c.completion_tokens + open_budget), 0)
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(spent).where(c.tenant == tenant)).scalar_one())

    # -- API keys -------------------------------------------------------------------------------------------
    def create_key(self, tenant: str, *, token_cap: int | None = None, label: str | None = None) -> str:
        """A new API key for ``tenant`` (returned once, stored only as its hash)."""
        key = "lt-" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                keys_table.insert().values(
                    key_hash=hash_key(key),
                    tenant=tenant,
                    label=label,
                    token_cap=token_cap,
                    created_at=time.time(),
                    revoked=False,
                )
            )
        return key

    @_retried
    def tenant_of(self, key: str) -> Tenant | None:
        q = sa.select(keys_table).where(keys_table.c.key_hash == hash_key(key), keys_table.c.revoked.is_(False))
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return Tenant(row["tenant"], row["token_cap"]) if row else None

    @_retried
    def has_keys(self) -> bool:
        with self.engine.connect() as conn:
            q = sa.select(sa.func.count()).select_from(keys_table).where(keys_table.c.revoked.is_(False))
            return bool(conn.execute(q).scalar_one())

    def keys(self) -> list[dict[str, Any]]:
        """Every key's tenant, label, cap and state, with the first 8 hex digits of its hash (never the key)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(keys_table).order_by(keys_table.c.created_at)).mappings().all()
        return [{**{k: r[k] for k in r if k != "key_hash"}, "id": r["key_hash"][:8]} for r in rows]

    def revoke(self, key_id: str) -> int:
        """Revoke the keys whose hash starts with ``key_id`` (at least 8 hex digits); returns how many."""
        if len(key_id) < 8:
            return 0
        with self.engine.begin() as conn:
            res = conn.execute(keys_table.update().where(keys_table.c.key_hash.startswith(key_id)).values(revoked=True))
            return int(res.rowcount)

    # -- webhook deliveries ---------------------------------------------------------------------------------
    def record_delivery(self, **row: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(deliveries_table.insert().values(**row))

    def deliveries(self, run_id: str) -> list[dict[str, Any]]:
        q = sa.select(deliveries_table).where(deliveries_table.c.run_id == run_id).order_by(deliveries_table.c.id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]


def _job(row: Any) -> Job:
    values = {f: row[f] for f in Job.__dataclass_fields__}
    values["artifacts"] = tuple(values["artifacts"] or ())
    return Job(**values)


__all__ = ["FINISHED", "Job", "JobQuery", "JobStatus", "JobStore", "Tenant", "hash_key"]
