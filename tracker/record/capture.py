"""What a callback cannot see from its own hooks, captured at Keras' entry points.

``install()`` patches Keras once per process (one install guard). Every patch
is a pass-through unless a ``Listener`` is involved, and reaches listeners
only through the ``Listener`` interface below, never through private methods:

* ``keras.Model.fit``, ``evaluate`` and ``predict``: a call that raises
  (Keras then skips the end hooks) is reported with ``call_failed``; under
  ``tracker.autolog()`` a tracker is added to calls that have none.
* ``CallbackList.on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` and
  ``on_train_end``: ``event_begin`` before the list calls its callbacks and
  ``event_end`` once every one of them has run, so the recorder reads the LR
  an epoch really starts with, keeps the epoch logs as every callback left
  them (keys added by later callbacks included), and reads the final weights
  after every ``on_train_end`` (where Keras' EarlyStopping restores).
  A callback that raises inside one of these events is reported with
  ``event_failed`` (what it raised, the epoch, and the logs Keras computed).
* ``pythonify_logs``, which flattens nested logs dicts to bare names: a
  pass-through that keeps the full names beside (``tracker.record.nested_logs``).
* the optimizer's ``learning_rate`` setter, ``Model.__setattr__`` for
  ``stop_training = True``, and ``set_weights`` / ``load_weights`` on the
  model or on any layer or sub-model inside it: the decisions, with the
  callback that made them (its class and hook, found on the call stack).
* ``finalize_variable_values`` of an optimizer with ``use_ema``: Keras writes
  the moving averages into the model at the end of ``fit``.
* Keras' save functions, for the saves of a tracked model (``tracker.record.save_capture``).

Installation happens when ``tracker.record`` is imported, and ``import
tracker`` arranges it as soon as Keras is imported (``tracker.record.import_hooks``),
so it does not depend on how or when a callback is built:
``model.fit(x, y, callbacks=[TrackingCallback()])`` looks ``fit`` up before
the callback exists, and is still seen.

A callback takes part by having a ``capture_listener`` attribute.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Actor", "EventFailure", "Listener", "install", "installed", "watch", "unwatch", "listeners_in", "find_actor",
]

logger = logging.getLogger(__name__)

#: The CallbackList events whose begin and end listeners are told about.
EVENTS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")
_METHODS = ("fit", "evaluate", "predict")


@dataclass(slots=True)
class Actor:
    """Who did something: a callback (its class name and hook) or ``user code``."""

    name: str
    hook: str | None = None
    callback: Any = None
    frame_locals: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EventFailure:
    """A callback raised inside a ``CallbackList`` event (one of ``EVENTS``).

    ``callback`` is the callback that raised (None if it could not be told);
    ``epoch`` the epoch Keras passed; ``logs`` the logs dict the list handed
    to its callbacks, as the callbacks that ran before the raise left it
    (None if the raise came before the list built it).
    """

    event: str
    exc: BaseException
    callback: Any
    epoch: int | None
    logs: dict[str, Any] | None


@runtime_checkable
class Listener(Protocol):
    """What the patched Keras entry points tell a recorder. Every method must not raise."""

    model: Any

    def call_failed(self, method: str, exc: BaseException, model: Any = None) -> None:
        """``model.fit``/``evaluate``/``predict`` of ``model`` raised ``exc`` (Keras skipped the end hooks)."""

    def call_returned(self, method: str) -> None:
        """``model.fit``/``evaluate``/``predict`` returned."""

    def event_begin(self, event: str, callbacks: list[Any]) -> None:
        """A CallbackList is about to call ``event`` (one of ``EVENTS``) on ``callbacks``."""

    def event_end(self, event: str) -> None:
        """Every callback of the list has run ``event``."""

    def event_failed(self, failure: EventFailure) -> None:
        """A callback of the list raised inside an event; the exception then propagates."""

    def watches_optimizer(self, optimizer: Any) -> bool:
        """True if LR changes of ``optimizer`` concern this listener."""

    def lr_set(self, optimizer: Any, old: float | None, new: float | None, actor: Actor) -> None:
        """``optimizer.learning_rate`` was assigned and changed from ``old`` to ``new``."""

    def stop_requested(self, actor: Actor) -> None:
        """``model.stop_training = True`` was set."""

    def weights_setting(self, actor: Actor) -> None:
        """``set_weights``/``load_weights`` on the model or a layer inside it is about to replace weights."""

    def weights_set(self, actor: Actor) -> None:
        """That ``set_weights``/``load_weights`` call has replaced them."""

    def weights_finalized(self, optimizer: Any) -> None:
        """``optimizer`` (with ``use_ema``) has written its moving averages into the model's variables."""


