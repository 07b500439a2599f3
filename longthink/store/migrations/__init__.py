"""Alembic migrations of the store's schema, run from code: no ``alembic.ini``.

:func:`migrate` brings a database to the latest revision (``SqlStore`` calls it when opened). The revisions
live in ``versions/`` (shipped as package data). To write the next one, change the models in
:mod:`longthink.store.tables`, then autogenerate against a database at the current head::

    from alembic import command
    from longthink.store.migrations import alembic_config
    command.revision(alembic_config("sqlite:///scratch.db"), "what changed", autogenerate=True, rev_id="0002")

and review the generated file (SQLite needs ``batch_alter_table``, which autogenerate renders here).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from longthink.store.engine import make_engine

HERE = Path(__file__).resolve().parent
#: Our own version table, so that an application's Alembic history in the same database is left alone.
VERSION_TABLE = "longthink_alembic_version"


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic ``Config`` for these migrations, built in code."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if url is not None:
        text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        cfg.set_main_option("sqlalchemy.url", text.replace("%", "%%"))  # configparser interpolation
    return cfg


def head() -> str:
    """The latest revision."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no Alembic revision found in {HERE / 'versions'}")
    return revision


def current(conn: Connection) -> str | None:
    """The revision a database is at (None when it has no schema yet)."""
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def migrate(url: str | URL | Engine, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the latest). Safe to call again: a database
    already there is left untouched, and a concurrent upgrade by another process is waited out."""
    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        target = head() if revision == "head" else revision
        with engine.connect() as conn:
            if current(conn) == target:
                return
        cfg = alembic_config()
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except Exception:
            with engine.connect() as conn:  # another process may have migrated it meanwhile
                if current(conn) == target:
                    return
            raise
    finally:
        if engine is not url:
            engine.dispose()


__all__ = ["VERSION_TABLE", "alembic_config", "current", "head", "migrate"]
