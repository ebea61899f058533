"""Ray Tune: every trial whose trainable fits is a run of the Ray experiment, with no driver-side code.

``install()`` runs as soon as ``ray.tune`` is imported (``import tracker``
arranges it, see ``tracker.INSTALLERS``), once per process: in each Ray
worker that runs a trial (Ray imports ``ray.tune`` there before the
trainable) and in the driver. It registers a run context provider, a
continuation provider and a stop classifier (``tracker.record.extensions``)
and wraps a few methods of Ray 2.60 (the ``ray`` extra pins it), each a
pass-through that only reads what Ray holds.

In a worker, a run started during a trial (by ``tracker.autolog(db)`` or a
``TrackingCallback`` in the trainable) gets the Ray experiment (tool
``ray_tune``), the trial (id, index, tag ``trial``), the trial's config as
params (nested dicts flattened as ``a/b``) and the trial's name. Its end:
``finished`` when the trainable returned or the trial reached its end;
``pruned`` with a stop decision when a scheduler stopped it inside
``tune.report`` (Ray raises ``SystemExit(0)`` there; who decided is noted by
the driver in Ray's key-value store, ``tracker.integrations.ray_driver``);
``failed`` when it raised; ``running`` (read as ``crashed``) when the worker
was killed, continued when Ray restarts the trial. docs/sweeps.md ("Ray
Tune") tells the whole story.

When a trial ends in a worker, Ray's state and the last value reported for
the search's metric are recorded as the trial's state and score. The worker
waits (up to ``JOIN_TIMEOUT`` seconds) for the training thread to finish
recording before Ray tears the actor down.

Class-API trainables (``tune.Trainable`` subclasses) are not covered.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from tracker.db.sweep_writes import ExperimentRow, ToolStop, TrialEnd, TrialRow
from tracker.errors import TrackingWarning
from tracker.record.autologging import autolog_target
from tracker.record.capture import EventFailure
from tracker.record.extensions import (
    RunContext,
    StartedRun,
    TrialToContinue,
    add_continuation_provider,
    add_run_context_provider,
    add_stop_classifier,
)
from tracker.integrations.ray_driver import kv_get, number, wrap_controller_init, wrap_set_search_properties
from tracker.record.trials import end_trial, plain_params, record_failed_run
from tracker.status import Status

__all__ = ["install", "TOOL", "JOIN_TIMEOUT"]

logger = logging.getLogger(__name__)
TOOL = "ray_tune"
JOIN_TIMEOUT = 30.0
_lock = threading.Lock()
_installed = False
_started: dict[str, list[StartedRun]] = {}  # trial id -> runs this process started (or continued) for it
_last_reports: dict[str, Mapping[str, Any]] = {}  # trial id -> what the trial last passed to tune.report
_ended: set[str] = set()  # trial ids whose end this process has recorded
#: The trial this process last started a run for: (trial id, experiment). Ray shuts the trial's session
#: down before its training thread has unwound, so what that thread records at its end is found here.
_current: tuple[str, str] | None = None
_experiments: dict[str, str] = {}  # trial id -> its experiment's name


# -- what the worker knows ------------------------------------------------------------------------


def _trainable() -> Any:
    """The Tune trainable this process runs a trial of (the actor's instance), or None."""
    if "ray.train._internal.session" not in sys.modules:
        return None
    from ray.train._internal.session import get_session

    if get_session() is None:
        return None
    import ray._private.worker as ray_worker
    from ray.tune.trainable import Trainable

    worker = ray_worker.global_worker
    found = getattr(worker, "actors", {}).get(getattr(worker, "actor_id", None))
    return found if isinstance(found, Trainable) else None


def _trial_id(trainable: Any) -> str:
    """The trial the worker's session runs: the one the training thread trains, or ended in.

    Under ``reuse_actors`` Ray gives the actor its next trial (``Trainable.reset`` sets the actor's
    ``trial_id``) before ``reset_config`` ends the session of the trial it ran: until the session is
    reset, the session's trial is the one that is ending, and the actor's is already the next one.
    """
    try:
        from ray.train._internal.session import get_session

        info = getattr(get_session(), "trial_info", None)
        found = getattr(info, "id", None)
        if found:
            return str(found)
    except Exception:  # noqa: BLE001
        logger.debug("tracker: no Ray Tune session to name the trial", exc_info=True)
    return str(trainable.trial_id)


def _trial_number(trial_id: str) -> int | None:
    tail = trial_id.rsplit("_", 1)[-1]
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


def _experiment_name(trainable: Any) -> str:
    from ray import tune

    return str(tune.get_context().get_experiment_name())


def _search(experiment: str) -> dict[str, Any]:
    """What the driver noted of the search: its scheduler, metric and mode (empty without the driver's hook)."""
    return kv_get(f"experiment/{experiment}") or {}


def _context() -> RunContext | None:
    """The run context provider: the trial this worker runs, if any."""
    trainable = _trainable()
    if trainable is None:
        return None
    global _current
    _wrap_trainable_class(type(trainable))
    trial_id = _trial_id(trainable)
    experiment = _experiment_name(trainable)
    _current, _experiments[trial_id] = (trial_id, experiment), experiment
    search = _search(experiment)
    mode = search.get("mode")
    runs = _started.setdefault(trial_id, [])
    execution = len(runs)
    tags = {"trial": trial_id, **({"execution": str(execution)} if execution else {})}
    name = str(trainable.trial_name)
    return RunContext(
        experiment=ExperimentRow(experiment, TOOL, search.get("metric"), mode if mode in ("min", "max") else None),
        trial=TrialRow(trial_id, _trial_number(trial_id), execution),
        run_name=f"{name}-e{execution}" if execution else name,
        params=plain_params(_flat(trainable.config or {}), source=f"Ray Tune trial {trial_id}"),
        tags=tags,
        started=runs.append,
    )


def _continuation() -> TrialToContinue | None:
    """The continuation provider: the trial this worker runs (its earlier attempt's run is continued)."""
    trainable = _trainable()
    if trainable is None:
        return None
    trial_id = _trial_id(trainable)
    here = frozenset(run.run_id for run in _started.get(trial_id, ()))
    return TrialToContinue(_experiment_name(trainable), trial_id, here)


def _raised_by_report(exc: BaseException) -> bool:
    """Whether ``exc`` is the ``SystemExit(0)`` Ray raises inside ``tune.report`` to end a trial."""
    if not isinstance(exc, SystemExit) or exc.code not in (0, None):
        return False
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_report_training_result" and "ray" in code.co_filename:
            return True
        tb = tb.tb_next
    return False


def _classify(exc: BaseException, failure: EventFailure | None) -> ToolStop | None:
    """The stop classifier: Ray's end of a trial inside ``tune.report`` (see the module docstring)."""
    if not _raised_by_report(exc):
        return None
    trainable, hook = _trainable(), failure.event if failure is not None else None
    if trainable is not None:
        trial_id, experiment = _trial_id(trainable), _experiment_name(trainable)
    elif _current is not None:
        trial_id, experiment = _current
    else:
        return ToolStop("Ray Tune", hook=hook, status=Status.FINISHED)
    noted = kv_get(f"stop/{trial_id}")
    if noted is not None:
        value = noted.get("value")
        return ToolStop(str(noted.get("scheduler") or "Ray Tune"), _int(noted.get("step")),
                        float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None,
                        noted.get("metric") if isinstance(noted.get("metric"), str) else None, hook)
    if _search(experiment).get("driver"):
        return ToolStop("Ray Tune", hook=hook, status=Status.FINISHED)  # the driver saw no scheduler stop
    epochs, epoch = _planned_epochs(failure), failure.epoch if failure is not None else None
    if epochs is not None and epoch is not None and epoch + 1 < epochs:
        report = _last_reports.get(trial_id, {})
        step = report.get("training_iteration")
        return ToolStop("Ray Tune", _int(step), hook=hook)
    return ToolStop("Ray Tune", hook=hook, status=Status.FINISHED)


def _planned_epochs(failure: EventFailure | None) -> int | None:
    model = getattr(getattr(failure, "callback", None), "model", None)
    history = getattr(model, "history", None)
    params = getattr(history, "params", None) or {}
    epochs = params.get("epochs") if isinstance(params, Mapping) else None
    return epochs if isinstance(epochs, int) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- the end of a trial, in the worker ------------------------------------------------------------


def _score(trial_id: str, experiment: str) -> Any:
    metric = _search(experiment).get("metric")
    report = _last_reports.get(trial_id)
    if not isinstance(metric, str) or report is None:
        return None
    return number(report.get(metric))


def _end(trial_id: str, state: str) -> None:
    """Record Ray's state of the trial and its last reported metric on the trial's runs (once)."""
    experiment = _experiments.get(trial_id)
    with _lock:
        if trial_id in _ended:
            return
        runs = list(_started.get(trial_id, ()))
        if not runs:
            return
        _ended.add(trial_id)
    try:
        end_trial(runs, TrialEnd(state, None if experiment is None else _score(trial_id, experiment)))
    except Exception as exc:  # noqa: BLE001 - tracking never stops the search
        warnings.warn(f"tracker: could not record the end of Ray Tune trial {trial_id}: {exc}", TrackingWarning,
                      stacklevel=2)


def _failed_before_fit(trainable: Any, error: str) -> None:
    """A trainable that raised before any fit: a ``failed`` run of its own, under ``tracker.autolog``."""
    trial_id = _trial_id(trainable)
    target = autolog_target()
    if _started.get(trial_id) or target is None:
        return
    context = _context()
    if context is None or context.experiment is None:
        return
    from tracker.db.migrate import open_database
    from tracker.record.resume import find_trial_run

    experiment = target[1] if target[1] is not None else context.experiment.name
    engine, _ = open_database(target[0])
    if find_trial_run(engine, experiment, trial_id) is not None:
        return  # an earlier attempt at the trial (Ray retried it) has its run
    context.started = None
    run_id = record_failed_run(target[0], context, error, experiment=target[1])
    if run_id is not None:
        from tracker.db.engine import resolve_url

        _started.setdefault(trial_id, []).append(StartedRun(resolve_url(target[0]), run_id))


def _wrap_propagate(original: Any) -> Any:
    """``RunnerThread._propagate_exception``: the training function raised (in the training thread)."""

    @functools.wraps(original)
    def propagate(self: Any, e: BaseException) -> Any:
        try:
            trainable = _trainable()
            if trainable is not None:
                _failed_before_fit(trainable, f"{type(e).__name__}: {e}")
                _end(_trial_id(trainable), "ERROR")
        except Exception:  # noqa: BLE001
            logger.exception("tracker: could not record a Ray Tune trial's error")
        return original(self, e)

    propagate._tracker_wrapped = True  # type: ignore[attr-defined]
    return propagate


def _wrap_report(original: Any) -> Any:
    """``_TrainSession.report``: keep what the trial reports last (its score, at its end)."""

    @functools.wraps(original)
    def report(self: Any, metrics: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            trial_id = str(self.trial_info.id)
            if trial_id in _started and isinstance(metrics, Mapping):
                _last_reports[trial_id] = {**metrics, "training_iteration": self.iteration + 1}
        except Exception:  # noqa: BLE001
            logger.debug("tracker: could not note a Ray Tune report", exc_info=True)
        return original(self, metrics, *args, **kwargs)

    report._tracker_wrapped = True  # type: ignore[attr-defined]
    return report


def _finish_trial(trial_id: str, thread: Any) -> None:
    """Before Ray tears the trial's actor down: let the training thread finish recording, then end the trial."""
    if trial_id not in _started:
        return
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(JOIN_TIMEOUT)  # Ray ends it inside tune.report (SystemExit); its fit records the end
    _end(trial_id, "TERMINATED")


def _wrap_cleanup(original: Any) -> Any:
    """``FunctionTrainable.cleanup``: Ray stops the trial (its end, its scheduler's stop, the search's end)."""

    @functools.wraps(original)
    def cleanup(self: Any) -> Any:
        session, thread, trial_id = None, None, None
        try:
            from ray.train._internal.session import get_session

            session = get_session()
            thread = getattr(session, "training_thread", None)
            trial_id = _trial_id(self)  # the session's: a failed reset_config left the actor naming the next
        except Exception:  # noqa: BLE001
            logger.debug("tracker: no Ray Tune session at cleanup", exc_info=True)
        try:
            return original(self)
        finally:
            try:
                _finish_trial(trial_id if trial_id is not None else str(self.trial_id), thread)
            except Exception:  # noqa: BLE001
                logger.exception("tracker: could not record the end of a Ray Tune trial")

    cleanup._tracker_wrapped = True  # type: ignore[attr-defined]
    return cleanup


def _wrap_reset(original: Any) -> Any:
    """``FunctionTrainable.reset_config`` (``reuse_actors``): the actor's trial ends, another begins.

    Ray has set the actor's ``trial_id`` to the next trial already: the trial that ends is the
    session's, read before ``reset_config`` resets the session. When the reset fails (the training
    thread still runs), Ray tears the actor down and ``cleanup`` ends the trial.
    """

    @functools.wraps(original)
    def reset_config(self: Any, new_config: Any) -> Any:
        trial_id = _trial_id(self)
        done = original(self, new_config)
        if not done:
            return done
        try:
            _end(trial_id, "TERMINATED")
        except Exception:  # noqa: BLE001
            logger.exception("tracker: could not record the end of a Ray Tune trial")
        return done

    reset_config._tracker_wrapped = True  # type: ignore[attr-defined]
    return reset_config


def _wrap_trainable_class(cls: type) -> None:
    """Wrap ``cleanup`` and ``reset_config`` of the actor's own class (once).

    Ray's actor class is a subclass made when the actor is created, holding
    copies of the trainable's methods: a patch of ``FunctionTrainable`` made
    later (``tracker`` is imported by the trainable) would not be seen.
    """
    with _lock:
        for name, wrap in (("cleanup", _wrap_cleanup), ("reset_config", _wrap_reset)):
            original = getattr(cls, name, None)
            if original is not None and not getattr(original, "_tracker_wrapped", False):
                setattr(cls, name, wrap(original))


def install() -> None:
    """Register the providers and the classifier, and wrap Ray's methods (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        from ray.air._internal.util import RunnerThread
        from ray.train._internal.session import _TrainSession
        from ray.tune.execution.tune_controller import TuneController
        from ray.tune.schedulers import TrialScheduler

        for owner, name, wrap in ((RunnerThread, "_propagate_exception", _wrap_propagate),
                                  (_TrainSession, "report", _wrap_report),
                                  (TrialScheduler, "set_search_properties", wrap_set_search_properties),
                                  (TuneController, "__init__", wrap_controller_init)):
            original = getattr(owner, name)
            if not getattr(original, "_tracker_wrapped", False):
                setattr(owner, name, wrap(original))
        add_run_context_provider(_context)
        add_continuation_provider(_continuation)
        add_stop_classifier(_classify)
        _installed = True
