"""Every SQL write of experiments and trials: joining a run to its experiment, ending a trial.

``JoinExperiment`` is an operation the recorder queues on its ``Writer`` (in
the flush that creates the run, see ``tracker.db.writes``). ``end_trial`` is
applied by ``tracker.record.trial_end`` when a tuning tool ends a trial,
after the trial's fits are over (their writers are done). Imports neither
Keras nor pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tracker.db.base import table_of
from tracker.db.sweep_tables import Experiment, Trial
from tracker.db.tables import Epoch, Param, Phase, Run, StopDecision
from tracker.db.values import encode, utcnow
from tracker.status import PhaseKind, Status

__all__ = ["ExperimentRow", "TrialRow", "ToolStop", "TrialEnd", "JoinExperiment", "experiment_id", "join_experiment",
           "end_trial", "stop_row"]

_EXPERIMENTS, _TRIALS, _RUNS = table_of(Experiment), table_of(Trial), table_of(Run)
_PARAMS, _PHASES, _EPOCHS, _STOPS = table_of(Param), table_of(Phase), table_of(Epoch), table_of(StopDecision)


@dataclass(frozen=True, slots=True)
class ExperimentRow:
    """An experiment as a run names it: its name, and the tool, objective and direction where known."""

    name: str
    tool: str | None = None
    objective: str | None = None
    direction: str | None = None


@dataclass(frozen=True, slots=True)
class TrialRow:
    """The trial a run trains (see ``tracker.db.sweep_tables.Trial``)."""

    trial: str
    number: int | None = None
    execution: int = 0
    continues: str | None = None


@dataclass(frozen=True, slots=True)
class ToolStop:
    """A tuning tool's decision to stop a trial (a pruned trial), as a stop decision row.

    ``stopper``: who decided (the pruner's class, e.g. ``MedianPruner``);
    ``step`` and ``value``: what was last reported to the tool, which it
    judged; ``monitor``: the logs key reported, where known; ``hook``: the
    callback hook the stop was raised in (None when it came after the fit);
    ``status``: the run's status (``finished`` for a tool that ended a trial
    which had reached its end, as Ray Tune does inside ``tune.report``: no
    stop decision row is written then).
    """

    stopper: str
    step: int | None = None
    value: float | None = None
    monitor: str | None = None
    hook: str | None = None
    status: Status = Status.PRUNED


@dataclass(frozen=True, slots=True)
class TrialEnd:
    """What a tool decided when it ended a trial.

    ``state``: the tool's own status; ``score``: its score or value (a float,
    a list for several objectives, None); ``params``: the trial's final
    params (added to a run where it lacks them, never replacing one);
    ``stop``: the tool stopped the trial after the last fit returned (Optuna:
    ``TrialPruned`` raised by the objective after ``fit``), so the run that
    fit belongs to is ``pruned`` too; ``error``: the trial raised after its
    last fit returned (Ray Tune: a trainable raising after ``fit``), so that
    run is ``failed`` with this error too; ``finish``: the runs the tool held
    open (``RunContext.held``: still ``running`` after their last fit) end
    now, ``finished`` (then ``pruned`` or ``failed`` as above).
    """

    state: str | None
    score: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    stop: ToolStop | None = None
    error: str | None = None
    finish: bool = False


@dataclass(slots=True)
class JoinExperiment:
    """Put a new run in its experiment (created if missing) and record the trial it trains."""

    run_id: str
    experiment: ExperimentRow
    trial: TrialRow | None = None


@lru_cache(maxsize=4)
def _insert_ignore(dialect: str, table: str) -> Any:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if table == "experiments":
        return insert_(_EXPERIMENTS).on_conflict_do_nothing(index_elements=["name"])
    return insert_(_TRIALS).on_conflict_do_nothing(index_elements=["run_id"])


def experiment_id(conn: Connection, name: str, tool: str | None = None, objective: str | None = None,
                  direction: str | None = None, created_at: datetime | None = None) -> int:
    """Return the id of the experiment ``name``, creating it with these values if there is none.

    An existing experiment is never changed: the first run that names it decides its tool,
    objective and direction.
    """
    row = {"name": name, "tool": tool, "objective": objective, "direction": direction,
           "created_at": created_at or utcnow()}
    conn.execute(_insert_ignore(conn.dialect.name, "experiments"), [row])
    found: int = conn.execute(select(_EXPERIMENTS.c.id).where(_EXPERIMENTS.c.name == name)).scalar_one()
    return found


def join_experiment(conn: Connection, keys: Any, op: JoinExperiment) -> None:
    """Apply ``JoinExperiment`` (``keys`` unused: the writer's operation signature)."""
    e = op.experiment
    found = experiment_id(conn, e.name, e.tool, e.objective, e.direction)
    conn.execute(update(_RUNS).where(_RUNS.c.id == op.run_id).values(experiment_id=found))
    if op.trial is not None:
        t = op.trial
        conn.execute(_insert_ignore(conn.dialect.name, "trials"), [{
            "run_id": op.run_id, "trial": t.trial, "number": t.number, "execution": t.execution,
            "continues": t.continues,
        }])


def _score_columns(score: Any) -> dict[str, Any]:
    if score is None:
        return {"score": None, "score_bits": None, "score_text": None}
    if isinstance(score, (list, tuple)):  # several objectives: every value, as JSON
        import json

        return {"score": None, "score_bits": None, "score_text": json.dumps([float(v) for v in score])}
    value, bits, text = encode(score)
    return {"score": value, "score_bits": bits, "score_text": text}


def stop_row(stop: ToolStop, epoch: int | None) -> dict[str, Any]:
    """A ``stop_decisions`` row (without ``phase_id``) for a tool's stop at ``epoch``."""
    value, bits = None, None
    if stop.value is not None:
        value, bits, _ = encode(float(stop.value))
    return {"stopped": True, "stopper": stop.stopper, "hook": stop.hook, "epoch": epoch, "stopped_epoch": epoch,
            "monitor": stop.monitor, "step": stop.step, "value": value, "bits": bits}


def end_trial(conn: Connection, run_ids: Sequence[str], end: TrialEnd, *, now: datetime | None = None) -> None:
    """Record the tool's decision on the trial the runs ``run_ids`` trained (the last one trained last).

    Sets the runs' trial ``state``, ``score`` and ``ended_at``, adds the
    params they lack, and with ``end.stop``, marks the last run ``pruned``
    (if it had finished) with a stop decision at the last epoch of its last
    fit; with ``end.error``, marks the last run ``failed`` with it (if it had
    finished). With ``end.finish``, the runs still ``running`` are ``finished`` first.
    """
    if not run_ids:
        return
    values = {"state": end.state, "ended_at": now or utcnow(), **_score_columns(end.score)}
    conn.execute(update(_TRIALS).where(_TRIALS.c.run_id.in_(list(run_ids))).values(**values))
    if end.finish:
        conn.execute(update(_RUNS).where(_RUNS.c.id.in_(list(run_ids)), _RUNS.c.status == Status.RUNNING.value)
                     .values(status=Status.FINISHED.value, ended_at=values["ended_at"]))
    for run_id in run_ids:
        have: set[Any] = set(conn.execute(select(_PARAMS.c.key).where(_PARAMS.c.run_id == run_id)).scalars())
        missing = [{"run_id": run_id, "key": k, "value": v} for k, v in end.params.items() if k not in have]
        if missing:
            conn.execute(insert(_PARAMS), missing)
    last = run_ids[-1]
    if end.error is not None:
        conn.execute(update(_RUNS).where(_RUNS.c.id == last, _RUNS.c.status == Status.FINISHED.value)
                     .values(status=Status.FAILED.value, error=end.error))
    if end.stop is None:
        return
    changed = conn.execute(update(_RUNS).where(_RUNS.c.id == last, _RUNS.c.status == Status.FINISHED.value)
                           .values(status=end.stop.status.value)).rowcount
    fit = conn.execute(select(_PHASES.c.id).where(_PHASES.c.run_id == last, _PHASES.c.kind == PhaseKind.FIT.value)
                       .order_by(_PHASES.c.seq.desc()).limit(1)).scalar()
    if changed and fit is not None:
        epoch = conn.execute(select(_EPOCHS.c.epoch).where(_EPOCHS.c.phase_id == fit)
                             .order_by(_EPOCHS.c.epoch.desc()).limit(1)).scalar()
        conn.execute(insert(_STOPS).values(phase_id=fit, **stop_row(end.stop, epoch)))
