"""``CheckpointReads``: the part of ``Store`` that reads saves and lineage, and tells which run a file holds."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from tracker.store import checkpoints, which
from tracker.store.reader import Reader

__all__ = ["CheckpointReads"]


class CheckpointReads(Reader):
    """``Store``'s checkpoint and lineage methods (see ``Store``)."""

    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        """Return every save of a tracked model, and every epoch a best-only saver skipped.

        One row per file written from the model during a fit or after it
        (``ModelCheckpoint`` in every mode, ``BackupAndRestore``, KerasTuner's
        trial checkpoints, ``model.save()``/``save_weights()``) and per epoch
        a best-only saver did not save. Columns: ``run_id``, ``name``,
        ``phase`` (``fit``), ``phase_seq``, ``call`` (the fit), ``epoch``
        (Keras' epoch: a ``ModelCheckpoint`` filepath's ``{epoch}`` is
        ``epoch + 1``; for a save after the fit, the epoch whose end-of-epoch
        weights the model held, else ``<NA>``), ``batch`` and ``step`` (a
        save inside an epoch: Keras' batch index and its step in the fit),
        ``saved`` (false for a skipped epoch), ``kind`` (``model``,
        ``weights`` or ``backup``), ``reason`` (``improved``,
        ``not_improved``, ``periodic`` or ``final``), ``path`` (absolute, as
        written; for a skipped epoch the file it would have written),
        ``saver`` (the callback's class, or ``user code``), ``hook``,
        ``monitor``, ``value`` (the monitored value), ``best`` (the saver's
        best before that epoch), ``fingerprint`` (of the weights written) and
        ``saved_at`` (UTC). Without ``run``, runs in the trash are left out.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return checkpoints.checkpoints_frame(self.engine, self._maybe(run))

    def lineage(self, run: str) -> pd.DataFrame:
        """Return the runs this run started from (ancestors) and those started from it (descendants).

        One row per fit that started from a recorded epoch of another run,
        found by weight fingerprints. Columns: ``relation`` (``ancestor`` or
        ``descendant``), ``depth`` (1 for a parent or child, 2 for a
        grand-parent...), ``parent_id``, ``parent``, ``parent_status``,
        ``epoch`` (the parent's epoch whose weights the fit started from),
        ``batch`` (set when those were a save inside that epoch),
        ``child_id``, ``child``, ``child_status``, ``fit`` (the child's fit,
        as ``call``), ``layers`` (``<NA>`` when the whole model started
        from the parent's weights; for a partial start, the sub-model(s)
        whose weights did). Runs in the trash are left out (as in every
        listing); a parent not in this database has the status ``absent``.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return checkpoints.lineage_frame(self.engine, self.resolve(run))

    def which(self, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
        """Return every recorded epoch whose end-of-epoch weights equal a model file's, exactly.

        ``paths``: a ``.keras`` archive (zipped or a folder), a
        ``.weights.h5`` file or a legacy ``.h5`` file, or several; told by
        content, so renamed copies work. The weights are read with h5py (no
        Keras) and fingerprinted in the recorded model's variable order.
        Saves inside an epoch match too (``batch`` set). Columns: ``file``,
        ``run_id``, ``name``, ``status``, ``phase``, ``phase_seq``, ``call``,
        ``epoch``, ``batch``, ``monitor`` (the run's monitored key: its
        savers' or stoppers', else ``val_loss``, else ``loss``), ``value``
        (that key's value at the epoch), ``is_best`` (the epoch is the run's
        best of ``monitor``), ``is_restored`` (a restore left the fit on this
        epoch's weights), ``saved_as`` (paths the tracker saw these weights
        written to), then the epoch's logged values. An empty frame when
        nothing matches. Runs in the trash are left out.

        Raises:
            ModelFileError: a file is missing, not a model file, or corrupt.
        """
        files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        frames = [which.which_frame(self.engine, p) for p in files]
        if not frames:
            return pd.DataFrame(columns=which.WHICH_COLUMNS)
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
