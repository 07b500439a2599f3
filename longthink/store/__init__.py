"""Persistence of runs: every run, plan, step, candidate, score, tool call, budget snapshot and event.

- :class:`Store` — the protocol; :class:`MemoryStore` the reference; :class:`SqlStore` SQLite and PostgreSQL.
- :func:`open_store` — a store from a URL (default: the SQLite file of the settings).
- :class:`StoreObserver` — writes an :class:`~longthink.events.EventBus` stream in batches, off the hot path.
- :func:`export_jsonl` — runs as JSONL reward-model training data (shape in :mod:`longthink.store.export`).
- :func:`migrate` — bring a database to the latest schema (Alembic, from code).
"""

from __future__ import annotations

from sqlalchemy.engine import URL

from longthink.store.export import export_jsonl, step_lines
from longthink.store.memory import MemoryStore
from longthink.store.migrations import migrate
from longthink.store.observer import StoreObserver
from longthink.store.protocol import Store
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
from longthink.store.sql import SqlStore

MEMORY_URL = "memory://"


def open_store(url: str | URL | None = None, *, migrate: bool = True) -> Store:
    """The store at ``url``: ``memory://`` for a :class:`MemoryStore`, a SQLAlchemy URL (``sqlite:///path``,
    ``postgresql+psycopg://user@host/db``) for a :class:`SqlStore`; default: the settings' ``db_url`` (a
    SQLite file in the user data directory unless configured)."""
    if url is None:
        from longthink.config import load_settings

        url = load_settings().resolved_db_url
    if isinstance(url, str) and url == MEMORY_URL:
        return MemoryStore()
    return SqlStore(url, migrate=migrate)


__all__ = [
    "MEMORY_URL",
    "BudgetRecord",
    "CandidateRecord",
    "MemoryStore",
    "PlanRecord",
    "RunDetail",
    "RunQuery",
    "RunRecord",
    "ScoreRecord",
    "SqlStore",
    "StepRecord",
    "Store",
    "StoreObserver",
    "ToolCallRecord",
    "export_jsonl",
    "migrate",
    "open_store",
    "step_lines",
]
