"""Where a run is now: its latest call, the last batch written and the current learning rate.

Behind ``tracker watch``. A few small indexed queries, cheap enough to run
every second against a database that a fit is writing (SQLite's WAL keeps
the reader and the writer apart). Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from tracker.db.tables import Batch, LRSeries, Phase
from tracker.status import PhaseKind

__all__ = ["Progress", "progress"]


@dataclass(slots=True)
class Progress:
    """The run's latest ``fit``, ``evaluate`` or ``predict`` call and how far it got.

    Attributes:
        phase_seq: The phase's sequence number among the run's phases (validation passes included).
        phase: Its kind (``fit``, ``evaluate``, ``predict``).
        status: ``running``, ``finished``, ``failed`` or ``interrupted``.
        started_at: When it began (UTC).
        planned_epochs: ``epochs`` as Keras passed it to the callbacks (fit), else None.
        steps: Batches per epoch (or per call) as Keras announced them, else None.
        initial_epoch: The first epoch of a resumed fit (0 otherwise).
        batch_epoch: The epoch of the last batch written (fit), else None.
        batch: Keras' index of the last batch written, else None (none yet:
            batches are written every ``flush_every`` batches or
            ``flush_interval`` seconds).
        lr: The latest learning-rate reading of the main optimizer in this
            call (at its start, an epoch or a batch), else None.
        lr_epoch: The epoch that reading belongs to, else None.
    """

    phase_seq: int
    phase: str
    status: str
    started_at: datetime | None
    planned_epochs: int | None
    steps: int | None
    initial_epoch: int
    batch_epoch: int | None
    batch: int | None
    lr: float | None
    lr_epoch: int | None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def progress(engine: Engine, run_id: str, *, kind: str | None = None) -> Progress | None:
    """Return where the run is now: its latest call (of ``kind`` if given, never a validation pass).

    Returns None before the run's first such call.
    """
    stmt = (
        select(Phase.id, Phase.seq, Phase.kind, Phase.status, Phase.started_at, Phase.keras_params,
               Phase.initial_epoch)
        .where(Phase.run_id == run_id, Phase.kind != PhaseKind.VALIDATION)
        .order_by(Phase.seq.desc())
        .limit(1)
    )
    if kind is not None:
        stmt = stmt.where(Phase.kind == PhaseKind(kind))
    with engine.connect() as conn:
        phase = conn.execute(stmt).first()
        if phase is None:
            return None
        last = conn.execute(
            select(Batch.epoch, Batch.batch).where(Batch.phase_id == phase.id).order_by(Batch.step.desc()).limit(1)
        ).first()
        lr = conn.execute(
            select(LRSeries.lr, LRSeries.epoch)
            .where(LRSeries.phase_id == phase.id, LRSeries.optimizer == "optimizer")
            .order_by(LRSeries.id.desc())
            .limit(1)
        ).first()
    params = phase.keras_params if isinstance(phase.keras_params, dict) else {}
    found = getattr(phase.kind, "value", phase.kind)
    return Progress(
        phase_seq=phase.seq,
        phase=found,
        status=getattr(phase.status, "value", phase.status),
        started_at=phase.started_at,
        planned_epochs=_int(params.get("epochs")) if found == PhaseKind.FIT.value else None,
        steps=_int(params.get("steps")),
        initial_epoch=phase.initial_epoch or 0,
        batch_epoch=last.epoch if last is not None else None,
        batch=last.batch if last is not None else None,
        lr=lr.lr if lr is not None else None,
        lr_epoch=lr.epoch if lr is not None else None,
    )
