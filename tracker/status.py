"""The tracker's vocabularies: statuses, phase kinds, LR series points, checkpoints, system samples.

Plain ``str`` enums with no SQLAlchemy import, shared by the write side, the
tables, the read side and the views, so one name means one thing everywhere.
"""

from __future__ import annotations

import enum

__all__ = ["Status", "PhaseKind", "LRPoint", "FinalWeights", "SaveKind", "SaveReason", "LayoutFormat", "SampleTrigger"]


class Status(str, enum.Enum):
    """Where a run or a phase stands.

    ``running`` while open; ``finished``; ``failed`` (the Keras call raised);
    ``interrupted`` (KeyboardInterrupt or SystemExit); ``pruned`` (a tuning
    tool stopped the trial the run trains, e.g. ``optuna.TrialPruned``: a
    decision, not an error); ``crashed`` is never written: the read side
    reports it for a ``running`` row whose process is gone (see
    ``tracker.store.liveness``).
    """

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"
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


class FinalWeights(str, enum.Enum):
    """Which weights a finished fit left in the model, once every ``on_train_end`` had run.

    ``trained``: an epoch's weights as it trained them (the last epoch's, or
    the earlier epoch a ``restores`` row names). ``ema``: the moving averages
    of an optimizer with ``use_ema`` (Keras writes them at the end of ``fit``),
    or those of the epoch a ``restores`` row names. ``other``: weights no
    epoch ended with (loaded from a file, say).
    """

    TRAINED = "trained"
    EMA = "ema"
    OTHER = "other"


class SaveKind(str, enum.Enum):
    """What a save wrote: a whole ``model`` (``.keras`` or legacy ``.h5``), ``weights`` only
    (``.weights.h5``), or a ``backup`` (``BackupAndRestore``'s weights)."""

    MODEL = "model"
    WEIGHTS = "weights"
    BACKUP = "backup"


class SaveReason(str, enum.Enum):
    """Why a checkpoint was written, or not.

    ``improved``: a best-only saver (``ModelCheckpoint(save_best_only=True)``,
    KerasTuner's ``SaveBestEpoch``) saw its monitored value improve.
    ``not_improved``: it did not, and skipped the epoch (nothing written).
    ``periodic``: a saver that writes at every epoch or every N batches, or a
    best-only saver that saved because its monitored value was missing.
    ``final``: a save after the fit ended (``model.save()`` on the tracked
    model), or in ``on_train_end``.
    """

    IMPROVED = "improved"
    NOT_IMPROVED = "not_improved"
    PERIODIC = "periodic"
    FINAL = "final"


class LayoutFormat(str, enum.Enum):
    """Where a saved file keeps a model's weights: ``keras`` (a ``.keras`` archive's
    ``model.weights.h5`` and a ``.weights.h5`` file) or ``h5`` (the legacy ``.h5`` format)."""

    KERAS = "keras"
    H5 = "h5"


class SampleTrigger(str, enum.Enum):
    """Why a system sample was taken: every ``system_interval`` seconds (``timer``), at an epoch's end
    (``epoch``), or when the run's outermost call ended, returned or raised (``end``)."""

    TIMER = "timer"
    EPOCH = "epoch"
    END = "end"
