"""Ray Tune, in a worker: which trial this process trains, the runs it started for it, and the trial's end.

Ray runs a trial in an actor: an instance of the trainable (a
``tune.Trainable``). There are two kinds, and both are covered:

* a **function trainable** (``FunctionTrainable``): Ray runs the user's
  function in a training thread, with a train session (``tune.report``);
  a second ``fit`` in one attempt is a run of its own (tag ``execution``);
* a **class trainable** (a ``tune.Trainable`` subclass): Ray calls its
  ``setup`` once, then its ``step`` once per iteration, in the actor's
  thread, with no session. Each ``step`` usually calls ``fit`` once, so
  every fit of the trial continues the trial's one run (a new phase each).

The runs a process starts for a trial are kept here (``trials``), so that
the trial's end (Ray's state, the last reported value of the search's
metric and, for a class trainable, a scheduler's stop) can be written on
them: ``end``.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracker.db.sweep_writes import ExperimentRow, ToolStop, TrialEnd, TrialRow
from tracker.errors import TrackingWarning
from tracker.integrations.ray_driver import kv_get, number
from tracker.record.autologging import autolog_target
from tracker.record.extensions import RunContext, StartedRun, TrialToContinue
from tracker.record.trials import end_trial, plain_params, record_failed_run
from tracker.record.writer import writers_of

__all__ = ["TOOL", "WorkerTrials", "trials", "trainable", "is_class_trainable", "trial_id", "experiment_name",
           "search", "context", "continuation", "score", "end", "failed_before_fit", "noted_stop"]

logger = logging.getLogger(__name__)
TOOL = "ray_tune"


@dataclass
class WorkerTrials:
    """What this process knows of the trials it trains (one worker process runs one actor)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    started: dict[str, list[StartedRun]] = field(default_factory=dict)  # trial id -> runs started (or continued)
    last_reports: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # trial id -> its last report
    ended: set[str] = field(default_factory=set)  # trial ids whose end this process has recorded
    experiments: dict[str, str] = field(default_factory=dict)  # trial id -> its experiment's name
    #: The trial this process last started a run for: (trial id, experiment). Ray shuts a function trial's
    #: session down before its training thread has unwound, and gives a reused class actor its next trial
    #: before ``reset_config``: the trial that is ending is found here.
    current: tuple[str, str] | None = None


trials = WorkerTrials()


def trainable() -> Any:
    """The Tune trainable this process runs a trial of (the actor's instance), or None.

    A function trainable counts only while its train session is open (its training thread runs).
    """
    if "ray.tune.trainable.trainable" not in sys.modules:
        return None
    import ray._private.worker as ray_worker
    from ray.tune.trainable import FunctionTrainable, Trainable

    worker = ray_worker.global_worker
    found = getattr(worker, "actors", {}).get(getattr(worker, "actor_id", None))
    if not isinstance(found, Trainable):
        return None
    if isinstance(found, FunctionTrainable):
        from ray.train._internal.session import get_session

        if get_session() is None:
            return None
    return found


def is_class_trainable(found: Any) -> bool:
    """Whether ``found`` (a trainable) is a ``tune.Trainable`` subclass of the user's, not a function's."""
    from ray.tune.trainable import FunctionTrainable

    return not isinstance(found, FunctionTrainable)


def trial_id(found: Any) -> str:
    """The trial the trainable runs: for a function, the one its session trains (or ended in).

    Under ``reuse_actors`` Ray gives the actor its next trial (``Trainable.reset`` sets the actor's
    ``trial_id``) before ``reset_config`` ends the session of the trial it ran: until the session is
    reset, the session's trial is the one that is ending, and the actor's is already the next one.
    """
    if not is_class_trainable(found):
        try:
            from ray.train._internal.session import get_session

            info = getattr(get_session(), "trial_info", None)
            session_trial = getattr(info, "id", None)
            if session_trial:
                return str(session_trial)
        except Exception:  # noqa: BLE001
            logger.debug("tracker: no Ray Tune session to name the trial", exc_info=True)
    return str(found.trial_id)


def _trial_number(trial: str) -> int | None:
    tail = trial.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _flat(config: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}/"))
        else:
            out[name] = value
    return out


def experiment_name(found: Any) -> str:
    """The Ray experiment's name (``RunConfig(name=...)``), as Ray's storage for the trial holds it."""
    storage = getattr(found, "_storage", None)
    name = getattr(storage, "experiment_dir_name", None)
    if isinstance(name, str):
        return name
    from ray import tune

    return str(tune.get_context().get_experiment_name())


def search(experiment: str) -> dict[str, Any]:
    """What the driver noted of the search: its scheduler, metric and mode (empty without the driver's hook)."""
    return kv_get(f"experiment/{experiment}") or {}


