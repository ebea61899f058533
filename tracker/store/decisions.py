"""Decisions on the read side: LR changes and series, early stops, restores.

Plain functions behind ``Store.lr_changes``, ``Store.lr_series``,
``Store.early_stops`` and ``Store.restores`` (documented there). ``run_id``
None means every run. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, literal, select

from tracker.db.tables import (
    Epoch,
    EpochValue,
    Key,
    LRChange,
    LRSeries,
    Phase,
    Restore,
    Run,
    StopDecision,
    StopperState,
)
from tracker.db.values import decode
from tracker.status import PhaseKind
from tracker.store.base import AnySelect, enum_values, float_column, int_columns, read_frame
from tracker.store.names import shown_key
from tracker.store.runs import add_call, call_numbers

__all__ = ["lr_changes_frame", "lr_series_frame", "early_stops_frame", "stopper_states_frame", "restores_frame"]

_FIT = literal(PhaseKind.FIT.value).label("phase")


def _of_run(stmt: AnySelect, run_id: str | None) -> AnySelect:
    """One run's rows, or (None) those of every run in view: never a deleted run's."""
    return stmt.where(Run.deleted_at.is_(None)) if run_id is None else stmt.where(Phase.run_id == run_id)


def _calls(engine: Engine, frame: pd.DataFrame, run_id: str | None) -> pd.DataFrame:
    """Add ``call`` after ``phase_seq``, and give ``monitor`` (a logs key) its shown name."""
    if "monitor" in frame.columns:
        frame["monitor"] = pd.Series([shown_key(m) if isinstance(m, str) else m for m in frame["monitor"]], dtype="object",
                                     index=frame.index)
    return add_call(frame, call_numbers(engine, None if run_id is None else [run_id]))


def lr_changes_frame(engine: Engine, run_id: str | None) -> pd.DataFrame:
    stmt = (
        select(
            Phase.run_id, _FIT, Phase.seq.label("phase_seq"), LRChange.optimizer, LRChange.epoch, LRChange.step,
            LRChange.old_lr, LRChange.new_lr, LRChange.source, LRChange.hook,
        )
        .join(Phase, Phase.id == LRChange.phase_id)
        .join(Run, Run.id == Phase.run_id)
        .order_by(Run.started_at, Phase.seq, LRChange.id)
    )
    frame = _calls(engine, read_frame(engine, _of_run(stmt, run_id)), run_id)
    return int_columns(frame, ["epoch", "step"])


def lr_series_frame(engine: Engine, run_id: str | None) -> pd.DataFrame:
    stmt = (
        select(
            Phase.run_id, _FIT, Phase.seq.label("phase_seq"), LRSeries.optimizer, LRSeries.point, LRSeries.epoch,
            LRSeries.batch, LRSeries.step, LRSeries.lr,
        )
        .join(Phase, Phase.id == LRSeries.phase_id)
        .join(Run, Run.id == Phase.run_id)
        .order_by(Run.started_at, Phase.seq, LRSeries.id)
    )
    frame = _calls(engine, enum_values(read_frame(engine, _of_run(stmt, run_id)), ["point"]), run_id)
    frame["lr"] = frame["lr"].astype("float64")
    return int_columns(frame, ["epoch", "batch", "step"])


def early_stops_frame(engine: Engine, run_id: str | None) -> pd.DataFrame:
    stmt = (
        select(
            Phase.run_id,
            Run.name,
            _FIT,
            Phase.seq.label("phase_seq"),
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
            StopDecision.step,
            StopDecision.value,
            StopDecision.bits,
        )
        .join(Phase, Phase.id == StopDecision.phase_id)
        .join(Run, Run.id == Phase.run_id)
        .order_by(Run.started_at, Phase.seq, StopDecision.id)
    )
    frame = _calls(engine, read_frame(engine, _of_run(stmt, run_id)), run_id)
    frame["stopped"] = frame["stopped"].astype(bool)
    for column in ("best", "min_delta", "baseline"):
        # SQL NULL: the stopper had no value (a baseline of None); these plain REAL columns hold no NaN.
        frame[column] = float_column([None if v is None or v != v else float(v) for v in frame[column]])
    # A tool's stop: the value its pruner judged, bit-exact (NaN and -0.0 from their bits).
    frame["value"] = float_column([
        decode(None, int(b), None) if b is not pd.NA else None if v is None or v != v else float(v)
        for v, b in zip(frame["value"], frame.pop("bits"))])
    return int_columns(
        frame, ["stopped_epoch", "batch", "best_epoch", "patience", "wait", "start_from_epoch", "epoch", "step"]
    )


def stopper_states_frame(engine: Engine, run_id: str | None) -> pd.DataFrame:
    stmt = (
        select(
            Phase.run_id, Run.name, _FIT, Phase.seq.label("phase_seq"), StopperState.epoch, StopperState.stopper,
            StopperState.monitor, StopperState.best, StopperState.best_epoch, StopperState.wait,
            StopperState.patience, StopperState.mode, StopperState.min_delta, StopperState.baseline,
            StopperState.start_from_epoch,
        )
        .join(Phase, Phase.id == StopperState.phase_id)
        .join(Run, Run.id == Phase.run_id)
        .order_by(Run.started_at, Phase.seq, StopperState.epoch, StopperState.id)
    )
    frame = _calls(engine, read_frame(engine, _of_run(stmt, run_id)), run_id)
    for column in ("best", "min_delta", "baseline"):
        frame[column] = float_column(list(frame[column]))
    return int_columns(frame, ["epoch", "best_epoch", "wait", "patience", "start_from_epoch"])


def restores_frame(engine: Engine, run_id: str | None) -> pd.DataFrame:
    stmt = (
        select(
            Phase.run_id,
            Run.name,
            _FIT,
            Phase.seq.label("phase_seq"),
            Restore.phase_id.label("phase_pk"),
            Restore.restored_epoch,
            Restore.last_epoch,
            Restore.restored_by,
            Restore.hook,
            Restore.at_epoch,
            Phase.final_weights,
        )
        .join(Phase, Phase.id == Restore.phase_id)
        .join(Run, Run.id == Phase.run_id)
        .order_by(Run.started_at, Phase.seq, Restore.id)
    )
    frame = enum_values(read_frame(engine, _of_run(stmt, run_id)), ["final_weights"])
    phase_ids = [int(p) for p in frame["phase_pk"]]
    epochs = {int(e) for col in ("restored_epoch", "last_epoch") for e in frame[col] if not pd.isna(e)}
    stoppers: dict[int, list[tuple[str, str | None]]] = {p: [] for p in phase_ids}
    values: dict[int, dict[tuple[int, str], Any]] = {p: {} for p in phase_ids}
    if phase_ids:  # two queries for all restores, only the epochs that matter
        with engine.connect() as conn:
            for phase_id, stopper, monitor in conn.execute(
                select(StopDecision.phase_id, StopDecision.stopper, StopDecision.monitor).where(
                    StopDecision.phase_id.in_(phase_ids), StopDecision.monitor.is_not(None)
                )
            ):
                stoppers[phase_id].append((stopper, monitor))
            for phase_id, epoch, key, value, bits, text in conn.execute(
                select(Epoch.phase_id, Epoch.epoch, Key.name, EpochValue.value, EpochValue.bits, EpochValue.text)
                .join(EpochValue, EpochValue.epoch_id == Epoch.id)
                .join(Key, Key.id == EpochValue.key_id)
                .where(Epoch.phase_id.in_(phase_ids), Epoch.epoch.in_(sorted(epochs)))
            ):
                values[phase_id][(epoch, key)] = decode(value, bits, text)
    monitors, restored_values, last_values = [], [], []
    for row in frame.itertuples(index=False):
        mine = values[row.phase_pk]
        available = {key for _, key in mine}
        found = stoppers[row.phase_pk]
        keys = [m for s, m in found if s == row.restored_by] + [m for _, m in found]
        monitor = next((k for k in [*keys, "val_loss", "loss"] if k in available), None)
        monitors.append(monitor)
        restored_values.append(_number(mine, row.restored_epoch, monitor))
        last_values.append(_number(mine, row.last_epoch, monitor))
    frame["monitor"] = pd.Series(monitors, dtype="object")
    _calls(engine, frame, run_id)
    frame["value_at_restored"] = pd.Series(restored_values, dtype="float64")
    frame["value_at_last"] = pd.Series(last_values, dtype="float64")
    return int_columns(frame.drop(columns="phase_pk"), ["restored_epoch", "last_epoch", "at_epoch"])


def _number(values: dict[tuple[int, str], Any], epoch: Any, key: str | None) -> float:
    if key is None or epoch is None or pd.isna(epoch):
        return float("nan")
    value = values.get((int(epoch), key))
    return float(value) if isinstance(value, (int, float)) else float("nan")
