"""Store queries about decisions: LR changes and series, early stops, restores.

Mixed into ``tracker.Store``; imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Select, select

from tracker.db.tables import Epoch, EpochValue, LRChange, LRSeries, Phase, Restore, Run, StopDecision
from tracker.store.base import StoreBase

__all__ = ["DecisionQueries"]


class DecisionQueries(StoreBase):
    """LR changes and series, stop decisions and restores as DataFrames."""

    def _runs_filter(self, stmt: Select[Any], run: str | None) -> Select[Any]:
        if run is None:
            return stmt
        return stmt.where(Phase.run_id == self.resolve(run))

    def lr_changes(self, run: str) -> pd.DataFrame:
        """Return one row per learning-rate change of the run's fits.

        Columns: ``epoch`` (the first epoch that trains with the new value),
        ``step`` (the first global optimizer step that does), ``old_lr``,
        ``new_lr``, ``source`` (the callback's class name, ``user code``, or
        ``unknown`` when the change was noticed only afterwards), ``hook``
        (the callback method that made it), ``optimizer`` (attribute name on
        the model) and ``phase`` (the fit's sequence number in the run).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        stmt = (
            select(
                LRChange.epoch,
                LRChange.step,
                LRChange.old_lr,
                LRChange.new_lr,
                LRChange.source,
                LRChange.hook,
                LRChange.optimizer,
                Phase.seq.label("phase"),
            )
            .join(Phase, Phase.id == LRChange.phase_id)
            .order_by(Phase.seq, LRChange.id)
        )
        frame = self._frame(self._runs_filter(stmt, run))
        return _ints(frame, ["epoch", "step"])

    def lr_series(self, run: str) -> pd.DataFrame:
        """Return the learning rate each optimizer trained with.

        One row per fit start (``point`` = ``phase_begin``), per epoch (the
        rate of the epoch's first step, ``epoch``) and, for optimizers built
        on a ``LearningRateSchedule`` with batch logging on, per recorded
        batch (``batch``). Columns: ``phase``, ``optimizer``, ``point``,
        ``epoch``, ``batch``, ``step`` (global optimizer step), ``lr``.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        stmt = (
            select(
                Phase.seq.label("phase"),
                LRSeries.optimizer,
                LRSeries.point,
                LRSeries.epoch,
                LRSeries.batch,
                LRSeries.step,
                LRSeries.lr,
            )
            .join(Phase, Phase.id == LRSeries.phase_id)
            .order_by(Phase.seq, LRSeries.id)
        )
        frame = self._frame(self._runs_filter(stmt, run))
        frame["point"] = frame["point"].map(lambda p: getattr(p, "value", p))
        return _ints(frame, ["epoch", "batch", "step"])

    def early_stops(self, run: str | None = None) -> pd.DataFrame:
        """Return the early-stop decisions, of one run or of all runs.

        One row per ``stop_training = True`` (``stopped`` true) and per
        stopper that ran to the end of a fit without stopping (``stopped``
        false, its state at train end). Columns: ``run_id``, ``phase``,
        ``stopper`` (the callback's class name), ``stopped``,
        ``stopped_epoch`` (the epoch in which training was stopped), ``hook``,
        ``batch`` (for a stop inside a batch, e.g. TerminateOnNaN),
        ``best_epoch``, ``monitor``, ``best``, ``patience``, ``wait``,
        ``mode``, ``min_delta``, ``baseline``, ``start_from_epoch``, and
        ``epoch`` (the epoch of the decision: where it stopped, or the last
        epoch for one that did not).
        """
        stmt = (
            select(
                Phase.run_id,
                Phase.seq.label("phase"),
                StopDecision.stopper,
                StopDecision.stopped,
                StopDecision.stopped_epoch,
                StopDecision.hook,
                StopDecision.batch,
                StopDecision.best_epoch,
                StopDecision.monitor,
                StopDecision.best,
                StopDecision.patience,
                StopDecision.wait,
                StopDecision.mode,
                StopDecision.min_delta,
                StopDecision.baseline,
                StopDecision.start_from_epoch,
                StopDecision.epoch,
            )
            .join(Phase, Phase.id == StopDecision.phase_id)
            .join(Run, Run.id == Phase.run_id)
            .order_by(Run.started_at, Phase.seq, StopDecision.id)
        )
        frame = self._frame(self._runs_filter(stmt, run))
        return _ints(frame, ["stopped_epoch", "batch", "best_epoch", "patience", "wait", "start_from_epoch", "epoch"])

    def restores(self, run: str | None = None) -> pd.DataFrame:
        """Return the fits that ended with the weights of an earlier epoch.

        Found by weight fingerprints, not from the metric history. Columns:
        ``run_id``, ``phase``, ``restored_epoch`` (whose weights the model
        ended with), ``last_epoch`` (the last epoch trained),
        ``restored_by`` (the class of the callback whose ``set_weights`` put
        them back), ``hook`` and ``at_epoch`` (when it did), ``monitor``
        (the stopper's monitored key, else ``val_loss`` or ``loss``),
        ``value_at_restored`` and ``value_at_last`` (that key's epoch values).
        """
        stmt = (
            select(
                Phase.run_id,
                Phase.seq.label("phase"),
                Restore.phase_id.label("phase_pk"),
                Restore.restored_epoch,
                Restore.last_epoch,
                Restore.restored_by,
                Restore.hook,
                Restore.at_epoch,
            )
            .join(Phase, Phase.id == Restore.phase_id)
            .join(Run, Run.id == Phase.run_id)
            .order_by(Run.started_at, Phase.seq, Restore.id)
        )
        frame = self._frame(self._runs_filter(stmt, run))
        phase_ids = [int(p) for p in frame["phase_pk"]]
        epochs = {int(e) for col in ("restored_epoch", "last_epoch") for e in frame[col] if not pd.isna(e)}
        stoppers: dict[int, list[tuple[str, str]]] = {p: [] for p in phase_ids}
        values: dict[int, dict[tuple[int, str], tuple[Any, Any]]] = {p: {} for p in phase_ids}
        if phase_ids:  # two queries for all restores, only the epochs that matter
            with self.engine.connect() as conn:
                for phase_id, stopper, monitor in conn.execute(
                    select(StopDecision.phase_id, StopDecision.stopper, StopDecision.monitor).where(
                        StopDecision.phase_id.in_(phase_ids), StopDecision.monitor.is_not(None)
                    )
                ):
                    stoppers[phase_id].append((stopper, monitor))
                for phase_id, epoch, key, bits, text in conn.execute(
                    select(Epoch.phase_id, Epoch.epoch, EpochValue.key, EpochValue.bits, EpochValue.text)
                    .join(EpochValue, EpochValue.epoch_id == Epoch.id)
                    .where(Epoch.phase_id.in_(phase_ids), Epoch.epoch.in_(sorted(epochs)))
                ):
                    values[phase_id][(epoch, key)] = (bits, text)
        monitors, restored_values, last_values = [], [], []
        for row in frame.itertuples(index=False):
            mine = values[row.phase_pk]
            available = {key for _, key in mine}
            found = stoppers[row.phase_pk]
            keys = [m for s, m in found if s == row.restored_by] + [m for _, m in found]
            monitor = next((k for k in keys + ["val_loss", "loss"] if k in available), None)
            monitors.append(monitor)
            restored_values.append(_value(mine, row.restored_epoch, monitor))
            last_values.append(_value(mine, row.last_epoch, monitor))
        frame["monitor"] = monitors
        frame["value_at_restored"] = pd.Series(restored_values, dtype="float64")
        frame["value_at_last"] = pd.Series(last_values, dtype="float64")
        return _ints(frame.drop(columns="phase_pk"), ["restored_epoch", "last_epoch", "at_epoch"])


def _value(values: dict[tuple[int, str], tuple[Any, Any]], epoch: Any, key: str | None) -> float:
    from tracker.db.values import decode

    if key is None or epoch is None or pd.isna(epoch):
        return float("nan")
    found = values.get((int(epoch), key))
    if found is None or found[0] is None:
        return float("nan")
    value = decode(None, found[0], found[1])
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _ints(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for column in columns:
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame
