"""Measure the dashboard's JSON API through a real uvicorn server, against the issue's goals.

  a. ``GET /api/runs`` over 10,000 runs (each request a cache miss: it alternates between two
     metrics, and the listing cache holds one), and the same request again (cached rows);
  b. a 100-epoch run's page data: ``GET /api/runs/ID`` then ``GET /api/runs/ID/epochs``;
  c. ``GET /api/runs/ID/batches?points=N`` of a run with 100,000 batch rows, downsampled on the
     server (min and max per bucket): N = 2000, 2001, ... so that each request is a cache miss;
     and the same request again (cached).
Goals: a <= 300 ms, b <= 100 ms, c <= 300 ms. Each figure is the median of --repeat requests after
one warm-up (min in brackets), wall time from the client, in one process. Because this machine is
shared (its load average is printed), the server-side CPU time of the same work is given too: the
``tracker.ui.data`` call and the JSON encoding, in the benchmark's process (``time.process_time``).

The 10,000-run database is the one ``benchmarks/queries.py`` generates (same file, reused if it is
there: 10,000 runs x 100 epochs x 4 metrics, about a minute to make). The 100,000-batch run is
generated into its own small file the same way: rows as the writer writes them (``value_rows``).

Run:  python benchmarks/ui.py [--repeat 15]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import queries  # noqa: E402  (the 10,000-run generator)

from tracker.migrate import HEAD_REVISION, open_database  # noqa: E402
from tracker.schema import Batch, BatchValue, Epoch, EpochValue, LRPoint, LRSeries, Phase, PhaseKind, PhaseStatus, Run, RunStatus  # noqa: E402
from tracker.ui.app import create_app  # noqa: E402
from tracker.ui.data import Dashboard  # noqa: E402
from tracker.ui.jsonable import dumps  # noqa: E402
from tracker.ui.server import running_server  # noqa: E402
from tracker.values import value_rows  # noqa: E402

RUNS_DB = "/tmp/tracker-queries-10000x100.db"  # benchmarks/queries.py's default file
BATCH_DB = "/tmp/tracker-ui-100k-batches.db"
EPOCHS, STEPS = 100, 1000  # 100,000 train batches


def ensure_runs_db() -> str:
    sweep = f"queries-10000x100x{queries.STEPS}b{queries.BATCH_RUNS}-rev{HEAD_REVISION}"
    if os.path.exists(RUNS_DB):
        engine, _ = open_database(RUNS_DB, create=False)
        with engine.connect() as conn:
            count = conn.scalar(select(func.count()).select_from(Run))
        engine.dispose()
        if count == 10_000:
            print(f"reused {RUNS_DB}")
            return RUNS_DB
    t = time.perf_counter()
    queries.generate(RUNS_DB, 10_000, 100, sweep)
    print(f"generated {RUNS_DB} in {time.perf_counter() - t:.0f} s")
    return RUNS_DB


def ensure_batch_db() -> tuple[str, str]:
    """A database with one run of 100 epochs x 1,000 train batches (loss and mae per batch)."""
    run_id = "b" * 32
    if os.path.exists(BATCH_DB):
        engine, _ = open_database(BATCH_DB, create=False)
        with engine.connect() as conn:
            found = conn.scalar(select(func.count()).select_from(Batch))
        engine.dispose()
        if found == EPOCHS * STEPS:
            print(f"reused {BATCH_DB}")
            return BATCH_DB, run_id
        os.remove(BATCH_DB)
    t0 = time.perf_counter()
    engine, _ = open_database(BATCH_DB)
    rng = np.random.default_rng(0)
    start = queries.T0
    n = EPOCHS * STEPS
    loss = (0.1 + 3 * np.exp(-np.arange(n) / 20_000)) * (1 + 0.05 * rng.standard_normal(n))
    loss[rng.integers(0, n, 20)] *= 8  # spikes the downsampling must keep
    mae = 0.8 * np.sqrt(np.abs(loss))
    loss, mae = loss.astype(np.float32).astype(float).tolist(), mae.astype(np.float32).astype(float).tolist()
    with engine.connect() as conn, conn.begin():
        conn.execute(insert(Run.__table__), [{
            "id": run_id, "name": "100k-batches", "status": RunStatus.FINISHED, "started_at": start,
            "ended_at": start + timedelta(hours=1), "host": "bench", "pid": 1, "versions": queries.VERSIONS,
            "model_name": "sequential", "model_config": queries.MODEL_CONFIG, "param_count": 785, "phase_count": 1,
            "epoch_count": EPOCHS, "heartbeat_at": start + timedelta(hours=1)}])
        conn.execute(insert(Phase.__table__), [{
            "id": 1, "run_id": run_id, "seq": 0, "kind": PhaseKind.FIT, "status": PhaseStatus.FINISHED,
            "started_at": start, "ended_at": start + timedelta(hours=1),
            "keras_params": {"verbose": 0, "epochs": EPOCHS, "steps": STEPS}, "batch_count": n, "initial_epoch": 0}])
        epochs, evalues, lrs, batches, bvalues = [], [], [], [], []
        for e in range(EPOCHS):
            epochs.append({"id": e + 1, "phase_id": 1, "epoch": e, "started_at": start + timedelta(seconds=36 * e),
                           "ended_at": start + timedelta(seconds=36 * e + 35), "fingerprint": None})
            last = (e + 1) * STEPS - 1
            evalues += value_rows({"loss": loss[last], "mean_absolute_error": mae[last]}, epoch_id=e + 1)
            lrs.append({"phase_id": 1, "optimizer": "optimizer", "point": LRPoint.EPOCH, "epoch": e, "batch": None,
                        "step": e * STEPS, "lr": 0.001})
        for seq in range(n):
            batches.append({"phase_id": 1, "seq": seq, "epoch": seq // STEPS, "batch": seq % STEPS, "elapsed": 0.036 * seq})
            bvalues += value_rows({"loss": loss[seq], "mean_absolute_error": mae[seq]}, phase_id=1, batch_seq=seq)
        for table, rows in ((Epoch, epochs), (EpochValue, evalues), (LRSeries, lrs), (Batch, batches), (BatchValue, bvalues)):
            conn.execute(insert(table.__table__), rows)
    engine.dispose()
    print(f"generated {BATCH_DB} ({n:,} batch rows) in {time.perf_counter() - t0:.0f} s")
    return BATCH_DB, run_id


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def timed(fn, repeat: int) -> tuple[float, float]:
    """(median, min) in ms of `repeat` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times)


