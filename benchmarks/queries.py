"""Measure the read side on a large database: 10,000 runs x 100 epochs x 4 metrics, on SQLite or PostgreSQL.

Measured, each the median of --repeat timings after one warm-up, in one process:
  a. ``Store(db).runs(sort="best:val_loss")`` over all runs, and its SQL alone (the ``runs_statement``
     SELECT executed and fetched with SQLAlchemy, no pandas: the CLI's ``runs`` fast path);
  b. ``Store(db).overview()`` over all runs (the runs overview: differing params, best val_loss and
     epoch, the last evaluate's results), its rows alone (``tracker.store.overview.overview``, no
     pandas), and its first page, ``overview(sort="best:val_loss", limit=20)``;
  c. ``tracker.reports.compare_runs(store, <10 run ids>)``;  d. ``Store(db).epochs(run)`` (no goal);
  e. whole read commands as subprocesses (wall time, and the child's CPU time beside it, which other
     load on the machine spreads less): ``tracker --db DB runs --sort best:val_loss --limit 20``,
     ``tracker --db DB runs --limit 20`` and ``python -c pass``.
Goals: <= 100 ms for the queries (a, b except its rows alone, c), <= 0.5 s to start a read command (e). On PostgreSQL the
issue's goal is a: ``runs --sort best:KEY`` over 10,000 runs <= 100 ms.

The database holds the rows the real write path writes, schema revision 0006 from the migrations:
runs with their counters and heartbeat, params, a tag, per run one fit phase (phase_values: the last
epoch's logs) and one evaluate phase (phase_values: its results), lr_series (fit start and each epoch),
epochs, epoch_values keyed by the ids that ``KeyCache`` gives from the ``keys`` table, with ``bits``
only where ``tracker.db.values.encode`` sets them (a few NaN), run_metrics from
``tracker.db.metrics.summarise`` (checked on 50 sampled runs against replaying ``upsert_run_metrics``,
the writer's per-epoch upsert), and 50 batches per epoch for 20 runs written by ``write_batches``
itself (packed rows, keysets). Validation phases, stops and restores are not generated. Rows are
written with executemany, 250 runs per transaction (on this 2-core machine about 1.5 minutes and
300 MiB for SQLite, 5 to 6 minutes and 570 MiB for PostgreSQL).

A database of the same sizes, schema revision and generator is reused; one this script did not write
is never overwritten. SQLite: the default file is /tmp/tracker-queries-RUNSxEPOCHS-revREV.db.
PostgreSQL: pass ``--db postgresql+psycopg://USER@HOST/NAME``; the database NAME is created on that
server if missing (written as NAME_partial, renamed when complete), then ``VACUUM ANALYZE``d, as
autovacuum would do on a default server (it is off on the test server). ``--drop`` removes the file
or database afterwards.

Run:  python benchmarks/queries.py [--runs 10000] [--epochs 100] [--db PATH|URL] [--repeat 7] [--drop]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from sqlalchemy import create_engine, delete, func, insert, select, text
from sqlalchemy.engine import make_url

from tracker.db.base import table_of
from tracker.db.engine import describe, dispose_engines, get_engine, resolve_url, sqlite_path
from tracker.db.keys import KeyCache
from tracker.db.metrics import summarise, upsert_run_metrics
from tracker.db.migrate import HEAD_REVISION, open_database
from tracker.db.tables import (Epoch, EpochValue, Key, LRPoint, LRSeries, Param, Phase, PhaseKind, PhaseValue,
                               Run, RunMetric, Status, Tag)
from tracker.db.values import encode
from tracker.db.writes import BatchRecord, write_batches

REPO = Path(__file__).resolve().parent.parent
KEYS = ("loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error")
STEPS, EVAL_STEPS, BATCH_RUNS, CHUNK = 50, 10, 20, 250  # train batches per epoch, evaluate batches, runs logging batches, runs per transaction
GENERATOR = 2  # bump when what is generated changes: an older database is then regenerated
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
ADAM = {"name": "adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
        "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
        "gradient_accumulation_steps": None, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}
TABLES = [table_of(m) for m in (Run, Param, Tag, Phase, LRSeries, Epoch, EpochValue, PhaseValue)]  # foreign-key order


# -- the machine ------------------------------------------------------------------------


def machine() -> str:
    """Cores, CPU model, memory and kernel: where the figures were measured."""
    model = platform.processor() or "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1])
        model += f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def load() -> str:
    """The 1, 5 and 15-minute load averages: other work on this shared machine spreads the times."""
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


# -- generating ---------------------------------------------------------------------------


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


def value_rows(key_ids: dict[str, int], logs: dict[str, float], **owner: Any) -> list[dict[str, Any]]:
    """epoch_values/phase_values rows as the writer's ``_value_rows`` builds them: ``encode`` per key."""
    rows = []
    for name, raw in logs.items():
        value, bits, text_ = encode(raw)
        rows.append({**owner, "key_id": key_ids[name], "value": value, "bits": bits, "text": text_})
    return rows


