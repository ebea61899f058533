"""Removing trashed runs for good (``tracker gc``), with every row they own, and returning the space.

``purge_runs`` deletes, table by table from the leaves up, every row that
belongs to the runs: their values, batches, decisions, epochs, phases,
summaries, params, tags, and the run rows. It does not lean on ``ON DELETE
CASCADE`` (an SQLite connection without ``PRAGMA foreign_keys`` would skip
it). The shared dictionaries ``keys`` and ``keysets`` are kept: a key other
runs never use costs a few bytes. ``owned_tables`` finds every table a run
owns from the models (a table added later is covered by its ``run_id``,
``phase_id`` or ``epoch_id``); ``tests/test_gc.py`` checks that every table
but those two is.

``reclaim_space`` gives the freed pages back: on SQLite, ``VACUUM`` rewrites
the file and a checkpoint empties the write-ahead log, so the file shrinks;
on PostgreSQL, deleted rows are reclaimed by the server's autovacuum, as
for any delete. Imports neither Keras nor pandas.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, select
from sqlalchemy.sql import ColumnElement

from tracker.db.engine import checkpoint_wal, sqlite_path
from tracker.db.tables import Base

__all__ = ["owned_tables", "purge_runs", "reclaim_space", "file_bytes"]

_CHUNK = 500

Finder = Callable[[Sequence[str]], ColumnElement[bool]]


def owned_tables() -> list[tuple[Table, Finder]]:
    """Every table that holds rows of runs, children before parents, and how the rows of some runs are found.

    Found from the models: ``runs`` itself, every table with a ``run_id``,
    with a ``phase_id`` (a phase belongs to a run) or an ``epoch_id`` (an
    epoch belongs to a phase). Any other table (``keys``, ``keysets``) is a
    shared dictionary and is kept.
    """
    tables = Base.metadata.tables
    runs, phases, epochs = tables["runs"], tables["phases"], tables["epochs"]

    def phase_ids(ids: Sequence[str]) -> Any:
        return select(phases.c.id).where(phases.c.run_id.in_(list(ids)))

    def finder(table: Table) -> Finder | None:
        if table is runs:
            return lambda ids: runs.c.id.in_(list(ids))
        if "run_id" in table.c:
            return lambda ids: table.c.run_id.in_(list(ids))
        if "phase_id" in table.c:
            return lambda ids: table.c.phase_id.in_(phase_ids(ids))
        if "epoch_id" in table.c:
            return lambda ids: table.c.epoch_id.in_(select(epochs.c.id).where(epochs.c.phase_id.in_(phase_ids(ids))))
        return None

    found = [(table, finder(table)) for table in reversed(Base.metadata.sorted_tables)]  # dependents first
    return [(table, rows_of) for table, rows_of in found if rows_of is not None]


def purge_runs(conn: Connection, run_ids: Sequence[str]) -> dict[str, int]:
    """Delete the runs and every row they own, inside the caller's transaction.

    Returns:
        The rows deleted, by table (``runs`` is the number of runs removed).
    """
    owned = owned_tables()
    removed: dict[str, int] = {table.name: 0 for table, _ in owned}
    ids = list(dict.fromkeys(run_ids))
    for i in range(0, len(ids), _CHUNK):
        part = ids[i:i + _CHUNK]
        for table, rows_of in owned:
            removed[table.name] += conn.execute(delete(table).where(rows_of(part))).rowcount
    return removed


def file_bytes(engine: Engine) -> int | None:
    """The size of an SQLite database on disk, its write-ahead log included; None for a server."""
    path = sqlite_path(str(engine.url))
    if path is None:
        return None
    return sum(os.path.getsize(p) for p in (str(path), f"{path}-wal") if os.path.exists(p))


def reclaim_space(engine: Engine) -> None:
    """Give freed pages back to the file system: SQLite ``VACUUM`` and a checkpoint; nothing on a server.

    ``VACUUM`` waits for other writers (the busy timeout) and needs free
    disk space about the size of the database while it runs.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        raw.execute("VACUUM")  # outside any transaction: the DBAPI connection is in autocommit
    checkpoint_wal(engine)
