"""Every statement that edits runs on a person's behalf: rename, tags, note, trash and restore.

Plain functions over a connection inside the caller's transaction (open one
with ``editing``). The recorder never calls them, and its own updates of a
run row set only the columns it records (status, times, model, heartbeat,
counters): the columns edited here (``name``, ``note``, ``deleted_at``, the
``tags`` rows) are never written by it after the run's first row, so an
edit made while the run trains is kept, and the training loses nothing.

Each function returns how many rows it changed: on PostgreSQL, row-level
security skips the rows of runs another role created without an error, so
the caller compares the count with what it asked (``tracker.manage`` checks
the owner first and says so in one sentence). ``tracker.db.purge`` removes
trashed runs for good. Imports neither Keras nor pandas.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tracker.db.base import table_of
from tracker.db.tables import Run, Tag

__all__ = ["RunRow", "editing", "run_rows", "rename_run", "set_tags", "set_note", "trash_runs", "restore_runs"]

_RUNS, _TAGS = table_of(Run), table_of(Tag)
_CHUNK = 900


@dataclass(frozen=True, slots=True)
class RunRow:
    """What an edit checks of a run before changing it (its own row, as stored)."""

    id: str
    name: str | None
    status: str
    host: str | None
    pid: int | None
    started_at: datetime
    heartbeat_at: datetime | None
    deleted_at: datetime | None
    created_by: str | None


@contextmanager
def editing(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction that commits on success and rolls back on error.

    On SQLite the transaction takes the write lock at once (``BEGIN
    IMMEDIATE``), so a read-then-write edit (appending to a note) cannot
    interleave with another writer's; on PostgreSQL ``set_note`` locks the
    run's row instead.
    """
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def run_rows(conn: Connection, run_ids: Sequence[str]) -> list[RunRow]:
    """The rows of these runs (the ones that exist), in the order asked."""
    found: dict[str, RunRow] = {}
    ids = list(dict.fromkeys(run_ids))
    columns = [_RUNS.c[f.name] for f in fields(RunRow)]
    for i in range(0, len(ids), _CHUNK):
        for row in conn.execute(select(*columns).where(_RUNS.c.id.in_(ids[i:i + _CHUNK]))):
            values: list[Any] = list(row)
            values[2] = getattr(values[2], "value", values[2])  # the status as text
            found[values[0]] = RunRow(*values)
    return [found[i] for i in ids if i in found]


def rename_run(conn: Connection, run_id: str, name: str) -> int:
    """Set the run's name; return the rows changed (1, or 0 for a run this role may not change)."""
    return conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(name=name)).rowcount


def _upsert_tags(dialect: str) -> Any:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_(_TAGS)
    return stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": stmt.excluded.value})


def set_tags(conn: Connection, run_id: str, tags: Mapping[str, str], remove: Sequence[str] = ()) -> int:
    """Add or replace the run's ``tags`` and remove the tags named in ``remove``.

    Returns:
        The tag rows written or removed (a key to remove that the run lacks counts nothing).
    """
    changed = 0
    if remove:
        changed += conn.execute(
            delete(_TAGS).where(_TAGS.c.run_id == run_id, _TAGS.c.key.in_(list(remove)))
        ).rowcount
    if tags:
        rows = [{"run_id": run_id, "key": key, "value": value} for key, value in tags.items()]
        changed += conn.execute(_upsert_tags(conn.dialect.name), rows).rowcount
    return changed


def set_note(conn: Connection, run_id: str, text: str, *, append: bool = False) -> str | None:
    """Replace the run's note with ``text`` (an empty text clears it), or add ``text`` as a new line.

    Returns:
        The note now stored (None when cleared), or None with nothing changed
        for a run this role may not change (the caller checks the owner first).
    """
    note = text
    if append:
        current = select(_RUNS.c.note).where(_RUNS.c.id == run_id)
        if conn.dialect.name == "postgresql":
            current = current.with_for_update()  # two appends at once both land
        before = conn.execute(current).scalar()
        note = f"{before}\n{text}" if before else text
    stored = note or None
    done = conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(note=stored)).rowcount
    return stored if done else None


def trash_runs(conn: Connection, run_ids: Sequence[str], when: datetime) -> int:
    """Move runs to the trash (set ``deleted_at``; a run already there keeps its time). Return the rows changed."""
    changed = 0
    ids = list(dict.fromkeys(run_ids))
    for i in range(0, len(ids), _CHUNK):
        changed += conn.execute(
            update(_RUNS).where(_RUNS.c.id.in_(ids[i:i + _CHUNK]), _RUNS.c.deleted_at.is_(None)).values(deleted_at=when)
        ).rowcount
    return changed


def restore_runs(conn: Connection, run_ids: Sequence[str]) -> int:
    """Bring runs back from the trash (clear ``deleted_at``). Return the rows changed."""
    changed = 0
    ids = list(dict.fromkeys(run_ids))
    for i in range(0, len(ids), _CHUNK):
        changed += conn.execute(
            update(_RUNS).where(_RUNS.c.id.in_(ids[i:i + _CHUNK]), _RUNS.c.deleted_at.is_not(None)).values(deleted_at=None)
        ).rowcount
    return changed
