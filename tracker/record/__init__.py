"""The write side: recording a Keras run.

``TrackingCallback`` (``callback``) forwards its hooks to a ``Recorder``
(``recorder``), which keeps the run and phase rows (``ledger``), the
learning rate (``learning_rate``, ``optimizers``) and the stop and restore
decisions (``decisions``, ``fingerprint``), and queues typed operations on a
buffered ``Writer`` (``writer``). ``capture`` patches Keras' entry points once
per process to see what hooks cannot (``save_capture``: the saves of a tracked
model, recorded by ``checkpoints``); ``lineage`` records where each fit started
and the weights layouts (``layout``) that ``tracker which`` reads files with;
``autologging`` (``autolog``) adds a tracker to calls that have none. ``environment`` reads host, versions and model; ``resume`` finds
the run a restarted job continues; ``faults`` reports failures.

``TrackingCallback`` and ``autolog`` are imported lazily: the writer alone
(``tracker.record.writer``) needs no Keras. Importing ``callback`` installs
the capture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracker.record.autologging import autolog
    from tracker.record.callback import TrackingCallback

__all__ = ["TrackingCallback", "autolog"]


def __getattr__(name: str) -> Any:
    if name == "TrackingCallback":
        from tracker.record.callback import TrackingCallback

        return TrackingCallback
    if name == "autolog":
        from tracker.record.autologging import autolog

        return autolog
    raise AttributeError(f"module 'tracker.record' has no attribute {name!r}")
