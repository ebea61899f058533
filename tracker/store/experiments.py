"""Experiments: the listing (one row per experiment) and the experiment and trial of one run.

Behind ``Store.experiments``, ``tracker experiments`` and ``Store.run``.
The best run of an experiment comes from ``tracker.store.sweeps`` (the
tool's own ranking, else a metric). Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from tracker.db.bits import decode
from tracker.db.sweep_tables import Experiment, Trial
from tracker.db.tables import Run
from tracker.status import Status
from tracker.store.liveness import effective_status

__all__ = ["EXPERIMENT_COLUMNS", "STATUS_COLUMNS", "experiments_rows", "experiments_frame", "trial_of"]

#: The run statuses counted per experiment, in this order.
STATUS_COLUMNS = [s.value for s in Status]
#: The columns of ``experiments_rows``.
EXPERIMENT_COLUMNS = ["experiment", "tool", "objective", "direction", "runs", "trials", *STATUS_COLUMNS,
                      "started_at", "ended_at", "metric", "best", "best_trial", "best_run", "best_name"]


def experiments_rows(engine: Engine, *, heartbeat_timeout: float) -> list[list[Any]]:
    """One row per experiment (``EXPERIMENT_COLUMNS``), by name; see ``Store.experiments``."""
    from tracker.store.sweeps import sweep_info

    with engine.connect() as conn:
        experiments = conn.execute(
            select(Experiment.id, Experiment.name, Experiment.tool, Experiment.objective, Experiment.direction)
            .order_by(Experiment.name)
        ).all()
        runs = conn.execute(  # runs in the trash (tracker delete) are out of view
            select(Run.experiment_id, Run.status, Run.host, Run.pid, Run.started_at, Run.ended_at, Run.heartbeat_at)
            .where(Run.experiment_id.is_not(None), Run.deleted_at.is_(None))
        ).all()
        trashed = set(conn.execute(select(Run.experiment_id).where(Run.deleted_at.is_not(None)).distinct()).scalars())
        trials = dict(conn.execute(
            select(Run.experiment_id, func.count(func.distinct(Trial.trial)))
            .join(Trial, Trial.run_id == Run.id).where(Run.deleted_at.is_(None)).group_by(Run.experiment_id)
        ).all())
    by_experiment: dict[int, list[Any]] = {}
    for row in runs:
        by_experiment.setdefault(row.experiment_id, []).append(row)
    out = []
    for experiment_id, name, tool, objective, direction in experiments:
        mine = by_experiment.get(experiment_id, [])
        if not mine and experiment_id in trashed:
            continue  # every run of it is in the trash
        counts = dict.fromkeys(STATUS_COLUMNS, 0)
        for r in mine:
            status = effective_status(getattr(r.status, "value", r.status), r.host, r.pid, r.started_at,
                                      r.heartbeat_at, timeout=heartbeat_timeout)
            counts[status] = counts.get(status, 0) + 1
        started = min((r.started_at for r in mine), default=None)
        ended = None if counts["running"] or not mine else max((r.ended_at for r in mine if r.ended_at), default=None)
        best: list[Any] = [None] * 5
        if mine:
            info = sweep_info(engine, name, heartbeat_timeout=heartbeat_timeout)
            top = info.trials[0] if info.trials and info.trials[0].rank == 1 else None
            if top is not None:
                best = [info.ranked_by, top.objective, top.trial if info.tool else None, top.best_run, top.name]
        out.append([name, tool, objective, direction, len(mine), trials.get(experiment_id, 0),
                    *(counts[s] for s in STATUS_COLUMNS), started, ended, *best])
    return out


def experiments_frame(engine: Engine, *, heartbeat_timeout: float) -> Any:
    """``experiments_rows`` as a DataFrame (counts as ints, times as datetimes, ``best`` a float)."""
    import pandas as pd

    from tracker.store.base import float_column

    frame = pd.DataFrame(experiments_rows(engine, heartbeat_timeout=heartbeat_timeout), columns=EXPERIMENT_COLUMNS)
    for column in ("runs", "trials", *STATUS_COLUMNS):
        frame[column] = frame[column].astype("int64")
    for column in ("started_at", "ended_at"):
        frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    frame["best"] = float_column(list(frame["best"]))
    return frame


def trial_of(engine: Engine, run_id: str) -> dict[str, Any]:
    """The run's experiment and trial, for ``Store.run``: ``experiment`` (its name), and for a
    tool's trial ``trial``, ``trial_number``, ``execution``, ``continues``, ``trial_state`` and
    ``trial_score`` (bit-exact; a list for several objectives). Empty for a run in no experiment."""
    import json

    with engine.connect() as conn:
        found = conn.execute(
            select(Experiment.name, Trial.trial, Trial.number, Trial.execution, Trial.continues, Trial.state,
                   Trial.score, Trial.score_bits, Trial.score_text)
            .select_from(Run).join(Experiment, Experiment.id == Run.experiment_id)
            .outerjoin(Trial, Trial.run_id == Run.id).where(Run.id == run_id)
        ).first()
    if found is None:
        return {}
    out: dict[str, Any] = {"experiment": found.name}
    if found.trial is not None:
        score = decode(found.score, found.score_bits, found.score_text)
        if isinstance(score, str) and score.startswith("["):
            score = json.loads(score)
        out.update(trial=found.trial, trial_number=found.number, execution=found.execution,
                   continues=found.continues, trial_state=found.state, trial_score=score)
    return out