_lock = threading.Lock()
_installed = False
_watching: weakref.WeakSet[Any] = weakref.WeakSet()
#: Set by tracker.record.autologging: ``(method, model, callbacks) -> callbacks or None``.
autolog_hook: Callable[[str, Any, list[Any]], list[Any] | None] | None = None


def installed() -> bool:
    """True once the Keras entry points are patched in this process."""
    return _installed


def listeners_in(callbacks: Iterable[Any]) -> list[Listener]:
    """The listeners of the callbacks that take part (have ``capture_listener``)."""
    found = []
    for callback in callbacks:
        listener = getattr(callback, "capture_listener", None)
        if listener is not None:
            found.append(listener)
    return found


def watch(listener: Listener) -> None:
    """Start telling ``listener`` about LR, stop and weight events on its model."""
    _watching.add(listener)


def unwatch(listener: Listener) -> None:
    """Stop telling ``listener``."""
    _watching.discard(listener)


def find_actor(depth: int = 2) -> Actor:
    """Return the nearest Keras callback on the call stack, else ``user code``."""
    import keras

    frame: Any = sys._getframe(depth)
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


def _tell(listeners: Iterable[Listener], method: str, *args: Any) -> None:
    from tracker.errors import TrackingWriteError

    for listener in listeners:
        try:
            getattr(listener, method)(*args)
        except TrackingWriteError:
            raise  # strict mode: the user asked for recording failures to stop training
        except Exception:  # otherwise a listener must never disturb training
            logger.exception("tracker: %s failed", method)


def _callbacks_of(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    if "callbacks" in kwargs:
        callbacks = kwargs["callbacks"]
    else:
        try:
            callbacks = signature.bind(*args, **kwargs).arguments.get("callbacks")
        except TypeError:
            return []
    if callbacks is None:
        return []
    inner = getattr(callbacks, "callbacks", None)  # a keras CallbackList
    try:
        return list(inner if inner is not None else callbacks)
    except TypeError:
        return []


def _with_callbacks(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any], callbacks: list[Any]):
    bound = signature.bind(*args, **kwargs)
    bound.arguments["callbacks"] = callbacks
    return bound.args, bound.kwargs


