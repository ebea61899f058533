"""Write throughput: the tracker's writer beside raw sqlite3 executemany of the same rows, in one run.

What it measures:
  * ``--batches`` batch records of 2 keys each (Keras-like float logs), fed to
    the real ``Writer`` (``tracker.record.writer``) the way the recorder does,
    and flushed every ``--flush-every`` records: packing, key ids, SQLAlchemy
    Core ``executemany``, one transaction per flush.
  * The same rows, already packed, inserted by raw ``sqlite3``
    ``executemany`` into an identical ``batches`` table, one transaction per
    chunk of the same size: the floor for this schema.
  Both into fresh SQLite files (WAL, synchronous=NORMAL), alternating, best of
  ``--rounds``. Prints values per second and the ratio. Goal: >= 0.5x raw.

Run:  python benchmarks/throughput.py [--batches 200000] [--flush-every 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import struct
import tempfile
import time
from datetime import datetime

from tracker.db.writes import BatchRecord, InsertPhase, InsertRun
from tracker.record.ledger import PhaseHandle
from tracker.record.writer import Writer
from tracker.status import PhaseKind, Status

GOAL = 0.5
KEYS = ("loss", "mean_absolute_error")


def records(n: int, phase: PhaseHandle) -> list[BatchRecord]:
    per_epoch = 625
    return [
        BatchRecord(phase, i, i // per_epoch, i % per_epoch, 0.0021 * i,
                    {"loss": 1.0 / (i + 1), "mean_absolute_error": 0.5 + 1e-6 * i})
        for i in range(n)
    ]


def ours(path: str, n: int, chunk: int) -> float:
    run_id = "b" * 32
    writer = Writer(path, run_id=run_id, flush_every=10**9)
    phase = PhaseHandle(kind=PhaseKind.FIT, seq=0, t0=time.perf_counter())
    writer.submit(InsertRun({"id": run_id, "name": "throughput", "status": Status.RUNNING,
                             "started_at": datetime.now()}, {}, {}))
    writer.submit(InsertPhase(run_id, phase, {"run_id": run_id, "seq": 0, "kind": PhaseKind.FIT,
                                              "status": Status.RUNNING, "started_at": datetime.now()}))
    assert writer.flush(wait=10)
    feed = records(n, phase)
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        for record in feed[start : start + chunk]:
            writer.add_batch(record)
        assert writer.flush(wait=10)
    return time.perf_counter() - t0


def raw(path: str, n: int, chunk: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE batches (phase_id INTEGER NOT NULL, step INTEGER NOT NULL, epoch INTEGER, "
                 "batch INTEGER NOT NULL, elapsed_us BIGINT, keyset_id INTEGER, vals BLOB, "
                 "PRIMARY KEY (phase_id, step)) WITHOUT ROWID")
    pack = struct.Struct("<2d").pack
    rows = [(1, i, i // 625, i % 625, round(2100 * i), 1, pack(1.0 / (i + 1), 0.5 + 1e-6 * i)) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)", rows[start : start + chunk])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200_000)
    parser.add_argument("--flush-every", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    values = args.batches * len(KEYS)
    best = {"ours": float("inf"), "raw": float("inf")}
    with tempfile.TemporaryDirectory(prefix="tracker-throughput-") as tmp:
        for r in range(args.rounds):
            for name, fn in (("ours", ours), ("raw", raw)) if r % 2 == 0 else (("raw", raw), ("ours", ours)):
                seconds = fn(os.path.join(tmp, f"{name}-{r}.db"), args.batches, args.flush_every)
                best[name] = min(best[name], seconds)
                print(f"round {r + 1} {name:>4}: {seconds:.3f} s = {values / seconds:,.0f} values/s")
    rate = {k: values / v for k, v in best.items()}
    ratio = rate["ours"] / rate["raw"]
    print(f"best of {args.rounds}: tracker writer {rate['ours']:,.0f} values/s, raw sqlite3 executemany "
          f"{rate['raw']:,.0f} values/s; ratio {ratio:.2f} (goal >= {GOAL:g}); load average {os.getloadavg()[0]:.1f}")
    print("GOAL MET" if ratio >= GOAL else "GOAL MISSED")


if __name__ == "__main__":
    main()
