"""The write side: recording a Keras run (imports Keras).

``TrackingCallback`` (``callback``) forwards its hooks to a ``Recorder``
(``recorder``), which keeps the run and phase rows (``ledger``), the
learning rate (``learning_rate``, ``optimizers``) and the stop and restore
decisions (``decisions``, ``fingerprint``), and queues typed operations on a
buffered ``Writer`` (``writer``). ``capture`` patches Keras' entry points once
per process to see what hooks cannot; ``autolog`` adds a tracker to calls that
have none. ``environment`` reads host, versions and model; ``resume`` finds
the run a restarted job continues.

Importing this package installs the capture.
"""

from __future__ import annotations

from tracker.record.autolog import autolog
from tracker.record.callback import TrackingCallback

__all__ = ["TrackingCallback", "autolog"]
