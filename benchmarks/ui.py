"""Measure the dashboard's JSON API through a real uvicorn server, against the issue's goals.

  a. ``GET /api/runs`` over 10,000 runs (the runs table: ``tracker.store.overview``'s columns and rows);
  b. a 100-epoch run's page data: ``GET /api/runs/ID`` then ``GET /api/runs/ID/epochs``;
  c. ``GET /api/runs/ID/batches?points=2000`` of a run with 100,000 train batches (two keys), read
     with ``Store.batch_curves`` and downsampled on the server (min and max per bucket).
Goals: a <= 300 ms, b <= 100 ms, c <= 300 ms. The dashboard caches nothing, so every request is a
first request. Each figure is the median of --repeat requests after one warm-up (min in brackets),
wall time from the client, in one process; the server-side CPU time of the same work
(``tracker.ui.data`` and the JSON encoding, ``time.process_time``) is given too, and the load
average, because this machine is shared.

The databases are written through the tracker's own write path (``tracker.db.writes``: ``apply``
with typed operations and a ``KeyCache``, ``write_batches`` with ``BatchRecord``s), as a training
job writes them:
  - /tmp/tracker-ui-runs-10000x100.db: 10,000 runs x 100 epochs x 4 keys, two params, a tag, a fit
    phase with its LR series and epoch logs (run_metrics kept by the writes), an early stop and a
    restore on one run in three, and an evaluate call on one run in two. About 10 minutes to make
    on a loaded 2-core machine; reused when it is complete.
  - /tmp/tracker-ui-100k-batches.db: one run of 100 epochs x 1,000 train batches (loss and
    mean_absolute_error per batch, with spikes the downsampling must keep).

Run:  python benchmarks/ui.py [--repeat 15] [--runs 10000]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from tracker.db.migrate import HEAD_REVISION, open_database
from tracker.db.writes import (
    BatchRecord,
    DecisionTable,
    EndPhase,
    InsertDecisions,
    InsertEpoch,
    InsertPhase,
    InsertRun,
    KeyCache,
    UpdateRun,
    apply,
    write_batches,
)
from tracker.status import LRPoint, PhaseKind, Status
from tracker.store.store import Store
from tracker.ui.app import create_app
from tracker.ui.data import Dashboard
from tracker.ui.jsonable import dumps
from tracker.ui.server import running_server

RUNS_DB = "/tmp/tracker-ui-runs-{n}x100.db"
BATCH_DB = "/tmp/tracker-ui-100k-batches.db"
GENERATOR = f"ui-bench-2-rev{HEAD_REVISION}"  # the tag value marking a complete file of this generator
EPOCHS, STEPS = 100, 1000  # the batch run: 100,000 train batches
T0 = datetime(2026, 1, 1)
MODEL_CONFIG = {  # the guide's model, as model.get_config() gives it (abridged)
    "name": "sequential", "trainable": True, "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 784], "name": "input"}},
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 1, "activation": "linear"}},
    ],
}
VERSIONS = {"python": "3.11.7", "tracker": "0.1.0", "keras": "3.15.1", "numpy": "2.4.6", "backend": "tensorflow",
            "tensorflow": "2.21.0"}
KEYS = ("loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error")


class Ref:
    """A phase as the write operations refer to it (``tracker.db.writes.PhaseRef``)."""

    def __init__(self) -> None:
        self.id: int | None = None


def _curves(rng: np.random.Generator, n: int) -> dict[str, list[float]]:
    """One run's decreasing noisy float32 epoch curves (val_loss rising late on some runs)."""
    t = np.arange(n)
    a, b, c = rng.random(3)
    loss = (0.05 + 0.2 * a + (1 + 2 * b) * np.exp(-(0.02 + 0.08 * c) * t)) * (1 + 0.03 * rng.standard_normal(n))
    val = loss * (1.05 + 0.1 * a) + 0.002 * np.maximum(0, t - 60) * b
    out = {"loss": loss, "mean_absolute_error": 0.8 * np.sqrt(loss), "val_loss": val * (1 + 0.04 * rng.standard_normal(n)),
           "val_mean_absolute_error": 0.8 * np.sqrt(val)}
    return {k: v.astype(np.float32).astype(np.float64).tolist() for k, v in out.items()}


