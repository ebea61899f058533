"""Optuna: every trial whose objective calls ``fit`` is a run of the study's experiment.

``install()`` runs as soon as ``optuna`` is imported (``import tracker``
arranges it, see ``tracker.INSTALLERS``), once per process. It wraps three
public methods of ``optuna.study.Study``, each a pass-through that only
reads what Optuna holds:

* ``optimize``: the objective is wrapped (the trial it is given is the one
  its fits belong to; what it returns or raises is passed on unchanged), and
  a callback of the tracker's is added after the user's, which Optuna calls
  once it has told the trial's end. If ``optimize`` raises (an objective's
  error not in ``catch``), the trial Optuna marked failed is ended then.
* ``ask`` and ``tell``: a trial asked outside ``optimize`` is the one the
  fits that follow belong to (while it is the only trial of this thread
  asked and not yet told; with several, runs are not given a trial), and
  ``tell`` ends it.

A run started during a trial gets, from the run context provider registered
here (``tracker.record.extensions``): the experiment (the study name unless
the user named one, tool ``optuna``, the study's direction, and its metric
name if it set one), the trial (``number``), the params the trial has so far
(``trial.params``), the tag ``trial`` (the number) and the name
``trial-<number>`` unless the user named the run (a second fit in one trial:
``trial-<number>-e1`` with the tag ``execution``). When the trial ends, its
state (``COMPLETE``, ``PRUNED``, ``FAIL``) and value (or values), as the
study holds them, and its final params (including those suggested after
``fit``) are recorded on its runs (``tracker.record.trials.end_trial``).

Pruning: ``optuna.TrialPruned`` raised out of ``fit`` (by
optuna-integration's ``KerasPruningCallback``, in ``on_epoch_end``) ends the
run ``pruned`` (the stop classifier registered here), keeping every epoch it
trained, with a stop decision naming the study's pruner class, the step and
the value last reported (the trial's intermediate values) and the monitored
key. ``TrialPruned`` raised by the objective after ``fit`` returned makes
the trial's last run ``pruned`` with the same decision, at its last epoch,
when the trial ends. A trial whose objective raised before any fit gets a
``failed`` run with the error, under ``tracker.autolog``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import warnings
import weakref
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tracker.db.sweep_writes import ExperimentRow, ToolStop, TrialEnd, TrialRow
from tracker.errors import TrackingWarning
from tracker.record.autologging import autolog_target
from tracker.record.capture import EventFailure
from tracker.record.extensions import RunContext, StartedRun, add_run_context_provider, add_stop_classifier
from tracker.record.trials import end_trial, plain_params, record_failed_run

__all__ = ["install"]

logger = logging.getLogger(__name__)
TOOL = "optuna"
_lock = threading.Lock()
_installed = False


@dataclass(slots=True)
class _Trial:
    """A trial being run, and the runs started in it.

    The trial itself is held weakly: a trial asked and then dropped, never
    told, stops being the one fits belong to.
    """

    study: Any
    ref: weakref.ref[Any]
    number: int
    thread: int
    runs: list[StartedRun] = field(default_factory=list)
    error: str | None = None  # what the objective raised (not TrialPruned)
    pruned_in_fit: bool = False


_states: dict[tuple[int, int], _Trial] = {}  # (id(study), trial number) -> its state, until it ends
_current: ContextVar[_Trial | None] = ContextVar("tracker_optuna_trial", default=None)


def _state(study: Any, trial: Any) -> _Trial:
    with _lock:
        key = (id(study), trial.number)
        found = _states.get(key)
        if found is None or found.ref() is None:
            found = _states[key] = _Trial(study, weakref.ref(trial), trial.number, threading.get_ident())
        return found


def _active() -> _Trial | None:
    """The trial the current fit belongs to: the objective's, else the only one asked in this thread."""
    found = _current.get()
    if found is not None:
        return found
    me = threading.get_ident()
    with _lock:
        for key in [k for k, s in _states.items() if s.ref() is None]:
            del _states[key]  # asked, dropped, never told
        open_here = [s for s in _states.values() if s.thread == me]
    return open_here[0] if len(open_here) == 1 else None


def _experiment(study: Any) -> ExperimentRow:
    directions = [getattr(d, "name", str(d)) for d in study.directions]
    direction = {"MINIMIZE": "min", "MAXIMIZE": "max"}.get(directions[0]) if len(directions) == 1 else None
    names = getattr(study, "metric_names", None)
    objective = names[0] if names and len(names) == 1 and isinstance(names[0], str) else None
    return ExperimentRow(str(study.study_name), TOOL, objective, direction)


def _context() -> RunContext | None:
    """The run context provider: the trial the starting run belongs to, if any."""
    state = _active()
    trial = state.ref() if state is not None else None
    if state is None or trial is None:
        return None
    number, execution = state.number, len(state.runs)
    tags = {"trial": str(number), **({"execution": str(execution)} if execution else {})}
    return RunContext(
        experiment=_experiment(state.study),
        trial=TrialRow(str(number), number, execution),
        run_name=f"trial-{number}-e{execution}" if execution else f"trial-{number}",
        params=plain_params(trial.params, source=f"Optuna trial {number}"),
        tags=tags,
        started=state.runs.append,
    )


def _last_report(state: _Trial | None) -> tuple[int | None, float | None]:
    """The trial's last reported step and its value, as the study holds them (its intermediate values)."""
    if state is None:
        return None, None
    import optuna

    running = state.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    values = next((t.intermediate_values for t in running if t.number == state.number), None)
    if not values:
        return None, None
    step = max(values)
    return step, values[step]


