"""Riding out a database restart: which errors are a lost connection, and retrying an operation until it passes.

A PostgreSQL restart (or a terminated backend, a fail-over) breaks every open connection — the statement in flight
fails with ``terminating connection due to administrator command`` or ``server closed the connection`` — and new
connections are refused until the server is back, usually within seconds. Every write of the store is idempotent
(rows are a projection of events keyed by ``(run_id, seq)``) and every read can be repeated, so such an operation is
simply tried again, with a growing pause, until it passes or a bounded window is spent:

    rows = retrying(lambda: store_read(), window_s=30, what="reading run r1")

:func:`transient` says which errors qualify: a connection SQLAlchemy invalidated, and psycopg's ``OperationalError``
and ``InterfaceError`` (connection failures, an administrator shutdown, a pool that timed out waiting for a
connection) anywhere in the exception's chain. Everything else — a constraint, a syntax error, SQLite's "no such
table" — is not retried: it would fail again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_PAUSE_S = 0.05
MAX_PAUSE_S = 1.0


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a lost or refused database connection."""
    # a library's errors can only come from it once it is imported: nothing is imported here
    sa_exc, psycopg, pool = (sys.modules.get(m) for m in ("sqlalchemy.exc", "psycopg", "psycopg_pool"))
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if sa_exc is not None and isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if pool is not None and isinstance(e, pool.PoolClosed):
            return False  # closed on purpose: waiting does not reopen it
        if psycopg is not None and isinstance(e, psycopg.OperationalError | psycopg.InterfaceError):
            return True
        e = e.__cause__ or e.__context__
    return False


def pauses(window_s: float) -> Callable[[], float | None]:
    """The pauses before the next attempts: 0.05 s doubling up to 1 s, then None once ``window_s`` has passed."""
    deadline = time.monotonic() + window_s
    pause = FIRST_PAUSE_S

    def next_pause() -> float | None:
        nonlocal pause
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        this, pause = min(pause, left), min(pause * 2, MAX_PAUSE_S)
        return this

    return next_pause


def retrying(operation: Callable[[], T], *, window_s: float, what: str = "a database operation") -> T:
    """``operation()``, tried again after a pause while it fails with a :func:`transient` error, for at most
    ``window_s`` seconds; then (or on any other error) the error is raised."""
    next_pause = pauses(window_s)
    attempt = 1
    while True:
        try:
            return operation()
        except Exception as exc:
            pause = next_pause() if transient(exc) else None
            if pause is None:
                raise
            log.warning(
                "%s failed (attempt %d, lost connection: %s); retrying in %.2f s", what, attempt, _brief(exc), pause
            )
            time.sleep(pause)
            attempt += 1


async def aretrying(operation: Callable[[], Awaitable[T]], *, window_s: float, what: str = "a database operation") -> T:
    """:func:`retrying` for a coroutine function (the pauses do not block the event loop)."""
    next_pause = pauses(window_s)
    attempt = 1
    while True:
        try:
            return await operation()
        except Exception as exc:
            pause = next_pause() if transient(exc) else None
            if pause is None:
                raise
            log.warning(
                "%s failed (attempt %d, lost connection: %s); retrying in %.2f s", what, attempt, _brief(exc), pause
            )
            await asyncio.sleep(pause)
            attempt += 1


def _brief(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:160] if lines else ''}"


__all__ = ["aretrying", "pauses", "retrying", "transient"]
