"""Many writers on one database: 16 processes logging every batch, on PostgreSQL and on SQLite, in one run.

What it measures, per backend (a fresh PostgreSQL database on the server, then one fresh SQLite file):
  * ``--writers`` processes (default 16) each write one run through the real ``Writer``
    (``tracker.record.writer``) and the typed write operations of ``tracker.db.writes``, in the order
    the recorder queues them: the run and its fit phase, then ``--epochs`` x ``--batches`` batch
    records of ``--keys`` float values (default 3 x 1,000 x 2), an ``InsertEpoch`` and a ``wake()`` at
    each epoch end, and at the end ``EndPhase``, ``UpdateRun``, ``stop()``, ``flush(wait=2.0)`` and
    ``close()``. The writer has TrackingCallback's defaults (flush every 128 batches or 2 s, in its
    background thread). Batches come as fast as the loop makes them (``--step-ms`` sleeps between
    batches to mimic a model's step time instead).
  * Every process imports, opens the database and then waits; all start together, and the wall time
    runs from that start to the last process's ``close()``. **rows/s** and **values/s**: batch rows
    and batch values written per second of that wall time, over all processes.
  * **flush ms**: each process times every ``Writer.flush`` call (the method wrapped in the job
    script) that had records pending; p50 and p99 over all such flushes of all processes. A flush
    that returns False (a lock not had within its wait, or a failure) keeps its records for the next.
  * **errors**: processes that failed or ended with records unwritten, and a failed check of what was
    written; **warnings**: the TrackingWarnings the writers emitted (a flush that could not write, its
    records kept and retried). **rows lost**: rows expected (runs, phases, epochs, epoch values,
    batches) minus rows found after the load; every batch value is also compared with what was logged,
    bit for bit.

The PostgreSQL database (``bench_writers_<pid>_<random>``) and the SQLite file are removed at the end.

Run:  python benchmarks/writers.py [--writers 16] [--epochs 3] [--batches 1000] [--keys 2] [--step-ms 0]
          [--backends postgresql sqlite] [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tracker.db.engine import dispose_engines, get_engine, resolve_url
from tracker.db.migrate import open_database

REPO = Path(__file__).resolve().parent.parent
KEY_NAMES = ("loss", "mean_absolute_error", "accuracy", "precision", "recall", "auc", "mse", "lr")
EPOCH_KEYS = ("loss", "mean_absolute_error")

# One writer process. argv: url, writer number, epochs, batches per epoch, keys, seconds between batches.
JOB = r"""
import json, os, sys, threading, time, warnings
from tracker.db.values import utcnow
from tracker.db.writes import BatchRecord, EndPhase, InsertEpoch, InsertPhase, InsertRun, UpdateRun
from tracker.errors import TrackingWarning
from tracker.record.ledger import PhaseHandle
from tracker.record.writer import Writer
from tracker.status import PhaseKind, Status

url, n, epochs, batches, width, pause = sys.argv[1], *map(int, sys.argv[2:6]), float(sys.argv[6])
names = json.loads(sys.argv[7])[:width]
flushes = []  # (seconds, records pending at the call, returned True, on the background thread, first)
_flush = Writer.flush

def timed_flush(self, *args, **kwargs):
    pending, t0 = self.pending, time.perf_counter()
    ok = _flush(self, *args, **kwargs)
    if pending:
        flushes.append((time.perf_counter() - t0, pending, bool(ok), threading.current_thread().name == "tracker-flush",
                        not flushes))
    return ok

Writer.flush = timed_flush
run_id = f"{n:032x}"
w = Writer(url, run_id=run_id)  # TrackingCallback's defaults: flush_every=128, flush_interval=2.0
w.open()
print("READY", flush=True)
sys.stdin.readline()
start, cpu = time.monotonic(), time.process_time()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    w.submit(InsertRun({"id": run_id, "name": f"writer-{n}", "status": Status.RUNNING, "started_at": utcnow(),
                        "host": "bench", "pid": os.getpid()}, {"writer": n}, {"bench": "writers"}))
    phase = PhaseHandle(kind=PhaseKind.FIT, seq=0, t0=time.perf_counter())
    w.submit(InsertPhase(run_id, phase, {"run_id": run_id, "seq": 0, "kind": PhaseKind.FIT, "epoch": None,
                                         "status": Status.RUNNING, "started_at": utcnow(),
                                         "keras_params": {"verbose": 0, "epochs": epochs, "steps": batches},
                                         "optimizer_config": None}))
    w.start()
    w.wake()
    step = 0
    for epoch in range(epochs):
        began = utcnow()
        for b in range(batches):
            w.add_batch(BatchRecord(phase, step, epoch, b, time.perf_counter() - phase.t0,
                                    {name: 1.0 / (step + 1) + n + 1000.0 * k for k, name in enumerate(names)}))
            step += 1
            if pause:
                time.sleep(pause)
        w.submit(InsertEpoch(run_id, phase, epoch, began, utcnow(), None,
                             {"loss": 1.0 / (epoch + 1) + n, "mean_absolute_error": 0.5 + n}))
        w.wake()
    w.submit(EndPhase(phase, {"status": Status.FINISHED, "ended_at": utcnow(), "batch_count": step, "error": None},
                      {"loss": 1.0 / epochs + n, "mean_absolute_error": 0.5 + n}))
    w.submit(UpdateRun(run_id, {"status": Status.FINISHED, "ended_at": utcnow()}))
    w.stop()
    w.flush(wait=2.0)
    closed = w.close()
