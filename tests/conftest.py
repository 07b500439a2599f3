"""Shared fixtures. Real-model fixtures load once per session and use one thread (see ENVIRONMENT.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from longthink.models import SMOLLM2_135M, ModelStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The verified SmolLM2-135M-Instruct GGUF (the fast test model)."""
    return ModelStore().ensure(SMOLLM2_135M)


@pytest.fixture(scope="session")
def smollm2(smollm2_path: Path) -> Iterator[object]:
    """The embedded engine on SmolLM2, shared by the session."""
    from longthink.llm.llama_cpp import LlamaCppLLM

    llm = LlamaCppLLM(str(smollm2_path), n_threads=1, n_ctx=4096, max_sequences=8)
    yield llm
    llm.close()


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_down() -> str | None:
    try:
        engine = sa.create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: skip the PostgreSQL tests, with the reason
        return f"PostgreSQL at 127.0.0.1:5432 (database test) is unreachable: {type(exc).__name__}: {exc}"
    return None


PG_DOWN = _pg_down()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the real server; the URL puts it first on the search path. Dropped afterwards."""
    if PG_DOWN:
        pytest.skip(PG_DOWN)
    schema = f"lt_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN, pool_pre_ping=True)  # survives a restart of the server during the test
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
