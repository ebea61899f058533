"""What a tuning tool tells the tracker outside a fit: a trial's params, its end, a trial that never fitted.

The integrations (``tracker.integrations``) call these when a tool ends a
trial, after the trial's fits are over: the runs' own writers are done, so
each call writes in one short transaction of its own. A failure warns
(``TrackingWarning``) and never stops the search.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracker.db.sweep_writes import JoinExperiment, TrialEnd
from tracker.db.sweep_writes import end_trial as write_trial_end
from tracker.db.values import utcnow
from tracker.db.writes import InsertRun
from tracker.errors import TrackingWarning
from tracker.record.environment import environment
from tracker.record.extensions import RunContext, StartedRun
from tracker.record.writer import Writer, writers_of
from tracker.status import Status

__all__ = ["plain_params", "end_trial", "record_failed_run", "END_ATTEMPTS"]

#: How many times the end of a trial is written before a warning gives up (a lost server connection).
END_ATTEMPTS = 3

def _plain(value: Any) -> tuple[bool, Any]:
    """``(True, value as plain JSON data)`` when that keeps the value exactly, else ``(False, None)``."""
    if value is None or type(value) in (str, bool, int, float):
        return True, value
    for kind in (bool, float, int, str):  # subclasses (numpy.float64 is a float) as the plain type, same value
        if isinstance(value, kind):
            return True, kind(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():  # a NumPy scalar: its exact Python value
        try:
            found = item()
        except Exception:  # noqa: BLE001
            return False, None
        return _plain(found) if isinstance(found, (str, bool, int, float)) else (False, None)
    if isinstance(value, (list, tuple)):
        out = []
        for element in value:
            ok, plain = _plain(element)
            if not ok:
                return False, None
            out.append(plain)
        return True, out
    return False, None


def plain_params(values: Mapping[Any, Any], *, source: str) -> dict[str, Any]:
    """A tool's hyperparameter values as params: JSON values that keep each value exactly.

    Strings, bools, ints and floats (bit for bit, NaN and ±inf included) are
    kept as they are; a NumPy scalar as its exact Python value (a float32
    widened to the same number as a float64); a tuple or list of those as a
    JSON list. Anything else cannot be stored faithfully: it is left out,
    with one ``TrackingWarning`` naming the params and ``source``.
    """
    out: dict[str, Any] = {}
    refused = []
    for key, value in values.items():
        ok, plain = _plain(value)
        if ok:
            out[str(key)] = plain
        else:
            refused.append(f"{key}={type(value).__name__}")
    if refused:
        warnings.warn(
            f"tracker: {source}: the hyperparameter(s) {', '.join(refused)} are not plain JSON values (text, "
            "numbers, bools, lists of them) and were not stored; the search is not affected.",
            TrackingWarning,
            stacklevel=3,
        )
    return out


def _by_db(runs: Iterable[StartedRun]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for run in runs:
        found.setdefault(run.db, []).append(run.run_id)
    return found


def end_trial(runs: Sequence[StartedRun], end: TrialEnd) -> dict[str, str]:
    """Record what the tool decided about the trial the ``runs`` trained (in the order they started).

    Returns each run's status as recorded then (``finished``, ``failed``,
    ``pruned``...), by run id; a run whose database could not be written
    (``END_ATTEMPTS`` times, half a second more apart each time) is left out
    (and a ``TrackingWarning`` says why).
    """
    statuses: dict[str, str] = {}
    for db, run_ids in _by_db(runs).items():
        for writer in writers_of(run_ids):  # the runs' own records first: the trial's rows must be there
            try:
                writer.flush(wait=10.0)
            except Exception:  # noqa: BLE001 - retried below, and by the writer
                pass
        for attempt in range(END_ATTEMPTS):
            try:
                statuses.update(_write_end(db, run_ids, end))
                break
            except Exception as exc:  # noqa: BLE001 - tracking never stops the search
                if attempt + 1 < END_ATTEMPTS:  # one transaction, rolled back: written again whole
                    time.sleep(0.5 * (attempt + 1))
                    continue
                warnings.warn(f"tracker: could not record the end of a trial in {db} ({END_ATTEMPTS} attempts): "
                              f"{exc}", TrackingWarning, stacklevel=2)
    return statuses


def _write_end(db: str, run_ids: list[str], end: TrialEnd) -> dict[str, str]:
    """One attempt at ``end_trial`` for the runs of one database: their statuses, or an exception."""
    from sqlalchemy import select

    from tracker.db.engine import checkpoint_wal
    from tracker.db.migrate import open_database
    from tracker.db.tables import Run

    engine, _ = open_database(db)
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            write_trial_end(conn, run_ids, end)
            found = conn.execute(select(Run.id, Run.status).where(Run.id.in_(run_ids))).all()
            if len(found) < len(set(run_ids)):  # still queued in a writer (a lost connection)
                raise RuntimeError("the trial's runs are not written yet")
    checkpoint_wal(engine)
    return {run_id: getattr(status, "value", status) for run_id, status in found}


def record_failed_run(db: str, context: RunContext, error: str, *, experiment: str | None = None,
                      end: TrialEnd | None = None) -> str | None:
    """Record a run for a trial that failed before any fit (its model could not be built, say).

    The run is ``failed`` with ``error`` and has no phases; it belongs to the
    context's experiment (named ``experiment`` if the user gave one) and
    trial, with the tool's decision ``end`` on the trial if given. Returns
    its id, or None if it could not be written (a ``TrackingWarning`` says why).
    """
    run_id = uuid.uuid4().hex
    now = utcnow()
    row = {"id": run_id, "name": context.run_name, "status": Status.FAILED, "started_at": now, "ended_at": now,
           "error": error, **environment()}
    writer = Writer(db, run_id=run_id)
    writer.submit(InsertRun(row, dict(context.params), dict(context.tags)))
    if context.experiment is not None:
        e = context.experiment
        name = experiment if experiment is not None else e.name
        writer.submit(JoinExperiment(run_id, type(e)(name, e.tool, e.objective, e.direction), context.trial))
    writer.flush(wait=5.0)
    writer.checkpoint()
    lost = writer.unwritten()
    writer.close()
    if lost is not None:
        warnings.warn(lost, TrackingWarning, stacklevel=2)
        return None
    if end is not None:
        end_trial([StartedRun(writer.url, run_id)], end)
    return run_id
