"""Ray Tune, in the driver: note the search's scheduler, metric and mode, and each stop its scheduler decides.

Who stopped a trial is known only in the driver, where Ray's
``TuneController`` asks the scheduler about each result; the worker that
trains the trial (``tracker.integrations.ray_tune``) sees only that Ray
ended it inside ``tune.report``. When the driver has imported ``tracker``,
``TuneController.__init__`` is wrapped (``wrap_controller_init``) to put,
in Ray's key-value store (namespace ``tracker``):

* ``experiment/<name>``: ``{"driver": true, "scheduler", "metric", "mode"}``;
* ``stop/<trial id>``: ``{"scheduler", "step", "value", "metric"}`` for each
  trial its scheduler stops, before Ray stops it (a trial reaching the
  scheduler's ``max_t`` is at its end: not noted).

Nothing depends on it: without these notes the worker still records every
trial, only without the scheduler's name. ``kv_get`` and ``kv_put`` never
raise.
"""

from __future__ import annotations

import functools
import json
import logging
import weakref
from collections.abc import Mapping
from typing import Any

__all__ = ["NAMESPACE", "kv_get", "kv_put", "number", "wrap_controller_init", "wrap_set_search_properties"]

logger = logging.getLogger(__name__)
NAMESPACE = "tracker"  # in Ray's key-value store
#: scheduler -> (metric, mode) that Tune gave it (TuneConfig's): Ray's base scheduler keeps no mode.
_properties: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def number(value: Any) -> float | int | None:
    """A reported metric as a plain number (a NumPy scalar as its exact Python value), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        found = item()
        return found if isinstance(found, (int, float)) and not isinstance(found, bool) else None
    return None


def kv_get(key: str) -> dict[str, Any] | None:
    try:
        from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_initialized

        if not _internal_kv_initialized():
            return None
        raw = _internal_kv_get(key, namespace=NAMESPACE)
        return None if raw is None else dict(json.loads(raw))
    except Exception:  # noqa: BLE001 - what the driver noted is a bonus, never needed
        logger.debug("tracker: could not read %s from Ray's key-value store", key, exc_info=True)
        return None


def kv_put(key: str, value: Mapping[str, Any]) -> None:
    try:
        from ray.experimental.internal_kv import _internal_kv_initialized, _internal_kv_put

        if _internal_kv_initialized():
            _internal_kv_put(key, json.dumps(value, allow_nan=True), overwrite=True, namespace=NAMESPACE)
    except Exception:  # noqa: BLE001
        logger.debug("tracker: could not note %s in Ray's key-value store", key, exc_info=True)


def _note_search(arguments: Mapping[str, Any]) -> None:
    """Note the search's scheduler, metric and mode (from the controller's arguments), and wrap the
    scheduler to note each of its stops. With no scheduler, Ray's ``FIFOScheduler`` stops no trial."""
    scheduler, storage = arguments.get("scheduler"), arguments.get("storage")
    experiment = getattr(storage, "experiment_dir_name", None)
    if not isinstance(experiment, str):
        return
    # Ray's schedulers keep the search's metric and mode (TuneConfig's) after set_search_properties.
    given_metric, given_mode = _properties.get(scheduler, (None, None)) if scheduler is not None else (None, None)
    metric = getattr(scheduler, "_metric", None) or given_metric or arguments.get("metric")
    mode = getattr(scheduler, "_mode", None) or given_mode
    name = type(scheduler).__name__ if scheduler is not None else "FIFOScheduler"
    kv_put(f"experiment/{experiment}", {"driver": True, "scheduler": name,
                                         "metric": metric if isinstance(metric, str) else None,
                                         "mode": mode if isinstance(mode, str) else None})
    original = getattr(scheduler, "on_trial_result", None)
    if original is None or getattr(original, "_tracker_wrapped", False):
        return
    from ray.tune.schedulers import TrialScheduler

    @functools.wraps(original)
    def on_trial_result(tune_controller: Any, trial: Any, result: Mapping[str, Any]) -> Any:
        decision = original(tune_controller, trial, result)
        try:
            if decision == TrialScheduler.STOP:
                time_attr = getattr(scheduler, "_time_attr", "training_iteration")
                max_t = getattr(scheduler, "_max_t", None)
                reached = isinstance(max_t, (int, float)) and _int(result.get(time_attr)) is not None \
                    and result[time_attr] >= max_t
                if not reached:  # reaching max_t is the trial's end, not a prune
                    key = getattr(scheduler, "_metric", None) or metric
                    value = result.get(key) if isinstance(key, str) else None
                    kv_put(f"stop/{trial.trial_id}", {
                        "scheduler": name, "step": _int(result.get("training_iteration")),
                        "value": number(value),
                        "metric": key if isinstance(key, str) else None})
        except Exception:  # noqa: BLE001 - tracking never stops the search
            logger.exception("tracker: could not note a Ray Tune scheduler's stop")
        return decision

    on_trial_result._tracker_wrapped = True  # type: ignore[attr-defined]
    setattr(scheduler, "on_trial_result", on_trial_result)


def wrap_controller_init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            _note_search(kwargs)  # TuneController takes keyword arguments only
        except Exception:  # noqa: BLE001
            logger.exception("tracker: could not note the Ray Tune search")

    __init__._tracker_wrapped = True  # type: ignore[attr-defined]
    return __init__


def wrap_set_search_properties(original: Any) -> Any:
    """``TrialScheduler.set_search_properties``: keep the metric and mode Tune gives the scheduler."""

    @functools.wraps(original)
    def set_search_properties(self: Any, metric: Any, mode: Any, **spec: Any) -> Any:
        try:
            _properties[self] = (metric, mode)
        except TypeError:  # a scheduler that cannot be weakly referenced
            pass
        return original(self, metric, mode, **spec)

    set_search_properties._tracker_wrapped = True  # type: ignore[attr-defined]
    return set_search_properties
