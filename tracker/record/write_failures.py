"""Why a flush failed, whether a later one can succeed, and the one sentence that says so.

Used by the ``Writer``: a retryable failure keeps the records queued (the
database is locked, full, read-only, restarting, unreachable, or the role
may not write yet); any other failure is a bug, and its records are dropped
and counted. Messages never show a password: ``where`` is already masked.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from tracker.errors import DatabaseError

__all__ = ["retryable", "failure_message"]

# SQLSTATE classes worth retrying: connection lost (08), out of resources
# (53), the server shutting down (57), a transaction rolled back (40); and
# a role that may not write (42501, 25006), which a grant can fix.
_RETRY_CLASSES = ("08", "53", "57", "40")
_PERMISSION = ("42501", "25006")


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code if isinstance(code, str) else None


def retryable(exc: BaseException) -> bool:
    """True for failures that a later flush can get past: keep the records."""
    if isinstance(exc, (OperationalError, InterfaceError, DatabaseError, OSError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = _sqlstate(exc)
    return code is not None and (code[:2] in _RETRY_CLASSES or code in _PERMISSION)


def _records(count: int) -> str:
    return "1 record" if count == 1 else f"{count} records"


def failure_message(exc: BaseException, count: int, where: str, retry: bool) -> tuple[str, str]:
    """Return ``(reason, message)``: the database's reason in one line, and the sentence to show."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if _sqlstate(exc) in _PERMISSION:
        message = (
            f"tracker: cannot write to {where} ({reason}): this database role may only read; "
            f"connect as a role that may write (see 'tracker db grant'). Keeping {_records(count)} "
            "in memory and retrying at the next flush. Training goes on."
        )
    elif retry:
        message = (
            f"tracker: cannot write to {where} ({reason}); keeping {_records(count)} "
            "in memory and retrying at the next flush. Training goes on."
        )
    else:
        message = (
            f"tracker: dropped {_records(count)} that {where} refused ({reason}). "
            "Training goes on; please report this as a bug."
        )
    return reason, message
