"""Nested ``logs`` dicts: keep the parent in the name, which Keras' flattening drops.

A custom ``train_step``, ``test_step`` or ``compute_metrics`` may return
``{"loss": l, "inner": {"a": 1.5}, "a": 2.0}``. Keras'
``pythonify_logs`` (run by ``CallbackList`` on every hook's logs, and by the
trainers on the logs of ``on_test_end``/``on_predict_end``) flattens it to
bare names: ``{"a": ..., "loss": l}``, with one of the two ``a`` values lost
(the later in sorted key order wins). Every callback, ``History`` included,
sees only that.

``install(python_utils, trainer_modules)`` wraps ``pythonify_logs`` with a
pass-through: what it returns is Keras' own result, unchanged in content, so
no callback sees anything different. Only when the logs it was given hold a
nested dict does it return a ``NestedLogs`` (a ``dict`` subclass) that also
carries the logs with their full names. The tracker then records
``full_logs(logs)``: the logs as the callbacks left them, with each
flattened key under its full name (``inner/a``) and a top-level key that a
nested one overwrote restored to its own value. A flat dict (the common
case) costs the wrapper one loop over its values.

Validation inside ``fit`` adds ``val_`` to the names of ``evaluate``'s
already flattened results; ``full_logs(logs, validation=...)`` applies the
validation pass's nesting to those ``val_`` keys too.

Imports Keras only through the modules ``install`` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["NestedLogs", "Nesting", "full_logs", "install"]


class Nesting:
    """How Keras flattened one nested logs dict.

    ``paths``: every value under a nested dict by its full name
    (``inner/a``), converted as Keras converts it. ``top``: the top-level
    values (not dicts), converted likewise. ``bare``: the names Keras made
    by flattening (the last part of each path).
    """

    __slots__ = ("paths", "top", "bare")

    def __init__(self, logs: Mapping[str, Any], convert: Callable[[Any], Any]) -> None:
        self.paths: dict[str, Any] = {}
        self.top: dict[str, Any] = {}
        bare: set[str] = set()
        for key, value in logs.items():
            if isinstance(value, dict):
                self._walk(value, f"{key}/", convert, bare)
            else:
                self.top[key] = convert({key: value})[key]
        self.bare = frozenset(bare)

    def _walk(self, logs: Mapping[str, Any], prefix: str, convert: Callable[[Any], Any], bare: set[str]) -> None:
        for key, value in logs.items():
            if isinstance(value, dict):
                self._walk(value, f"{prefix}{key}/", convert, bare)
            else:
                self.paths[f"{prefix}{key}"] = convert({key: value})[key]
                bare.add(key)

    def apply(self, logs: dict[str, Any], prefix: str = "") -> None:
        """Rename, in ``logs``, the keys Keras flattened (each under ``prefix``) to their full names."""
        for bare in self.bare:
            if bare in self.top:
                logs[prefix + bare] = self.top[bare]  # a nested value had overwritten it
            else:
                logs.pop(prefix + bare, None)
        for path, value in self.paths.items():
            logs[prefix + path] = value


class NestedLogs(dict[str, Any]):
    """Keras' flattened logs, as Keras made them, with the ``Nesting`` they came from."""

    __slots__ = ("nesting",)

    def __init__(self, flat: Mapping[str, Any], nesting: Nesting) -> None:
        super().__init__(flat)
        self.nesting = nesting


def full_logs(logs: Mapping[str, Any] | None, *, validation: Any = None) -> dict[str, Any] | None:
    """A copy of ``logs`` with the parents of nested keys kept (see the module docstring).

    ``validation``: the logs the fit's validation pass ended with, whose
    nesting names the ``val_`` keys. Returns None for no logs.
    """
    if not logs and not isinstance(validation, NestedLogs):
        return None if logs is None else dict(logs)
    out = dict(logs or {})
    if isinstance(logs, NestedLogs):
        logs.nesting.apply(out)
    if isinstance(validation, NestedLogs):
        validation.nesting.apply(out, "val_")
    return out


def _has_dict(logs: Any) -> bool:
    if not logs or not isinstance(logs, dict):
        return False
    for value in logs.values():
        if isinstance(value, dict):
            return True
    return False


def install(python_utils: Any, trainer_modules: list[Any]) -> None:
    """Wrap ``python_utils.pythonify_logs``, and the trainers' imported copies of it, once."""
    original = python_utils.pythonify_logs
    if getattr(original, "_tracker_wrapped", False):
        return

    def pythonify_logs(logs: Any) -> Any:
        result = original(logs)
        if isinstance(logs, NestedLogs):  # re-flattened by the next hook: keep what it came from
            return NestedLogs(result, logs.nesting)
        if _has_dict(logs):
            try:
                return NestedLogs(result, Nesting(logs, original))
            except Exception:  # noqa: BLE001 - never disturb Keras; the flat logs are still right
                return result
        return result

    pythonify_logs._tracker_wrapped = True  # type: ignore[attr-defined]
    pythonify_logs.__wrapped__ = original  # type: ignore[attr-defined]
    python_utils.pythonify_logs = pythonify_logs
    for module in trainer_modules:
        if getattr(module, "pythonify_logs", None) is original:
            module.pythonify_logs = pythonify_logs
