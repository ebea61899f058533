"""A Keras run tracker on SQLite.

``TrackingCallback`` (the write side) needs Keras; it is imported lazily so
that ``import tracker`` and the read side (``Store``, the CLI's queries) never
import Keras or TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    NotADatabaseError,
    SchemaTooNewError,
    TrackerError,
    TrackingWriteError,
    UnknownRunError,
)
from tracker.store import Store

if TYPE_CHECKING:
    from tracker.tracking import TrackingCallback
    from tracker.writer import TrackingWarning

__all__ = [
    "TrackingCallback",
    "TrackingWarning",
    "Store",
    "TrackerError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "NotADatabaseError",
    "SchemaTooNewError",
    "UnknownRunError",
    "TrackingWriteError",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "TrackingCallback":
        from tracker.tracking import TrackingCallback

        return TrackingCallback
    if name == "TrackingWarning":
        from tracker.writer import TrackingWarning

        return TrackingWarning
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
