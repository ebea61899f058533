"""The checkpoint and lineage tables: every save, the weights layouts, where each fit started.

Written by the recorder through ``tracker.db.checkpoint_writes``; read by
``tracker.store.checkpoints``, ``tracker.store.lineage`` and
``tracker.store.which``. Revision 0011 creates them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Double, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracker.db.base import Base, enum_column
from tracker.db.types import JSONText, SafeString, SafeText
from tracker.status import SaveKind, SaveReason

__all__ = ["Checkpoint", "WeightLayout", "FitStart", "EpochPart"]


class Checkpoint(Base):
    """A save of the model during or after a fit, or an epoch a best-only saver skipped.

    ``saved`` is false for a skipped epoch (``reason`` ``not_improved``;
    ``path`` is the file it would have written). ``epoch`` is the epoch Keras
    was in (a ``ModelCheckpoint`` filepath's ``{epoch}`` is ``epoch + 1``);
    for a save after the fit, the epoch whose end-of-epoch weights the model
    held (by fingerprint), else NULL. ``batch`` and ``step`` are set for a
    save inside an epoch (``save_freq=N``): Keras' batch index and the
    batch's step in the whole fit (as in ``batches.step``). ``saver`` is the
    class of the callback that saved, or ``user code``. ``monitor``,
    ``value`` and ``best`` (the saver's best before this epoch) are the
    reasoning of a best-only saver; ``value_bits``/``best_bits`` carry NaN
    and -0.0 (see ``tracker.db.values``). ``fingerprint`` is that of the
    weights written (``tracker.db.digest``).
    """

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), index=True)
    saved: Mapped[bool] = mapped_column(Boolean(create_constraint=True, name="saved"))
    kind: Mapped[SaveKind] = mapped_column(enum_column(SaveKind, "save_kind"))
    reason: Mapped[SaveReason] = mapped_column(enum_column(SaveReason, "save_reason"))
    path: Mapped[str | None] = mapped_column(SafeText)
    epoch: Mapped[int | None] = mapped_column(Integer)
    batch: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(BigInteger)
    saver: Mapped[str] = mapped_column(String)
    hook: Mapped[str | None] = mapped_column(String)
    monitor: Mapped[str | None] = mapped_column(SafeString)
    value: Mapped[float | None] = mapped_column(Double)
    value_bits: Mapped[int | None] = mapped_column(BigInteger)
    best: Mapped[float | None] = mapped_column(Double)
    best_bits: Mapped[int | None] = mapped_column(BigInteger)
    fingerprint: Mapped[str | None] = mapped_column(String(32), index=True)
    saved_at: Mapped[datetime] = mapped_column(DateTime)


class WeightLayout(Base):
    """Where a run's model keeps each weight in a saved file, in the model's variable order.

    ``format`` is ``keras`` (the layout inside a ``.keras`` archive and of a
    ``.weights.h5`` file) or ``h5`` (the legacy ``.h5`` format). ``entries``
    is a JSON list, one ``[path, dtype, shape]`` per entry of
    ``model.get_weights()``: the HDF5 dataset path (for ``h5``, relative to
    the ``model_weights`` group), the variable's dtype name and its shape.
    Computed by Keras' own saving code, once per fit, without writing a file;
    ``tracker which`` puts a file's arrays in this order to compute the
    fingerprint. ``digest`` identifies the layout (``tracker.db.digest``).
    """

    __tablename__ = "weight_layouts"
    __table_args__ = (UniqueConstraint("run_id", "format", "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(32), index=True)
    entries: Mapped[Any] = mapped_column(JSONText)


class FitStart(Base):
    """The weights a fit started from: one row per fit, plus one per sub-model matched.

    ``fingerprint`` is that of the model's weights when the fit began (after
    every ``on_train_begin``: a ``BackupAndRestore`` reload included).
    ``source_*`` name the recorded epoch of another run whose end-of-epoch
    weights (or a save's, with ``source_batch``) were exactly these, the
    earliest such epoch if several; NULL for weights no other run recorded.
    ``layers`` is NULL for the whole model; for a partial start (transfer
    learning: a sub-model whose weights equal a recorded epoch's, or a
    recorded epoch's sub-model) it lists the sub-model's layer path(s).
    """

    __tablename__ = "fit_starts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str | None] = mapped_column(String(32))
    layers: Mapped[Any | None] = mapped_column(JSONText)
    source_run_id: Mapped[str | None] = mapped_column(String(32), index=True)
    source_phase_seq: Mapped[int | None] = mapped_column(Integer)
    source_epoch: Mapped[int | None] = mapped_column(Integer)
    source_batch: Mapped[int | None] = mapped_column(Integer)


class EpochPart(Base):
    """The fingerprint of a sub-model's weights at an epoch's end, for models that hold sub-models.

    One row per epoch and sub-model (a ``keras.Model`` used as a layer,
    ``layer`` its path of layer names, ``base/encoder``), hashed from the
    same copy as the epoch's own fingerprint. A later fit that starts with
    that sub-model's weights (transfer learning: the sub-model with a new
    head) is then a partial start of this epoch.
    """

    __tablename__ = "epoch_parts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    epoch_id: Mapped[int] = mapped_column(ForeignKey("epochs.id", ondelete="CASCADE"), index=True)
    layer: Mapped[str] = mapped_column(SafeString)
    fingerprint: Mapped[str] = mapped_column(String(32), index=True)