def _run_ops(i: int, rng: np.random.Generator, rnd: random.Random, n_epochs: int) -> list[Any]:
    """The operations a tracked fit (and, on every other run, an evaluate) queues, in order."""
    run_id = f"{rnd.getrandbits(128):032x}"
    start = T0 + timedelta(minutes=6 * i, seconds=rnd.random())
    lr, batch_size = rnd.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]), rnd.choice([32, 64, 128])
    lr32 = float(np.float32(lr))
    fit = Ref()
    ops: list[Any] = [
        InsertRun({"id": run_id, "name": f"sweep-{i:05d}", "status": Status.RUNNING, "started_at": start,
                   "host": "bench", "pid": 4000 + i % 997, "versions": VERSIONS},
                  {"lr": lr, "batch_size": batch_size}, {"sweep": GENERATOR}),
        InsertPhase(run_id, fit, {"run_id": run_id, "seq": 0, "kind": PhaseKind.FIT, "epoch": None,
                                  "status": Status.RUNNING, "started_at": start,
                                  "keras_params": {"verbose": 0, "epochs": n_epochs, "steps": 50},
                                  "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": lr32}}}),
        UpdateRun(run_id, {"model_name": "sequential", "model_config": MODEL_CONFIG, "param_count": 785,
                           "trainable_param_count": 785, "non_trainable_param_count": 0}),
        InsertDecisions(DecisionTable.LR_SERIES, fit, [{"optimizer": "optimizer", "point": LRPoint.PHASE_BEGIN,
                                                        "epoch": None, "batch": None, "step": 0, "lr": lr32}]),
    ]
    curves = _curves(rng, n_epochs)
    for e in range(n_epochs):
        began = start + timedelta(seconds=1 + 2 * e)
        ops.append(InsertDecisions(DecisionTable.LR_SERIES, fit, [{"optimizer": "optimizer", "point": LRPoint.EPOCH,
                                                                   "epoch": e, "batch": None, "step": 50 * e,
                                                                   "lr": lr32}]))
        ops.append(InsertEpoch(run_id, fit, e, began, began + timedelta(seconds=1.9), f"{rnd.getrandbits(128):032x}",
                               {k: curves[k][e] for k in KEYS}))
    last = n_epochs - 1
    if i % 3 == 0:  # an early stop and a restore of the best epoch
        best = int(np.argmin(curves["val_loss"]))
        ops.append(InsertDecisions(DecisionTable.STOPS, fit, [{
            "stopped": True, "stopper": "EarlyStopping", "hook": "on_epoch_end", "epoch": last, "batch": None,
            "monitor": "val_loss", "mode": "min", "min_delta": 0.0, "patience": 10, "baseline": None,
            "start_from_epoch": 0, "best": curves["val_loss"][best], "best_epoch": best, "wait": 10,
            "stopped_epoch": last}]))
        ops.append(InsertDecisions(DecisionTable.RESTORES, fit, [{
            "restored_epoch": best, "last_epoch": last, "restored_by": "EarlyStopping", "hook": "on_train_end",
            "at_epoch": last, "fingerprint": None}]))
    end = start + timedelta(seconds=1 + 2 * n_epochs)
    ops.append(EndPhase(fit, {"status": Status.FINISHED, "ended_at": end, "batch_count": 50 * n_epochs, "error": None},
                        {k: curves[k][last] for k in KEYS}))
    if i % 2 == 0:
        evaluate = Ref()
        ops.append(InsertPhase(run_id, evaluate, {"run_id": run_id, "seq": 1, "kind": PhaseKind.EVALUATE,
                                                  "epoch": None, "status": Status.RUNNING, "started_at": end,
                                                  "keras_params": {"verbose": 0, "steps": 10}}))
        ops.append(EndPhase(evaluate, {"status": Status.FINISHED, "ended_at": end + timedelta(seconds=0.2),
                                       "batch_count": 10, "error": None},
                            {"loss": curves["val_loss"][last] * 1.01, "mean_absolute_error": curves["val_mean_absolute_error"][last]}))
    ops.append(UpdateRun(run_id, {"status": Status.FINISHED, "ended_at": end + timedelta(seconds=0.3),
                                  "heartbeat_at": end + timedelta(seconds=0.3)}))
    return ops


