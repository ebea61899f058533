"""The read side: runs, epochs and batches as pandas DataFrames.

Imports neither Keras nor TensorFlow. Numbers come back bit-exact: they are
rebuilt from the stored IEEE-754 bit patterns, so NaN, ±inf and -0.0 are
exactly what Keras passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, select

from tracker.store.runs import RunQueries
from tracker.store.liveness import apply_liveness
from tracker.store.filters import runs_statement
from tracker.db.tables import Batch, BatchValue, Epoch, EpochValue, Phase, PhaseKind

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

    A float64 Series when every value is a number; an object Series otherwise
    (floats as ``float``, exact big ints as ``int``, text as ``str``, a
    logged None as None, so it is never confused with a logged NaN).
    """
    n = len(bits)
    int_bits = pd.array(list(bits), dtype="Int64")
    has_bits = ~np.asarray(int_bits.isna(), dtype=bool)
    floats = np.full(n, np.nan)
    floats[has_bits] = int_bits[has_bits].to_numpy(dtype=np.int64).view(np.float64)
    text_mask = np.array([isinstance(t, str) for t in texts], dtype=bool)
    if not text_mask.any() and has_bits.all():
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


class Store(RunQueries):
    """Read runs recorded by TrackingCallback.

    Args:
        db: A file path or an SQLAlchemy URL. Default ``"tracker.db"``. An
            older schema is upgraded on open; a missing file is never created.
        heartbeat_timeout: Seconds without a heartbeat after which a
            ``running`` run on another host is reported ``crashed``.
            Default 120. (On this host a dead pid is enough.)

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

    def runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        sort: str | None = None,
        limit: int | None = None,
        run_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Return one row per run, filtered and sorted.

        Args:
            status: Keep runs with this status (or any of these). Default all.
            name: Keep runs with this name; ``*`` and ``?`` are wildcards.
                Default all.
            tags: Keep runs having every one of these tags. Default all.
            params: Keep runs whose params equal every one of these (compared
                as JSON, so ``{"lr": 0.1}`` matches ``params={"lr": 0.1}``).
                Default all.
            sort: ``started_at`` (default, oldest first), ``-started_at``,
                ``name``, ``best:KEY`` or ``final:KEY`` (the best or final
                epoch value of a logged key, best first). Whether best means
                min or max comes from the key (``*acc*``, ``auc``,
                ``precision``, ``recall``... are maximised, the rest
                minimised); override with ``best:KEY:max`` or ``:min``. Runs
                without the key come last.
            limit: Return at most this many rows. Default all.
            run_ids: Keep only these run ids. Default all.

        Columns: ``run_id``, ``name``, ``status`` (running, finished, failed,
        interrupted, crashed: a ``running`` run whose process is gone, see
        ``tracker.store.liveness``), ``started_at`` and ``ended_at`` (UTC),
        ``model_name``, ``param_count``, ``host``, ``pid``, ``phases``
        (fit/evaluate/predict calls), ``epochs`` (epochs finished),
        ``heartbeat_at`` (the writer's last sign of life); with a
        ``best:``/``final:`` sort also ``KEY`` and ``KEY_epoch`` (the sorted
        value and its epoch). All filters are bound parameters.

        Raises:
            ValueError: ``sort`` or ``status`` is not understood.
        """
        stmt, order = runs_statement(
            status=status, name=name, tags=tags, params=params, sort=sort, limit=limit, run_ids=run_ids
        )
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            columns = list(result.keys())
            rows = [list(r) for r in result.all()]
        wanted = None if status is None else ([status] if isinstance(status, str) else list(status))
        rows = apply_liveness(columns, rows, wanted, timeout=self.heartbeat_timeout)
        frame = pd.DataFrame(rows, columns=columns)
        for column in ("started_at", "ended_at", "heartbeat_at"):
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
        if order.key is not None:
            frame[f"{order.key}_epoch"] = frame[f"{order.key}_epoch"].astype("Int64")
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
        if decoded.dtype != object:
            tidy = keyed[keys + ["key"]].reset_index(drop=True).assign(v=decoded.to_numpy())
            wide = tidy.pivot(index=keys, columns="key", values="v")
            wide.columns.name = None
            return base.join(wide, on=keys)
        # Text or None present: place cells by hand, because pivoting object
        # values turns a logged None into NaN. A key absent from a row is NaN.
        position = {k: i for i, k in enumerate(map(tuple, base[keys].itertuples(index=False, name=None)))}
        columns: dict[str, list[Any]] = {}
        for row_key, key, value in zip(
            keyed[keys].itertuples(index=False, name=None), keyed["key"], decoded.to_numpy()
        ):
            column = columns.setdefault(key, [np.nan] * len(base))
            column[position[tuple(row_key)]] = value
        wide = pd.DataFrame({k: pd.Series(v, dtype="object") for k, v in sorted(columns.items())})
        for key in wide.columns:
            if all(isinstance(v, float) for v in wide[key]):
                wide[key] = wide[key].astype("float64")
        return pd.concat([base, wide], axis=1)

    @staticmethod
    def _tidy(long: pd.DataFrame, keys: list[str], extra: list[str], run_id: str) -> pd.DataFrame:
        """One row per (row keys, log key): ``run_id``, keys, extra, ``key``, ``value``."""
        keyed = long[long["key"].notna()].reset_index(drop=True)
        decoded = decode_values(list(keyed["bits"]), list(keyed["text"]))
        tidy = keyed[keys + extra + ["key"]].assign(value=decoded.to_numpy())
        tidy.insert(0, "run_id", run_id)
        return tidy

    def epochs(self, run: str, *, tidy: bool = False, attempts: bool = False) -> pd.DataFrame:
        """Return one row per finished epoch of the run's fit phases.

        Wide (default) columns: ``phase`` (the fit call's sequence number
        within the run), ``epoch`` (0-based, as Keras passed it),
        ``started_at``, ``ended_at`` (UTC), ``redone`` (this epoch index was
        trained before, by a fit that a resumed fit replaced), then one column
        per ``logs`` key seen at epoch end (``val_*`` included), in Keras'
        (alphabetical) order. With ``tidy=True``: one row per epoch and key,
        columns ``run_id, phase, epoch, started_at, ended_at, redone, key,
        value``. Values are bit-exact.

        A job resumed with ``BackupAndRestore`` re-trains the epochs after
        its backup point. Those earlier attempts are left out unless
        ``attempts=True``, which adds them with ``superseded`` true.

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
        long = self._mark_redone(self._frame(stmt), run_id, attempts)
        extra = ["started_at", "ended_at", "redone"] + (["superseded"] if attempts else [])
        if tidy:
            return self._tidy(long, ["phase", "epoch"], extra, run_id)
        return self._widen(long, ["phase", "epoch"], extra)

    def _mark_redone(self, long: pd.DataFrame, run_id: str, attempts: bool) -> pd.DataFrame:
        """Flag epochs re-trained by a resumed fit; drop the replaced attempts unless asked."""
        resumed = dict(
            self._frame(
                select(Phase.seq, Phase.initial_epoch).where(
                    Phase.run_id == run_id, Phase.kind == PhaseKind.FIT, Phase.initial_epoch > 0
                )
            ).itertuples(index=False)
        )
        pairs = long[["phase", "epoch"]].drop_duplicates()
        later = {
            (p, e): any(q > p and (q, e) in set(map(tuple, pairs.values)) for q in resumed)
            for p, e in map(tuple, pairs.values)
        }
        superseded = long.apply(lambda r: later[(r["phase"], r["epoch"])], axis=1) if len(long) else pd.Series(dtype=bool)
        replaced = {(p, e) for (p, e), gone in later.items() if gone}
        redone_epochs = {e for _, e in replaced}
        long = long.assign(
            redone=[(p in resumed and e in redone_epochs) for p, e in zip(long["phase"], long["epoch"])],
            superseded=list(superseded) if len(long) else [],
        )
        if not attempts:
            long = long[~long["superseded"].astype(bool)].drop(columns="superseded")
        return long

    def batches(self, run: str, phase: str = "train", *, tidy: bool = False) -> pd.DataFrame:
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
        means since the start of the epoch. With ``tidy=True``: one row per
        batch and key, columns ``run_id, phase, epoch, batch, elapsed, key,
        value``.

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
        if tidy:
            long = self._frame(stmt)
            long["epoch"] = long["epoch"].astype("Int64")
            return self._tidy(long, ["phase"], ["epoch", "batch", "elapsed"], run_id)
        wide = self._widen(self._frame(stmt), ["phase", "_seq"], ["epoch", "batch", "elapsed"])
        wide["epoch"] = wide["epoch"].astype("Int64")
        return wide.drop(columns="_seq")