def generate(url: str, n_runs: int, n_epochs: int, sweep: str) -> None:
    """Write the benchmark's runs into the empty database at ``url`` (migrated here to the head revision)."""
    engine, _ = open_database(url)
    server = engine.dialect.name != "sqlite"
    rng, rnd, epoch_id = np.random.default_rng(42), random.Random(42), 0
    batch_runs = set(np.linspace(0, n_runs - 1, min(BATCH_RUNS, n_runs)).astype(int).tolist())
    keys = KeyCache()
    with engine.connect() as conn:
        for lo in range(0, n_runs, CHUNK):
            ids = range(lo, min(n_runs, lo + CHUNK))
            arrays = curves(rng, len(ids), n_epochs)
            lists = {key: a.tolist() for key, a in arrays.items()}
            run_ids = [f"{rnd.getrandbits(128):032x}" for _ in ids]
            rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in TABLES}
            summary_in: list[tuple[str, int, int, float | None]] = []
            batches: list[BatchRecord] = []
            with conn.begin():
                key_ids = keys.key_ids(conn, KEYS)  # the keys table, as the first epoch write fills it
                for j, (i, rid) in enumerate(zip(ids, run_ids)):
                    lr, bs = rnd.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]), rnd.choice([32, 64, 128])
                    fit_id, eval_id = 2 * i + 1, 2 * i + 2
                    lr32, start = float(np.float32(lr)), T0 + timedelta(minutes=6 * i, seconds=rnd.random())
                    fit_end = start + timedelta(seconds=1 + 2 * n_epochs + 0.3)
                    eval_end = fit_end + timedelta(seconds=0.4)
                    end = eval_end + timedelta(milliseconds=1)
                    rows["runs"].append({
                        "id": rid, "name": f"sweep-{i:05d}", "status": Status.FINISHED, "started_at": start,
                        "ended_at": end, "host": "bench", "pid": 4000 + i % 997, "versions": VERSIONS,
                        "model_name": "sequential", "model_config": MODEL_CONFIG, "param_count": 785,
                        "trainable_param_count": 785, "non_trainable_param_count": 0, "phase_count": 2,
                        "epoch_count": n_epochs, "heartbeat_at": end + timedelta(microseconds=300)})  # the last flush
                    rows["params"] += [{"run_id": rid, "key": k, "value": v} for k, v in (("lr", lr), ("batch_size", bs))]
                    rows["tags"].append({"run_id": rid, "key": "sweep", "value": sweep})
                    rows["phases"] += [
                        {"id": fit_id, "run_id": rid, "seq": 0, "kind": PhaseKind.FIT, "parent_id": None, "epoch": None,
                         "status": Status.FINISHED, "started_at": start + timedelta(microseconds=40),
                         "ended_at": fit_end, "keras_params": {"verbose": 0, "epochs": n_epochs, "steps": STEPS},
                         "optimizer_config": {"class_name": "Adam", "config": {**ADAM, "learning_rate": lr32}},
                         "batch_count": n_epochs * STEPS, "initial_epoch": 0},
                        {"id": eval_id, "run_id": rid, "seq": 1, "kind": PhaseKind.EVALUATE, "parent_id": None,
                         "epoch": None, "status": Status.FINISHED, "started_at": fit_end + timedelta(milliseconds=5),
                         "ended_at": eval_end, "keras_params": {"verbose": 0, "epochs": 1, "steps": EVAL_STEPS},
                         "optimizer_config": None, "batch_count": EVAL_STEPS, "initial_epoch": None}]
                    rows["lr_series"].append({"phase_id": fit_id, "optimizer": "optimizer", "point": LRPoint.PHASE_BEGIN,
                                              "epoch": None, "batch": None, "step": 0, "lr": lr32})
                    phase = SimpleNamespace(id=fit_id)  # a PhaseRef, as the recorder's PhaseHandle
                    for e in range(n_epochs):
                        epoch_id, e_start = epoch_id + 1, start + timedelta(seconds=1 + 2 * e + 0.01 * rnd.random())
                        rows["lr_series"].append({"phase_id": fit_id, "optimizer": "optimizer", "point": LRPoint.EPOCH,
                                                  "epoch": e, "batch": None, "step": e * STEPS, "lr": lr32})
                        rows["epochs"].append({"id": epoch_id, "phase_id": fit_id, "epoch": e, "started_at": e_start,
                                               "ended_at": e_start + timedelta(seconds=1.9),
                                               "fingerprint": f"{rnd.getrandbits(128):032x}", "superseded": False})
                        logs = {key: lists[key][j][e] for key in KEYS}
                        epoch_rows = value_rows(key_ids, logs, epoch_id=epoch_id)
                        rows["epoch_values"] += epoch_rows
                        summary_in += [(rid, e, r["key_id"], r["value"]) for r in epoch_rows
                                       if r["value"] is not None or r["bits"] is not None]  # as upsert_run_metrics
                        for b in range(STEPS) if i in batch_runs else ():  # Keras' running means within the epoch
                            f = 1 + 0.3 * np.exp(-b / 8) * (1 + 0.05 * rnd.random())
                            batches.append(BatchRecord(phase, e * STEPS + b, e, b, 1 + 2 * e + 0.038 * (b + 1),
                                                       {k: float(np.float32(logs[k] * f)) for k in KEYS[:2]}))
                    rows["phase_values"] += value_rows(key_ids, logs, phase_id=fit_id)  # on_train_end: the last logs
                    results = {"loss": float(np.float32(logs["val_loss"] * (1 + 0.01 * rnd.random()))),
                               "mean_absolute_error": float(np.float32(logs["val_mean_absolute_error"]))}
                    rows["phase_values"] += value_rows(key_ids, results, phase_id=eval_id)
                for table in TABLES:
                    if rows[table.name]:
                        conn.execute(insert(table), rows[table.name])  # executemany
                if batches:
                    write_batches(conn, keys, batches)  # the writer's own hot path: packed rows, keysets
                conn.execute(insert(table_of(RunMetric)), summarise(summary_in))
            keys.commit()
            print(f"\r  generated {ids[-1] + 1:,}/{n_runs:,} runs", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if server:  # ids were given explicitly: move the sequences past them, as the writer's inserts would
            with conn.begin():
                for name in ("phases", "epochs"):
                    conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                         f"(SELECT max(id) FROM {name}))")
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            t = time.perf_counter()
            auto.exec_driver_sql("VACUUM ANALYZE")
            print(f"  VACUUM ANALYZE {time.perf_counter() - t:.1f} s", file=sys.stderr)
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    dispose_engines(url)


