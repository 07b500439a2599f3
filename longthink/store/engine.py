"""Engines for the store: SQLite (WAL, foreign keys, a busy timeout) or PostgreSQL, JSON through the codec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from longthink.errors import ConfigError
from longthink.store import codec


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_engine(url: str | URL, *, busy_timeout_s: float = 10.0) -> Engine:
    """An engine set up for the store: WAL, foreign keys and a busy timeout on SQLite; JSON through the
    store's codec. A SQLite file's directory is created if missing."""
    url = make_url(url)
    backend = url.get_backend_name()
    common: dict[str, Any] = {"json_serializer": codec.dumps, "json_deserializer": codec.loads}
    if backend == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, **common)
    if backend != "sqlite":
        raise ConfigError(f"unsupported database {backend!r} in {url!r}: use sqlite or postgresql", field="db_url")
    if is_memory(url):
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False}, **common)
    else:
        Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_s, "check_same_thread": False}, **common)
    ms = int(busy_timeout_s * 1000)

    @sa_event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", f"busy_timeout={ms}"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    return engine


__all__ = ["is_memory", "make_engine"]
