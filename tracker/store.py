"""The read side: runs, epochs and batches as pandas DataFrames.

Imports neither Keras nor TensorFlow. Numbers come back bit-exact: they are
rebuilt from the stored IEEE-754 bit patterns, so NaN, ±inf and -0.0 are
exactly what Keras passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, select

from tracker.decision_queries import DecisionQueries
from tracker.schema import Batch, BatchValue, Epoch, EpochValue, Phase, PhaseKind, Run

__all__ = ["Store", "decode_values"]

_PHASE_NAMES = {
    "train": PhaseKind.FIT,
    "fit": PhaseKind.FIT,
    "validation": PhaseKind.VALIDATION,
    "evaluate": PhaseKind.EVALUATE,
    "predict": PhaseKind.PREDICT,
}


def decode_values(bits: Sequence[Any], texts: Sequence[Any]) -> pd.Series:
    """Return the logged values stored as ``bits``/``text`` columns.

    A float64 Series when every value is a number (or None, as NaN); an object
    Series otherwise (exact big ints as ``int``, text as ``str``, None as None).
    """
    n = len(bits)
    int_bits = pd.array(list(bits), dtype="Int64")
    has_bits = ~np.asarray(int_bits.isna(), dtype=bool)
    floats = np.full(n, np.nan)
    floats[has_bits] = int_bits[has_bits].to_numpy(dtype=np.int64).view(np.float64)
    text_mask = np.array([isinstance(t, str) for t in texts], dtype=bool)
    if not text_mask.any():
        return pd.Series(floats, dtype="float64")
    out: list[Any] = []
    for i in range(n):
        if text_mask[i]:
            out.append(int(texts[i]) if has_bits[i] else texts[i])  # type: ignore[arg-type]
        elif has_bits[i]:
            out.append(float(floats[i]))
        else:
            out.append(None)
    return pd.Series(out, dtype="object")


class Store(DecisionQueries):
    """Read runs recorded by TrackingCallback.

    Args:
        db: A file path or an SQLAlchemy URL. Default ``"tracker.db"``. An
            older schema is upgraded on open; a missing file is never created.

    Raises:
        DatabaseNotFoundError: the file does not exist.
        NotADatabaseError: the file is not a tracker database.
        SchemaTooNewError: a newer tracker wrote the file.

    Example:
        ```python
        store = tracker.Store("runs.db")
        store.runs()
        store.epochs("latest")
        store.restores()
        ```
    """

    def runs(self) -> pd.DataFrame:
        """Return one row per run, oldest first.

        Columns: ``run_id``, ``name``, ``status`` (running, finished, failed,
        interrupted, crashed), ``started_at`` and ``ended_at`` (UTC),
        ``model_name``, ``param_count``, ``host``, ``pid``, ``phases``
        (number of fit/evaluate/predict calls) and ``epochs`` (epochs finished).
        """
        phases = (
            select(Phase.run_id, func.count().label("phases"))
            .where(Phase.kind != PhaseKind.VALIDATION)
            .group_by(Phase.run_id)
            .subquery()
        )
        epochs = (
            select(Phase.run_id, func.count().label("epochs"))
            .join(Epoch, Epoch.phase_id == Phase.id)
            .group_by(Phase.run_id)
            .subquery()
        )
        stmt = (
            select(
                Run.id.label("run_id"),
                Run.name,
                Run.status,
                Run.started_at,
                Run.ended_at,
                Run.model_name,
                Run.param_count,
                Run.host,
                Run.pid,
                func.coalesce(phases.c.phases, 0).label("phases"),
                func.coalesce(epochs.c.epochs, 0).label("epochs"),
            )
            .outerjoin(phases, phases.c.run_id == Run.id)
            .outerjoin(epochs, epochs.c.run_id == Run.id)
            .order_by(Run.started_at, Run.id)
        )
        frame = self._frame(stmt)
        frame["status"] = frame["status"].map(lambda s: getattr(s, "value", s))
        return frame

    @staticmethod
    def _widen(long: pd.DataFrame, keys: list[str], extra: list[str]) -> pd.DataFrame:
        """Pivot ``(keys..., extra..., key, bits, text)`` rows into one column per key.

        ``keys`` identify a row uniquely; ``extra`` columns ride along.
        """
        columns = keys + extra
        if long.empty:
            return pd.DataFrame(columns=columns)
        base = long.drop_duplicates(subset=keys)[columns].reset_index(drop=True)
        keyed = long[long["key"].notna()]
        if keyed.empty:
            return base
        decoded = decode_values(list(keyed["bits"]), list(keyed["text"]))
        tidy = keyed[keys + ["key"]].reset_index(drop=True).assign(v=decoded.to_numpy())
        wide = tidy.pivot(index=keys, columns="key", values="v")
        wide.columns.name = None
        return base.join(wide, on=keys)

    def epochs(self, run: str) -> pd.DataFrame:
        """Return one row per finished epoch of the run's fit phases.

        Columns: ``phase`` (the fit call's sequence number within the run),
        ``epoch`` (0-based, as Keras passed it), ``started_at``, ``ended_at``
        (UTC), then one column per ``logs`` key seen at epoch end (``val_*``
        included), in Keras' (alphabetical) order. Values are bit-exact.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        run_id = self.resolve(run)
        stmt = (
            select(
                Phase.seq.label("phase"),
                Epoch.epoch,
                Epoch.started_at,
                Epoch.ended_at,
                EpochValue.key,
                EpochValue.bits,
                EpochValue.text,
            )
            .join(Epoch, Epoch.phase_id == Phase.id)
            .outerjoin(EpochValue, EpochValue.epoch_id == Epoch.id)
            .where(Phase.run_id == run_id, Phase.kind == PhaseKind.FIT)
            .order_by(Phase.seq, Epoch.epoch, EpochValue.key)
        )
        return self._widen(self._frame(stmt), ["phase", "epoch"], ["started_at", "ended_at"])

    def batches(self, run: str, phase: str = "train") -> pd.DataFrame:
        """Return one row per recorded batch of one kind of phase.

        Args:
            run: A run reference (see ``resolve``).
            phase: ``train`` (batches of fit), ``validation`` (the evaluation
                inside fit), ``evaluate`` (standalone) or ``predict``.
                Default ``train``.

        Columns: ``phase`` (the phase's sequence number within the run),
        ``epoch`` (the training epoch; for validation, the epoch validated;
        empty for evaluate and predict), ``batch`` (the index Keras passed,
        the end step with ``steps_per_execution``), ``elapsed`` (seconds since
        the phase began), then one column per ``logs`` key (predict batches
        have none: outputs are never stored). Batch logs are Keras' running
        means since the start of the epoch.

        Raises:
            UnknownRunError: ``run`` names no run.
            ValueError: ``phase`` is not one of the four names.
        """
        kind = _PHASE_NAMES.get(phase)
        if kind is None:
            raise ValueError(f"phase must be train, validation, evaluate or predict, not {phase!r}.")
        run_id = self.resolve(run)
        epoch_col = func.coalesce(Batch.epoch, Phase.epoch).label("epoch")
        stmt = (
            select(
                Phase.seq.label("phase"),
                epoch_col,
                Batch.batch,
                Batch.seq.label("_seq"),
                Batch.elapsed,
                BatchValue.key,
                BatchValue.bits,
                BatchValue.text,
            )
            .join(Batch, Batch.phase_id == Phase.id)
            .outerjoin(
                BatchValue,
                and_(BatchValue.phase_id == Batch.phase_id, BatchValue.batch_seq == Batch.seq),
            )
            .where(Phase.run_id == run_id, Phase.kind == kind)
            .order_by(Phase.seq, Batch.seq, BatchValue.key)
        )
        wide = self._widen(self._frame(stmt), ["phase", "_seq"], ["epoch", "batch", "elapsed"])
        wide["epoch"] = wide["epoch"].astype("Int64")
        return wide.drop(columns="_seq")
