"""Run installers right after top-level modules are imported: the Keras capture, and the tool integrations.

``import tracker`` must stay cheap and must not import Keras (readers never
need it), nor any tuning tool. But ``model.fit(x, y, callbacks=[tracker.TrackingCallback()])``
looks ``fit`` up *before* the callback exists, so the capture
(``tracker.record.capture``) has to be in place before the user's first
``fit``; and a KerasTuner or Optuna search is tracked with no code of the
user's only if the tool is patched before its first search.

``arrange(table)`` takes ``{module: "dotted.path:installer"}`` (a top-level
module, or a submodule such as ``ray.tune``):
for a module already imported, it runs the installer at once; for the
others, a one-shot import hook runs it right after the module has finished
importing (before ``import tracker`` or after, either way). Each installer
runs once per process, and what it raises is logged, never passed to the
user's import. Nothing here imports the modules named.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any

__all__ = ["arrange"]

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_installers: dict[str, str] = {}  # top-level module -> "dotted.path:installer"
_done: set[str] = set()


def _install(module: str) -> None:
    with _lock:
        if module in _done or module not in _installers:
            return
        _done.add(module)
        target = _installers[module]
    path, _, name = target.partition(":")
    try:
        getattr(importlib.import_module(path), name)()
    except Exception:  # never break the user's import
        logger.exception("tracker: could not run %s after importing %s", target, module)


class _Loader(importlib.abc.Loader):
    """Runs the real loader of a watched module, then its installer."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.real.exec_module(module)
        _install(module.__name__)
        _remove_if_done()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds a watched top-level module with the other finders and wraps its loader (once)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _installers or fullname in _done:
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


def _remove_if_done() -> None:
    global _finder
    with _lock:
        if _finder is not None and set(_installers) <= _done:
            if _finder in sys.meta_path:
                sys.meta_path.remove(_finder)
            _finder = None


def arrange(table: Mapping[str, str]) -> None:
    """Run each installer of ``table`` (``{top-level module: "dotted.path:installer"}``) once its module is imported.

    A module already imported has its installer run now; the others as soon
    as they are imported. A module already in the table keeps its installer.
    """
    global _finder
    with _lock:
        for module, target in table.items():
            _installers.setdefault(module, target)
    for module in list(table):
        if module in sys.modules:
            _install(module)
    with _lock:
        if _finder is None and not set(_installers) <= _done:
            _finder = _Finder()
            sys.meta_path.insert(0, _finder)