def _complete(path: str, runs: int) -> bool:
    if not os.path.exists(path):
        return False
    try:
        store = Store(path)
    except Exception:  # noqa: BLE001 - an older or partial file: make it again
        return False
    try:
        return len(store.runs(tags={"sweep": GENERATOR}, limit=runs + 1)) == runs
    finally:
        store.engine.dispose()  # the file may be replaced: no pooled connection may keep the old one


def ensure_runs_db(n_runs: int) -> str:
    path = RUNS_DB.format(n=n_runs)
    if _complete(path, n_runs):
        print(f"reused {path}")
        return path
    tmp = path + ".partial"  # renamed when complete
    for p in (tmp, tmp + "-wal", tmp + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    t = time.perf_counter()
    engine, _ = open_database(tmp)
    keys, rng, rnd = KeyCache(), np.random.default_rng(42), random.Random(42)
    with engine.connect() as conn:
        for lo in range(0, n_runs, 100):
            with conn.begin():
                for i in range(lo, min(n_runs, lo + 100)):
                    for op in _run_ops(i, rng, rnd, 100):
                        apply(conn, keys, op)
            keys.commit()
            done = min(n_runs, lo + 100)
            print(f"\r  wrote {done:,}/{n_runs:,} runs ({time.perf_counter() - t:.0f} s)", end="", file=sys.stderr, flush=True)
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    print(file=sys.stderr)
    os.replace(tmp, path)
    print(f"generated {path} in {time.perf_counter() - t:.0f} s")
    return path


def ensure_batch_db() -> tuple[str, str]:
    """A database with one run of 100 epochs x 1,000 train batches (loss and mae per batch)."""
    if _complete(BATCH_DB, 1):
        store = Store(BATCH_DB)
        run_id = store.resolve("100k-batches")
        complete = len(store.batch_curves(run_id)) == EPOCHS * STEPS
        store.engine.dispose()
        if complete:
            print(f"reused {BATCH_DB}")
            return BATCH_DB, run_id
    for p in (BATCH_DB, BATCH_DB + "-wal", BATCH_DB + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    t0 = time.perf_counter()
    engine, _ = open_database(BATCH_DB)
    rng = np.random.default_rng(0)
    n = EPOCHS * STEPS
    loss = (0.1 + 3 * np.exp(-np.arange(n) / 20_000)) * (1 + 0.05 * rng.standard_normal(n))
    loss[rng.integers(0, n, 20)] *= 8  # spikes the downsampling must keep
    mae = 0.8 * np.sqrt(np.abs(loss))
    loss_l, mae_l = loss.astype(np.float32).astype(float).tolist(), mae.astype(np.float32).astype(float).tolist()
    run_id, fit, keys = "b" * 32, Ref(), KeyCache()
    with engine.connect() as conn:
        with conn.begin():
            for op in (
                InsertRun({"id": run_id, "name": "100k-batches", "status": Status.RUNNING, "started_at": T0,
                           "host": "bench", "pid": 1, "versions": VERSIONS}, {"lr": 0.001}, {"sweep": GENERATOR}),
                InsertPhase(run_id, fit, {"run_id": run_id, "seq": 0, "kind": PhaseKind.FIT, "epoch": None,
                                          "status": Status.RUNNING, "started_at": T0,
                                          "keras_params": {"verbose": 0, "epochs": EPOCHS, "steps": STEPS}}),
            ):
                apply(conn, keys, op)
        for e in range(EPOCHS):  # one transaction per epoch, as the writer's flushes
            with conn.begin():
                records = [BatchRecord(fit, e * STEPS + b, e, b, 0.036 * (e * STEPS + b),
                                       {"loss": loss_l[e * STEPS + b], "mean_absolute_error": mae_l[e * STEPS + b]})
                           for b in range(STEPS)]
                write_batches(conn, keys, records)
                last = (e + 1) * STEPS - 1
                began = T0 + timedelta(seconds=36 * e)
                apply(conn, keys, InsertDecisions(DecisionTable.LR_SERIES, fit, [{
                    "optimizer": "optimizer", "point": LRPoint.EPOCH, "epoch": e, "batch": None, "step": e * STEPS,
                    "lr": 0.001}]))
                apply(conn, keys, InsertEpoch(run_id, fit, e, began, began + timedelta(seconds=35), None,
                                              {"loss": loss_l[last], "mean_absolute_error": mae_l[last]}))
            keys.commit()
        end = T0 + timedelta(hours=1)
        with conn.begin():
            apply(conn, keys, EndPhase(fit, {"status": Status.FINISHED, "ended_at": end, "batch_count": n}, None))
            apply(conn, keys, UpdateRun(run_id, {"status": Status.FINISHED, "ended_at": end, "heartbeat_at": end}))
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    print(f"generated {BATCH_DB} ({n:,} batch rows) in {time.perf_counter() - t0:.0f} s")
    return BATCH_DB, run_id


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def timed(fn: Any, repeat: int) -> tuple[float, float]:
    """(median, min) in ms of `repeat` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times)


def cpu(fn: Any, repeat: int) -> float:
    """Median CPU time in ms of `repeat` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append((time.process_time() - t) * 1e3)
    return statistics.median(times)


def load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    runs_db = ensure_runs_db(args.runs)
    batch_db, batch_run = ensure_batch_db()
    results = []
    print(f"load average before: {load()} ({os.cpu_count()} cores)")
    with running_server(create_app(runs_db)) as url:
        listing = json.loads(fetch(url + "/api/runs"))
        assert len(listing) == args.runs, len(listing)
        one = next(r["run_id"] for r in listing[len(listing) // 2:] if r["restored_epoch"] is not None)
        listed = timed(lambda: fetch(url + "/api/runs"), args.repeat)
        size = len(fetch(url + "/api/runs"))
        assert len(json.loads(fetch(f"{url}/api/runs/{one}/epochs"))) == 100
        page = timed(lambda: (fetch(f"{url}/api/runs/{one}"), fetch(f"{url}/api/runs/{one}/epochs")), args.repeat)
    data = Dashboard(runs_db)
    cpu_listed = cpu(lambda: data.runs_json(), args.repeat)
    cpu_page = cpu(lambda: (dumps(data.run(one)), dumps(data.epochs(one))), args.repeat)
    results += [(f"a. GET /api/runs, {args.runs:,} runs", listed, cpu_listed, 300),
                ("b. a 100-epoch run's page data (/api/runs/ID + /epochs)", page, cpu_page, 100)]
    with running_server(create_app(batch_db)) as url:
        answer = json.loads(fetch(f"{url}/api/runs/{batch_run}/batches?points=2000"))
        points = {k: len(v["y"]) for k, v in answer["series"].items()}
        assert answer["total"] == EPOCHS * STEPS
        batches = timed(lambda: fetch(f"{url}/api/runs/{batch_run}/batches?points=2000"), args.repeat)
    data = Dashboard(batch_db)
    cpu_batches = cpu(lambda: dumps(data.batches(batch_run, points=2000)), args.repeat)
    shown = "/".join(str(n) for n in points.values())
    results.append((f"c. 100,000 batch rows to {shown} points per curve", batches, cpu_batches, 300))
    print(f"load average after: {load()}")
    print(f"timings: median of {args.repeat} after one warm-up (min in brackets), nothing cached; "
          "server CPU time in braces")
    for label, (median, low), cpu_ms, goal in results:
        print(f"  {label}: {median:.0f} ms (min {low:.0f}) {{CPU {cpu_ms:.0f} ms}} (goal <= {goal} ms)")
    (a, b, c) = (r[1][0] for r in results)
    print(f"ui: /api/runs over {args.runs:,} runs {a:.0f} ms (CPU {cpu_listed:.0f} ms; {size / 2**20:.1f} MiB); "
          f"100-epoch run page data {b:.0f} ms (CPU {cpu_page:.0f} ms); 100,000 batch rows to ~2,000 points "
          f"{c:.0f} ms (CPU {cpu_batches:.0f} ms); load average {load()}")
    for label, (median, _), _, goal in results:
        print(f"{'GOAL MET' if median <= goal else 'GOAL MISSED'}: {label.strip()} {median:.0f} ms (goal <= {goal} ms)")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
