"""The decision tables: learning-rate changes and series, stop decisions, restores.

Written by the recorder through ``tracker.db.writes.InsertDecisions``; read by
``tracker.store.decisions``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Double, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tracker.db.base import Base, enum_column
from tracker.db.types import SafeString
from tracker.status import LRPoint

__all__ = ["LRChange", "LRSeries", "StopDecision", "StopperState", "Restore"]


class LRChange(Base):
    """One change of an optimizer's learning rate, observed when it was made.

    ``epoch`` and ``step`` are the first epoch and the first global optimizer
    step that train with ``new_lr`` (a step is the optimizer's step counter,
    which its schedule is evaluated at: one per batch trained, also under
    gradient accumulation). ``source`` is the class name of the
    callback that assigned it, ``user code`` when no callback was on the call
    stack, or ``unknown`` when the change was only noticed afterwards (for
    example a direct ``variable.assign``). ``hook`` is the callback method.
    """

    __tablename__ = "lr_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), index=True)
    optimizer: Mapped[str] = mapped_column(String)
    epoch: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(BigInteger)
    old_lr: Mapped[float | None] = mapped_column(Double)
    new_lr: Mapped[float | None] = mapped_column(Double)
    source: Mapped[str] = mapped_column(String)
    hook: Mapped[str | None] = mapped_column(String)


class LRSeries(Base):
    """The learning rate an optimizer trained with, per phase start, epoch or batch."""

    __tablename__ = "lr_series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), index=True)
    optimizer: Mapped[str] = mapped_column(String)
    point: Mapped[LRPoint] = mapped_column(enum_column(LRPoint, "lr_point"))
    epoch: Mapped[int | None] = mapped_column(Integer)
    batch: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(BigInteger)
    lr: Mapped[float | None] = mapped_column(Double)


class StopDecision(Base):
    """A stopper's decision: who set ``model.stop_training`` and why, or why not.

    ``stopped`` is false for a stopper that ran to the end without stopping;
    its state at train end is recorded then. The reasoning columns are read
    from the stopper's attributes where it has them.

    A tuning tool's stop (a pruned trial: ``optuna.TrialPruned``) names the
    tool's pruner as ``stopper`` and has ``step`` and ``value``: the step and
    the value last reported to the tool, which it judged (``value`` as a
    float64, ``bits`` its IEEE-754 pattern where the float column cannot
    carry it: NaN, -0.0). Other stops leave them NULL.
    """

    __tablename__ = "stop_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), index=True)
    stopped: Mapped[bool] = mapped_column(Boolean(create_constraint=True, name="stopped"))
    stopper: Mapped[str] = mapped_column(String)
    hook: Mapped[str | None] = mapped_column(String)
    epoch: Mapped[int | None] = mapped_column(Integer)
    batch: Mapped[int | None] = mapped_column(Integer)
    monitor: Mapped[str | None] = mapped_column(SafeString)
    mode: Mapped[str | None] = mapped_column(SafeString)
    min_delta: Mapped[float | None] = mapped_column(Double)
    patience: Mapped[int | None] = mapped_column(Integer)
    baseline: Mapped[float | None] = mapped_column(Double)
    start_from_epoch: Mapped[int | None] = mapped_column(Integer)
    best: Mapped[float | None] = mapped_column(Double)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    wait: Mapped[int | None] = mapped_column(Integer)
    stopped_epoch: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Double)
    bits: Mapped[int | None] = mapped_column(BigInteger)


class Restore(Base):
    """A fit that ended with the weights of an earlier epoch.

    Found by comparing the final weights' fingerprint with the fingerprints
    taken at each epoch end. ``restored_by``/``hook``/``at_epoch`` say which
    callback's ``set_weights`` call put those weights back, and when.
    """

    __tablename__ = "restores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), index=True)
    restored_epoch: Mapped[int | None] = mapped_column(Integer)
    last_epoch: Mapped[int | None] = mapped_column(Integer)
    restored_by: Mapped[str | None] = mapped_column(String)
    hook: Mapped[str | None] = mapped_column(String)
    at_epoch: Mapped[int | None] = mapped_column(Integer)
    fingerprint: Mapped[str | None] = mapped_column(String(32))


class StopperState(Base):
    """A stopper's (or ReduceLROnPlateau's) state at an epoch's end, once every callback has run.

    One row per such callback of the fit (a callback with ``patience`` and
    ``wait``) per epoch: what ``tracker watch`` shows while the fit runs.
    """

    __tablename__ = "stopper_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    stopper: Mapped[str] = mapped_column(String)
    monitor: Mapped[str | None] = mapped_column(SafeString)
    mode: Mapped[str | None] = mapped_column(SafeString)
    min_delta: Mapped[float | None] = mapped_column(Double)
    patience: Mapped[int | None] = mapped_column(Integer)
    baseline: Mapped[float | None] = mapped_column(Double)
    start_from_epoch: Mapped[int | None] = mapped_column(Integer)
    best: Mapped[float | None] = mapped_column(Double)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    wait: Mapped[int | None] = mapped_column(Integer)
