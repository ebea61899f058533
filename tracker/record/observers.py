"""Seeing decisions as they are made, by whichever callback makes them.

``install()`` wraps three Keras entry points once per process, each a plain
pass-through unless a TrackingCallback is watching the object involved:

* the optimizer's ``learning_rate`` setter (how LearningRateScheduler,
  ReduceLROnPlateau and the guide's scheduler change the LR);
* ``keras.Model.__setattr__`` for ``stop_training = True`` (how every
  stopper, TerminateOnNaN included, stops a fit);
* ``keras.Model.set_weights`` (how EarlyStopping and the guide's
  EarlyStoppingAtMinLoss restore weights).

The actor is found on the call stack: the nearest frame whose ``self`` is a
Keras callback gives its class name and hook; with none, it is ``user code``.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Actor", "install", "watch", "unwatch", "read_lr"]

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_installed = False
_watchers: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass
class Actor:
    """Who did something: a callback (its class name and hook) or user code."""

    name: str
    hook: str | None = None
    callback: Any = None
    frame_locals: dict[str, Any] = field(default_factory=dict)


def find_actor(depth: int = 2) -> Actor:
    """Return the nearest Keras callback on the call stack, else ``user code``."""
    import keras

    frame = sys._getframe(depth)
    while frame is not None:
        obj = frame.f_locals.get("self")
        if isinstance(obj, keras.callbacks.Callback) and not isinstance(obj, keras.callbacks.CallbackList):
            # The hook may call a helper (ReduceLROnPlateau's
            # _reduce_optimizer_lr): report the hook, the outermost on_*
            # method of the same callback.
            hook_frame, outer = frame, frame.f_back
            while outer is not None and outer.f_locals.get("self") is obj:
                if outer.f_code.co_name.startswith("on_"):
                    hook_frame = outer
                outer = outer.f_back
            return Actor(type(obj).__name__, hook_frame.f_code.co_name, obj, dict(hook_frame.f_locals))
        frame = frame.f_back
    return Actor("user code")


def read_lr(optimizer: Any) -> float | None:
    """Return the optimizer's current learning rate as a Python float."""
    import numpy as np

    try:
        return float(np.asarray(optimizer.learning_rate))
    except Exception:  # noqa: BLE001 - an exotic optimizer
        return None


def watch(tracker: Any) -> None:
    """Start telling ``tracker`` about events on its model and optimizers."""
    _watchers.add(tracker)


def unwatch(tracker: Any) -> None:
    """Stop telling ``tracker``."""
    _watchers.discard(tracker)


def _for_model(model: Any) -> list[Any]:
    return [t for t in list(_watchers) if t.model is model]


def _for_optimizer(optimizer: Any) -> list[Any]:
    return [t for t in list(_watchers) if t._watches_optimizer(optimizer)]


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here


def install() -> None:
    """Wrap the LR setter, ``Model.__setattr__`` and ``Model.set_weights`` (idempotent)."""
    global _installed
    import keras
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    with _lock:
        if _installed:
            return
        _installed = True

        lr_property = BaseOptimizer.__dict__["learning_rate"]

        def set_learning_rate(self: Any, value: Any) -> None:
            trackers = _for_optimizer(self) if _watchers else []
            if not trackers:
                lr_property.fset(self, value)
                return
            old = read_lr(self)
            lr_property.fset(self, value)
            new = read_lr(self)
            if _same(old, new):
                return
            actor = find_actor()
            for tracker in trackers:
                _safely(tracker._on_lr_set, self, old, new, actor)

        BaseOptimizer.learning_rate = property(lr_property.fget, set_learning_rate, doc=lr_property.__doc__)

        original_setattr = keras.Model.__setattr__

        def model_setattr(self: Any, name: str, value: Any) -> None:
            original_setattr(self, name, value)
            if name == "stop_training" and value and _watchers:
                trackers = _for_model(self)
                if trackers:
                    actor = find_actor()
                    for tracker in trackers:
                        _safely(tracker._on_stop_training, actor)

        keras.Model.__setattr__ = model_setattr

        original_set_weights = keras.Model.set_weights

        def set_weights(self: Any, weights: Any) -> Any:
            trackers = _for_model(self) if _watchers else []
            if not trackers:
                return original_set_weights(self, weights)
            actor = find_actor()
            for tracker in trackers:
                _safely(tracker._before_set_weights, actor)
            result = original_set_weights(self, weights)
            for tracker in trackers:
                _safely(tracker._after_set_weights, actor)
            return result

        set_weights.__doc__ = original_set_weights.__doc__
        keras.Model.set_weights = set_weights


def _safely(hook: Any, *args: Any) -> None:
    try:
        hook(*args)
    except Exception:  # never disturb training
        logger.exception("tracker: recording a decision failed")
