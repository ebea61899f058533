"""``RunManager``: rename, tag, note, delete (to the trash), undelete, and remove the trash for good.

The write front of run management; ``tracker.Store`` stays read-only. Every
statement is in ``tracker.db.edits`` and ``tracker.db.purge``; this module
resolves run references, checks what must hold first (no run still
training, a role changing only what it may; ``tracker.manage.guard``), and
turns database errors into one sentence. The CLI's ``rename``, ``tag``,
``note``, ``delete``, ``undelete`` and ``gc`` and the dashboard's edits
(``tracker ui --edit``) go through it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError

from tracker.db import edits
from tracker.db.edits import RunRow
from tracker.db.engine import DEFAULT_DB
from tracker.db.migrate import open_database
from tracker.db.purge import file_bytes, purge_runs, reclaim_space
from tracker.db.tables import Run, Tag
from tracker.db.values import utcnow
from tracker.errors import DatabaseError, EditRefusedError, InvalidArgumentError, UnknownRunError
from tracker.manage.guard import called, check_not_running, check_owner, refused
from tracker.manage.selection import select_ids
from tracker.store.base import resolve_run
from tracker.store.liveness import HEARTBEAT_TIMEOUT

__all__ = ["RunManager", "RunRow", "Collected"]


@dataclass
class Collected:
    """What ``RunManager.gc`` removed.

    ``runs``: the runs removed for good; ``rows``: rows deleted per table;
    ``bytes_before`` and ``bytes_after``: the SQLite file's size with its
    write-ahead log (None on a server, where the server's autovacuum
    reclaims the space).
    """

    runs: list[RunRow]
    rows: dict[str, int] = field(default_factory=dict)
    bytes_before: int | None = None
    bytes_after: int | None = None


def _refs(runs: str | Sequence[str]) -> list[str]:
    return [runs] if isinstance(runs, str) else list(runs)


class RunManager:
    """Change runs recorded by ``TrackingCallback``: the write side of run management.

    Args:
        db: A file path or an SQLAlchemy URL. Default ``"tracker.db"``. The
            database must exist; an older schema is upgraded first, as
            ``TrackingCallback`` does.
        heartbeat_timeout: Seconds without a heartbeat after which a
            ``running`` run on another host counts as crashed (and may be
            deleted). Default 120.

    A run reference is what ``Store.resolve`` takes: an id, a unique id
    prefix, a name (its newest run) or ``latest``. Runs in the trash are out
    of view: only ``undelete`` (and ``gc``) reach them.

    Raises:
        DatabaseNotFoundError: the file does not exist.
        NotADatabaseError: the file is not a tracker database.
        SchemaTooNewError: a newer tracker wrote it.

    Example:
        ```python
        runs = tracker.RunManager("runs.db")
        runs.rename("sequential", "baseline")
        runs.tag("baseline", {"dataset": "digits"})
        runs.note("baseline", "lr 0.1 diverges after epoch 8", append=True)
        runs.delete(status="failed", older_than="30d")
        runs.gc()
        ```
    """

    def __init__(self, db: str | os.PathLike[str] = DEFAULT_DB, *, heartbeat_timeout: float = HEARTBEAT_TIMEOUT) -> None:
        self.engine, self.url = open_database(os.fspath(db), create=False)
        self.heartbeat_timeout = heartbeat_timeout

    @contextmanager
    def _editing(self, doing: str) -> Iterator[Connection]:
        try:
            with edits.editing(self.engine) as conn:
                yield conn
        except DBAPIError as exc:
            raise (refused(exc, self.url, doing) or exc) from None

    def _row(self, conn: Connection, ref: str, *, among: str = "view") -> RunRow:
        return edits.run_rows(conn, [resolve_run(conn, ref, among=among)])[0]

    # -- one run ---------------------------------------------------------------------

    def rename(self, run: str, name: str) -> RunRow:
        """Give a run a new name; return the run as it was before.

        Raises:
            UnknownRunError: ``run`` names no run in view.
            InvalidArgumentError: the name is empty, or ``latest`` (which names the newest run).
            EditRefusedError: this database role may not change the run.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError("A run's name cannot be empty; give the new name.")
        if name == "latest":
            raise InvalidArgumentError("'latest' always names the newest run, so it cannot be a run's name.")
        with self._editing("rename runs") as conn:
            row = self._row(conn, run)
            check_owner(conn, [row])
            edits.rename_run(conn, row.id, name)
        return row

    def tag(self, run: str, tags: Mapping[str, str] | None = None, *, remove: Sequence[str] = ()) -> dict[str, str]:
        """Add or replace tags of a run, and remove the tags named in ``remove``; return its tags after.

        Raises:
            UnknownRunError: ``run`` names no run in view.
            InvalidArgumentError: nothing to do, an empty key, a value that is
                not text, or a key to remove that the run does not have.
            EditRefusedError: this database role may not change the run.
        """
        tags = dict(tags or {})
        remove = [remove] if isinstance(remove, str) else list(remove)
        if not tags and not remove:
            raise InvalidArgumentError("Give tags to set as KEY=VALUE, or tags to remove with --remove KEY.")
        for key, value in tags.items():
            if not isinstance(key, str) or not key:
                raise InvalidArgumentError(f"A tag's key must be non-empty text, not {key!r}.")
            if not isinstance(value, str):
                raise InvalidArgumentError(f"The tag {key!r} must have a text value, not {value!r}.")
        for key in remove:
            if not isinstance(key, str) or not key:
                raise InvalidArgumentError(f"A tag to remove is named by its key (non-empty text), not {key!r}.")
        with self._editing("tag runs") as conn:
            row = self._row(conn, run)
            check_owner(conn, [row])
            have = dict(conn.execute(select(Tag.key, Tag.value).where(Tag.run_id == row.id)).all())
            missing = [k for k in remove if k not in have]
            if missing:
                shown = ", ".join(sorted(have)) or "none"
                raise InvalidArgumentError(f"Run {called(row)} has no tag {missing[0]!r} to remove (its tags: {shown}).")
            edits.set_tags(conn, row.id, tags, remove)
            after = conn.execute(select(Tag.key, Tag.value).where(Tag.run_id == row.id).order_by(Tag.key)).all()
        return {key: value or "" for key, value in after}

    def note(self, run: str, text: str, *, append: bool = False) -> str | None:
        """Replace a run's note with ``text`` (empty text clears it), or add ``text`` on a new line.

        Returns:
            The run's note now (None when cleared).

        Raises:
            UnknownRunError: ``run`` names no run in view.
            InvalidArgumentError: ``text`` is not text, or is empty with ``append``.
            EditRefusedError: this database role may not change the run.
        """
        if not isinstance(text, str):
            raise InvalidArgumentError(f"A note is text, not {text!r}.")
        if append and not text:
            raise InvalidArgumentError("Give the text to append to the note.")
        with self._editing("write notes") as conn:
            row = self._row(conn, run)
            check_owner(conn, [row])
            return edits.set_note(conn, row.id, text, append=append)

    # -- the trash -------------------------------------------------------------------

    def find(self, runs: str | Sequence[str] = (), *, status: str | Sequence[str] | None = None,
             older_than: str | timedelta | None = None, experiment: str | None = None) -> list[RunRow]:
        """The runs ``delete`` would move to the trash with the same arguments (nothing is changed).

        Raises:
            UnknownRunError: a reference names no run in view.
            InvalidArgumentError: both references and filters, neither, or a filter not understood.
            EditRefusedError: a named run is still running.
        """
        refs = _refs(runs)
        with self.engine.connect() as conn:
            if refs:
                if status is not None or older_than is not None or experiment is not None:
                    raise InvalidArgumentError("Name the runs to delete or select them with filters, not both.")
                rows = edits.run_rows(conn, [resolve_run(conn, ref) for ref in refs])
                check_not_running(rows, heartbeat_timeout=self.heartbeat_timeout)
                return rows
            ids = select_ids(conn, status=status, older_than=older_than, experiment=experiment,
                             heartbeat_timeout=self.heartbeat_timeout)
            return edits.run_rows(conn, ids)

    def delete(self, runs: str | Sequence[str] = (), *, status: str | Sequence[str] | None = None,
               older_than: str | timedelta | None = None, experiment: str | None = None) -> list[RunRow]:
        """Move runs to the trash: out of every listing and aggregate until ``undelete``; ``gc`` removes them.

        Give run references, or select runs with the filters (all must
        match): ``status`` (not ``running``), ``older_than`` (started more
        than ``30d``, ``12h``... ago) and ``experiment``. Either every run is
        moved or none.

        Returns:
            The runs moved (empty if the filters match none).

        Raises:
            UnknownRunError: a reference names no run in view.
            InvalidArgumentError: see ``find``.
            EditRefusedError: a run is still training (its process alive), or
                this database role may not change it.
        """
        rows = self.find(runs, status=status, older_than=older_than, experiment=experiment)
        if not rows:
            return []
        with self._editing("delete runs") as conn:
            fresh = edits.run_rows(conn, [r.id for r in rows])  # as they are now, inside the write lock
            check_not_running(fresh, heartbeat_timeout=self.heartbeat_timeout)
            check_owner(conn, fresh)
            edits.trash_runs(conn, [r.id for r in fresh], utcnow())
            return edits.run_rows(conn, [r.id for r in fresh])  # with their deleted_at

    def undelete(self, runs: str | Sequence[str]) -> list[RunRow]:
        """Bring runs back from the trash. A name is its newest deleted run.

        Returns:
            The runs brought back.

        Raises:
            UnknownRunError: a reference names no run.
            InvalidArgumentError: no reference, or a run that is not deleted.
            EditRefusedError: this database role may not change the run.
        """
        refs = _refs(runs)
        if not refs:
            raise InvalidArgumentError("Name the runs to undelete (tracker runs --deleted lists the trash).")
        with self._editing("undelete runs") as conn:
            rows = []
            for ref in refs:
                try:
                    rows.append(self._row(conn, ref, among="trash"))
                except UnknownRunError:
                    row = self._row(conn, ref)  # in view? then say so; else the original error stands
                    raise InvalidArgumentError(f"Run {called(row)} is not deleted; there is nothing to undelete.") from None
            for row in rows:
                if row.deleted_at is None:
                    raise InvalidArgumentError(f"Run {called(row)} is not deleted; there is nothing to undelete.")
            check_owner(conn, rows)
            edits.restore_runs(conn, [r.id for r in rows])
            return edits.run_rows(conn, [r.id for r in rows])

    def trash(self) -> list[RunRow]:
        """The runs in the trash, the most recently deleted first."""
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(Run.id).where(Run.deleted_at.is_not(None)).order_by(Run.deleted_at.desc(), Run.id)
            ).scalars().all()
            return edits.run_rows(conn, list(ids))

    def gc(self, run_ids: Sequence[str] | None = None) -> Collected:
        """Remove runs in the trash for good, with every row they own, and give the space back.

        Args:
            run_ids: Only these runs of the trash (ids, as ``trash`` gives
                them). Default None: every run in the trash.

        Returns:
            A ``Collected``: the runs removed (empty if the trash is empty),
            rows per table, and the SQLite file's size before and after
            (``VACUUM``; on PostgreSQL, plain deletes).

        Raises:
            InvalidArgumentError: an id is not a run in the trash.
            EditRefusedError: this database role may not delete (on a
                server, only the database's owner removes runs for good).
        """
        before = file_bytes(self.engine)
        with self._editing("remove runs for good") as conn:
            trashed = {r.id: r for r in edits.run_rows(conn, list(run_ids))} if run_ids is not None else None
            if trashed is None:
                ids = list(conn.execute(select(Run.id).where(Run.deleted_at.is_not(None))).scalars())
                rows = edits.run_rows(conn, ids)
            else:
                missing = [i for i in run_ids or () if i not in trashed or trashed[i].deleted_at is None]
                if missing:
                    raise InvalidArgumentError(f"{missing[0]!r} is not a run in the trash; gc removes only deleted runs.")
                rows = list(trashed.values())
            if not rows:
                return Collected([], {}, before, before)
            check_owner(conn, rows)
            removed = purge_runs(conn, [r.id for r in rows])
            if removed.get("runs", 0) != len(rows):  # row-level security skipped some: change nothing
                raise EditRefusedError("Some of these runs may not be removed by this database role; nothing was removed.")
        try:
            reclaim_space(self.engine)
        except DBAPIError as exc:
            reason = str(refused(exc, self.url, "compact the file"))
            raise DatabaseError(f"Removed {len(rows)} run(s) for good, but c{reason[1:]}") from None
        return Collected(rows, removed, before, file_bytes(self.engine))
