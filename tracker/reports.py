"""Reports: plain functions from a Store to a DataFrame, ready for CSV.

Every report returns CSV-friendly columns (text, numbers, booleans, times as
ISO text with their zone, ``+00:00``) so that ``export(report, "x.csv")`` read back by
``pandas.read_csv`` equals the DataFrame. Imports neither Keras nor
TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from tracker.db.base import table_of
from tracker.store.base import float_column
from tracker.store.filters import maximised
from tracker.store.names import asked_key, shown_key
from tracker.store.series import META_COLUMNS

__all__ = ["compare_runs", "early_stopping_report", "history_report", "lr_report", "REPORTS", "run_labels"]


def _iso(value: Any) -> str | None:
    """A stored time (UTC) as ISO 8601 text with its zone: ``2026-11-27T12:56:08.589661+00:00``."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).isoformat()


def _scalar(value: Any) -> Any:
    """A param value as a CSV cell: scalars as they are, the rest as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, ensure_ascii=False)


def _resolve_all(store: Any, runs: Sequence[str] | None) -> list[str]:
    if runs is None:
        return list(store.runs()["run_id"])
    return [store.resolve(r) for r in runs]


def run_labels(store: Any, run_ids: Sequence[str]) -> dict[str, str]:
    """Short labels: the run name where it is unique among ``run_ids``, else ``name#id8``."""
    runs = store.runs().set_index("run_id")
    names = {rid: runs.loc[rid, "name"] or rid[:8] for rid in run_ids}
    counts = pd.Series(list(names.values())).value_counts()
    return {rid: (name if counts[name] == 1 else f"{name}#{rid[:8]}") for rid, name in names.items()}


