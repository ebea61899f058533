"""KerasTuner: every execution of every trial is a run of the search's experiment.

``install()`` runs as soon as ``keras_tuner`` is imported (``import tracker``
arranges it, see ``tracker.INSTALLERS``), once per process. It wraps three
public methods of ``keras_tuner.engine.base_tuner.BaseTuner``, which every
tuner inherits (RandomSearch, BayesianOptimization, Hyperband, and a
``Tuner`` subclass that overrides ``run_trial``); each wrapper calls the
original and only reads what KerasTuner holds, so the search computes what
it computes without the tracker:

* ``search``: notes the search's own ``TrackingCallback`` instances, if any
  (where a trial that fails before any fit is recorded);
* ``on_trial_begin``: the trial now running. Every run a tracker starts
  during the trial (autolog's, or a deep copy of the search's callback, one
  per execution) is given, by the run context provider registered here
  (``tracker.record.extensions``): the experiment (the tuner's
  ``project_name`` unless the user named one, with the oracle's objective
  and direction), the trial (its id, number, execution, and for Hyperband
  the trial whose weights it continues), the params
  (``trial.hyperparameters.values``, see ``tracker.record.trials.plain_params``),
  the tag ``trial`` (the trial id as KerasTuner gives it, zero-padded) and,
  with ``executions_per_trial`` above 1, the tag ``execution`` (from 0), and
  the name ``trial-<id>`` (``trial-<id>-e<execution>`` with several executions)
  unless the user named the run;
* ``on_trial_end``: after KerasTuner's own (where the oracle scores the
  trial), the oracle's status and score of the trial, and the trial's final
  params, are recorded on its runs (``tracker.record.trials.end_trial``). A
  trial the oracle marks ``FAILED`` or ``INVALID`` with no failed run (its
  model could not be built, say) gets one: a ``failed`` run with the error.

Hyperband's ``tuner/epochs``, ``tuner/initial_epoch``, ``tuner/bracket``,
``tuner/round`` and ``tuner/trial_id`` are part of
``trial.hyperparameters.values``, so they are params, as KerasTuner gives
them; ``tuner/trial_id`` (the trial a continued trial loads its weights
from) is also the trial's ``continues``.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tracker.db.sweep_writes import ExperimentRow, TrialEnd, TrialRow
from tracker.errors import TrackingWarning
from tracker.record.autologging import autolog_target
from tracker.record.extensions import RunContext, StartedRun, add_run_context_provider
from tracker.record.trials import end_trial, plain_params, record_failed_run

__all__ = ["install"]

logger = logging.getLogger(__name__)
TOOL = "keras_tuner"
_lock = threading.Lock()
_installed = False


@dataclass(slots=True)
class _Trial:
    """The trial running now, and the runs started in it."""

    tuner: Any
    trial: Any
    experiment: ExperimentRow
    executions: int
    callbacks: list[Any]
    runs: list[StartedRun] = field(default_factory=list)
    started: int = 0


_callbacks: ContextVar[list[Any] | None] = ContextVar("tracker_kt_search_callbacks", default=None)
_current: ContextVar[_Trial | None] = ContextVar("tracker_kt_trial", default=None)


def _experiment(tuner: Any) -> ExperimentRow:
    objective = getattr(tuner.oracle, "objective", None)
    name, direction = getattr(objective, "name", None), getattr(objective, "direction", None)
    return ExperimentRow(str(tuner.project_name), TOOL, name if isinstance(name, str) else None,
                         direction if direction in ("min", "max") else None)


def _run_context(state: _Trial) -> RunContext:
    """The context of the next run of the trial (its execution is the number of runs started before it)."""
    execution, state.started = state.started, state.started + 1
    trial_id = str(state.trial.trial_id)
    values = plain_params(state.trial.hyperparameters.values, source=f"KerasTuner trial {trial_id}")
    several = state.executions > 1
    continues = values.get("tuner/trial_id")
    return RunContext(
        experiment=state.experiment,
        trial=TrialRow(trial_id, int(trial_id) if trial_id.isdigit() else None, execution,
                       None if continues is None else str(continues)),
        run_name=f"trial-{trial_id}-e{execution}" if several else f"trial-{trial_id}",
        params=values,
        tags={"trial": trial_id, **({"execution": str(execution)} if several else {})},
        started=state.runs.append,
    )


def _context() -> RunContext | None:
    """The run context provider: the trial running now, if any."""
    state = _current.get()
    return None if state is None else _run_context(state)


def _targets(state: _Trial) -> list[tuple[str, str | None]]:
    """Where the trial's runs go, ``(db, experiment the user named)``: the search's callbacks, else autolog."""
    found = [(cb.db_url, cb.experiment) for cb in state.callbacks if getattr(cb, "capture_listener", None) is not None]
    if not found:
        target = autolog_target()
        found = [target] if target is not None else []
    return list(dict.fromkeys(found))


def _last_line(message: Any) -> str | None:
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else None


def _record_end(state: _Trial) -> None:
    """The oracle's decision on the trial, on its runs; a failed run for a trial that failed outside any fit."""
    trial_id = str(state.trial.trial_id)
    ended = state.tuner.oracle.get_trial(state.trial.trial_id)
    status = str(ended.status)
    params = plain_params(ended.hyperparameters.values, source=f"KerasTuner trial {trial_id}")
    end = TrialEnd(status, getattr(ended, "score", None), params)
    statuses = end_trial(state.runs, end)
    if status not in ("FAILED", "INVALID") or len(statuses) < len(state.runs):
        return
    if any(statuses[run.run_id] in ("failed", "interrupted") for run in state.runs):
        return  # a fit failed: its run already says so
    error = _last_line(getattr(ended, "message", None)) or f"KerasTuner ended trial {trial_id} {status}."
    for db, experiment in _targets(state):
        context = _run_context(state)
        context.params = {**params, **context.params}
        record_failed_run(db, context, error, experiment=experiment, end=end)


