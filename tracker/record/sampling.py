"""Which batches are recorded with ``log_batches=N``: every N-th step, plus the last batch of each epoch and pass.

``Sampler`` queues a sampled batch at once and holds the latest one that was
not sampled, per phase; at the end of an epoch or pass the held record is
queued if it is that epoch's (or pass's) last batch. Used by the recorder
under its lock (Keras may run batch hooks on worker threads on JAX and torch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tracker.db.writes import BatchRecord

__all__ = ["Sampler"]


class Sampler:
    """Samples batch records for ``every`` (1: all; N: every N-th step); ``add`` queues one."""

    def __init__(self, every: int, add: Callable[[BatchRecord], None], lock: threading.Lock) -> None:
        self.every, self.add, self.lock = every, add, lock
        self.held: dict[int, BatchRecord] = {}  # per phase: the latest batch not sampled

    def sample(self, record: BatchRecord) -> bool:
        """Queue ``record`` if it is sampled (call under the lock); else hold it if it is the latest."""
        if self.every == 1 or (record.step + 1) % self.every == 0:
            self.add(record)
            return True
        key = id(record.phase)
        held = self.held.get(key)
        if held is None or record.batch > held.batch:
            self.held[key] = record
        return False

    def release(self, phase: Any, last_batch: int) -> BatchRecord | None:
        """At the end of an epoch or pass: queue the held record if it is the last batch."""
        with self.lock:
            held = self.held.pop(id(phase), None)
            if held is not None and held.batch >= last_batch:
                self.add(held)
                return held
        return None
