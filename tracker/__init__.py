"""A Keras run tracker on SQLite.

``TrackingCallback`` and ``autolog`` (the write side) need Keras, ``Store``
needs pandas; all are imported lazily, so ``import tracker`` is quick and the
read side (``Store``, the CLI's queries) never imports Keras or TensorFlow.

``import tracker`` arranges for the tracker's Keras capture to be installed
as soon as Keras is imported (at once if it already is), so that
``model.fit(x, y, callbacks=[tracker.TrackingCallback()])`` is seen even
though ``fit`` is looked up before the callback exists; and likewise for the
integrations with KerasTuner, Optuna and Ray Tune, so that their searches are tracked
with no code of the user's. See ``tracker.record.capture``,
``tracker.record.import_hooks`` and ``tracker.integrations``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.record import import_hooks
from tracker.errors import (
    DatabaseError,
    DatabaseNotFoundError,
    DeletedRunError,
    EditRefusedError,
    InvalidArgumentError,
    ModelFileError,
    NotADatabaseError,
    SchemaOutdatedError,
    SchemaTooNewError,
    TrackerError,
    TrackingWarning,
    TrackingWriteError,
    UnknownExperimentError,
    UnknownRunError,
    UnsupportedDatabaseError,
)

if TYPE_CHECKING:
    from tracker.manage import RunManager
    from tracker.record import TrackingCallback, autolog
    from tracker.store import Store

__all__ = [
    "TrackingCallback",
    "autolog",
    "TrackingWarning",
    "Store",
    "RunManager",
    "TrackerError",
    "DatabaseError",
    "DatabaseNotFoundError",
    "InvalidArgumentError",
    "ModelFileError",
    "NotADatabaseError",
    "SchemaOutdatedError",
    "SchemaTooNewError",
    "UnknownRunError",
    "DeletedRunError",
    "EditRefusedError",
    "UnknownExperimentError",
    "UnsupportedDatabaseError",
    "TrackingWriteError",
]

__version__ = "0.1.0"

#: What runs right after a top-level module is imported (named as strings: nothing is imported here).
INSTALLERS = {
    "keras": "tracker.record.capture:install",
    "keras_tuner": "tracker.integrations.keras_tuner:install",
    "optuna": "tracker.integrations.optuna:install",
    "ray.tune": "tracker.integrations.ray_tune:install",
}
import_hooks.arrange(INSTALLERS)


def __getattr__(name: str) -> Any:
    # Lazy: Store pulls in pandas, TrackingCallback and autolog pull in Keras.
    if name == "Store":
        from tracker.store import Store

        return Store
    if name == "RunManager":
        from tracker.manage import RunManager

        return RunManager
    if name in ("TrackingCallback", "autolog"):
        from tracker import record

        return getattr(record, name)
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