def compare_runs(store: Any, runs: Sequence[str]) -> pd.DataFrame:
    """Compare runs side by side: one row per run.

    A handful of queries with ``run_id IN (...)``, whatever the number of runs.

    Args:
        store: The ``tracker.Store`` to read.
        runs: Run references (id, unique id prefix, name or ``latest``).

    Returns:
        One row per run. Columns: ``run_id``, ``name``, ``status``, ``started_at`` (ISO, UTC),
        ``duration_s``, ``epochs`` (epochs finished), ``stopped_epoch`` and ``restored_epoch``
        (empty if none), ``lr_start`` and ``lr_end`` (the main optimizer's rate at fit start and in
        the last epoch), ``resumed_at_epoch`` (the backup point of the last resume, if the job was
        preempted and resumed), then ``param:NAME`` for each parameter whose value differs between
        the runs, then for each numeric epoch key ``best:KEY``, ``best_epoch:KEY``, ``final:KEY``
        and ``final_epoch:KEY`` (best is min or max by the key's direction, as in
        ``Store.runs(sort=...)``), then ``eval:KEY`` for each key of the results of a run's last
        ``evaluate`` call (missing for a run that did not evaluate).

    Raises:
        UnknownRunError: a reference names no run.
    """
    from sqlalchemy import select

    from tracker.db.tables import (
        Key,
        LRPoint,
        LRSeries,
        Param,
        Phase,
        Restore,
        RunMetric,
        StopDecision,
    )

    run_ids = list(dict.fromkeys(_resolve_all(store, runs)))
    listing = store.runs(run_ids=run_ids).set_index("run_id")
    with store.engine.connect() as conn:
        params: dict[str, dict[str, Any]] = {rid: {} for rid in run_ids}
        for rid, key, value in conn.execute(select(Param.run_id, Param.key, Param.value).where(Param.run_id.in_(run_ids))):
            params[rid][key] = value
        stopped: dict[str, Any] = {}
        for rid, epoch in conn.execute(
            select(Phase.run_id, StopDecision.stopped_epoch)
            .join(Phase, Phase.id == StopDecision.phase_id)
            .where(Phase.run_id.in_(run_ids), StopDecision.stopped.is_(True))
            .order_by(Phase.seq, StopDecision.id)
        ):
            stopped[rid] = epoch
        restored: dict[str, Any] = {}
        for rid, epoch in conn.execute(
            select(Phase.run_id, Restore.restored_epoch)
            .join(Phase, Phase.id == Restore.phase_id)
            .where(Phase.run_id.in_(run_ids))
            .order_by(Phase.seq, Restore.id)
        ):
            restored[rid] = epoch
        lr_start: dict[str, float] = {}
        lr_end: dict[str, float] = {}
        for rid, point, lr in conn.execute(
            select(Phase.run_id, LRSeries.point, LRSeries.lr)
            .join(Phase, Phase.id == LRSeries.phase_id)
            .where(Phase.run_id.in_(run_ids), LRSeries.optimizer == "optimizer", LRSeries.point != LRPoint.BATCH)
            .order_by(Phase.seq, LRSeries.id)
        ):
            if getattr(point, "value", point) == "phase_begin":
                lr_start.setdefault(rid, lr)
            else:
                lr_end[rid] = lr
        resumed: dict[str, Any] = {}
        for rid, initial in conn.execute(
            select(Phase.run_id, Phase.initial_epoch)
            .where(Phase.run_id.in_(run_ids), Phase.initial_epoch > 0)
            .order_by(Phase.seq)
        ):
            resumed[rid] = initial
        metrics: dict[str, list[Any]] = {rid: [] for rid in run_ids}
        for m in conn.execute(
            select(table_of(RunMetric), Key.name.label("key"))
            .join(Key, Key.id == RunMetric.key_id)
            .where(RunMetric.run_id.in_(run_ids))
            .order_by(Key.name)
        ).mappings():
            metrics[m["run_id"]].append(m)
    evaluations = _last_evaluations(store, run_ids)
    keys = sorted({k for p in params.values() for k in p})
    differing = [k for k in keys if len({json.dumps(p.get(k), sort_keys=True, default=repr) for p in params.values()}) > 1]
    rows = []
    metric_keys: set[str] = set()
    for rid in run_ids:
        info = listing.loc[rid]
        started, ended = info["started_at"], info["ended_at"]
        duration = (pd.Timestamp(ended) - pd.Timestamp(started)).total_seconds() if not pd.isna(ended) else None
        row: dict[str, Any] = {
            "run_id": rid,
            "name": info["name"],
            "status": info["status"],
            "started_at": _iso(started),
            "duration_s": duration,
            "epochs": int(info["epochs"]),
            "stopped_epoch": stopped.get(rid, pd.NA),
            "restored_epoch": restored.get(rid, pd.NA),
            "lr_start": lr_start.get(rid),
            "lr_end": lr_end.get(rid),
            "resumed_at_epoch": resumed.get(rid, pd.NA),
        }
        for key in differing:
            row[f"param:{key}"] = _scalar(params[rid].get(key))
        for m in metrics[rid]:
            high = maximised(m["key"])
            key = shown_key(m["key"])
            metric_keys.add(key)
            best = m["best_max"] if high else m["best_min"]
            # A summary row exists only for a key logged as a number: NULL means NaN.
            row[f"best:{key}"] = best if best is not None else float("nan")
            row[f"best_epoch:{key}"] = m["best_max_epoch"] if high else m["best_min_epoch"]
            row[f"final:{key}"] = m["final"] if m["final"] is not None else float("nan")
            row[f"final_epoch:{key}"] = m["final_epoch"]
        for key, value in evaluations.get(rid, {}).items():
            row[f"eval:{key}"] = value
        rows.append(row)
    columns = ["run_id", "name", "status", "started_at", "duration_s", "epochs", "stopped_epoch", "restored_epoch", "lr_start", "lr_end", "resumed_at_epoch"]
    columns += [f"param:{k}" for k in differing]
    for key in sorted(metric_keys):
        columns += [f"best:{key}", f"best_epoch:{key}", f"final:{key}", f"final_epoch:{key}"]
    columns += [f"eval:{k}" for k in sorted({k for values in evaluations.values() for k in values})]
    data: dict[str, Any] = {}
    for column in columns:
        cells = [row.get(column) for row in rows]
        cells = [None if c is pd.NA else c for c in cells]
        if column in ("stopped_epoch", "restored_epoch", "resumed_at_epoch") or column.startswith(("best_epoch:", "final_epoch:")):
            data[column] = pd.array([None if c is None else int(c) for c in cells], dtype="Int64")
        elif column.startswith(("best:", "final:", "lr_")) or column == "duration_s" or (
                column.startswith("eval:") and all(c is None or isinstance(c, float) for c in cells)):
            data[column] = float_column(cells)
        else:
            data[column] = pd.Series(cells, dtype="object") if any(c is None for c in cells) else cells
    return pd.DataFrame(data, columns=columns)


def _last_evaluations(store: Any, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The results of each run's last ``evaluate`` call, by run id and key (one query)."""
    from tracker.store.rows import frame_rows
    from tracker.store.series import META_COLUMNS, evaluations_frame

    columns, rows = frame_rows(evaluations_frame(store.engine, list(run_ids)))
    out: dict[str, dict[str, Any]] = {}
    for row in rows:  # ordered by run and call: the last call of a run wins
        cells = dict(zip(columns, row))
        out[cells["run_id"]] = {k: v for k, v in cells.items() if k not in META_COLUMNS and v is not None}
    return out


def early_stopping_report(store: Any, runs: Sequence[str] | None = None) -> pd.DataFrame:
    """Where weights were restored: one row per stopper (or restore) per fit.

    Args:
        store: The ``tracker.Store`` to read.
        runs: Run references (id, unique id prefix, name or ``latest``).
            Default ``None``: every run.

    Returns:
        One row per stopper (or restore) per fit. Columns: ``run_id``, ``name``, ``phase``
        (``fit``), ``phase_seq``, ``call`` (the fit's number among the run's fits, see
        ``tracker.store.runs.call_numbers``), ``stopper`` (empty when a restore had no stopper),
        ``stopped`` (did it stop training early), ``monitor``, ``best_epoch``, ``best``,
        ``stopped_epoch``, ``last_epoch``, ``restored_epoch`` (whose weights the model ended with,
        from weight fingerprints; empty if no restore), ``restored_by``, ``hook`` (the restore's),
        ``value_at_last`` and ``value_at_restored`` (the monitored value at those epochs) and
        ``recovered`` (how much better the monitored value is at the restored epoch than at the last
        one, positive when the restore helped; for a maximised metric the sign is flipped).
    """
    run_ids = _resolve_all(store, runs)
    labels = store.runs().set_index("run_id")["name"]
    stops = store.early_stops()
    restores = store.restores()
    stops = stops[stops["run_id"].isin(run_ids)]
    restores = restores[restores["run_id"].isin(run_ids)]
    rows = []
    used_restores: set[int] = set()
    for s in stops.itertuples(index=False):
        match = restores[(restores["run_id"] == s.run_id) & (restores["phase_seq"] == s.phase_seq)]
        r = match.iloc[-1] if len(match) else None
        if r is not None:
            used_restores.add(int(match.index[-1]))
        rows.append(_early_row(labels, s.run_id, s.phase_seq, s, r) | {"call": s.call})
    for index, r in restores.iterrows():
        if index not in used_restores:
            rows.append(_early_row(labels, r["run_id"], r["phase_seq"], None, r) | {"call": r["call"]})
    columns = [
        "run_id", "name", "phase", "phase_seq", "call", "stopper", "stopped", "monitor", "best_epoch", "best",
        "stopped_epoch",
        "last_epoch", "restored_epoch", "restored_by", "hook", "value_at_last", "value_at_restored", "recovered",
    ]
    return _frame(rows, columns, ints=("phase_seq", "call", "best_epoch", "stopped_epoch", "last_epoch",
                                       "restored_epoch"),
                  floats=("best", "value_at_last", "value_at_restored", "recovered"))


def _frame(rows: list[dict[str, Any]], columns: list[str], *, ints: Sequence[str] = (),
           floats: Sequence[str] = (), bools: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of dicts as a frame whose missing cells (None, ``<NA>``) stay missing, apart from NaN.

    ``ints`` become ``Int64``, ``floats`` ``float64`` (``Float64`` when a cell
    is missing: a logged NaN stays NaN), ``bools`` ``bool``; text keeps None.
    """
    data: dict[str, Any] = {}
    for column in columns:
        cells = [None if r[column] is pd.NA else r[column] for r in rows]
        if column in ints:
            data[column] = pd.array(cells, dtype="Int64")
        elif column in floats:
            data[column] = float_column(cells)
        elif column in bools:
            data[column] = pd.array([bool(c) for c in cells], dtype=bool)
        else:  # text: a gap read from a pandas text column is NaN, and is missing
            data[column] = pd.Series([None if isinstance(c, float) and c != c else c for c in cells], dtype="object")
    return pd.DataFrame(data, columns=columns)


def _early_row(labels: pd.Series, run_id: str, phase_seq: Any, stop: Any, restore: Any) -> dict[str, Any]:
    monitor = (restore["monitor"] if restore is not None else None) or (stop.monitor if stop is not None else None)
    at_last = restore["value_at_last"] if restore is not None else None
    at_restored = restore["value_at_restored"] if restore is not None else None
    recovered = None if at_last is None or at_restored is None else at_last - at_restored
    if recovered is not None and monitor and maximised(monitor):
        recovered = -recovered
    return {
        "run_id": run_id,
        "name": labels.get(run_id),
        "phase": "fit",
        "phase_seq": phase_seq,
        "stopper": stop.stopper if stop is not None else None,
        "stopped": bool(stop.stopped) if stop is not None else False,
        "monitor": monitor,
        "best_epoch": stop.best_epoch if stop is not None else pd.NA,
        "best": stop.best if stop is not None else None,
        "stopped_epoch": stop.stopped_epoch if stop is not None else pd.NA,
        "last_epoch": restore["last_epoch"] if restore is not None else (stop.epoch if stop is not None else pd.NA),
        "restored_epoch": restore["restored_epoch"] if restore is not None else pd.NA,
        "restored_by": restore["restored_by"] if restore is not None else None,
        "hook": restore["hook"] if restore is not None else None,
        "value_at_last": at_last,
        "value_at_restored": at_restored,
        "recovered": recovered,
    }


def history_report(store: Any, runs: Sequence[str], *, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Epochs of several runs side by side, aligned by Keras' epoch index.

    Args:
        store: The ``tracker.Store`` to read.
        runs: Run references (id, unique id prefix, name or ``latest``).
        metrics: Epoch keys to include. Default ``None``: every numeric
            epoch key.

    Returns:
        One row per epoch index. Columns: ``epoch``, then ``LABEL:KEY`` for each run and numeric
        epoch key (``metrics``, default all), where LABEL is the run name (or ``name#id8`` when
        names repeat). A run with several fits keeps the later fit's value for a repeated epoch
        index.

    Raises:
        UnknownRunError: a reference names no run.
    """
    run_ids = _resolve_all(store, runs)
    labels = run_labels(store, run_ids)
    columns: dict[str, pd.Series] = {}
    for rid in run_ids:
        epochs = store.epochs(rid).drop_duplicates(subset="epoch", keep="last").set_index("epoch")
        keys = [k for k in epochs.columns if k not in META_COLUMNS]
        for key in [asked_key(k) for k in metrics] if metrics else keys:
            if key in epochs and pd.api.types.is_float_dtype(epochs[key]):
                columns[f"{labels[rid]}:{key}"] = epochs[key].astype("Float64")
    if not columns:
        return pd.DataFrame(columns=["epoch"])
    frame = pd.DataFrame(columns).sort_index()
    frame.index.name = "epoch"
    return frame.reset_index().astype({"epoch": "int64"})


def lr_report(store: Any, runs: Sequence[str]) -> pd.DataFrame:
    """The learning rate of every epoch, and where it changed and why.

    Args:
        store: The ``tracker.Store`` to read.
        runs: Run references (id, unique id prefix, name or ``latest``).

    Returns:
        One row per epoch of each fit. Columns: ``run_id``, ``name``, ``phase`` (``fit``),
        ``phase_seq``, ``call``, ``optimizer``, ``epoch``, ``step`` (the epoch's first step),
        ``lr``, ``changed`` (a change took effect at this epoch), ``old_lr``, ``source`` and
        ``hook`` (of that change; empty otherwise).

    Raises:
        UnknownRunError: a reference names no run.
    """
    run_ids = _resolve_all(store, runs)
    labels = store.runs().set_index("run_id")["name"]
    rows = []
    for rid in run_ids:
        series = store.lr_series(rid)
        changes = store.lr_changes(rid)
        for s in series[series["point"] == "epoch"].itertuples(index=False):
            match = changes[(changes["phase_seq"] == s.phase_seq) & (changes["optimizer"] == s.optimizer) & (changes["epoch"] == s.epoch)]
            c = match.iloc[-1] if len(match) else None
            rows.append(
                {
                    "run_id": rid,
                    "name": labels.get(rid),
                    "phase": "fit",
                    "phase_seq": s.phase_seq,
                    "call": s.call,
                    "optimizer": s.optimizer,
                    "epoch": s.epoch,
                    "step": s.step,
                    "lr": s.lr,
                    "changed": c is not None,
                    "old_lr": c["old_lr"] if c is not None else None,
                    "source": c["source"] if c is not None else None,
                    "hook": c["hook"] if c is not None else None,
                }
            )
    columns = ["run_id", "name", "phase", "phase_seq", "call", "optimizer", "epoch", "step", "lr", "changed", "old_lr",
               "source", "hook"]
    return _frame(rows, columns, ints=("phase_seq", "call", "epoch", "step"), floats=("lr", "old_lr"),
                  bools=("changed",))


#: Reports by the name the CLI's ``export`` uses. Each takes (store, runs or None).
REPORTS: dict[str, Callable[..., pd.DataFrame]] = {
    "compare": lambda store, runs: compare_runs(store, runs if runs else list(store.runs()["run_id"])),
    "early-stopping": early_stopping_report,
    "history": lambda store, runs: history_report(store, runs if runs else list(store.runs()["run_id"])),
    "lr": lambda store, runs: lr_report(store, runs if runs else list(store.runs()["run_id"])),
}
