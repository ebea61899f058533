"""The tracking database's tables, as SQLAlchemy 2 typed models.

The schema is created and changed only by the Alembic revisions in
``migrations/``; ``tests/test_migrations.py`` checks that these models and the
migrations agree. Logged values are stored bit-exact (``tracker.db.values``):
epoch and phase values one row per key, with a float64 ``value`` for SQL and
the IEEE-754 ``bits`` only where the float cannot carry them (NaN, -0.0);
batch values packed into one row per batch. Key names live once, in ``keys``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from tracker.db.base import Base, enum_column
from tracker.db.types import JSONText, SafeString, SafeText
from tracker.status import FinalWeights, LRPoint, PhaseKind, Status

__all__ = [
    "Base",
    "Status",
    "PhaseKind",
    "Run",
    "Param",
    "Tag",
    "Phase",
    "Key",
    "KeySet",
    "Epoch",
    "Batch",
    "BatchExtra",
    "EpochValue",
    "PhaseValue",
    "LRPoint",
    "LRChange",
    "LRSeries",
    "StopDecision",
    "StopperState",
    "Restore",
    "RunMetric",
    "Checkpoint",
    "WeightLayout",
    "FitStart",
    "EpochPart",
    "Experiment",
    "Trial",
    "SystemSample",
]

class Run(Base):
    """One TrackingCallback instance: every fit, evaluate and predict it saw."""

    __tablename__ = "runs"
    # Covers the listing's columns, so `tracker runs --sort best:KEY` joins
    # run_metrics to this index and never reads the wide rows (model_config);
    # deleted_at too, which every listing filters on.
    __table_args__ = (
        Index(
            "ix_runs_listing",
            "id", "name", "status", "started_at", "ended_at", "model_name", "param_count",
            "host", "pid", "phase_count", "epoch_count", "heartbeat_at", "experiment_id", "deleted_at",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(SafeString, index=True)
    status: Mapped[Status] = mapped_column(enum_column(Status, "run_status"))
    started_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    host: Mapped[str | None] = mapped_column(String)
    pid: Mapped[int | None] = mapped_column(Integer)
    versions: Mapped[dict[str, Any] | None] = mapped_column(JSONText)
    model_name: Mapped[str | None] = mapped_column(SafeString)
    model_config: Mapped[dict[str, Any] | None] = mapped_column(JSONText)
    param_count: Mapped[int | None] = mapped_column(BigInteger)
    trainable_param_count: Mapped[int | None] = mapped_column(BigInteger)
    non_trainable_param_count: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(SafeText)
    # Counters kept by the writer so listing 10,000 runs needs no GROUP BY.
    phase_count: Mapped[int] = mapped_column(Integer, server_default="0")
    epoch_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Written at flushes and by the background writer while a phase is open;
    # a stale heartbeat on another host means the process died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    # PostgreSQL: the role that created the run (server default CURRENT_USER,
    # set by revision 0008); row-level security lets only that role and the
    # tables' owner change the run. NULL on SQLite and for older runs.
    created_by: Mapped[str | None] = mapped_column(String)
    # The experiment the run belongs to, if any (revision 0009; see tracker.db.sweep_tables).
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"), index=True)
    # Written only by a person's edits (tracker.db.edits), never by the
    # recorder: a note (tracker note) and when the run was moved to the trash
    # (tracker delete; NULL while in view). Revision 0010.
    note: Mapped[str | None] = mapped_column(SafeText)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class Param(Base):
    """A user-given parameter of a run (any JSON value)."""

    __tablename__ = "params"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(SafeString, primary_key=True)
    value: Mapped[Any | None] = mapped_column(JSONText)


class Tag(Base):
    """A user-given string tag of a run."""

    __tablename__ = "tags"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(SafeString, primary_key=True)
    value: Mapped[str | None] = mapped_column(SafeText)


class Phase(Base):
    """One fit, evaluate or predict call, or one validation pass inside a fit."""

    __tablename__ = "phases"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[PhaseKind] = mapped_column(enum_column(PhaseKind, "phase_kind"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("phases.id", ondelete="CASCADE"), index=True
    )
    epoch: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[Status] = mapped_column(enum_column(Status, "phase_status"))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    keras_params: Mapped[dict[str, Any] | None] = mapped_column(JSONText)
    optimizer_config: Mapped[dict[str, Any] | None] = mapped_column(JSONText)
    batch_count: Mapped[int | None] = mapped_column(Integer)
    sample_count: Mapped[int | None] = mapped_column(BigInteger)
    output_shapes: Mapped[dict[str, Any] | None] = mapped_column(JSONText)
    error: Mapped[str | None] = mapped_column(SafeText)
    # The first epoch index Keras passed: above 0 when BackupAndRestore
    # resumed a preempted fit (epochs before it were trained by earlier phases).
    initial_epoch: Mapped[int | None] = mapped_column(Integer)
    # A finished fit: which weights it left in the model (trained, ema, other; see FinalWeights).
    final_weights: Mapped[FinalWeights | None] = mapped_column(
        enum_column(FinalWeights, "final_weights", constraint=False)
    )


class Key(Base):
    """The dictionary of ``logs`` key names: every value row refers to a small id.

    Ids are handed out by the first writer that sees a name and never change,
    so several processes writing one file agree on them.
    """

    __tablename__ = "keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(SafeString, unique=True)


class Epoch(Base):
    """One finished epoch of a fit phase, under the index Keras passed.

    ``superseded`` is true when a later fit of the same run was resumed from
    an epoch at or before this one (``BackupAndRestore``): this attempt's
    training was thrown away, and the run's counts and bests leave it out.
    """

    __tablename__ = "epochs"
    __table_args__ = (UniqueConstraint("phase_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime] = mapped_column(DateTime)
    fingerprint: Mapped[str | None] = mapped_column(String(32), index=True)
    superseded: Mapped[bool] = mapped_column(Boolean, server_default=false())


class _LoggedValue:
    """Columns shared by epoch and phase values: one ``logs`` key and its value.

    ``value`` is the float64 for SQL. ``bits`` (the IEEE-754 bit pattern as a
    signed 64-bit integer) is stored only where ``value`` cannot carry the
    number exactly: NaN (``value`` is NULL) and -0.0 (SQLite keeps 0.0).
    A value that is not a number has ``text``; an integer beyond float64 keeps
    its nearest float and its exact ``text``; a logged None has all three
    NULL. See ``tracker.db.values``.
    """

    key_id: Mapped[int] = mapped_column(ForeignKey("keys.id"), sort_order=10)
    value: Mapped[float | None] = mapped_column(Double, sort_order=11)
    bits: Mapped[int | None] = mapped_column(BigInteger, sort_order=12)
    text: Mapped[str | None] = mapped_column(SafeText, sort_order=13)


class EpochValue(_LoggedValue, Base):
    """A key of the logs of an epoch, as every callback's ``on_epoch_end`` left them."""

    __tablename__ = "epoch_values"
    __table_args__ = (PrimaryKeyConstraint("epoch_id", "key_id"), {"sqlite_with_rowid": False})

    epoch_id: Mapped[int] = mapped_column(ForeignKey("epochs.id", ondelete="CASCADE"))


