"""Alembic environment of the store. Run by :func:`longthink.store.migrations.migrate` with a connection in
``config.attributes["connection"]``, or with ``sqlalchemy.url`` set (offline ``--sql`` mode too)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from longthink.store.engine import make_engine
from longthink.store.migrations import VERSION_TABLE
from longthink.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    shared = config.attributes.get("connection")
    if shared is not None:
        _run(shared)
    else:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
        try:
            with engine.begin() as conn:
                _run(conn)
        finally:
            engine.dispose()