def cpu(fn, repeat: int) -> float:
    """Median CPU time in ms of `repeat` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append((time.process_time() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    runs_db = ensure_runs_db()
    batch_db, batch_run = ensure_batch_db()
    results = []
    print(f"load average before: {', '.join(f'{v:.1f}' for v in os.getloadavg())} (2 cores)")
    with running_server(create_app(runs_db)) as url:
        listing = json.loads(fetch(url + "/api/runs"))
        assert len(listing) == 10_000, len(listing)
        one = listing[len(listing) // 2]["run_id"]
        flip = iter(range(10**9))
        cold = timed(lambda: fetch(url + "/api/runs?metric=" + ("loss", "val_loss")[next(flip) % 2]), args.repeat)
        warm = timed(lambda: fetch(url + "/api/runs?metric=val_loss"), args.repeat)
        size = len(fetch(url + "/api/runs"))
        epochs = json.loads(fetch(f"{url}/api/runs/{one}/epochs"))
        assert len(epochs) == 100
        page = timed(lambda: (fetch(f"{url}/api/runs/{one}"), fetch(f"{url}/api/runs/{one}/epochs")), args.repeat)
    data = Dashboard(runs_db)
    flop = iter(range(10**9))
    cpu_cold = cpu(lambda: data.runs_json(metric=("loss", "val_loss")[next(flop) % 2]), args.repeat)
    cpu_page = cpu(lambda: (dumps(data.run(one)), dumps(data.epochs(one))), args.repeat)
    results += [("a. GET /api/runs, 10,000 runs (uncached)", cold, cpu_cold, 300),
                ("   the same, rows cached", warm, None, 300),
                ("b. a 100-epoch run's page data (/api/runs/ID + /epochs)", page, cpu_page, 100)]
    with running_server(create_app(batch_db)) as url:
        answer = json.loads(fetch(f"{url}/api/runs/{batch_run}/batches?points=2000"))
        points = {k: len(v["y"]) for k, v in answer["series"].items()}
        assert answer["total"] == EPOCHS * STEPS
        fresh = iter(range(2001, 10**9))
        batches = timed(lambda: fetch(f"{url}/api/runs/{batch_run}/batches?points={next(fresh)}"), args.repeat)
        cached = timed(lambda: fetch(f"{url}/api/runs/{batch_run}/batches?points=2000"), args.repeat)
    data = Dashboard(batch_db)
    fresh_cpu = iter(range(3001, 10**9))
    cpu_batches = cpu(lambda: dumps(data.batches(batch_run, points=next(fresh_cpu))), args.repeat)
    shown = "/".join(str(n) for n in points.values())
    results += [(f"c. 100,000 batch rows to {shown} points per curve (uncached)", batches, cpu_batches, 300),
                ("   the same, cached", cached, None, 300)]
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"timings: median of {args.repeat} after one warm-up (min in brackets); server CPU time in braces")
    for label, (median, low), cpu_ms, goal in results:
        extra = f" {{CPU {cpu_ms:.0f} ms}}" if cpu_ms is not None else ""
        print(f"  {label}: {median:.0f} ms (min {low:.0f}){extra} (goal <= {goal} ms)")
    (a, b, c) = (results[0][1][0], results[2][1][0], results[3][1][0])
    print(f"ui: /api/runs over 10,000 runs {a:.0f} ms (CPU {cpu_cold:.0f} ms; cached {results[1][1][0]:.0f} ms; "
          f"{size / 2**20:.1f} MiB); 100-epoch run page data {b:.0f} ms (CPU {cpu_page:.0f} ms); "
          f"100,000 batch rows to ~2,000 points {c:.0f} ms (CPU {cpu_batches:.0f} ms)")
    for label, (median, _), _, goal in results:
        print(f"{'GOAL MET' if median <= goal else 'GOAL MISSED'}: {label.strip()} {median:.0f} ms (goal <= {goal} ms)")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
