"""Alembic environment for the tracker's schema.

The database comes from, in order: a connection handed over by the tracker
(``config.attributes["connection"]``), ``-x db=PATH_OR_URL``, the
``TRACKER_DB`` environment variable, ``sqlalchemy.url`` in alembic.ini, and
finally ``./tracker.db``.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from tracker.db.engine import DEFAULT_DB, get_engine, resolve_url
from tracker.db.migrate import VERSION_TABLE, check_foreign_keys, foreign_keys_off
from tracker.db.tables import Base

config = context.config
target_metadata = Base.metadata


def _database() -> str:
    x_args = context.get_x_argument(as_dictionary=True)
    return (
        x_args.get("db")
        or os.environ.get("TRACKER_DB")
        or config.get_main_option("sqlalchemy.url")
        or DEFAULT_DB
    )


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        version_table=VERSION_TABLE,
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=resolve_url(_database()),
        target_metadata=target_metadata,
        render_as_batch=True,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = get_engine(resolve_url(_database()))
    # SQLite: foreign keys off while a revision rebuilds a table (see tracker.db.migrate.foreign_keys_off).
    with engine.connect() as connection, foreign_keys_off(connection):
        connection.execution_options(sqlite_begin="IMMEDIATE")
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
            check_foreign_keys(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
