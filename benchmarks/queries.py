"""Measure the read side on a large database: 10,000 runs x 100 epochs x 4 metrics.

Measured, each the median of --repeat timings after one warm-up, in one process:
  a. ``Store(db).runs(sort="best:val_loss")`` over all runs, and its SQL alone (the ``runs_statement``
     SELECT executed and fetched with SQLAlchemy, no pandas: the CLI's ``runs`` fast path);
  b. ``tracker.reports.compare_runs(store, <10 run ids>)``;  c. ``Store(db).epochs(run)`` (no goal);
  d. whole commands as subprocesses (wall time): ``python cli.py --db DB runs --sort best:val_loss
     --limit 20``, ``python cli.py --db DB runs --limit 20`` and ``python -c pass``.
Goals: <= 100 ms for the queries (a, b), <= 0.5 s to start a read command (d).

The database (about a minute, 500 MB) holds what the real write path writes (schema from the migrations;
runs with counters and heartbeat, params, a tag, one fit phase with phase_values, lr_series, epochs,
epoch_values via ``value_rows``, run_metrics checked against ``upsert_run_metrics`` on 50 runs; batches for
20 runs), except validation phases, which are not generated. A file of the same sizes is reused.

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
from tracker.db.migrate import HEAD_REVISION, open_database
from tracker.db.tables import (Base, Batch, BatchValue, Epoch, EpochValue, LRPoint, LRSeries, Param, Phase, PhaseKind,
                            PhaseValue, Run, RunMetric, Status, Tag)
from tracker.db.metrics import upsert_run_metrics
from tracker.db.values import value_rows

REPO = Path(__file__).resolve().parent.parent
KEYS = ("loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error")
STEPS, BATCH_RUNS, CHUNK = 50, 20, 250  # train batches per epoch, runs logging batches, runs per transaction
T0 = datetime(2026, 1, 1)
MODEL_CONFIG = json.loads(  # the guide's model, as model.get_config() gives it (abridged)
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
TABLES = [m.__table__ for m in (Run, Param, Tag, Phase, Epoch, EpochValue, PhaseValue, LRSeries, Batch, BatchValue,
                                RunMetric)]  # in foreign-key order


def curves(rng: np.random.Generator, k: int, n: int) -> dict[str, np.ndarray]:
    """Decreasing noisy float32 curves, shape (k runs, n epochs); a few NaN (diverged runs, odd values)."""
    t, col = np.arange(n), lambda: rng.random((k, 1))
    noise = lambda s: 1 + s * rng.standard_normal((k, n))  # noqa: E731
    loss = (0.05 + 0.2 * col() + (1 + 2 * col()) * np.exp(-(0.02 + 0.08 * col()) * t)) * noise(0.03)
    val = loss * (1.05 + 0.1 * col()) + 0.002 * np.maximum(0, t - 60) * col()  # some overfit late
    out = {"loss": loss, "mean_absolute_error": 0.8 * np.sqrt(loss) * noise(0.02),
           "val_loss": val * noise(0.04), "val_mean_absolute_error": 0.8 * np.sqrt(val) * noise(0.03)}
    for r in np.flatnonzero(rng.random(k) < 0.003):  # diverged: NaN losses from some epoch on
        start = int(rng.integers(1, n))
        out["loss"][r, start:] = out["val_loss"][r, start:] = np.nan
    out["val_loss"][rng.random((k, n)) < 2e-4] = np.nan
    return {key: a.astype(np.float32).astype(np.float64) for key, a in out.items()}  # Keras logs float32 values


def summary_rows(run_ids: list[str], arrays: dict[str, np.ndarray]) -> list[dict]:
    """run_metrics rows as upsert_run_metrics leaves them: earliest best (NaN skipped), latest final (NaN -> NULL)."""
    rows = []
    for key, a in arrays.items():
        nan, last = np.isnan(a), a.shape[1] - 1
        lo, hi = np.where(nan, np.inf, a).argmin(1), np.where(nan, -np.inf, a).argmax(1)
        for i, rid in enumerate(run_ids):
            seen, final = not nan[i].all(), float(a[i, last])
            rows.append({"run_id": rid, "key": key, "best_min": float(a[i, lo[i]]) if seen else None,
                         "best_min_epoch": int(lo[i]) if seen else None,
                         "best_max": float(a[i, hi[i]]) if seen else None, "best_max_epoch": int(hi[i]) if seen else None,
                         "final": None if final != final else final, "final_epoch": last, "epochs": a.shape[1]})
    return rows


def generate(path: str, n_runs: int, n_epochs: int, sweep: str) -> None:
    tmp = path + ".partial"  # renamed when complete, so a file at `path` is always whole
    for p in (tmp, tmp + "-wal", tmp + "-shm"):
        os.path.exists(p) and os.remove(p)
    engine, _ = open_database(tmp)
    rng, rnd, epoch_id = np.random.default_rng(42), random.Random(42), 0
    batch_runs = set(np.linspace(0, n_runs - 1, min(BATCH_RUNS, n_runs)).astype(int).tolist())
    with engine.connect() as conn:
        for lo in range(0, n_runs, CHUNK):
            ids = range(lo, min(n_runs, lo + CHUNK))
            arrays = curves(rng, len(ids), n_epochs)
            lists = {key: a.tolist() for key, a in arrays.items()}
            run_ids = [f"{rnd.getrandbits(128):032x}" for _ in ids]
            rows: dict = {t.name: [] for t in TABLES}
            for j, (i, rid) in enumerate(zip(ids, run_ids)):
                lr, bs, phase_id = rnd.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]), rnd.choice([32, 64, 128]), i + 1
                lr32, start = float(np.float32(lr)), T0 + timedelta(minutes=6 * i, seconds=rnd.random())
                phase_end = start + timedelta(seconds=1 + 2 * n_epochs + 0.3)
                end = phase_end + timedelta(milliseconds=50)
                rows["runs"].append({
                    "id": rid, "name": f"sweep-{i:05d}", "status": Status.FINISHED, "started_at": start,
                    "ended_at": end, "host": "bench", "pid": 4000 + i % 997, "versions": VERSIONS,
                    "model_name": "sequential", "model_config": MODEL_CONFIG, "param_count": 785,
                    "trainable_param_count": 785, "non_trainable_param_count": 0, "phase_count": 1,
                    "epoch_count": n_epochs, "heartbeat_at": end + timedelta(microseconds=300)})  # the last flush
                rows["params"] += [{"run_id": rid, "key": k, "value": v} for k, v in (("batch_size", bs), ("lr", lr))]
                rows["tags"].append({"run_id": rid, "key": "sweep", "value": sweep})
                rows["phases"].append({
                    "id": phase_id, "run_id": rid, "seq": 0, "kind": PhaseKind.FIT, "parent_id": None, "epoch": None,
                    "status": Status.FINISHED, "started_at": start + timedelta(microseconds=40),
                    "ended_at": phase_end, "keras_params": {"verbose": 0, "epochs": n_epochs, "steps": STEPS},
                    "optimizer_config": {"class_name": "Adam", "config": {"name": "adam", "learning_rate": lr32,
                                         "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}},
                    "batch_count": n_epochs * STEPS, "initial_epoch": 0})
                rows["lr_series"].append({"phase_id": phase_id, "optimizer": "optimizer", "point": LRPoint.PHASE_BEGIN,
                                          "epoch": None, "step": 0, "lr": lr32})  # executemany uses row 1's keys
                for e in range(n_epochs):
                    epoch_id, e_start = epoch_id + 1, start + timedelta(seconds=1 + 2 * e + 0.01 * rnd.random())
                    rows["lr_series"].append({"phase_id": phase_id, "optimizer": "optimizer", "point": LRPoint.EPOCH,
                                              "epoch": e, "step": e * STEPS, "lr": lr32})
                    rows["epochs"].append({"id": epoch_id, "phase_id": phase_id, "epoch": e, "started_at": e_start,
                                           "ended_at": e_start + timedelta(seconds=1.9),
                                           "fingerprint": f"{rnd.getrandbits(128):032x}"})
                    logs = {key: lists[key][j][e] for key in KEYS}
                    rows["epoch_values"] += value_rows(logs, epoch_id=epoch_id)
                    for b in range(STEPS) if i in batch_runs else ():  # Keras' running means within the epoch
                        seq, f = e * STEPS + b, 1 + 0.3 * np.exp(-b / 8) * (1 + 0.05 * rnd.random())
                        rows["batches"].append({"phase_id": phase_id, "seq": seq, "epoch": e, "batch": b,
                                                "elapsed": 1 + 2 * e + 0.038 * (b + 1)})
                        blogs = {k: float(np.float32(logs[k] * f)) for k in KEYS[:2]}
                        rows["batch_values"] += value_rows(blogs, phase_id=phase_id, batch_seq=seq)
                rows["phase_values"] += value_rows(logs, phase_id=phase_id)  # on_train_end gets the last epoch's logs
            rows["run_metrics"] = summary_rows(run_ids, arrays)
            with conn.begin():
                for table in TABLES:
                    rows[table.name] and conn.execute(insert(table), rows[table.name])  # executemany
            print(f"\r  generated {ids[-1] + 1:,}/{n_runs:,} runs", end="", file=sys.stderr, flush=True)
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(file=sys.stderr)
    engine.dispose()
    for p in (path + "-wal", path + "-shm"):  # a stale WAL of an older file must not be applied to the new one
        os.path.exists(p) and os.remove(p)
    os.replace(tmp, path)


def verify(engine, n_check: int = 50) -> str:
    """Replay upsert_run_metrics over the stored epoch values of sampled runs, in a rolled-back transaction."""
    mt, bad = RunMetric.__table__, []
    with engine.connect() as conn:
        trans = conn.begin()
        all_ids = conn.execute(select(Run.id).order_by(Run.started_at)).scalars().all()
        sample = random.Random(7).sample(all_ids, min(n_check, len(all_ids)))
        for rid in sample:
            ours = conn.execute(select(mt).where(mt.c.run_id == rid).order_by(mt.c.key)).all()
            counters = tuple(conn.execute(select(Run.phase_count, Run.epoch_count).where(Run.id == rid)).one())
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
            if [tuple(r) for r in ours] != [tuple(r) for r in theirs] or counters != real:
                bad.append(rid)
        trans.rollback()
    return (f"check: run_metrics and runs.phase_count/epoch_count equal what upsert_run_metrics and the writer give "
            f"on {len(sample) - len(bad)}/{len(sample)} sampled runs" + (f" -- MISMATCH in {bad[:3]}" if bad else ""))


def median_s(fn, repeat: int) -> tuple[float, float]:
    """(median, min) of `repeat` timings after one warm-up; min shows how much of the median is noise."""
    fn()

    def once() -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    times = [once() for _ in range(repeat)]
    return statistics.median(times), min(times)


def command(args: list[str]):
    def run() -> None:
        done = subprocess.run(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in (("--runs", 10_000), ("--epochs", 100), ("--repeat", 7)):
        parser.add_argument(name, type=int, default=default)
    parser.add_argument("--db", default=None, help="default /tmp/tracker-queries-RUNSxEPOCHS.db")
    args = parser.parse_args()
    path = os.path.abspath(args.db or f"/tmp/tracker-queries-{args.runs}x{args.epochs}.db")
    sweep = f"queries-{args.runs}x{args.epochs}x{STEPS}b{BATCH_RUNS}-rev{HEAD_REVISION}"  # a new schema regenerates
    found, count = [], 0
    if os.path.exists(path):
        try:
            engine, _ = open_database(path, create=False)
            with engine.connect() as conn:
                found = conn.execute(select(Tag.value).where(Tag.key == "sweep").distinct().limit(2)).scalars().all()
                count = conn.scalar(select(func.count()).select_from(Run))
            engine.dispose()
        except TrackerError as exc:
            found = [str(exc)]
        if not (found and all(v.startswith("queries-") for v in found)):
            return print(f"{path} is not this benchmark's ({found[:1]}); not overwriting it; pass another --db.")
    if found == [sweep] and count == args.runs:
        print(f"reused {path} (generated earlier with the same sizes and schema revision)")
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
    from tracker.store.filters import runs_statement
    from tracker.store import Store

    store, ten, one = Store(path), run_ids[:: max(1, len(run_ids) // 10)][:10], run_ids[len(run_ids) // 2]

    def sql_only() -> None:
        with engine.connect() as conn:
            conn.execute(runs_statement(sort="best:val_loss")[0]).all()

    assert len(store.runs(sort="best:val_loss")) == len(run_ids) and len(store.epochs(one)) == args.epochs
    cli, best = [sys.executable, str(REPO / "cli.py"), "--db", path, "runs"], "best:val_loss"
    measures = [  # (label, function, goal in its unit, unit)
        (f"a. Store(db).runs(sort='best:val_loss'), {len(run_ids):,} rows", lambda: Store(path).runs(sort=best), 100, "ms"),
        ("   its SQL alone (runs_statement + SQLAlchemy fetch, no pandas)", sql_only, 100, "ms"),
        ("b. compare_runs(store, 10 runs)", lambda: compare_runs(store, ten), 100, "ms"),
        (f"c. Store(db).epochs(run) of a {args.epochs}-epoch run", lambda: Store(path).epochs(one), None, "ms"),
        ("d. python cli.py runs --sort best:val_loss --limit 20", command(cli + ["--sort", best, "--limit", "20"]), 0.5, "s"),
        ("   python cli.py runs --limit 20", command(cli + ["--limit", "20"]), 0.5, "s"),
        ("   python -c pass (the interpreter alone)", command([sys.executable, "-c", "pass"]), None, "s")]
    print(f"timings: median of {args.repeat} after one warm-up (min in brackets; this machine is shared and noisy)")
    shown, results = lambda v, unit: f"{v:.1f} ms" if unit == "ms" else f"{v:.3f} s", []  # noqa: E731
    for label, fn, goal, unit in measures:
        med, low = (v * (1e3 if unit == "ms" else 1) for v in median_s(fn, args.repeat))
        results.append(med)
        print(f"  {label}: {shown(med, unit)} (min {shown(low, unit)})", f"(goal <= {goal} {unit})" if goal else "(no goal)")
    q_runs, q_sql, q_cmp, q_ep, s_best, s_plain, s_py = results
    print(f"queries: {args.runs:,} runs x {args.epochs} epochs x {len(KEYS)} metrics "
          f"({counts['epoch_values']:,} rows); runs --sort best:val_loss {q_runs:.0f} ms (SQL {q_sql:.0f} ms); "
          f"compare 10 runs {q_cmp:.0f} ms; "
          f"epochs of one run {q_ep:.0f} ms; 'tracker runs' start-up {s_best:.2f} s (python alone {s_py:.2f} s)")
    for (label, _, goal, unit), value in zip(measures, results):
        if goal:
            print(f"{'GOAL MET' if value <= goal else 'GOAL MISSED'}: {label.strip().split('. ', 1)[-1]} "
                  f"{shown(value, unit)} (goal <= {goal} {unit})")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
