"""Databases of many runs, or of runs with many logs keys, written in bulk in seconds.

For the dashboard's benchmarks (``benchmarks/ui_scale.py``) and its scale
tests (``tests/test_ui_scale.py``). The rows are the ones a tracked fit
leaves (a run, its params and tags, a fit phase, its epochs and their logs
values, the ``run_metrics`` summary, the LR series, and on some runs an early
stop and a restore), inserted table by table with ``executemany`` through the
tracker's own table definitions, at the head schema (``open_database``): the
point is the reading side at scale, not the write path, which
``benchmarks/ui.py`` and ``benchmarks/throughput.py`` measure.

Values are float32 curves stored as Keras logs them (float64 of a float32),
so the summary's best and final values are what the writer would keep.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from tracker.db.decision_tables import LRSeries, Restore, StopDecision
from tracker.db.migrate import open_database
from tracker.db.tables import Epoch, EpochValue, Key, Param, Phase, Run, RunMetric, Tag
from tracker.status import LRPoint, PhaseKind, Status
from tracker.store.filters import maximised

__all__ = ["bulk_runs", "wide_run", "T0", "STATUSES"]

T0 = datetime(2026, 1, 1)
VERSIONS = {"python": "3.11", "tracker": "0.1.0", "keras": "3.15.1", "backend": "tensorflow"}
#: Statuses given round-robin to the runs (one running run is left running by a dead pid: crashed on read).
STATUSES = (Status.FINISHED,) * 7 + (Status.FAILED, Status.INTERRUPTED, Status.RUNNING)


def _f32(x: float) -> float:
    import struct

    return struct.unpack("<f", struct.pack("<f", x))[0]


def _insert(conn: Any, table: Any, rows: list[dict[str, Any]], chunk: int = 20_000) -> None:
    for i in range(0, len(rows), chunk):
        conn.execute(insert(table.__table__), rows[i:i + chunk])


def _summary(run_id: str, key_id: int, name: str, values: Sequence[float]) -> dict[str, Any]:
    lo = min(range(len(values)), key=lambda e: values[e])
    hi = max(range(len(values)), key=lambda e: values[e])
    return {"run_id": run_id, "key_id": key_id, "best_min": values[lo], "best_min_epoch": lo, "best_max": values[hi],
            "best_max_epoch": hi, "final": values[-1], "final_epoch": len(values) - 1, "epochs": len(values)}


def _curve(rnd: random.Random, name: str, n: int) -> list[float]:
    a, b, c = rnd.random(), rnd.random(), rnd.random()
    up = maximised(name)
    out = []
    for t in range(n):
        base = (0.05 + 0.3 * a) + (1 + 2 * b) * math.exp(-(0.05 + 0.2 * c) * t)
        v = base * (1 + 0.03 * (rnd.random() - 0.5))
        out.append(_f32(1 - v / 4 if up else v))
    return out


def bulk_runs(db: str, n_runs: int, *, epochs: int = 10, keys: Sequence[str] = ("loss", "accuracy", "val_loss",
              "val_accuracy"), seed: int = 0, experiment_every: int = 0) -> list[str]:
    """Write ``n_runs`` finished-looking runs into ``db`` (created at the head schema) and return their ids.

    Run ``i`` is named ``sweep-{i:05d}``, started ``6 * i`` minutes after
    2026-01-01 UTC, with params ``lr`` (a float), ``batch_size`` (an int)
    and ``optimizer`` (text), a tag ``sweep`` (``lr`` or ``bs``), ``epochs``
    epochs of ``keys``, and on one run in three an early stop monitoring
    ``val_loss`` with a restore of its best epoch. Statuses cycle through
    ``STATUSES``: the running ones have a pid that is not alive, so they read
    as crashed.
    """
    engine, _ = open_database(db)
    rnd = random.Random(seed)
    runs, params, tags, phases, epoch_rows, values, metrics, lrs, stops, restores = ([] for _ in range(10))
    ids = []
    with engine.begin() as conn:
        key_ids = {}
        for name in keys:
            key_ids[name] = conn.execute(insert(Key.__table__).values(name=name)).inserted_primary_key[0]
        phase_id = epoch_id = 0
        for i in range(n_runs):
            run_id = f"{rnd.getrandbits(128):032x}"
            ids.append(run_id)
            start = T0 + timedelta(minutes=6 * i, seconds=rnd.random())
            status = STATUSES[i % len(STATUSES)]
            running = status is Status.RUNNING
            end = None if running else start + timedelta(seconds=5 + 2 * epochs + rnd.random() * 60)
            lr = rnd.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
            runs.append({"id": run_id, "name": f"sweep-{i:05d}", "status": status, "started_at": start, "ended_at": end,
                         "host": "bench-host-gone", "pid": 1, "versions": VERSIONS, "model_name": "sequential",
                         "param_count": 785, "phase_count": 1, "epoch_count": epochs, "heartbeat_at": end or start})
            params += [{"run_id": run_id, "key": "lr", "value": lr},
                       {"run_id": run_id, "key": "batch_size", "value": rnd.choice([32, 64, 128])},
                       {"run_id": run_id, "key": "optimizer", "value": rnd.choice(["adam", "sgd", "rmsprop"])}]
            tags.append({"run_id": run_id, "key": "sweep", "value": "lr" if i % 2 else "bs"})
            phase_id += 1
            phases.append({"id": phase_id, "run_id": run_id, "seq": 0, "kind": PhaseKind.FIT, "status": status,
                           "started_at": start, "ended_at": end, "batch_count": 50 * epochs, "initial_epoch": 0,
                           "keras_params": {"epochs": epochs, "steps": 50, "verbose": 0}})
            curves = {k: _curve(rnd, k, epochs) for k in keys}
            for e in range(epochs):
                epoch_id += 1
                began = start + timedelta(seconds=1 + 2 * e)
                epoch_rows.append({"id": epoch_id, "phase_id": phase_id, "epoch": e, "started_at": began,
                                   "ended_at": began + timedelta(seconds=1.9), "superseded": False})
                values += [{"epoch_id": epoch_id, "key_id": key_ids[k], "value": curves[k][e], "bits": None,
                            "text": None} for k in keys]
                lrs.append({"phase_id": phase_id, "optimizer": "optimizer", "point": LRPoint.EPOCH, "epoch": e,
                            "batch": None, "step": 50 * e, "lr": _f32(lr)})
            metrics += [_summary(run_id, key_ids[k], k, curves[k]) for k in keys]
            if i % 3 == 0 and "val_loss" in curves and not running:
                best = min(range(epochs), key=lambda e: curves["val_loss"][e])
                stops.append({"phase_id": phase_id, "stopped": True, "stopper": "EarlyStopping", "hook": "on_epoch_end",
                              "epoch": epochs - 1, "monitor": "val_loss", "mode": "min", "patience": 3, "wait": 3,
                              "best": curves["val_loss"][best], "best_epoch": best, "stopped_epoch": epochs - 1})
                restores.append({"phase_id": phase_id, "restored_epoch": best, "last_epoch": epochs - 1,
                                 "restored_by": "EarlyStopping", "hook": "on_train_end", "at_epoch": epochs - 1})
        for table, rows in ((Run, runs), (Param, params), (Tag, tags), (Phase, phases), (Epoch, epoch_rows),
                            (EpochValue, values), (RunMetric, metrics), (LRSeries, lrs), (StopDecision, stops),
                            (Restore, restores)):
            _insert(conn, table, rows)
    engine.dispose()
    return ids


def wide_run(db: str, n_keys: int, *, epochs: int = 20, seed: int = 1, name: str | None = None) -> str:
    """Write one finished run logging ``n_keys`` epoch keys and return its id.

    Keys come in families as large models log them: ``loss`` and
    ``val_loss``, then ``inner/block_{j}/metric_{m}`` with their ``val_``
    twins, so the page must group by prefix and pair the twins. A constant
    learning rate.
    """
    engine, _ = open_database(db)
    rnd = random.Random(seed)
    names = ["loss", "val_loss"]
    j = 0
    while len(names) < n_keys:
        for m in range(5):
            base = f"inner/block_{j:04d}/metric_{m}"
            names += [base, f"val_{base}"]
        j += 1
    names = names[:n_keys]
    run_id = f"{rnd.getrandbits(128):032x}"
    with engine.begin() as conn:
        existing = {n: i for n, i in conn.execute(Key.__table__.select().with_only_columns(Key.name, Key.id))}
        new = [{"name": n} for n in names if n not in existing]
        _insert(conn, Key, new)
        key_ids = {n: i for n, i in conn.execute(Key.__table__.select().with_only_columns(Key.name, Key.id))}
        end = T0 + timedelta(seconds=5 + 3 * epochs)
        conn.execute(insert(Run.__table__).values(
            id=run_id, name=name or f"wide-{n_keys}", status=Status.FINISHED, started_at=T0, ended_at=end,
            host="bench-host-gone", pid=1, versions=VERSIONS, model_name="big", param_count=10**6, phase_count=1,
            epoch_count=epochs, heartbeat_at=end))
        phase_id = conn.execute(insert(Phase.__table__).values(
            run_id=run_id, seq=0, kind=PhaseKind.FIT, status=Status.FINISHED, started_at=T0, ended_at=end,
            batch_count=20 * epochs, initial_epoch=0, keras_params={"epochs": epochs, "steps": 20})).inserted_primary_key[0]
        curves = {n: _curve(rnd, n, epochs) for n in names}
        values, lrs = [], []
        for e in range(epochs):
            began = T0 + timedelta(seconds=1 + 3 * e)
            epoch_id = conn.execute(insert(Epoch.__table__).values(
                phase_id=phase_id, epoch=e, started_at=began, ended_at=began + timedelta(seconds=2.5),
                superseded=False)).inserted_primary_key[0]
            values += [{"epoch_id": epoch_id, "key_id": key_ids[n], "value": curves[n][e], "bits": None, "text": None}
                       for n in names]
            lrs.append({"phase_id": phase_id, "optimizer": "optimizer", "point": LRPoint.EPOCH, "epoch": e,
                        "batch": None, "step": 20 * e, "lr": _f32(1e-3)})
        _insert(conn, EpochValue, values)
        _insert(conn, LRSeries, lrs)
        _insert(conn, RunMetric, [_summary(run_id, key_ids[n], n, curves[n]) for n in names])
    engine.dispose()
    return run_id
