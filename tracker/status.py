"""The tracker's vocabularies: statuses, phase kinds, LR series points.

Plain ``str`` enums with no SQLAlchemy import, shared by the write side, the
tables, the read side and the views, so one name means one thing everywhere.
"""

from __future__ import annotations

import enum

__all__ = ["Status", "PhaseKind", "LRPoint"]


class Status(str, enum.Enum):
    """Where a run or a phase stands.

    ``running`` while open; ``finished``; ``failed`` (the Keras call raised);
    ``interrupted`` (KeyboardInterrupt or SystemExit); ``crashed`` is never
    written: the read side reports it for a ``running`` row whose process is
    gone (see ``tracker.store.liveness``).
    """

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"


class PhaseKind(str, enum.Enum):
    """Which Keras call a phase is; ``validation`` is the evaluation inside ``fit``."""

    FIT = "fit"
    VALIDATION = "validation"
    EVALUATE = "evaluate"
    PREDICT = "predict"


class LRPoint(str, enum.Enum):
    """Where a learning-rate series value was read: fit start, epoch, or batch."""

    PHASE_BEGIN = "phase_begin"
    EPOCH = "epoch"
    BATCH = "batch"
