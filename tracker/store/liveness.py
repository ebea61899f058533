"""Telling a running run from a crashed one, on the read side.

A run whose process died (kill -9, OOM) never wrote ``finished``. It is
reported as ``crashed``:

* on the same host, at once, when its pid is gone (or is a zombie, or has
  been reused by a process that started after the run);
* from another host, when its heartbeat (written by the background writer
  while a phase is open, see ``tracker.record.writer``) is older than
  ``heartbeat_timeout`` seconds.

Nothing is written: the status is worked out each time runs are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import psutil

from tracker.db.engine import host_name

__all__ = ["HEARTBEAT_TIMEOUT", "effective_status", "pid_alive", "apply_liveness"]

#: Seconds without a heartbeat after which a run on another host counts as crashed.
HEARTBEAT_TIMEOUT = 120.0



def _utc_seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def pid_alive(pid: int, started_at: Any = None) -> bool:
    """True if ``pid`` is a live process that could have started the run.

    Read through psutil: a process of another user, which may not be
    signalled, is alive too, unless psutil shows it a zombie or younger than
    the run (a reused pid). A process psutil may not inspect at all counts
    as alive.
    """
    if pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False  # a zombie: dead, not yet reaped
        start = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # alive, but not ours to inspect
    run_start = _utc_seconds(started_at)
    if run_start is not None and start > run_start + 2.0:
        return False  # the pid was reused by a younger process
    return True


def effective_status(
    status: str,
    host: str | None,
    pid: int | None,
    started_at: Any,
    heartbeat_at: Any,
    *,
    now: float | None = None,
    timeout: float = HEARTBEAT_TIMEOUT,
) -> str:
    """Return ``crashed`` for a ``running`` run whose process is gone, else ``status``."""
    if status != "running":
        return status
    if host == host_name() and pid is not None:
        return "running" if pid_alive(int(pid), started_at) else "crashed"
    last = _utc_seconds(heartbeat_at) or _utc_seconds(started_at)
    current = now if now is not None else datetime.now(timezone.utc).timestamp()
    if last is not None and current - last > timeout:
        return "crashed"
    return "running"


def apply_liveness(
    columns: Sequence[str], rows: list[list[Any]], wanted: Sequence[str] | None = None, *, timeout: float = HEARTBEAT_TIMEOUT
) -> list[list[Any]]:
    """Rewrite the ``status`` of listed runs, then keep rows whose status is ``wanted``."""
    index = {c: i for i, c in enumerate(columns)}
    st, host, pid, started, beat = (index[c] for c in ("status", "host", "pid", "started_at", "heartbeat_at"))
    out = []
    for row in rows:
        status = row[st]  # text: runs_statement reads plain columns
        if status == "running":  # only these can turn out crashed
            status = effective_status(status, row[host], row[pid], row[started], row[beat], timeout=timeout)
        row[st] = status
        if wanted is None or status in wanted:
            out.append(row)
    return out
