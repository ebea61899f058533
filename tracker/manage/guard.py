"""What an edit checks first: that no run in it is still training, and that this role may change it.

On SQLite anyone who can write the file may change every run. On a
PostgreSQL server (``tracker db grant``) the reader may change nothing, a
writer only the runs it created (row-level security), and the database's
owner any run. Row-level security skips the rows of another role's runs
without an error, so ``check_owner`` looks first and says so; a permission
error from the server becomes one sentence (``refused``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from tracker.db.edits import RunRow
from tracker.db.engine import describe, host_name
from tracker.db.roles import confined_to_own_runs
from tracker.errors import DatabaseError, EditRefusedError
from tracker.store.liveness import effective_status

__all__ = ["called", "check_not_running", "check_owner", "refused"]

#: SQLSTATE of PostgreSQL's "permission denied" (insufficient_privilege); row-level security's refusals too.
_NO_PRIVILEGE = "42501"


def called(row: RunRow) -> str:
    """How a message names a run: ``'name' (id)``, or the id alone."""
    return f"{row.name!r} ({row.id})" if row.name else row.id


def check_not_running(rows: Sequence[RunRow], *, heartbeat_timeout: float, what: str = "deleted") -> None:
    """Refuse if any run is still training (its process alive: see ``tracker.store.liveness``).

    Raises:
        EditRefusedError: one sentence naming the first such run.
    """
    for row in rows:
        status = effective_status(row.status, row.host, row.pid, row.started_at, row.heartbeat_at,
                                  timeout=heartbeat_timeout)
        if status == "running":
            if row.host == host_name() and row.pid is not None:
                why = f"process {row.pid} on {row.host} is alive"
            else:
                why = f"its job on {row.host or 'another host'} wrote a heartbeat within {heartbeat_timeout:g} s"
            raise EditRefusedError(
                f"Run {called(row)} is still running ({why}), so it cannot be {what}; "
                "wait for it to end or stop it first."
            )


def check_owner(conn: Connection, rows: Sequence[RunRow]) -> None:
    """Refuse if this role may only read, or may change only its own runs and one of ``rows`` is another role's.

    Raises:
        EditRefusedError: one sentence naming the role (and the run and its creator).
    """
    if not confined_to_own_runs(conn):
        return
    me, may = conn.execute(text("SELECT current_user, has_table_privilege('runs', 'UPDATE')")).one()
    if not may:
        raise EditRefusedError(
            f"The role {me} may only read this database (permission denied: it may not update runs); "
            "connect as the writer role that created the run (see 'tracker db grant') or as the database's owner."
        )
    for row in rows:
        if row.created_by != me:
            creator = f"the role {row.created_by}" if row.created_by else "the database's owner (before roles)"
            raise EditRefusedError(
                f"Run {called(row)} was created by {creator}; the role {me} may change only the runs it created "
                "(row-level security): connect as that role or as the database's owner."
            )


def refused(exc: Exception, url: str, doing: str) -> DatabaseError | EditRefusedError | None:
    """One sentence for a database error raised by an edit, or None if it is not one we explain.

    Args:
        exc: What the database driver raised (through SQLAlchemy).
        url: The database, for the message.
        doing: What was being done, for the message (``rename runs``).
    """
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    where = describe(url)
    if getattr(orig, "sqlstate", None) == _NO_PRIVILEGE or getattr(orig, "pgcode", None) == _NO_PRIVILEGE:
        return EditRefusedError(
            f"Cannot {doing} in {where}: this database role may not ({first}); a reader may only read, a writer "
            "may change only the runs it created, and only the database's owner may remove runs for good."
        )
    name = getattr(orig, "sqlite_errorname", None) or ""
    if name.startswith("SQLITE_READONLY"):
        return DatabaseError(f"Cannot {doing} in {where}: the file or its folder is read-only.")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return DatabaseError(f"Cannot {doing} in {where}: another process holds it locked; try again.")
    return DatabaseError(f"Cannot {doing} in {where}: {first}.")
