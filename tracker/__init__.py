"""A Keras run tracker on SQLite.

``TrackingCallback`` (the write side) needs Keras and ``Store`` needs pandas;
both are imported lazily, so ``import tracker`` is quick and the read side
(``Store``, the CLI's queries) never imports Keras or TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    NotADatabaseError,
    SchemaTooNewError,
    TrackerError,
    TrackingWarning,
    TrackingWriteError,
    UnknownRunError,
)
if TYPE_CHECKING:
    from tracker.store import Store
    from tracker.record.callback import TrackingCallback

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
    # Lazy: Store pulls in pandas, TrackingCallback pulls in Keras.
    if name == "Store":
        from tracker.store import Store

        return Store
    if name == "TrackingCallback":
        from tracker.record.callback import TrackingCallback

        return TrackingCallback
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
