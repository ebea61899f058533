"""The read side: ``Store`` and the queries behind it.

``Store`` (in ``tracker.store.store``) needs pandas and the ORM models; it is
imported lazily so that ``tracker runs`` can use ``tracker.store.filters``
and ``tracker.store.liveness`` alone. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracker.store.store import Store

__all__ = ["Store"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tracker.store import store

        return getattr(store, name)
    raise AttributeError(f"module 'tracker.store' has no attribute {name!r}")
