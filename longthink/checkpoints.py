"""Where an agent's runs are checkpointed (LangGraph checkpointers on SQLite or PostgreSQL).

A run's graph state is checkpointed after every node, so a run that was interrupted resumes from its last
checkpoint. :func:`default_checkpoints` says where, given the settings; :func:`open_checkpointer` opens one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from longthink.config import Settings
from longthink.retry import aretrying

SETUP_RETRY_S = 30.0  # how long setting up the checkpoint tables waits for the database


def default_checkpoints(settings: Settings) -> str | None:
    """Where runs are checkpointed by default: next to the store (a ``checkpoints.sqlite`` beside a SQLite store,
    the same PostgreSQL database), or None (in memory) for an in-memory store."""
    url = str(settings.resolved_db_url)
    if url.startswith("postgresql"):
        return url.replace("postgresql+psycopg://", "postgresql://")
    if url.startswith("sqlite:///"):
        return str(Path(url.removeprefix("sqlite:///")).with_name("checkpoints.sqlite"))
    return None


_PG_READY: set[str] = set()  # PostgreSQL checkpoint databases this process has set up
_PG_SETUP_LOCK = 0x6C74636B  # the advisory lock under which a process sets one up ("ltck")


@contextlib.asynccontextmanager
async def open_checkpointer(target: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """An open LangGraph checkpointer at ``target`` (a PostgreSQL URL, else a SQLite file path), closed on exit.

    On PostgreSQL it draws on a pool of connections, each checked before use: when the server restarts, the dead
    connections are replaced and a call waits for the server (up to the pool's 30 s) instead of failing for good,
    as the single connection of ``AsyncPostgresSaver.from_conn_string`` would. Its tables are set up once per
    process and database, under an advisory lock: LangGraph's migrations are not safe to run twice at once (agents
    or processes opening a new database together). The lock is polled, never waited for in a statement, because
    a migration creates an index CONCURRENTLY, which waits for every open statement — a waiting one included. A
    SQLite file is set up (WAL, tables) when opened, so that whoever opens it first — a batch's driver — does it
    before others open it at the same time."""
    if target.startswith("postgresql://"):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg import AsyncConnection
        from psycopg.rows import DictRow, dict_row
        from psycopg_pool import AsyncConnectionPool

        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        async with AsyncConnectionPool(
            target, connection_class=AsyncConnection[DictRow], kwargs=kwargs, min_size=1, max_size=8, open=False,
            check=AsyncConnectionPool.check_connection,
        ) as pool:  # fmt: skip
            pg = AsyncPostgresSaver(pool)

            async def setup() -> None:
                async with pool.connection() as conn:
                    while True:  # poll the lock (see above)
                        row = await (
                            await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_PG_SETUP_LOCK,))
                        ).fetchone()
                        if row is not None and row["ok"]:
                            break
                        await asyncio.sleep(0.05)
                    try:
                        await pg.setup()
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock(%s)", (_PG_SETUP_LOCK,))

            if target not in _PG_READY:
                await aretrying(setup, window_s=SETUP_RETRY_S, what="setting up the checkpoints")
                _PG_READY.add(target)
            yield pg
    else:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        Path(target).parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(target) as lite:
            # set up now, not lazily at the first checkpoint: processes that open a new file together (a batch's
            # workers) would otherwise race to switch it to WAL and create its tables, and one fails "locked"
            await lite.setup()
            yield lite


__all__ = ["default_checkpoints", "open_checkpointer"]
