"""Ray Tune: every trial whose trainable fits is a run of the Ray experiment, with no driver-side code.

``install()`` runs as soon as ``ray.tune`` is imported (``import tracker``
arranges it, see ``tracker.INSTALLERS``), once per process: in each Ray
worker that runs a trial (Ray imports ``ray.tune`` there before the
trainable) and in the driver. It registers a run context provider, a
continuation provider and a stop classifier (``tracker.record.extensions``)
and wraps a few methods of Ray 2.60 (the ``ray`` extra pins it), each a
pass-through that only reads what Ray holds.

In a worker, a run started during a trial (by ``tracker.autolog(db)`` or a
``TrackingCallback`` in the trainable, a function or a ``tune.Trainable``
subclass: ``tracker.integrations.ray_worker``) gets the Ray experiment
(tool ``ray_tune``), the trial (id, index, tag ``trial``), the trial's
config as params (nested dicts flattened as ``a/b``) and the trial's name.
Its end:

* ``finished`` when the trainable returned or the trial reached its end;
* ``pruned`` with a stop decision when a scheduler stopped it: inside
  ``tune.report`` for a function (Ray raises ``SystemExit(0)`` there), or
  between two steps of a class trainable (Ray calls ``Trainable.stop``, or
  hands a reused actor its next trial). Who decided is noted by the driver
  in Ray's key-value store (``tracker.integrations.ray_driver``);
* ``failed`` when it raised;
* ``running`` (read as ``crashed``) when the worker was killed, continued
  when Ray restarts the trial.

When a trial ends in a worker, Ray's state and the last value reported for
the search's metric are recorded as the trial's state and score. The worker
waits (up to ``JOIN_TIMEOUT`` seconds) for a function's training thread to
finish recording before Ray tears the actor down. docs/sweeps.md ("Ray
Tune") tells the whole story.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping
from typing import Any

from tracker.db.sweep_writes import ToolStop
from tracker.integrations import ray_worker
from tracker.integrations.ray_driver import wrap_controller_init, wrap_set_search_properties
from tracker.integrations.ray_worker import (
    end,
    experiment_name,
    failed_before_fit,
    is_class_trainable,
    noted_stop,
    search,
    trainable,
    trial_id,
    trials,
)
from tracker.record.capture import EventFailure
from tracker.record.extensions import (
    RunContext,
    TrialToContinue,
    add_continuation_provider,
    add_run_context_provider,
    add_stop_classifier,
)
from tracker.status import Status

__all__ = ["install", "TOOL", "JOIN_TIMEOUT"]

logger = logging.getLogger(__name__)
TOOL = ray_worker.TOOL
JOIN_TIMEOUT = 30.0
_installed = False


def _context() -> RunContext | None:
    """The run context provider (``ray_worker.context``), wrapping the actor's class first."""
    found = trainable()
    if found is None:
        return None
    _wrap_trainable_class(type(found))
    return ray_worker.context()


def _continuation() -> TrialToContinue | None:
    found = trainable()
    if found is None:
        return None
    _wrap_trainable_class(type(found))
    return ray_worker.continuation()


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
    """The stop classifier: Ray's end of a function trial inside ``tune.report`` (see the module docstring)."""
    if not _raised_by_report(exc):
        return None
    found, hook = trainable(), failure.event if failure is not None else None
    if found is not None:
        trial, experiment = trial_id(found), experiment_name(found)
    elif trials.current is not None:
        trial, experiment = trials.current
    else:
        return ToolStop("Ray Tune", hook=hook, status=Status.FINISHED)
    noted = noted_stop(trial, hook)
    if noted is not None:
        return noted
    if search(experiment).get("driver"):
        return ToolStop("Ray Tune", hook=hook, status=Status.FINISHED)  # the driver saw no scheduler stop
    epochs, epoch = _planned_epochs(failure), failure.epoch if failure is not None else None
    if epochs is not None and epoch is not None and epoch + 1 < epochs:
        report = trials.last_reports.get(trial, {})
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


def _wrap_propagate(original: Any) -> Any:
    """``RunnerThread._propagate_exception``: the training function raised (in the training thread)."""

    @functools.wraps(original)
    def propagate(self: Any, e: BaseException) -> Any:
        try:
            found = trainable()
            if found is not None:
                error = f"{type(e).__name__}: {e}"
                failed_before_fit(found, error)
                end(trial_id(found), "ERROR", error=error)
        except Exception:  # noqa: BLE001
            logger.exception("tracker: could not record a Ray Tune trial's error")
        return original(self, e)

    propagate._tracker_wrapped = True  # type: ignore[attr-defined]
    return propagate


def _wrap_skip_exceptions(original: Any) -> Any:
    """``skip_exceptions`` as ``Trainable.train`` calls it: a class trainable's ``step`` raised."""

    @functools.wraps(original)
    def skip_exceptions(exc: Any) -> Any:
        try:
            found = trainable()
            if found is not None and is_class_trainable(found):
                error = f"{type(exc).__name__}: {exc}"
                failed_before_fit(found, error)
                end(trial_id(found), "ERROR", error=error, finish=True)
        except Exception:  # noqa: BLE001
            logger.exception("tracker: could not record a Ray Tune trial's error")
        return original(exc)

    skip_exceptions._tracker_wrapped = True  # type: ignore[attr-defined]
    return skip_exceptions


