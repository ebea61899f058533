"""Tracking failures: loud but never fatal, unless the user asked for strict mode.

``Faults.report`` raises ``TrackingWriteError`` in strict mode; otherwise it
logs the failure with its traceback and warns once per reason.
``guarded`` wraps a recorder method so a failure inside it is reported that
way instead of reaching Keras.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from tracker.errors import TrackingWarning, TrackingWriteError

__all__ = ["Faults", "guarded"]

logger = logging.getLogger("tracker.record")

F = TypeVar("F", bound=Callable[..., Any])


class Faults:
    """Reports the tracking failures of one run."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self._reasons: set[str] = set()

    def report(self, exc: BaseException, where: str) -> None:
        """Raise in strict mode, else log and warn once per reason."""
        if self.strict:
            if isinstance(exc, TrackingWriteError):
                raise exc
            raise TrackingWriteError(f"tracker: {where} failed: {exc}") from exc
        logger.exception("tracker: %s failed", where)
        reason = f"{where}: {type(exc).__name__}"
        if reason not in self._reasons:
            self._reasons.add(reason)
            warnings.warn(
                f"tracker: {where} failed ({type(exc).__name__}: {exc}); training goes on.",
                TrackingWarning,
                stacklevel=4,
            )


def guarded(where: str) -> Callable[[F], F]:
    """Report a failure inside ``where`` without disturbing training (unless strict)."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                self.faults.report(exc, where)
                return None

        return wrapper  # type: ignore[return-value]

    return decorate