def _wrap_search(original: Any) -> Any:
    @functools.wraps(original)
    def search(self: Any, *fit_args: Any, **fit_kwargs: Any) -> Any:
        callbacks = fit_kwargs.get("callbacks")
        token = _callbacks.set(list(callbacks) if isinstance(callbacks, (list, tuple)) else [])
        try:
            return original(self, *fit_args, **fit_kwargs)
        finally:
            _callbacks.reset(token)
            _current.set(None)

    search._tracker_wrapped = True  # type: ignore[attr-defined]
    return search


def _wrap_begin(original: Any) -> Any:
    @functools.wraps(original)
    def on_trial_begin(self: Any, trial: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            executions = getattr(self, "executions_per_trial", 1)
            _current.set(_Trial(self, trial, _experiment(self), executions if isinstance(executions, int) else 1,
                                _callbacks.get() or []))
        except Exception:  # noqa: BLE001 - tracking never disturbs the search
            logger.exception("tracker: could not note the KerasTuner trial")
            _current.set(None)
        return original(self, trial, *args, **kwargs)

    on_trial_begin._tracker_wrapped = True  # type: ignore[attr-defined]
    return on_trial_begin


def _wrap_end(original: Any) -> Any:
    @functools.wraps(original)
    def on_trial_end(self: Any, trial: Any, *args: Any, **kwargs: Any) -> Any:
        state = _current.get()
        try:
            return original(self, trial, *args, **kwargs)
        finally:
            if state is not None and state.trial.trial_id == getattr(trial, "trial_id", None):
                _current.set(None)
                try:
                    _record_end(state)
                except Exception as exc:  # noqa: BLE001
                    warnings.warn(f"tracker: could not record the end of KerasTuner trial {trial.trial_id}: {exc}",
                                  TrackingWarning, stacklevel=2)

    on_trial_end._tracker_wrapped = True  # type: ignore[attr-defined]
    return on_trial_end


def install() -> None:
    """Wrap ``BaseTuner.search``, ``on_trial_begin`` and ``on_trial_end`` and register the provider (once)."""
    global _installed
    with _lock:
        if _installed:
            return
        from keras_tuner.engine.base_tuner import BaseTuner

        for name, wrap in (("search", _wrap_search), ("on_trial_begin", _wrap_begin), ("on_trial_end", _wrap_end)):
            original = getattr(BaseTuner, name)
            if not getattr(original, "_tracker_wrapped", False):
                setattr(BaseTuner, name, wrap(original))
        add_run_context_provider(_context)
        _installed = True