def context() -> RunContext | None:
    """The run context provider: the trial this worker runs, if any."""
    found = trainable()
    if found is None:
        return None
    trial, experiment = trial_id(found), experiment_name(found)
    trials.current, trials.experiments[trial] = (trial, experiment), experiment
    found_search = search(experiment)
    mode = found_search.get("mode")
    runs = trials.started.setdefault(trial, [])
    execution = len({run.run_id for run in runs})
    tags = {"trial": trial, **({"execution": str(execution)} if execution else {})}
    name = str(found.trial_name)
    return RunContext(
        experiment=ExperimentRow(experiment, TOOL, found_search.get("metric"),
                                 mode if mode in ("min", "max") else None),
        trial=TrialRow(trial, _trial_number(trial), execution),
        run_name=f"{name}-e{execution}" if execution else name,
        params=plain_params(_flat(found.config or {}), source=f"Ray Tune trial {trial}"),
        tags=tags,
        started=runs.append,
        held=is_class_trainable(found),  # its steps' fits are one run, which the trial's end finishes
    )


def continuation() -> TrialToContinue | None:
    """The continuation provider: the trial this worker runs, whose earlier run is continued.

    A function trainable continues only an earlier attempt's run (Ray restarted the trial); a class
    trainable also continues the run its earlier steps started here: its fits are one run. Those
    runs' records are written first (their writers flushed), so that the database names the run.
    """
    found = trainable()
    if found is None:
        return None
    trial = trial_id(found)
    here = frozenset(run.run_id for run in trials.started.get(trial, ()))
    if not is_class_trainable(found):
        return TrialToContinue(experiment_name(found), trial, here)
    for writer in writers_of(here):
        try:
            writer.flush(wait=10.0)
        except Exception:  # noqa: BLE001 - the writer warns and retries; a new run starts then
            logger.debug("tracker: could not write a Ray Tune trial's earlier run", exc_info=True)
    return TrialToContinue(experiment_name(found), trial)


def noted_stop(trial: str, hook: str | None = None) -> ToolStop | None:
    """The scheduler's stop of ``trial`` the driver noted (``ray_driver``), as a stop decision, or None."""
    noted = kv_get(f"stop/{trial}")
    if noted is None:
        return None
    value, step, metric = noted.get("value"), noted.get("step"), noted.get("metric")
    return ToolStop(str(noted.get("scheduler") or "Ray Tune"),
                    int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None,
                    float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None,
                    metric if isinstance(metric, str) else None, hook)


def score(trial: str) -> Any:
    """The last value the trial reported of the search's metric (None when unknown)."""
    experiment = trials.experiments.get(trial)
    metric = search(experiment).get("metric") if experiment is not None else None
    report = trials.last_reports.get(trial)
    if not isinstance(metric, str) or report is None:
        return None
    return number(report.get(metric))


def end(trial: str, state: str, stop: ToolStop | None = None, error: str | None = None, *,
        finish: bool = False) -> None:
    """Record Ray's state of the trial and its score on the trial's runs, once.

    ``stop``: a scheduler stopped a class trainable between two steps (its last run is ``pruned``);
    ``error``: the trial raised, after its last fit returned if that run ``finished`` (it is ``failed``);
    ``finish``: a class trainable's run, held ``running`` between steps, ends now.
    """
    with trials.lock:
        if trial in trials.ended:
            return
        runs = list(dict.fromkeys(trials.started.get(trial, ())))
        if not runs:
            return
        trials.ended.add(trial)
    try:
        end_trial(runs, TrialEnd(state, score(trial), stop=stop, error=error, finish=finish))
    except Exception as exc:  # noqa: BLE001 - tracking never stops the search
        warnings.warn(f"tracker: could not record the end of Ray Tune trial {trial}: {exc}", TrackingWarning,
                      stacklevel=2)


def failed_before_fit(found: Any, error: str) -> None:
    """A trainable that raised before any fit: a ``failed`` run of its own, under ``tracker.autolog``."""
    trial = trial_id(found)
    target = autolog_target()
    if trials.started.get(trial) or target is None:
        return
    found_context = context()
    if found_context is None or found_context.experiment is None:
        return
    from tracker.db.migrate import open_database
    from tracker.record.resume import find_trial_run

    experiment = target[1] if target[1] is not None else found_context.experiment.name
    engine, _ = open_database(target[0])
    if find_trial_run(engine, experiment, trial) is not None:
        return  # an earlier attempt at the trial (Ray retried it) has its run
    found_context.started = None
    run_id = record_failed_run(target[0], found_context, error, experiment=target[1])
    if run_id is not None:
        from tracker.db.engine import resolve_url

        trials.started.setdefault(trial, []).append(StartedRun(resolve_url(target[0]), run_id))
