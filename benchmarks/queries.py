"""Measure the read side on a large database: 10,000 runs x 100 epochs x 4 metrics.

What it measures (each the median of --repeat timings after one warm-up, in one process):
  a. ``Store(db).runs(sort="best:val_loss")`` over all runs, and the SQL alone
     (``tracker.run_filters.runs_statement`` built, executed and fetched with
     SQLAlchemy, no pandas), which is what the CLI's ``runs`` command runs;
  b. ``tracker.reports.compare_runs(store, <10 run ids>)``;
  c. ``Store(db).epochs(run)`` for one 100-epoch run (no goal, for reference);
  d. the wall time of whole read commands as subprocesses:
     ``python cli.py --db DB runs --sort best:val_loss --limit 20``,
     ``python cli.py --db DB runs --limit 20``, and ``python -c pass``.
Goals: <= 100 ms for the queries (a, b), <= 0.5 s to start a read command (d).

The database is generated once through a bulk path that writes the rows the
real write path (tracker.tracking) writes: schema from the migrations
(``open_database``); per run a ``runs`` row (phase_count/epoch_count as the
writer leaves them), params, a tag, one fit phase (seq 0) with its phase_values
(on_train_end logs), lr_series (phase_begin + one per epoch), epochs with
fingerprints, epoch_values from ``tracker.writer.value_rows``, and run_metrics
computed in Python (checked against ``tracker.summary.upsert_run_metrics`` on 50
runs at every start). 20 runs also log batches (50 per epoch, 2 keys). Not
generated: validation phases (one per epoch in a real fit with validation
data), their batches and phase_values. A file generated with the same sizes is
reused. Losses are seeded, decreasing and noisy, with a few NaN values.

Run:  python benchmarks/queries.py [--runs 10000] [--epochs 100] [--db PATH] [--repeat 7]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, insert, select

from tracker.errors import TrackerError
from tracker.migrate import HEAD_REVISION, open_database
from tracker.schema import (Base, Batch, BatchValue, Epoch, EpochValue, LRPoint, LRSeries, Param, Phase, PhaseKind,
                            PhaseStatus, PhaseValue, Run, RunMetric, RunStatus, Tag)
from tracker.summary import upsert_run_metrics
from tracker.writer import value_rows

REPO = Path(__file__).resolve().parent.parent
KEYS = ("loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error")
STEPS, BATCH_RUNS, CHUNK = 50, 20, 250  # train batches per epoch, runs logging batches, runs per transaction
T0 = datetime(2026, 1, 1)
MODEL_CONFIG = json.loads(
    '{"name": "sequential", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": '
    '{"name": "float32"}, "registered_name": null}, "layers": [{"module": "keras.layers", "class_name": "InputLayer",'
    ' "config": {"batch_shape": [null, 784], "dtype": "float32", "sparse": false, "ragged": false, "name": '
    '"input_layer", "optional": false}, "registered_name": null}, {"module": "keras.layers", "class_name": "Dense", '
    '"config": {"name": "dense", "trainable": true, "units": 1, "activation": "linear", "use_bias": true, '
    '"kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, '
    '"registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null}, "registered_name": null, '
    '"build_config": {"input_shape": [null, 784]}}], "build_input_shape": [null, 784]}')
VERSIONS = {"python": "3.11.7", "tracker": "0.1.0", "keras": "3.15.1", "numpy": "2.4.6", "sqlalchemy": "2.1.9",
            "alembic": "1.20.1", "backend": "tensorflow", "tensorflow": "2.21.0"}
TABLES = [t.__table__ for t in (Run, Param, Tag, Phase, Epoch, EpochValue, PhaseValue, LRSeries, Batch, BatchValue,
                                RunMetric)]


def curves(rng: np.random.Generator, k: int, n_epochs: int) -> dict[str, np.ndarray]:
    """Decreasing noisy float32 curves per key, shape (k, epochs); a few NaN (diverged runs, odd values)."""
    t = np.arange(n_epochs)
    noise = lambda s: 1 + s * rng.standard_normal((k, n_epochs))  # noqa: E731
    loss = (0.05 + 0.2 * rng.random((k, 1)) + (1 + 2 * rng.random((k, 1))) * np.exp(-(0.02 + 0.08 * rng.random((k, 1))) * t)) * noise(0.03)
    val = loss * (1.05 + 0.1 * rng.random((k, 1))) + 0.002 * np.maximum(0, t - 60) * rng.random((k, 1))
    out = {"loss": loss, "mean_absolute_error": 0.8 * np.sqrt(loss) * noise(0.02),
           "val_loss": val * noise(0.04), "val_mean_absolute_error": 0.8 * np.sqrt(val) * noise(0.03)}
    for r in np.flatnonzero(rng.random(k) < 0.003):  # diverged: NaN losses from some epoch on
        start = int(rng.integers(1, n_epochs))
        out["loss"][r, start:] = out["val_loss"][r, start:] = np.nan
    out["val_loss"][rng.random((k, n_epochs)) < 2e-4] = np.nan
    return {key: a.astype(np.float32).astype(np.float64) for key, a in out.items()}


def summary_rows(run_ids: list[str], arrays: dict[str, np.ndarray]) -> list[dict]:
    """run_metrics rows with upsert_run_metrics' semantics: earliest best (NaN skipped), latest final (NaN -> NULL)."""
    rows = []
    for key, a in arrays.items():
        nan, last = np.isnan(a), a.shape[1] - 1
        lo, hi = np.where(nan, np.inf, a).argmin(1), np.where(nan, -np.inf, a).argmax(1)
        for i, rid in enumerate(run_ids):
            seen = not nan[i].all()
            final = float(a[i, last])
            rows.append({"run_id": rid, "key": key, "best_min": float(a[i, lo[i]]) if seen else None,
                         "best_min_epoch": int(lo[i]) if seen else None,
                         "best_max": float(a[i, hi[i]]) if seen else None,
                         "best_max_epoch": int(hi[i]) if seen else None,
                         "final": None if final != final else final, "final_epoch": last, "epochs": a.shape[1]})
    return rows


