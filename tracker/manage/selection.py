"""Choosing the runs ``tracker delete`` moves to the trash: by reference, or by status, age and experiment.

Selection by filters goes through the runs listing's own statement
(``tracker.store.filters.runs_statement``), so it sees exactly the runs
``tracker runs`` would list with the same filters, and never a run in the
trash. A run whose process is alive is never selected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from sqlalchemy import Connection, DateTime, bindparam

from tracker.db.values import utcnow
from tracker.errors import InvalidArgumentError
from tracker.store.filters import RUN_STATUSES, RUNS, check_experiment, runs_statement
from tracker.store.liveness import apply_liveness

__all__ = ["DELETABLE", "parse_age", "cutoff", "select_ids"]

#: The statuses ``--status`` may select (a running run is never deleted).
DELETABLE = tuple(s for s in RUN_STATUSES if s != "running")

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` as a duration.

    Raises:
        InvalidArgumentError: anything else, or zero.
    """
    found = _AGE.match(text) if isinstance(text, str) else None
    if found is None or float(found.group(1)) <= 0:
        raise InvalidArgumentError(
            f"--older-than {text!r} is not an age; give a positive number and a unit: 30d, 12h, 90m, 2w or 45s."
        )
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


def cutoff(older_than: str | timedelta, now: datetime | None = None) -> datetime:
    """The start time before which a run is older than ``older_than`` (UTC, naive as stored)."""
    age = older_than if isinstance(older_than, timedelta) else parse_age(older_than)
    return (now or utcnow()) - age


def _statuses(status: str | Sequence[str] | None) -> list[str] | None:
    if status is None:
        return None
    wanted = [status] if isinstance(status, str) else list(status)
    for s in wanted:
        if s == "running":
            raise InvalidArgumentError("A running run cannot be deleted; choose from " + ", ".join(DELETABLE) + ".")
        if s not in DELETABLE:
            raise InvalidArgumentError(f"Unknown status {s!r}; choose from {', '.join(DELETABLE)}.")
    return wanted


def select_ids(
    conn: Connection,
    *,
    status: str | Sequence[str] | None = None,
    older_than: str | timedelta | None = None,
    experiment: str | None = None,
    heartbeat_timeout: float,
) -> list[str]:
    """The ids of the runs in view that match every filter given, oldest first; never a running one.

    Args:
        conn: A connection to the database.
        status: Only runs with this status (or any of these): ``DELETABLE``.
        older_than: Only runs started before this long ago (``30d``, or a timedelta).
        experiment: Only runs of this experiment.
        heartbeat_timeout: Seconds without a heartbeat after which a run on another host counts as crashed.

    Raises:
        InvalidArgumentError: no filter is given, or one is not understood.
        UnknownExperimentError: no experiment has the name (close names are suggested).
    """
    if status is None and older_than is None and experiment is None:
        raise InvalidArgumentError("Name the runs to delete, or select them with --status, --older-than or --experiment.")
    wanted = _statuses(status)
    check_experiment(conn, experiment)
    stmt, _ = runs_statement(status=wanted, experiment=experiment)
    if older_than is not None:
        stmt = stmt.where(RUNS.c.started_at < bindparam("cutoff", cutoff(older_than), type_=DateTime()))
    result = conn.execute(stmt)
    columns = list(result.keys())
    rows = apply_liveness(columns, [list(r) for r in result.all()], wanted, timeout=heartbeat_timeout)
    at = {c: i for i, c in enumerate(columns)}
    return [row[at["run_id"]] for row in rows if row[at["status"]] != "running"]