def _wrap_call(method: str, original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        callbacks = _callbacks_of(signature, args, kwargs)
        listeners = listeners_in(callbacks)
        if not listeners and autolog_hook is not None and args:
            try:
                added = autolog_hook(method, args[0], callbacks)
                if added is not None:
                    args, kwargs = _with_callbacks(signature, args, kwargs, added)
                    listeners = listeners_in(added)
            except Exception:  # autolog must never break the user's call
                logger.exception("tracker: autolog could not add a tracker")
        if not listeners:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            _tell(listeners, "call_failed", method, exc, args[0] if args else None)
            raise
        _tell(listeners, "call_returned", method)
        return result

    wrapper._tracker_wrapped = True  # type: ignore[attr-defined]
    return wrapper


def _wrap_event(event: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        listeners = listeners_in(self.callbacks)
        if not listeners:
            return original(self, *args, **kwargs)
        _tell(listeners, "event_begin", event, self.callbacks)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            try:
                failure = _failure(event, exc, self, args)
            except Exception:  # noqa: BLE001 - never replace the user's exception
                failure = EventFailure(event, exc, None, None, None)
            _tell(listeners, "event_failed", failure)
            raise
        _tell(listeners, "event_end", event)
        return result

    wrapper._tracker_wrapped = True  # type: ignore[attr-defined]
    return wrapper


def _failure(event: str, exc: BaseException, callback_list: Any, args: tuple[Any, ...]) -> EventFailure:
    """What was raised inside ``callback_list``'s ``event``, read off the traceback's frame of that call.

    The frame's locals hold the callback being called when it raised and the
    logs dict the list handed to every callback (Keras builds it inside the call).
    """
    epoch = args[0] if event in ("on_epoch_begin", "on_epoch_end") and args and isinstance(args[0], int) else None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == event and frame.f_locals.get("self") is callback_list:
            names = frame.f_locals
            if "callback" in names:  # raised by a callback, after the list built the logs
                logs = names.get("logs")
                return EventFailure(event, exc, names["callback"], epoch, logs if isinstance(logs, dict) else None)
        tb = tb.tb_next
    return EventFailure(event, exc, None, epoch, None)


def _watchers_of(layer: Any) -> list[Listener]:
    """The watching listeners whose model is ``layer`` or holds its variables (a layer or sub-model in it)."""
    found = []
    for listener in list(_watching):
        model = listener.model
        if model is layer:
            found.append(listener)
        elif model is not None:
            own = {id(v) for v in model.weights}
            if any(id(v) in own for v in layer.weights):
                found.append(listener)
    return found


def _read_lr(optimizer: Any) -> float | None:
    from tracker.record.optimizers import read_lr

    return read_lr(optimizer)


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here


def install() -> None:
    """Patch the Keras entry points described above, once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        import keras
        from keras.src.callbacks.callback_list import CallbackList
        from keras.src.optimizers.base_optimizer import BaseOptimizer

        for method in _METHODS:
            original = getattr(keras.Model, method)
            if not getattr(original, "_tracker_wrapped", False):
                setattr(keras.Model, method, _wrap_call(method, original))
        for event in EVENTS:
            original = getattr(CallbackList, event)
            if not getattr(original, "_tracker_wrapped", False):
                setattr(CallbackList, event, _wrap_event(event, original))

        lr_property = BaseOptimizer.__dict__["learning_rate"]

        def set_learning_rate(self: Any, value: Any) -> None:
            listeners = [w for w in list(_watching) if w.watches_optimizer(self)] if _watching else []
            if not listeners:
                lr_property.fset(self, value)
                return
            old = _read_lr(self)
            lr_property.fset(self, value)
            new = _read_lr(self)
            if not _same(old, new):
                _tell(listeners, "lr_set", self, old, new, find_actor())

        BaseOptimizer.learning_rate = property(lr_property.fget, set_learning_rate, doc=lr_property.__doc__)

        original_setattr = keras.Model.__setattr__

        def model_setattr(self: Any, name: str, value: Any) -> None:
            original_setattr(self, name, value)
            if name == "stop_training" and value and _watching:
                listeners = [w for w in list(_watching) if w.model is self]
                if listeners:
                    _tell(listeners, "stop_requested", find_actor())

        keras.Model.__setattr__ = model_setattr

        for owner, name in ((keras.layers.Layer, "set_weights"), (keras.Model, "load_weights")):
            setattr(owner, name, _wrap_weights(getattr(owner, name)))

        original_finalize = BaseOptimizer.finalize_variable_values

        @functools.wraps(original_finalize)
        def finalize_variable_values(self: Any, var_list: Any) -> Any:
            result = original_finalize(self, var_list)
            if _watching and getattr(self, "use_ema", False):
                _tell([w for w in list(_watching) if w.watches_optimizer(self)], "weights_finalized", self)
            return result

        BaseOptimizer.finalize_variable_values = finalize_variable_values

        from keras.src.utils import python_utils

        from tracker.record import nested_logs

        trainers = [m for n, m in list(sys.modules.items()) if n.startswith("keras.src.backend.") and n.endswith(".trainer")]
        nested_logs.install(python_utils, trainers)
        from tracker.record import save_capture

        save_capture.install(find_actor)
        _installed = True


_replacing = threading.local()  # inside a watched set_weights/load_weights (its inner calls are part of it)


def _wrap_weights(original: Callable[..., Any]) -> Callable[..., Any]:
    """``set_weights``/``load_weights`` telling the listeners whose model holds the layer's variables."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        listeners = _watchers_of(self) if _watching and not getattr(_replacing, "active", False) else []
        if not listeners:
            return original(self, *args, **kwargs)
        actor = find_actor()
        _tell(listeners, "weights_setting", actor)
        _replacing.active = True
        try:
            result = original(self, *args, **kwargs)
        finally:
            _replacing.active = False
        _tell(listeners, "weights_set", actor)
        return result

    return wrapper