def generate(path: str, n_runs: int, n_epochs: int, sweep: str) -> None:
    tmp = path + ".partial"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(tmp + suffix):
            os.remove(tmp + suffix)
    engine, _ = open_database(tmp)
    rng, rnd = np.random.default_rng(42), random.Random(42)
    batch_runs = set(np.linspace(0, n_runs - 1, min(BATCH_RUNS, n_runs)).astype(int).tolist())
    epoch_id = 0
    with engine.connect() as conn:
        for lo in range(0, n_runs, CHUNK):
            ids = list(range(lo, min(n_runs, lo + CHUNK)))
            arrays = curves(rng, len(ids), n_epochs)
            lists = {key: a.tolist() for key, a in arrays.items()}
            run_ids = [f"{rnd.getrandbits(128):032x}" for _ in ids]
            rows: dict = {t: [] for t in TABLES}
            for j, (i, rid) in enumerate(zip(ids, run_ids)):
                lr, bs, phase_id = rnd.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]), rnd.choice([32, 64, 128]), i + 1
                lr32, start = float(np.float32(lr)), T0 + timedelta(minutes=6 * i, seconds=rnd.random())
                phase_end = start + timedelta(seconds=1 + 2 * n_epochs + 0.3)
                rows[Run.__table__].append({
                    "id": rid, "name": f"sweep-{i:05d}", "status": RunStatus.FINISHED, "started_at": start,
                    "ended_at": phase_end + timedelta(seconds=0.05), "host": "bench", "pid": 4000 + i % 997,
                    "versions": VERSIONS, "model_name": "sequential", "model_config": MODEL_CONFIG,
                    "param_count": 785, "trainable_param_count": 785, "non_trainable_param_count": 0,
                    "phase_count": 1, "epoch_count": n_epochs, "heartbeat_at": phase_end})  # last flush
                rows[Param.__table__] += [{"run_id": rid, "key": "batch_size", "value": bs},
                                          {"run_id": rid, "key": "lr", "value": lr}]
                rows[Tag.__table__].append({"run_id": rid, "key": "sweep", "value": sweep})
                rows[Phase.__table__].append({
                    "id": phase_id, "run_id": rid, "seq": 0, "kind": PhaseKind.FIT, "parent_id": None, "epoch": None,
                    "status": PhaseStatus.FINISHED, "started_at": start + timedelta(microseconds=40),
                    "ended_at": phase_end, "keras_params": {"verbose": 0, "epochs": n_epochs, "steps": STEPS},
                    "optimizer_config": {"class_name": "Adam", "config": {"name": "adam", "learning_rate": lr32,
                                         "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}},
                    "batch_count": n_epochs * STEPS, "initial_epoch": 0})
                rows[LRSeries.__table__].append({"phase_id": phase_id, "optimizer": "optimizer",
                                                 "point": LRPoint.PHASE_BEGIN, "step": 0, "lr": lr32})
                logs = None
                for e in range(n_epochs):
                    epoch_id += 1
                    e_start = start + timedelta(seconds=1 + 2 * e + 0.01 * rnd.random())
                    rows[LRSeries.__table__].append({"phase_id": phase_id, "optimizer": "optimizer",
                                                     "point": LRPoint.EPOCH, "epoch": e, "step": e * STEPS, "lr": lr32})
                    rows[Epoch.__table__].append({"id": epoch_id, "phase_id": phase_id, "epoch": e,
                                                  "started_at": e_start, "ended_at": e_start + timedelta(seconds=1.9),
                                                  "fingerprint": f"{rnd.getrandbits(128):032x}"})
                    logs = {key: lists[key][j][e] for key in KEYS}
                    rows[EpochValue.__table__] += value_rows(logs, epoch_id=epoch_id)
                    if i in batch_runs:
                        for b in range(STEPS):
                            seq, f = e * STEPS + b, 1 + 0.3 * np.exp(-b / 8) * (1 + 0.05 * rnd.random())
                            rows[Batch.__table__].append({"phase_id": phase_id, "seq": seq, "epoch": e, "batch": b,
                                                          "elapsed": 1 + 2 * e + 0.038 * (b + 1)})
                            blogs = {"loss": float(np.float32(logs["loss"] * f)),
                                     "mean_absolute_error": float(np.float32(logs["mean_absolute_error"] * f))}
                            rows[BatchValue.__table__] += value_rows(blogs, phase_id=phase_id, batch_seq=seq)
                rows[PhaseValue.__table__] += value_rows(logs, phase_id=phase_id)  # on_train_end: last epoch's logs
            rows[RunMetric.__table__] = summary_rows(run_ids, arrays)
            with conn.begin():
                for table, table_rows in rows.items():
                    if table_rows:
                        conn.execute(insert(table), table_rows)
            print(f"\r  generated {ids[-1] + 1:,}/{n_runs:,} runs", end="", file=sys.stderr, flush=True)
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(file=sys.stderr)
    engine.dispose()
    for suffix in ("-wal", "-shm"):  # a stale WAL of an older file must not be applied to the new one
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    os.replace(tmp, path)


def verify(engine, n_check: int = 50) -> str:
    """Replay upsert_run_metrics on stored epoch values of a sample of runs, in a rolled-back transaction."""
    mt, bad = RunMetric.__table__, []
    with engine.connect() as conn:
        trans = conn.begin()
        all_ids = conn.execute(select(Run.id).order_by(Run.started_at)).scalars().all()
        sample = random.Random(7).sample(all_ids, min(n_check, len(all_ids)))
        for rid in sample:
            ours = conn.execute(select(mt).where(mt.c.run_id == rid).order_by(mt.c.key)).all()
            counts = conn.execute(select(Run.phase_count, Run.epoch_count).where(Run.id == rid)).one()
            real = (conn.scalar(select(func.count()).where(Phase.run_id == rid, Phase.kind != PhaseKind.VALIDATION)),
                    conn.scalar(select(func.count()).select_from(Epoch).join(Phase).where(Phase.run_id == rid)))
            values = conn.execute(
                select(Epoch.id, Epoch.epoch, EpochValue.key, EpochValue.value, EpochValue.bits, EpochValue.text)
                .join(EpochValue, EpochValue.epoch_id == Epoch.id).join(Phase, Phase.id == Epoch.phase_id)
                .where(Phase.run_id == rid, Phase.kind == PhaseKind.FIT).order_by(Epoch.id, EpochValue.key)).all()
            conn.execute(delete(mt).where(mt.c.run_id == rid))
            by_epoch: dict = {}
            for eid, epoch, key, value, bits, text in values:
                by_epoch.setdefault((eid, epoch), []).append({"key": key, "value": value, "bits": bits, "text": text})
            for (_, epoch), epoch_rows in by_epoch.items():
                upsert_run_metrics(conn, rid, epoch, epoch_rows)
            theirs = conn.execute(select(mt).where(mt.c.run_id == rid).order_by(mt.c.key)).all()
            if [tuple(r) for r in ours] != [tuple(r) for r in theirs] or tuple(counts) != real:
                bad.append(rid)
        trans.rollback()
    return f"run_metrics and counters equal upsert_run_metrics' on {len(sample) - len(bad)}/{len(sample)} sampled runs" + (
        f" -- MISMATCH in {bad[:3]}" if bad else "")


def median_s(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def command(args: list[str]):
    def run() -> None:
        done = subprocess.run(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--db", default=None, help="default /tmp/tracker-queries-RUNSxEPOCHS.db")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    path = os.path.abspath(args.db or f"/tmp/tracker-queries-{args.runs}x{args.epochs}.db")
    sweep = f"queries-{args.runs}x{args.epochs}x{STEPS}b{BATCH_RUNS}-rev{HEAD_REVISION}"  # a new schema regenerates
    found: list[str] = []
    if os.path.exists(path):
        try:
            engine, _ = open_database(path, create=False)
            with engine.connect() as conn:
                found = conn.execute(select(Tag.value).where(Tag.key == "sweep").distinct().limit(2)).scalars().all()
                count = conn.scalar(select(func.count()).select_from(Run))
            engine.dispose()
        except TrackerError as exc:
            print(f"{exc} Not overwriting {path}; pass another --db.")
            return
        if not (found and all(v.startswith("queries-") for v in found)):
            print(f"{path} is not a database generated by this benchmark; not overwriting it. Pass another --db.")
            return
    if found == [sweep] and count == args.runs:
        print(f"reused {path} (generated earlier with the same sizes)")
    else:
        t = time.perf_counter()
        generate(path, args.runs, args.epochs, sweep)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    engine, _ = open_database(path, create=False)
    with engine.connect() as conn:
        counts = {t.name: conn.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
        run_ids = conn.execute(select(Run.id).order_by(Run.started_at)).scalars().all()
    print(f"file size {os.path.getsize(path) / 2**20:,.0f} MiB; rows: "
          + ", ".join(f"{name} {n:,}" for name, n in counts.items() if n))
    print(verify(engine))

    from tracker.reports import compare_runs
    from tracker.run_filters import runs_statement
    from tracker.store import Store

    store = Store(path)
    ten = run_ids[:: max(1, len(run_ids) // 10)][:10]
    one = run_ids[len(run_ids) // 2]

    def sql_only() -> None:
        stmt, _ = runs_statement(sort="best:val_loss")
        with engine.connect() as conn:
            conn.execute(stmt).all()

    assert len(Store(path).runs(sort="best:val_loss")) == len(run_ids) and len(store.epochs(one)) == args.epochs
    print(f"timings: median of {args.repeat} after one warm-up")
    r = args.repeat
    q_runs = median_s(lambda: Store(path).runs(sort="best:val_loss"), r) * 1e3
    print(f"  a. Store(db).runs(sort='best:val_loss'), {len(run_ids):,} rows: {q_runs:.1f} ms (goal <= 100 ms)")
    q_sql = median_s(sql_only, r) * 1e3
    print(f"     SQL alone (runs_statement, SQLAlchemy, no pandas): {q_sql:.1f} ms (goal <= 100 ms)")
    q_cmp = median_s(lambda: compare_runs(store, ten), r) * 1e3
    print(f"  b. compare_runs(store, 10 runs): {q_cmp:.1f} ms (goal <= 100 ms)")
    q_ep = median_s(lambda: Store(path).epochs(one), r) * 1e3
    print(f"  c. Store(db).epochs(one run), {args.epochs} epochs: {q_ep:.1f} ms (no goal)")
    cli = [sys.executable, str(REPO / "cli.py"), "--db", path, "runs"]
    s_best = median_s(command(cli + ["--sort", "best:val_loss", "--limit", "20"]), r)
    print(f"  d. 'python cli.py runs --sort best:val_loss --limit 20': {s_best:.3f} s (goal <= 0.5 s)")
    s_plain = median_s(command(cli + ["--limit", "20"]), r)
    print(f"     'python cli.py runs --limit 20': {s_plain:.3f} s (goal <= 0.5 s)")
    s_py = median_s(command([sys.executable, "-c", "pass"]), r)
    print(f"     'python -c pass' (interpreter alone): {s_py:.3f} s")
    n_rows = counts["epoch_values"]
    print(f"queries: {args.runs:,} runs x {args.epochs} epochs x {len(KEYS)} metrics ({n_rows:,} rows); "
          f"runs --sort best:val_loss {q_runs:.0f} ms (SQL {q_sql:.0f} ms); compare 10 runs {q_cmp:.0f} ms; "
          f"epochs of one run {q_ep:.0f} ms; 'tracker runs' start-up {s_best:.2f} s (python alone {s_py:.2f} s)")
    for label, value, goal, unit in [("runs --sort best:val_loss", q_runs, 100, "ms"), ("its SQL alone", q_sql, 100, "ms"),
                                     ("compare 10 runs", q_cmp, 100, "ms"),
                                     ("'tracker runs --sort best:val_loss' start-up", s_best, 0.5, "s"),
                                     ("'tracker runs' start-up", s_plain, 0.5, "s")]:
        print(f"{'GOAL MET' if value <= goal else 'GOAL MISSED'}: {label} {value:.3g} {unit} (goal <= {goal} {unit})")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
