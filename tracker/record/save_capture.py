"""Saves of a tracked model, seen where Keras writes the file.

``install()`` (called by ``tracker.record.capture.install``) wraps the three
functions every Keras 3 save goes through:

* ``keras.src.saving.saving_lib.save_model``: ``model.save("x.keras")``,
  ``keras.saving.save_model`` and ``ModelCheckpoint`` with a ``.keras`` path;
* ``keras.src.saving.saving_lib.save_weights_only``: ``model.save_weights``,
  ``ModelCheckpoint(save_weights_only=True)``, ``BackupAndRestore`` and
  KerasTuner's trial checkpoints (``SaveBestEpoch``);
* ``keras.src.legacy.saving.legacy_h5_format.save_model_to_hdf5``: a whole
  model to a legacy ``.h5`` file.

Each is a pass-through unless the model is tracked: a fit under a tracker
registers the model with ``track`` (the model's latest tracked fit wins, and
stays registered after the fit, so ``model.save()`` afterwards is seen too,
also when the tracker was passed inline: the latest fit's is kept alive).
Before the file is written, a listener that has ``model_saving`` is told
(what the file will claim can be recorded first); once it is written, every
``SaveListener`` of the model is told with a
``Save``: the absolute path, the kind, and the callback on the call stack
that saved (``tracker.record.capture.find_actor``, passed to ``install``). A save that raises is not
reported. A save inside a save (one function calling another) is reported
once.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tracker.status import SaveKind

__all__ = ["Save", "SaveListener", "install", "track", "listeners_of"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Save:
    """One file written from a tracked model.

    ``path`` is the absolute path as written (a remote URL as given; None if
    Keras wrote to a file object). ``actor`` is the callback that saved (its
    class, hook and the hook's locals) or ``user code``.
    """

    model: Any
    path: str | None
    kind: SaveKind
    actor: Any


class SaveListener(Protocol):
    """What a tracked model's saves are reported to. Must not raise."""

    def model_saved(self, save: Save) -> None:
        """``save`` was written (the file is complete)."""

    # Optional: ``model_saving(save)``, told before the file is written.


_lock = threading.Lock()
_installed = False
_tracked: weakref.WeakKeyDictionary[Any, list[weakref.ReferenceType[Any]]] = weakref.WeakKeyDictionary()
_inside = threading.local()
_latest: list[Any] = []  # the listeners of the latest tracked fit, kept alive (see track)
_find_actor: Callable[[int], Any] | None = None  # capture.find_actor, given at install


def track(model: Any, listeners: Sequence[SaveListener]) -> None:
    """Report ``model``'s saves to ``listeners`` from now on (replacing earlier ones).

    The listeners are held weakly (a tracked model's entry goes with it), except
    those of the latest call, held strongly until the next one: a tracker passed
    inline (``fit(callbacks=[TrackingCallback()])``) is referenced by nothing
    else once ``fit`` returns, and ``model.save()`` right after must still reach it.
    """
    global _latest
    _tracked[model] = [weakref.ref(listener) for listener in listeners]
    _latest = list(listeners)


def listeners_of(model: Any) -> list[SaveListener]:
    """The live listeners ``model``'s saves are reported to (empty if it is not tracked)."""
    try:
        refs = _tracked.get(model) or []
    except TypeError:  # not weak-referenceable: never tracked
        return []
    return [listener for listener in (r() for r in refs) if listener is not None]


def _path(filepath: Any) -> str | None:
    try:
        path = os.fspath(filepath)
    except TypeError:
        return None  # a file object
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path if "://" in path else os.path.abspath(path)


def _wrap(kind: SaveKind, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(model: Any, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "active", False) or not _tracked:
            return original(model, filepath, *args, **kwargs)
        listeners = listeners_of(model)
        if not listeners:
            return original(model, filepath, *args, **kwargs)
        actor = _find_actor(2) if _find_actor is not None else None
        for listener in listeners:  # before the file exists: what it will claim must be recorded first
            saving = getattr(listener, "model_saving", None)
            if saving is not None:
                try:
                    saving(Save(model, _path(filepath), kind, actor))
                except Exception:  # noqa: BLE001 - never stop the save
                    logger.exception("tracker: recording before a save failed")
        _inside.active = True
        try:
            result = original(model, filepath, *args, **kwargs)
        finally:
            _inside.active = False
        save = Save(model, _path(filepath), kind, actor)
        for listener in listeners:
            try:
                listener.model_saved(save)
            except Exception as exc:  # noqa: BLE001 - strict mode re-raises its own error
                from tracker.errors import TrackingWriteError

                if isinstance(exc, TrackingWriteError):
                    raise
                logger.exception("tracker: recording a save failed")
        return result

    wrapper._tracker_wrapped = True  # type: ignore[attr-defined]
    return wrapper


def install(find_actor: Callable[[int], Any]) -> None:
    """Wrap Keras' three save functions (see the module docstring), once per process.

    ``find_actor(depth)`` tells who saved (``tracker.record.capture.find_actor``).
    """
    global _installed, _find_actor
    with _lock:
        _find_actor = find_actor
        if _installed:
            return
        from keras.src.legacy.saving import legacy_h5_format
        from keras.src.saving import saving_lib

        for module, name, kind in (
            (saving_lib, "save_model", SaveKind.MODEL),
            (saving_lib, "save_weights_only", SaveKind.WEIGHTS),
            (legacy_h5_format, "save_model_to_hdf5", SaveKind.MODEL),
        ):
            original = getattr(module, name)
            if not getattr(original, "_tracker_wrapped", False):
                setattr(module, name, _wrap(kind, original))
        _installed = True