def _wrap_report(original: Any) -> Any:
    """``_TrainSession.report``: keep what the trial reports last (its score, at its end)."""

    @functools.wraps(original)
    def report(self: Any, metrics: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            trial = str(self.trial_info.id)
            if trial in trials.started and isinstance(metrics, Mapping):
                trials.last_reports[trial] = {**metrics, "training_iteration": self.iteration + 1}
        except Exception:  # noqa: BLE001
            logger.debug("tracker: could not note a Ray Tune report", exc_info=True)
        return original(self, metrics, *args, **kwargs)

    report._tracker_wrapped = True  # type: ignore[attr-defined]
    return report


def _finish_trial(trial: str, thread: Any) -> None:
    """Before Ray tears the trial's actor down: let the training thread finish recording, then end the trial."""
    if trial not in trials.started:
        return
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(JOIN_TIMEOUT)  # Ray ends it inside tune.report (SystemExit); its fit records the end
    end(trial, "TERMINATED")


def _end_class_trials(found: Any, keep: str | None = None) -> None:
    """A class trainable's trials this process has not ended yet end now (all but ``keep``, the next one).

    Nothing was raised: Ray stopped the actor (``cleanup``) or handed it the next trial (``reset_config``).
    The latest trial's score is its last ``step`` result; a stop its scheduler decided (noted by the
    driver) makes its run ``pruned``.
    """
    latest = trials.current[0] if trials.current is not None else None
    last = getattr(found, "_last_result", None)
    for trial in [t for t in trials.started if t not in trials.ended and t != keep]:
        if trial == latest and isinstance(last, Mapping):
            trials.last_reports[trial] = dict(last)
        end(trial, "TERMINATED", noted_stop(trial), finish=True)


def _wrap_cleanup(original: Any) -> Any:
    """``cleanup``, which ``Trainable.stop`` calls: Ray stops the trial (its end, a scheduler's stop, the search's end)."""

    @functools.wraps(original)
    def cleanup(self: Any) -> Any:
        session, thread, trial = None, None, None
        if is_class_trainable(self):
            try:
                return original(self)
            finally:
                try:
                    _end_class_trials(self)
                except Exception:  # noqa: BLE001
                    logger.exception("tracker: could not record the end of a Ray Tune trial")
        try:
            from ray.train._internal.session import get_session

            session = get_session()
            thread = getattr(session, "training_thread", None)
            trial = trial_id(self)  # the session's: a failed reset_config left the actor naming the next
        except Exception:  # noqa: BLE001
            logger.debug("tracker: no Ray Tune session at cleanup", exc_info=True)
        try:
            return original(self)
        finally:
            try:
                _finish_trial(trial if trial is not None else str(self.trial_id), thread)
            except Exception:  # noqa: BLE001
                logger.exception("tracker: could not record the end of a Ray Tune trial")

    cleanup._tracker_wrapped = True  # type: ignore[attr-defined]
    return cleanup


def _wrap_reset(original: Any) -> Any:
    """``reset_config`` (``reuse_actors``): the actor's trial ends, another begins.

    Ray has set the actor's ``trial_id`` to the next trial already: the trial that ends is a function's
    session's, read before ``reset_config`` resets the session, or the trial a class trainable last
    started a run for. When the reset fails, Ray tears the actor down and ``cleanup`` ends the trial.
    """

    @functools.wraps(original)
    def reset_config(self: Any, new_config: Any) -> Any:
        trial = None if is_class_trainable(self) else trial_id(self)
        done = original(self, new_config)
        if not done:
            return done
        try:
            if trial is None:
                _end_class_trials(self, keep=str(self.trial_id))
            else:
                end(trial, "TERMINATED")
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
    with trials.lock:
        for name, wrap in (("cleanup", _wrap_cleanup), ("reset_config", _wrap_reset)):
            original = getattr(cls, name, None)
            if original is not None and not getattr(original, "_tracker_wrapped", False):
                setattr(cls, name, wrap(original))


def install() -> None:
    """Register the providers and the classifier, and wrap Ray's methods (once per process)."""
    global _installed
    with trials.lock:
        if _installed:
            return
        import ray.tune.trainable.trainable as trainable_module
        from ray.air._internal.util import RunnerThread
        from ray.train._internal.session import _TrainSession
        from ray.tune.execution.tune_controller import TuneController
        from ray.tune.schedulers import TrialScheduler

        for owner, name, wrap in ((RunnerThread, "_propagate_exception", _wrap_propagate),
                                  (_TrainSession, "report", _wrap_report),
                                  (trainable_module, "skip_exceptions", _wrap_skip_exceptions),
                                  (TrialScheduler, "set_search_properties", wrap_set_search_properties),
                                  (TuneController, "__init__", wrap_controller_init)):
            original = getattr(owner, name)
            if not getattr(original, "_tracker_wrapped", False):
                setattr(owner, name, wrap(original))
        add_run_context_provider(_context)
        add_continuation_provider(_continuation)
        add_stop_classifier(_classify)
        _installed = True
