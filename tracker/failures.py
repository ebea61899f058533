"""Recording failed calls: Keras skips ``on_train_end`` when ``fit`` raises.

``install()`` wraps ``keras.Model.fit``, ``evaluate`` and ``predict`` once per
process. The wrapper is a plain pass-through; only when the call raises does
it tell each TrackingCallback among the call's callbacks, which marks its
open phases ``failed`` (or ``interrupted`` for KeyboardInterrupt) and writes
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


def _wrap(method: str, original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except BaseException as exc:
            try:
                for callback in _callbacks_of(signature, args, kwargs):
                    hook = getattr(callback, "_on_call_failed", None)
                    if hook is not None:
                        hook(method, exc)
            except Exception:  # never mask the user's exception
                logger.exception("tracker: could not record the failure of %s", method)
            raise

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
