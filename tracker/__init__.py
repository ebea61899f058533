"""A Keras run tracker on SQLite.

``TrackingCallback`` and ``autolog`` (the write side) need Keras, ``Store``
needs pandas; all are imported lazily, so ``import tracker`` is quick and the
read side (``Store``, the CLI's queries) never imports Keras or TensorFlow.

``import tracker`` arranges for the tracker's Keras capture to be installed
as soon as Keras is imported (at once if it already is), so that
``model.fit(x, y, callbacks=[tracker.TrackingCallback()])`` is seen even
though ``fit`` is looked up before the callback exists. See
``tracker.record.capture``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker import _keras_hook
from tracker.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    InvalidArgumentError,
    NotADatabaseError,
    SchemaOutdatedError,
    SchemaTooNewError,
    TrackerError,
    TrackingWarning,
    TrackingWriteError,
    UnknownRunError,
)

if TYPE_CHECKING:
    from tracker.record import TrackingCallback, autolog
    from tracker.store import Store

__all__ = [
    "TrackingCallback",
    "autolog",
    "TrackingWarning",
    "Store",
    "TrackerError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "InvalidArgumentError",
    "NotADatabaseError",
    "SchemaOutdatedError",
    "SchemaTooNewError",
    "UnknownRunError",
    "TrackingWriteError",
]

__version__ = "0.1.0"

_keras_hook.arrange()


def __getattr__(name: str) -> Any:
    # Lazy: Store pulls in pandas, TrackingCallback and autolog pull in Keras.
    if name == "Store":
        from tracker.store import Store

        return Store
    if name in ("TrackingCallback", "autolog"):
        from tracker import record

        return getattr(record, name)
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