class PhaseValue(_LoggedValue, Base):
    """A key of the logs Keras passed to ``on_train_end`` or ``on_test_end``."""

    __tablename__ = "phase_values"
    __table_args__ = (PrimaryKeyConstraint("phase_id", "key_id"), {"sqlite_with_rowid": False})

    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"))


class KeySet(Base):
    """The ordered keys of a batch's packed values (``key_ids``: ids joined by commas)."""

    __tablename__ = "keysets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_ids: Mapped[str] = mapped_column(String, unique=True)


class Batch(Base):
    """One batch-end hook of a phase, with its logged numbers packed in one row.

    ``step`` orders the batches of a phase: for a fit, the batch's index in
    the whole fit (the steps of earlier epochs plus Keras' ``batch``); for
    validation, evaluate and predict, Keras' ``batch``. ``batch`` is Keras'
    index within the epoch (the end step, so 3, 7, 11 with
    ``steps_per_execution=4``); ``epoch`` is set for fit batches and for
    validation batches (the epoch validated);
    ``elapsed_us`` is microseconds since the phase began.

    ``vals`` holds the batch's float values as little-endian float64 (bit
    exact, NaN payloads and -0.0 included) in the order of ``keyset_id``'s
    keys. Values that are not floats are in ``batch_extras``. One row per
    batch is about 23 bytes a value on SQLite (see benchmarks/storage.py).
    """

    __tablename__ = "batches"
    __table_args__ = (PrimaryKeyConstraint("phase_id", "step"), {"sqlite_with_rowid": False})

    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int | None] = mapped_column(Integer)
    batch: Mapped[int] = mapped_column(Integer)
    elapsed_us: Mapped[int | None] = mapped_column(BigInteger)
    keyset_id: Mapped[int | None] = mapped_column(ForeignKey("keysets.id"))
    vals: Mapped[bytes | None] = mapped_column(LargeBinary)


class BatchExtra(_LoggedValue, Base):
    """A batch-logs value that is not a float (text, array, big int, None)."""

    __tablename__ = "batch_extras"
    __table_args__ = (
        PrimaryKeyConstraint("phase_id", "step", "key_id"),
        ForeignKeyConstraint(["phase_id", "step"], ["batches.phase_id", "batches.step"], ondelete="CASCADE"),
        {"sqlite_with_rowid": False},
    )

    phase_id: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)


class RunMetric(Base):
    """Per run and epoch-log key: best (min and max) and final value, kept in SQL.

    Maintained by the writer at each epoch end with an upsert, and rebuilt
    for a run when a resumed fit supersedes epochs, so sorting thousands of
    runs by ``best:val_loss`` reads one indexed row per run. Superseded
    epochs are left out. Epochs are Keras' indices; over several fits of a
    run, the latest wins ties for ``final``, the earliest for ``best``. NaN
    values are skipped by best (NULL in SQL) and kept as NULL in ``final``.
    """

    __tablename__ = "run_metrics"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "key_id"),
        Index("ix_run_metrics_key_id_best_min", "key_id", "best_min"),
        Index("ix_run_metrics_key_id_best_max", "key_id", "best_max"),
        Index("ix_run_metrics_key_id_final", "key_id", "final"),
    )

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key_id: Mapped[int] = mapped_column(ForeignKey("keys.id"))
    best_min: Mapped[float | None] = mapped_column(Double)
    best_min_epoch: Mapped[int | None] = mapped_column(Integer)
    best_max: Mapped[float | None] = mapped_column(Double)
    best_max_epoch: Mapped[int | None] = mapped_column(Integer)
    final: Mapped[float | None] = mapped_column(Double)
    final_epoch: Mapped[int | None] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)


# The decision tables live in their own module; importing them here registers
# them on Base.metadata, so the migrations and the schema check see every table.
from tracker.db.decision_tables import LRChange, LRSeries, Restore, StopDecision, StopperState  # noqa: E402
from tracker.db.checkpoint_tables import Checkpoint, EpochPart, FitStart, WeightLayout  # noqa: E402
from tracker.db.sweep_tables import Experiment, Trial  # noqa: E402
from tracker.db.system_tables import SystemSample  # noqa: E402
