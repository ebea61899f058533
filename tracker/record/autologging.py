"""Zero-code tracking: ``tracker.autolog()`` gives every ``fit`` a tracker.

After ``autolog(db)``, each ``model.fit`` call that has no ``TrackingCallback``
of its own gets one (one run per fit), and ``evaluate``/``predict`` on the
same model join that fit's run (a model never fitted under autolog gets a
run of its own). A ``TrackingCallback`` passed explicitly takes precedence:
the call gets no second tracker. ``autolog(disable=True)`` undoes it.

It works through the same capture as an explicit callback
(``tracker.record.capture``), so it records exactly what an explicit
``TrackingCallback`` records.
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tracker.db.engine import DEFAULT_DB, resolve_url
from tracker.errors import TrackingWarning
from tracker.record import capture

__all__ = ["autolog", "autolog_target"]


@dataclass(frozen=True, slots=True)
class _Settings:
    db: str
    log_batches: bool | int
    tags: dict[str, str]
    experiment: str | None
    system_metrics: bool = True
    system_interval: float = 10.0


_lock = threading.Lock()
_settings: _Settings | None = None
_runs: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def autolog(
    db: str | os.PathLike[str] = DEFAULT_DB,
    *,
    log_batches: bool | int = True,
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
    system_metrics: bool = True,
    system_interval: float = 10.0,
    disable: bool = False,
) -> None:
    """Track every ``fit`` (and the ``evaluate``/``predict`` calls after it) without a callback.

    Args:
        db: A file path or an SQLAlchemy URL. Default ``"tracker.db"``.
        log_batches: As for ``TrackingCallback``. Default True.
        tags: Tags for every run. Default none.
        experiment: The experiment every run belongs to. Default: the one a
            tuning tool gives (see ``TrackingCallback``), else none.
        system_metrics: As for ``TrackingCallback``: sample CPU, memory and
            GPUs while a call is open. Default True.
        system_interval: Seconds between timed system samples. Default 10.0.
        disable: Stop autologging (runs already open are finished normally).
            Default False.

    Raises:
        ValueError: an option is invalid (checked as ``TrackingCallback`` does), or ``db`` names a
            database the tracker cannot use (``UnsupportedDatabaseError``: empty, not valid UTF-8, not a
            valid URL, or a database other than SQLite and PostgreSQL).

    Example:
        ```python
        import tracker
        tracker.autolog("runs.db", tags={"exp": "sweep"})
        model.fit(x, y, epochs=5, validation_split=0.2)   # one run
        model.evaluate(x_test, y_test)                     # joins that run
        tracker.autolog(disable=True)
        ```
    """
    global _settings
    if disable:
        with _lock:
            _settings = None
            capture.autolog_hook = None
            _runs.clear()
        return
    from tracker.record.callback import TrackingCallback, check_experiment, check_options, check_system

    check_options(None, None, tags, log_batches, 128, 2.0)
    check_experiment(experiment)
    check_system(system_metrics, system_interval)
    resolve_url(db)  # a path or URL that can never work is refused now, not at each fit
    with _lock:
        _settings = _Settings(os.fspath(db), log_batches, dict(tags or {}), experiment, system_metrics,
                              float(system_interval))
        _runs.clear()
        capture.install()
        capture.autolog_hook = _add_tracker
    del TrackingCallback


def autolog_target() -> tuple[str, str | None] | None:
    """Where autologged runs go now: ``(db, experiment)``, or None when autolog is off."""
    settings = _settings
    return None if settings is None else (settings.db, settings.experiment)


def _add_tracker(method: str, model: Any, callbacks: list[Any]) -> list[Any] | None:
    """The capture's autolog hook: the callbacks with a tracker added, or None to leave them."""
    settings = _settings
    if settings is None:
        return None
    if getattr(callbacks, "callbacks", None) is not None:
        return None
    from keras.callbacks import CallbackList

    if any(isinstance(cb, CallbackList) for cb in callbacks):
        warnings.warn(
            "tracker.autolog: a CallbackList was passed; add a TrackingCallback to it to track this call.",
            TrackingWarning,
            stacklevel=4,
        )
        return None
    from tracker.record.callback import TrackingCallback

    tracker = None if method == "fit" else _runs.get(model)
    if tracker is None:
        tracker = TrackingCallback(settings.db, log_batches=settings.log_batches, tags=settings.tags,
                                   experiment=settings.experiment, system_metrics=settings.system_metrics,
                                   system_interval=settings.system_interval)
        _runs[model] = tracker
    return [*callbacks, tracker]
