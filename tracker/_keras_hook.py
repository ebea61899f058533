"""Install the tracker's Keras capture as soon as Keras is imported.

``import tracker`` must stay cheap and must not import Keras (readers never
need it). But ``model.fit(x, y, callbacks=[tracker.TrackingCallback()])``
looks ``fit`` up *before* the callback exists, so the capture
(``tracker.record.capture``) has to be in place before the user's first
``fit``. ``arrange()`` does that: at once if Keras is already imported,
otherwise with a one-shot import hook that installs the capture right after
the ``keras`` package has finished importing. Nothing here imports Keras.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from types import ModuleType
from typing import Any

__all__ = ["arrange"]

logger = logging.getLogger(__name__)
_lock = threading.Lock()


def _install() -> None:
    try:
        from tracker.record.capture import install

        install()
    except Exception:  # never break the user's import of keras
        logger.exception("tracker: could not install the Keras capture")


class _Loader(importlib.abc.Loader):
    """Runs the real loader of ``keras``, then installs the capture."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.real.exec_module(module)
        _remove()
        _install()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``keras`` with the other finders and wraps its loader (once)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "keras":
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


_finder: _Finder | None = None


def _remove() -> None:
    global _finder
    with _lock:
        if _finder is not None and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        _finder = None


def arrange() -> None:
    """Install the capture now if Keras is loaded, else as soon as it is imported."""
    global _finder
    if "keras" in sys.modules:
        _install()
        return
    with _lock:
        if _finder is None:
            _finder = _Finder()
            sys.meta_path.insert(0, _finder)