# -- the database: SQLite file or PostgreSQL database ------------------------------------------


def _pg_admin(url: str) -> Any:
    """An autocommit engine on the server's maintenance database (CREATE/DROP/RENAME DATABASE)."""
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", pool_size=1)


def probe(url: str) -> tuple[str, list[str], int]:
    """``(state, sweep tags, run count)`` of the database at ``url``; state: missing, empty, tracker or foreign."""
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            return "missing", [], 0
        if path.stat().st_size == 0:
            return "empty", [], 0
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:  # read without migrating: an older revision's file is reported, not upgraded
                found = [r[0] for r in conn.execute("SELECT DISTINCT value FROM tags WHERE key = 'sweep' LIMIT 2")]
                return "tracker", found, conn.execute("SELECT count(*) FROM runs").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return "foreign", [], 0
    name = make_url(url).database
    admin = _pg_admin(url)
    try:
        with admin.connect() as admin_conn:
            if admin_conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                return "missing", [], 0
    finally:
        admin.dispose()
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as db:
            tables: set[str] = set(db.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
            if not tables:
                return "empty", [], 0
            if not {"tags", "runs"} <= tables:
                return "foreign", [], 0
            tags: list[str] = db.execute(text("SELECT DISTINCT value FROM tags WHERE key = 'sweep' LIMIT 2")).scalars().all()  # type: ignore[assignment]
            return "tracker", list(tags), db.execute(text("SELECT count(*) FROM runs")).scalar_one()
    finally:
        engine.dispose()


def regenerate(url: str, n_runs: int, n_epochs: int, sweep: str, state: str) -> None:
    """Generate into a partial copy, then put it in place: a database at ``url`` is always whole."""
    path = sqlite_path(url)
    if path is not None:
        tmp = str(path) + ".partial"
        for p in (tmp, tmp + "-wal", tmp + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        generate(resolve_url(tmp), n_runs, n_epochs, sweep)
        for p in (str(path) + "-wal", str(path) + "-shm"):  # a stale WAL of an older file must not be applied
            if os.path.exists(p):
                os.remove(p)
        os.replace(tmp, path)
        return
    name = make_url(url).database
    partial = f"{name}_partial"
    admin = _pg_admin(url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{partial}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{partial}"')
        partial_url = make_url(url).set(database=partial).render_as_string(hide_password=False)
        generate(partial_url, n_runs, n_epochs, sweep)
        dispose_engines(url)
        with admin.connect() as conn:
            if state != "missing":
                conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'ALTER DATABASE "{partial}" RENAME TO "{name}"')
    finally:
        admin.dispose()


def drop(url: str) -> None:
    dispose_engines(url)
    path = sqlite_path(url)
    if path is not None:
        for p in (str(path), str(path) + "-wal", str(path) + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        return
    admin = _pg_admin(url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        admin.dispose()


def size_of(engine: Any, url: str) -> str:
    path = sqlite_path(url)
    if path is not None:
        return f"file size {os.path.getsize(path) / 2**20:,.0f} MiB"
    with engine.connect() as conn:
        return f"database size {conn.scalar(text('SELECT pg_database_size(current_database())')) / 2**20:,.0f} MiB"


# -- checking -----------------------------------------------------------------------------------


def verify(engine: Any, n_check: int = 50) -> str:
    """Replay upsert_run_metrics over the stored epoch values of sampled runs, in a rolled-back transaction."""
    mt, bad = table_of(RunMetric), []
    with engine.connect() as conn:
        trans = conn.begin()
        all_ids = conn.execute(select(Run.id).order_by(Run.started_at)).scalars().all()
        sample = random.Random(7).sample(all_ids, min(n_check, len(all_ids)))
        for rid in sample:
            ours = conn.execute(select(mt).where(mt.c.run_id == rid).order_by(mt.c.key_id)).all()
            counters = tuple(conn.execute(select(Run.phase_count, Run.epoch_count).where(Run.id == rid)).one())
            real = (conn.scalar(select(func.count()).where(Phase.run_id == rid, Phase.kind != PhaseKind.VALIDATION)),
                    conn.scalar(select(func.count()).select_from(Epoch).join(Phase).where(Phase.run_id == rid)))
            values = conn.execute(
                select(Epoch.id, Epoch.epoch, EpochValue.key_id, EpochValue.value, EpochValue.bits)
                .join(EpochValue, EpochValue.epoch_id == Epoch.id).join(Phase, Phase.id == Epoch.phase_id)
                .where(Phase.run_id == rid, Phase.kind == PhaseKind.FIT).order_by(Epoch.id, EpochValue.key_id)).all()
            conn.execute(delete(mt).where(mt.c.run_id == rid))
            by_epoch: dict[tuple[int, int], list[dict[str, Any]]] = {}
            for eid, epoch, key_id, value, bits in values:
                by_epoch.setdefault((eid, epoch), []).append({"key_id": key_id, "value": value, "bits": bits})
            for (_, epoch), epoch_rows in by_epoch.items():
                upsert_run_metrics(conn, rid, epoch, epoch_rows)
            theirs = conn.execute(select(mt).where(mt.c.run_id == rid).order_by(mt.c.key_id)).all()
            if [tuple(r) for r in ours] != [tuple(r) for r in theirs] or counters != real:
                bad.append(rid)
        trans.rollback()
        nan_bits = conn.scalar(select(func.count()).select_from(EpochValue).where(EpochValue.bits.is_not(None)))
        nan_values = conn.scalar(select(func.count()).select_from(EpochValue).where(EpochValue.value.is_(None)))
        key_names = conn.execute(select(Key.name).order_by(Key.id)).scalars().all()
    return (f"check: run_metrics and runs.phase_count/epoch_count equal what upsert_run_metrics and the writer give "
            f"on {len(sample) - len(bad)}/{len(sample)} sampled runs" + (f" -- MISMATCH in {bad[:3]}" if bad else "")
            + f"; epoch_values with bits {nan_bits:,} (all NaN: {nan_bits == nan_values}); keys {key_names}")


# -- timing ---------------------------------------------------------------------------------------


def median_s(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(median, min) of `repeat` timings after one warm-up; min shows how much of the median is noise."""
    fn()

    def once() -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    times = [once() for _ in range(repeat)]
    return statistics.median(times), min(times)


class Command:
    """A whole command as a subprocess; ``cpu`` collects each call's CPU seconds (user + system)."""

    def __init__(self, args: list[str]) -> None:
        self.args, self.cpu = args, []  # type: list[str], list[float]

    def __call__(self) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(self.args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode:
            raise RuntimeError(f"{' '.join(self.args)} failed: {done.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    for name, default in (("--runs", 10_000), ("--epochs", 100), ("--repeat", 7)):
        parser.add_argument(name, type=int, default=default)
    parser.add_argument("--db", default=None, help="a file path or a postgresql+psycopg:// URL "
                        "(default /tmp/tracker-queries-RUNSxEPOCHS-revREV.db)")
    parser.add_argument("--drop", action="store_true", help="remove the file or database afterwards")
    args = parser.parse_args()
    url = resolve_url(args.db or f"/tmp/tracker-queries-{args.runs}x{args.epochs}-rev{HEAD_REVISION}.db")
    where = describe(url)
    sweep = f"queries-{args.runs}x{args.epochs}x{STEPS}b{BATCH_RUNS}-rev{HEAD_REVISION}-g{GENERATOR}"
    state, found, count = probe(url)
    if state == "foreign" or (state == "tracker" and not (found and all(v.startswith("queries-") for v in found))):
        return print(f"{where} is not this benchmark's ({state}, sweep tags {found[:1]}); not overwriting it; "
                     "pass another --db.")
    if state == "tracker" and found == [sweep] and count == args.runs:
        print(f"reused {where} (generated earlier with the same sizes, schema revision and generator)")
    else:
        t = time.perf_counter()
        regenerate(url, args.runs, args.epochs, sweep, state)
        print(f"generated {where} in {time.perf_counter() - t:.1f} s (load average {load()})")

    from tracker.db.migrate import open_for_reading
    from tracker.reports import compare_runs
    from tracker.store import Store
    from tracker.store.filters import runs_statement
    from tracker.store.overview import overview

    engine, _ = open_for_reading(url)
    with engine.connect() as conn:
        counts = {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in
                  ("runs", "params", "tags", "phases", "keys", "keysets", "epochs", "epoch_values", "phase_values",
                   "batches", "lr_series", "run_metrics")}
        run_ids = conn.execute(select(Run.id).order_by(Run.started_at)).scalars().all()
        server = conn.dialect.name != "sqlite"
        version = conn.scalar(text("SHOW server_version")) if server else sqlite3.sqlite_version
    backend = f"PostgreSQL {version}" if server else f"SQLite {version}"
    print(f"{backend}, {size_of(engine, url)}; rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items() if n))
    print(verify(get_engine(url)))  # a writable engine: verify's changes are rolled back

    store, ten, one = Store(url), run_ids[:: max(1, len(run_ids) // 10)][:10], run_ids[len(run_ids) // 2]
    batch_run = store.runs(sort="name").query("name == 'sweep-00000'")["run_id"].iloc[0]
    frame = store.batches(batch_run)
    assert len(frame) == args.epochs * STEPS and list(frame.columns[-2:]) == list(KEYS[:2]), frame.columns
    best = "best:val_loss"

    def sql_only() -> None:
        with engine.connect() as conn:
            conn.execute(runs_statement(sort=best)[0]).all()

    def overview_rows() -> None:
        overview(engine, heartbeat_timeout=store.heartbeat_timeout)

    assert len(store.runs(sort=best)) == len(run_ids) and len(store.epochs(one)) == args.epochs
    assert len(store.overview()) == len(run_ids)
    entry = Path(sys.executable).with_name("tracker")
    cli = ([str(entry)] if entry.exists() else [sys.executable, str(REPO / "cli.py")]) + ["--db", url, "runs"]
    shown_cli = "tracker" if entry.exists() else "python cli.py"
    measures: list[tuple[str, Callable[[], Any], float | None, str]] = [  # (label, function, goal, unit)
        (f"a. Store(db).runs(sort='best:val_loss'), {len(run_ids):,} rows", lambda: Store(url).runs(sort=best), 100, "ms"),
        ("   its SQL alone (runs_statement + SQLAlchemy fetch, no pandas)", sql_only, 100, "ms"),
        (f"b. Store(db).overview(), {len(run_ids):,} rows", lambda: Store(url).overview(), 100, "ms"),
        ("   its rows alone (tracker.store.overview.overview, no pandas)", overview_rows, None, "ms"),
        ("   Store(db).overview(sort='best:val_loss', limit=20), the first page",
         lambda: Store(url).overview(sort=best, limit=20), 100, "ms"),
        ("c. compare_runs(store, 10 runs)", lambda: compare_runs(store, ten), 100, "ms"),
        (f"d. Store(db).epochs(run) of a {args.epochs}-epoch run", lambda: Store(url).epochs(one), None, "ms"),
        (f"e. {shown_cli} runs --sort best:val_loss --limit 20", Command(cli + ["--sort", best, "--limit", "20"]), 0.5, "s"),
        (f"   {shown_cli} runs --limit 20", Command(cli + ["--limit", "20"]), 0.5, "s"),
        ("   python -c pass (the interpreter alone)", Command([sys.executable, "-c", "pass"]), None, "s")]
    print(f"Measured {dt.date.today().isoformat()} on {machine()}; {backend} at {where}")
    print(f"timings: median of {args.repeat} after one warm-up (min in brackets; the machine is shared: "
          "load average 1/5/15 min beside each)")
    shown, results, cpus = lambda v, unit: f"{v:.1f} ms" if unit == "ms" else f"{v:.3f} s", [], []  # noqa: E731
    for label, fn, goal, unit in measures:
        med, low = (v * (1e3 if unit == "ms" else 1) for v in median_s(fn, args.repeat))
        results.append(med)
        cpu = f", CPU {statistics.median(fn.cpu[-args.repeat:]):.3f} s" if isinstance(fn, Command) else ""
        print(f"  {label}: {shown(med, unit)} (min {shown(low, unit)}{cpu})",
              f"(goal <= {goal} {unit})" if goal else "(no goal)", f"[load {load()}]", flush=True)
        if isinstance(fn, Command):
            cpus.append(statistics.median(fn.cpu[-args.repeat:]))
    q_runs, q_sql, q_ov, q_ov_rows, q_page, q_cmp, q_ep, s_best, s_plain, s_py = results
    print(f"queries ({backend}, {dt.date.today().isoformat()}, load {load()}): {args.runs:,} runs x {args.epochs} "
          f"epochs x {len(KEYS)} metrics ({counts['epoch_values']:,} rows); runs --sort best:val_loss {q_runs:.0f} ms "
          f"(SQL {q_sql:.0f} ms); overview {q_ov:.0f} ms (rows {q_ov_rows:.0f} ms, first page of 20 {q_page:.0f} ms); "
          f"compare 10 runs {q_cmp:.0f} ms; "
          f"epochs of one run {q_ep:.0f} ms; 'tracker runs' start-up {s_best:.2f} s, CPU {cpus[0]:.2f} s "
          f"(python alone {s_py:.2f} s)")
    for (label, _, goal, unit), value in zip(measures, results):
        if goal:
            print(f"{'GOAL MET' if value <= goal else 'GOAL MISSED'}: {label.strip().split('. ', 1)[-1]} "
                  f"{shown(value, unit)} (goal <= {goal} {unit})")
    if args.drop:
        drop(url)
        print(f"dropped {where}")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