end = time.monotonic()
warned = [str(m.message) for m in caught if issubclass(m.category, TrackingWarning)]
print(json.dumps({"start": start, "end": end, "closed": closed, "unwritten": w.unwritten(), "warnings": warned,
                  "flushes": flushes, "cpu": time.process_time() - cpu}), flush=True)
"""


@dataclass
class Load:
    """What one backend's load gave."""

    backend: str
    writers: int
    batches: int
    values: int
    wall: float = 0.0
    load: str = ""
    step_ms: float = 0.0
    flushes: list[tuple[float, int, bool, bool, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: int = 0
    warned: list[str] = field(default_factory=list)
    lost: int = 0
    expected: int = 0
    check: str = ""
    cpu: float = 0.0


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


def expected_values(n: int, step: int, width: int) -> tuple[float, ...]:
    """The batch values writer ``n`` logs at ``step`` (the same float operations as the job)."""
    return tuple(1.0 / (step + 1) + n + 1000.0 * k for k in range(width))


def run_load(url: str, backend: str, step_ms: float, args: argparse.Namespace, tmp: Path) -> Load:
    """Start the writers, release them together, wait for all, then count and compare what was written."""
    width = args.keys
    result = Load(backend, args.writers, args.writers * args.epochs * args.batches,
                  args.writers * args.epochs * args.batches * width, load=load(), step_ms=step_ms)
    env = dict(os.environ, PYTHONWARNINGS="always", TF_CPP_MIN_LOG_LEVEL="3")
    procs, logs = [], []
    for n in range(args.writers):
        log = open(tmp / f"{backend}-{n}.stderr", "w+")  # a file: a full pipe would block the writer
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", JOB, url, str(n), str(args.epochs), str(args.batches), str(width),
             str(step_ms / 1000), json.dumps(KEY_NAMES)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO, env=env))
    ready = [p.stdout.readline().strip() == "READY" for p in procs]  # type: ignore[union-attr]
    go = time.monotonic()
    for p in procs:
        try:
            p.stdin.write("GO\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            pass
    reports = []
    for n, p in enumerate(procs):
        out, _ = p.communicate(timeout=args.timeout)
        logs[n].seek(0)
        err = logs[n].read()
        logs[n].close()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if p.returncode or not ready[n] or not lines:
            result.errors.append(f"writer {n}: exit {p.returncode}: {(err.strip().splitlines() or ['?'])[-1]}")
            continue
        report = json.loads(lines[-1])
        reports.append(report)
        if not report["closed"] or report["unwritten"]:
            result.errors.append(f"writer {n}: {report['unwritten'] or 'close() returned False'}")
        result.warnings += len(report["warnings"])
        result.warned += [f"writer {n}: {m}" for m in report["warnings"]]
        result.flushes += [tuple(f) for f in report["flushes"]]
        result.cpu += report["cpu"]
    result.wall = max((r["end"] for r in reports), default=go) - go
    verify(url, args, result)
    return result


def verify(url: str, args: argparse.Namespace, result: Load) -> None:
    """Count the rows each writer should have left and compare every batch value bit for bit."""
    engine = get_engine(url)
    n_writers, n_epochs, n_batches, width = args.writers, args.epochs, args.batches, args.keys
    expected = {"runs": n_writers, "phases": n_writers, "epochs": n_writers * n_epochs,
                "epoch_values": n_writers * n_epochs * len(EPOCH_KEYS), "batches": n_writers * n_epochs * n_batches}
    with engine.connect() as conn:
        found = {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in expected}
        finished = conn.scalar(text("SELECT count(*) FROM runs WHERE status = 'finished'"))
        keysets = {int(i): str(ids) for i, ids in conn.execute(text("SELECT id, key_ids FROM keysets"))}
        keys = {int(i): str(name) for i, name in conn.execute(text("SELECT id, name FROM keys"))}
        rows: list[Any] = list(conn.execute(text("SELECT r.name, b.step, b.epoch, b.batch, b.keyset_id, b.vals FROM batches b "
                                 "JOIN phases p ON p.id = b.phase_id JOIN runs r ON r.id = p.run_id")))
    dispose_engines(url)
    names = KEY_NAMES[:width]
    bad = 0
    seen: set[tuple[int, int]] = set()
    for name, step, epoch, batch, keyset_id, vals in rows:
        n = int(name.removeprefix("writer-"))
        ids = keysets.get(keyset_id, "")
        ok = (tuple(keys[int(i)] for i in ids.split(",")) == names if ids else False)
        ok = ok and step == epoch * n_batches + batch and struct.unpack(f"<{width}d", bytes(vals)) == \
            expected_values(n, step, width)
        bad += not ok
        seen.add((n, step))
    result.expected = sum(expected.values())
    result.lost = sum(max(0, expected[t] - found[t]) for t in expected)
    extra = sum(max(0, found[t] - expected[t]) for t in expected)
    result.check = (f"rows expected {result.expected:,}, found {sum(found.values()):,} ("
                    + ", ".join(f"{t} {found[t]:,}/{expected[t]:,}" for t in expected)
                    + f"); runs finished {finished}/{n_writers}; batch values wrong {bad:,}; "
                    f"distinct (writer, step) {len(seen):,}" + (f"; EXTRA ROWS {extra}" if extra else ""))
    if bad or extra or finished != n_writers:
        result.errors.append(f"check failed: {result.check}")


def postgres_database(server: str) -> tuple[str, Any]:
    """Create a fresh, migrated database on the server; return its URL and a function that drops it."""
    base = make_url(server)
    name = f"bench_writers_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        dispose_engines(url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return url, drop


def sqlite_database(tmp: Path) -> tuple[str, Any]:
    path = tmp / "writers.db"
    url = resolve_url(str(path))

    def drop() -> None:
        dispose_engines(url)
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
    return url, drop


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    for name, default in (("--writers", 16), ("--epochs", 3), ("--batches", 1000), ("--keys", 2)):
        parser.add_argument(name, type=int, default=default)
    parser.add_argument("--step-ms", type=float, nargs="+", default=[0.0, 1.0],
                        help="sleep between batches, one load per value (default 0 1: as fast as possible, then 1 ms)")
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="the PostgreSQL server (a database on it is created and dropped)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one writer")
    args = parser.parse_args()
    args.keys = max(1, min(args.keys, len(KEY_NAMES)))
    started = load()
    print(f"{args.writers} writers x {args.epochs} epochs x {args.batches:,} batches of {args.keys} keys "
          f"(step {', '.join(f'{s:g}' for s in args.step_ms)} ms); backends {', '.join(args.backends)}", flush=True)
    results: list[Load] = []
    with tempfile.TemporaryDirectory(prefix="tracker-writers-") as tmp_name:
        tmp = Path(tmp_name)
        for step_ms, backend in [(s, b) for s in args.step_ms for b in args.backends]:
            try:
                url, drop = postgres_database(args.server) if backend == "postgresql" else sqlite_database(tmp)
            except Exception as exc:  # noqa: BLE001 - no server: say so, measure the rest
                print(f"{backend}: skipped ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})")
                continue
            try:
                open_database(url)  # migrated before the load: the writers only find it at head
                dispose_engines(url)
                t = time.perf_counter()
                result = run_load(url, backend, step_ms, args, tmp)
                results.append(result)
                print(f"{backend}, step {step_ms:g} ms: {time.perf_counter() - t:.1f} s in all (start-up included); "
                      f"{result.check}",
                      flush=True)
            finally:
                drop()
    print(f"\nMeasured {dt.date.today().isoformat()} on {machine()} (load average 1/5/15 min {started} at the "
          f"start, {load()} at the end; each row's load at its start); Python {platform.python_version()}.\n")
    print("| backend | writers | step ms | batches | wall s | rows/s | values/s | p50 flush ms | p99 flush ms "
          "| errors | warnings | rows lost | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        times = [f[0] * 1e3 for f in r.flushes]
        print(f"| {r.backend} | {r.writers} | {r.step_ms:g} | {r.batches:,} | {r.wall:.2f} | {r.batches / r.wall:,.0f} "
              f"| {r.values / r.wall:,.0f} | {percentile(times, 50):.1f} | {percentile(times, 99):.1f} "
              f"| {len(r.errors)} | {r.warnings} | {r.lost} | {r.load} |")
    print()
    for r in results:
        times = [f[0] * 1e3 for f in r.flushes]
        later = [f[0] * 1e3 for f in r.flushes if not f[4]]
        first = [f[0] * 1e3 for f in r.flushes if f[4]]
        final = [f[0] * 1e3 for f in r.flushes if not f[3]]
        refused = sum(1 for f in r.flushes if not f[2])
        mean_records = np.mean([f[1] for f in r.flushes]) if r.flushes else 0
        print(f"{r.backend}, step {r.step_ms:g} ms: {len(r.flushes):,} flushes with records, "
              f"{mean_records:,.0f} records each on average; max {max(times, default=float('nan')):.1f} ms; "
              f"each writer's first (statements compiled): p50 {percentile(first, 50):.1f} ms; the others: "
              f"p50 {percentile(later, 50):.1f} ms, p99 {percentile(later, 99):.1f} ms; on the main thread "
              f"(the final flush(wait=2.0) and close()): {len(final)}, p50 {percentile(final, 50):.1f} ms; "
              f"{refused} returned False (records kept, retried); {r.warnings} TrackingWarnings; writers' CPU "
              f"{r.cpu:.1f} s in all (from the start signal)")
        for error in r.errors[:5]:
            print(f"  error: {error}")
        for message in sorted(set(m.split(": ", 1)[1] for m in r.warned))[:3]:
            print(f"  warning ({sum(m.endswith(message) for m in r.warned)} writers): {message}")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
