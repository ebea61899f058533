"""Wrapping Keras calls: what a callback cannot see from its hooks.

``install()`` wraps ``keras.Model.fit``, ``evaluate`` and ``predict`` once per
process. The wrapper passes the call through unchanged and tells each
TrackingCallback among the call's callbacks three things:

* before the call, the list of callbacks it runs with (a callback has no
  reference to its siblings), so stoppers can be inspected;
* after the call returns, so the final weights are read after *every*
  callback's ``on_train_end`` (Keras' EarlyStopping restores there);
* when the call raises, because Keras then skips ``on_train_end``: the
  callback marks its open phases ``failed`` (or ``interrupted``) and writes
  what it buffered. The exception then propagates unchanged.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["install"]

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_METHODS = ("fit", "evaluate", "predict")


def _callbacks_of(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    if "callbacks" in kwargs:
        callbacks = kwargs["callbacks"]
    else:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return []
        callbacks = bound.arguments.get("callbacks")
    if callbacks is None:
        return []
    inner = getattr(callbacks, "callbacks", None)  # a keras CallbackList
    if inner is not None:
        callbacks = inner
    try:
        return list(callbacks)
    except TypeError:
        return []


def _tell(trackers: list[Any], hook: str, *args: Any) -> None:
    for tracker in trackers:
        try:
            getattr(tracker, hook)(*args)
        except Exception:  # never disturb the user's call
            logger.exception("tracker: %s failed", hook)


def _wrap(method: str, original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        callbacks = _callbacks_of(signature, args, kwargs)
        trackers = [cb for cb in callbacks if hasattr(cb, "_on_call_failed")]
        if not trackers:
            return original(*args, **kwargs)
        _tell(trackers, "_before_call", method, callbacks)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            _tell(trackers, "_on_call_failed", method, exc)
            raise
        _tell(trackers, "_after_call", method)
        return result

    wrapper._tracker_wrapped = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Wrap ``keras.Model.fit/evaluate/predict`` (idempotent)."""
    import keras

    with _lock:
        for method in _METHODS:
            original = getattr(keras.Model, method)
            if getattr(original, "_tracker_wrapped", False):
                continue
            setattr(keras.Model, method, _wrap(method, original))
