"""The tracker's extension points, which integrations with tuning tools fill (``tracker.integrations``).

The core never imports an integration; an integration registers here:

* **run context providers**, asked when a tracker is about to start a run
  (its first fit, evaluate or predict): the experiment, the trial, a run name,
  params and tags the tool knows, and whom to tell the run's id once it has
  started (so the tool's end of the trial can be recorded on it, see
  ``tracker.record.trial_end``);
* **continuation providers**, asked when a tracker is built: the run of an
  earlier attempt at the same trial that this one continues (a trial Ray
  Tune restarts after a failure continues its run, as ``resume=True``
  does), named by experiment and trial, leaving out runs this process
  started itself;
* **stop classifiers**, asked when a ``fit`` raises: whether what was raised
  is a tool's decision to stop the trial (``optuna.TrialPruned``), which
  ends the run with that decision's status (``pruned``) and a stop decision
  naming who stopped it, instead of ``failed``.

Every provider and classifier must be cheap and must not raise (what one
raises is logged and ignored: tracking never breaks training).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracker.db.sweep_writes import ExperimentRow, ToolStop, TrialRow
from tracker.record.capture import EventFailure
from tracker.status import Status

__all__ = [
    "RunContext", "StartedRun", "RunContextProvider", "StopClassifier", "add_run_context_provider",
    "add_stop_classifier", "run_context", "classify_stop", "ending", "TrialToContinue", "add_continuation_provider",
    "trial_to_continue",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StartedRun:
    """A run a tracker started: the database URL it is written to and its id."""

    db: str
    run_id: str


@dataclass(slots=True)
class RunContext:
    """What a tool knows about the run a tracker is about to start.

    What the user gave the tracker wins: its ``run_name``, its params and
    tags over these (key by key), and its ``experiment`` name over this
    experiment's name (the tool's objective and direction are kept).
    ``started`` is called with the ``StartedRun`` once the run's row is queued.
    """

    experiment: ExperimentRow | None = None
    trial: TrialRow | None = None
    run_name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    started: Callable[[StartedRun], None] | None = None
    held: bool = False


@dataclass(frozen=True, slots=True)
class TrialToContinue:
    """A trial whose earlier run a starting tracker continues, if the database holds one.

    ``experiment``: the experiment's name; ``trial``: the tool's trial id;
    ``started_here``: ids of runs this process started for the trial (never continued: a second
    fit in one attempt is a run of its own).
    """

    experiment: str
    trial: str
    started_here: frozenset[str] = frozenset()


RunContextProvider = Callable[[], "RunContext | None"]
ContinuationProvider = Callable[[], "TrialToContinue | None"]
#: ``(exception raised out of fit, the callback event it was raised in or None) -> ToolStop or None``.
StopClassifier = Callable[[BaseException, "EventFailure | None"], "ToolStop | None"]

_lock = threading.Lock()
_providers: list[RunContextProvider] = []
_classifiers: list[StopClassifier] = []
_continuations: list[ContinuationProvider] = []


def add_run_context_provider(provider: RunContextProvider) -> None:
    """Ask ``provider`` at the start of every run from now on (once, however often it is added)."""
    with _lock:
        if provider not in _providers:
            _providers.append(provider)


def add_stop_classifier(classifier: StopClassifier) -> None:
    """Ask ``classifier`` about every exception raised out of a tracked ``fit`` (once, however often added)."""
    with _lock:
        if classifier not in _classifiers:
            _classifiers.append(classifier)


def add_continuation_provider(provider: ContinuationProvider) -> None:
    """Ask ``provider`` whenever a tracker is built from now on (once, however often it is added)."""
    with _lock:
        if provider not in _continuations:
            _continuations.append(provider)


def trial_to_continue() -> TrialToContinue | None:
    """The trial whose earlier run the tracker being built continues (first provider with one), or None."""
    for provider in list(_continuations):
        try:
            found = provider()
        except Exception:  # noqa: BLE001
            logger.exception("tracker: a continuation provider failed")
            continue
        if found is not None:
            return found
    return None


def run_context() -> RunContext | None:
    """The context of the first provider that has one for the run starting now, or None."""
    for provider in list(_providers):
        try:
            found = provider()
        except Exception:  # noqa: BLE001 - a provider must never break a run
            logger.exception("tracker: a run context provider failed")
            continue
        if found is not None:
            return found
    return None


def classify_stop(exc: BaseException, failure: EventFailure | None) -> ToolStop | None:
    """The tool's stop decision ``exc`` is, from the first classifier that knows it, or None."""
    for classifier in list(_classifiers):
        try:
            found = classifier(exc, failure)
        except Exception:  # noqa: BLE001
            logger.exception("tracker: a stop classifier failed")
            continue
        if found is not None:
            return found
    return None


def ending(exc: BaseException, failure: EventFailure | None) -> tuple[Status, str | None, ToolStop | None]:
    """How a call that raised ``exc`` ends: its status, its error text (None for a tool's stop), the stop.

    A tool's stop (``classify_stop``) ends with the stop's status and no
    error; KeyboardInterrupt and SystemExit with ``interrupted``; anything
    else with ``failed``.
    """
    stop = classify_stop(exc, failure) if _classifiers else None
    if stop is not None:
        return stop.status, None, stop
    status = Status.INTERRUPTED if isinstance(exc, (KeyboardInterrupt, SystemExit)) else Status.FAILED
    return status, f"{type(exc).__name__}: {exc}", None