def _classify(exc: BaseException, failure: EventFailure | None) -> ToolStop | None:
    """The stop classifier: ``optuna.TrialPruned`` raised out of a fit is the study's pruner's stop."""
    import optuna

    if not isinstance(exc, optuna.TrialPruned):
        return None
    state = _active()
    if state is not None:
        state.pruned_in_fit = True
    step, value = _last_report(state)
    callback = failure.callback if failure is not None else None
    monitor = getattr(callback, "monitor", None) or getattr(callback, "_monitor", None)
    return ToolStop(type(state.study.pruner).__name__ if state is not None else "TrialPruned", step, value,
                    monitor if isinstance(monitor, str) else None, failure.event if failure is not None else None)


def _finish(state: _Trial, frozen: Any) -> None:
    """The study's decision on a trial, on its runs (see the module docstring)."""
    with _lock:
        _states.pop((id(state.study), state.number), None)
    values = frozen.values
    score = None if values is None else values[0] if len(values) == 1 else list(values)
    stop = None
    if frozen.state.name == "PRUNED" and not state.pruned_in_fit and state.runs:
        steps = frozen.intermediate_values
        step = max(steps) if steps else None
        stop = ToolStop(type(state.study.pruner).__name__, step, None if step is None else steps[step])
    params = plain_params(frozen.params, source=f"Optuna trial {frozen.number}")
    end = TrialEnd(frozen.state.name, score, params, stop)
    end_trial(state.runs, end)
    target = autolog_target()
    if not state.runs and state.error is not None and target is not None:
        context = _context_for_failure(state, params)
        record_failed_run(target[0], context, state.error, experiment=target[1], end=end)


def _context_for_failure(state: _Trial, params: dict[str, Any]) -> RunContext:
    number = state.number
    return RunContext(_experiment(state.study), TrialRow(str(number), number), f"trial-{number}", params,
                      {"trial": str(number)})


def _safely_finish(state: _Trial, frozen: Any) -> None:
    try:
        _finish(state, frozen)
    except Exception as exc:  # noqa: BLE001 - tracking never stops the study
        warnings.warn(f"tracker: could not record the end of Optuna trial {state.number}: {exc}",
                      TrackingWarning, stacklevel=3)


def _wrap_objective(func: Any) -> Any:
    import optuna

    @functools.wraps(func)
    def objective(trial: Any) -> Any:
        state = _state(trial.study, trial)
        token = _current.set(state)
        try:
            return func(trial)
        except optuna.TrialPruned:
            raise
        except BaseException as exc:
            state.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            _current.reset(token)

    return objective


def _ended_callback(study: Any, frozen: Any) -> None:
    """Added to ``optimize``'s callbacks: Optuna calls it once the trial's end is told."""
    with _lock:
        state = _states.get((id(study), frozen.number))
    if state is not None:
        _safely_finish(state, frozen)


def _wrap_optimize(original: Any) -> Any:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def optimize(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(self, *args, **kwargs)
            bound.arguments["func"] = _wrap_objective(bound.arguments["func"])
            bound.arguments["callbacks"] = [*(bound.arguments.get("callbacks") or []), _ended_callback]
            args, kwargs = bound.args[1:], bound.kwargs
        except Exception:  # noqa: BLE001 - Optuna says what is wrong with its arguments
            return original(self, *args, **kwargs)
        try:
            return original(self, *args, **kwargs)
        finally:
            with _lock:  # a trial whose error stopped optimize: Optuna has told its end, not the callbacks
                left = [s for s in _states.values() if s.study is self and s.thread == threading.get_ident()]
            for state in left:
                frozen = next((t for t in self.get_trials(deepcopy=False) if t.number == state.number), None)
                if frozen is not None and frozen.state.is_finished():
                    _safely_finish(state, frozen)

    optimize._tracker_wrapped = True  # type: ignore[attr-defined]
    return optimize


def _wrap_ask(original: Any) -> Any:
    @functools.wraps(original)
    def ask(self: Any, *args: Any, **kwargs: Any) -> Any:
        trial = original(self, *args, **kwargs)
        try:
            _state(self, trial)
        except Exception:  # noqa: BLE001
            logger.exception("tracker: could not note the Optuna trial")
        return trial

    ask._tracker_wrapped = True  # type: ignore[attr-defined]
    return ask


def _wrap_tell(original: Any) -> Any:
    @functools.wraps(original)
    def tell(self: Any, trial: Any, *args: Any, **kwargs: Any) -> Any:
        frozen = original(self, trial, *args, **kwargs)
        number = trial if isinstance(trial, int) else getattr(trial, "number", None)
        with _lock:
            state = _states.get((id(self), number)) if isinstance(number, int) else None
        if state is not None and frozen is not None:
            _safely_finish(state, frozen)
        return frozen

    tell._tracker_wrapped = True  # type: ignore[attr-defined]
    return tell


def install() -> None:
    """Wrap ``Study.optimize``, ``ask`` and ``tell``; register the provider and the classifier (once)."""
    global _installed
    with _lock:
        if _installed:
            return
        from optuna.study import Study

        for name, wrap in (("optimize", _wrap_optimize), ("ask", _wrap_ask), ("tell", _wrap_tell)):
            original = getattr(Study, name)
            if not getattr(original, "_tracker_wrapped", False):
                setattr(Study, name, wrap(original))
        add_run_context_provider(_context)
        add_stop_classifier(_classify)
        _installed = True
