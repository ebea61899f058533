"""Stress the tracker the way real training does: kills, concurrent writers, storage faults.

1. kill -9 at 20 random points: training jobs (tests/scripts/train_forever.py, the
   guide's model with TrackingCallback) are killed after a random number of batches
   or epochs, four at a time. Each must show as ``crashed``, keep every row that was
   in the database just before the kill, and pass ``PRAGMA integrity_check``.
2. 8 concurrent writers: eight jobs train into one SQLite file at once. Counted:
   errors shown to the user (non-zero exit, or a tracker warning on stderr) and the
   rows expected against the rows found.
3. Storage faults, in this process: a read-only database, a full disk
   (``PRAGMA max_page_count``), a write lock held by another process, and the file
   deleted mid-run. Each fit must complete.

It ends with one line of figures (quoted in docs/reliability.md):
    python scripts/stress.py [--kills 20] [--writers 8] [--seed 0]
Exit status 0 only if every figure is as it should be.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
JOB = REPO / "tests" / "scripts" / "train_forever.py"
BATCHES_PER_EPOCH = 16  # train_forever: 256 samples, batch 16


def start(db: Path, name: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(JOB), str(db), name, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="always"),
    )


def count(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def kills(n: int, workdir: Path, rng: random.Random) -> tuple[int, int, int]:
    """Return (survived, shown crashed, flushed rows lost)."""
    from tracker import Store

    survived = crashed = lost = 0
    plan = [(workdir / f"kill{i}.db", rng.choice(["batches", "epochs"])) for i in range(n)]
    for first in range(0, n, 4):
        group = []
        for db, table in plan[first : first + 4]:
            target = rng.randint(5, 200) if table == "batches" else rng.randint(1, 8)
            group.append((db, table, target, start(db, db.stem)))
        for db, table, target, proc in group:
            deadline = time.monotonic() + 180
            while count(db, table) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            before = {t: count(db, t) for t in ("epochs", "epoch_values", "batches")}
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            after = {t: count(db, t) for t in before}
            lost += sum(max(0, before[t] - after[t]) for t in before)
            with sqlite3.connect(db) as conn:
                intact = conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            statuses = list(Store(str(db)).runs()["status"])
            crashed += statuses == ["crashed"]
            survived += intact and all(after[t] >= before[t] for t in before)
    return survived, crashed, lost


def writers(n: int, workdir: Path, epochs: int = 3) -> tuple[int, int, int]:
    """Return (errors shown, rows expected, rows found)."""
    db = workdir / "shared.db"
    procs = [start(db, f"writer-{i}", "--epochs", str(epochs)) for i in range(n)]
    errors = 0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        errors += proc.returncode != 0 or "DONE" not in out or "tracker:" in err or "Traceback" in err
    # epoch rows + their 2 values; batch rows (schema 0006 packs a batch's values into its row)
    per_run = epochs * (1 + 2) + epochs * BATCHES_PER_EPOCH
    found = sum(count(db, t) for t in ("epochs", "epoch_values", "batches"))
    return errors, n * per_run, found


@contextlib.contextmanager
def caught():
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        yield records


def faults(workdir: Path) -> dict[str, bool]:
    """Return {case: training completed and the record is right}."""
    import keras
    import numpy as np
    from sqlalchemy import event

    from tracker import Store
    from tracker.db.migrate import open_database
    from tracker.record.callback import TrackingCallback

    rng = np.random.default_rng(0)
    x = rng.random((2048, 784)).astype("float32")
    y = rng.integers(0, 10, 2048).astype("float32")

    def fit(cb, epochs=3, extra=(), n=512):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="mean_squared_error")
        return model.fit(x[:n], y[:n], batch_size=16, epochs=epochs, callbacks=[cb, *extra], verbose=0)

    results: dict[str, bool] = {}

    path = workdir / "ro.db"
    open_database(str(path))
    with caught():
        history = fit(TrackingCallback(f"sqlite:///file:{path}?mode=ro&uri=true"))
    results["read-only"] = len(history.history["loss"]) == 3

    path = workdir / "full.db"
    cb = TrackingCallback(str(path), flush_interval=0.05)
    engine = cb._writer.open()
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")  # the migrations leave free pages; a full disk has none
        pages = conn.execute("PRAGMA page_count").fetchone()[0]

    def limit(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", limit)
    engine.dispose()
    with caught() as records:
        history = fit(cb, n=2048)  # 128 batches an epoch: the rows need new pages
    full_seen = any("full" in str(r.message) for r in records)
    event.remove(engine, "connect", limit)
    engine.dispose()
    cb.close()
    results["disk-full"] = (
        full_seen and len(history.history["loss"]) == 3 and len(Store(str(path)).batches(cb.run_id)) == 3 * 128
    )

    path = workdir / "locked.db"
    cb = TrackingCallback(str(path))
    locker = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, time\n"
         f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    locker.stdout.readline()
    with caught():
        history = fit(cb)
    not_stalled = locker.poll() is None
    locker.kill()
    locker.communicate()
    cb.close()
    results["lock-held"] = not_stalled and len(Store(str(path)).epochs(cb.run_id)) == 3

    path = workdir / "deleted.db"

    class Delete(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

    cb = TrackingCallback(str(path))
    with caught():
        history = fit(cb, epochs=4, extra=[Delete()])
    results["deleted"] = len(history.history["loss"]) == 4 and list(Store(str(path)).epochs(cb.run_id)["epoch"]) == [1, 2, 3]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tracker-stress-") as tmp:
        workdir = Path(tmp)
        survived, crashed, lost = kills(args.kills, workdir, random.Random(args.seed))
        errors, expected, found = writers(args.writers, workdir)
        fault_results = faults(workdir)
    shown = ", ".join(f"{case} {'completed' if ok else 'FAILED'}" for case, ok in fault_results.items())
    print(
        f"stress: kill -9 survived {survived}/{args.kills}, shown crashed {crashed}/{args.kills}, "
        f"flushed rows lost {lost}; {args.writers} concurrent writers: {errors} errors, "
        f"rows expected {expected} found {found}; faults: {shown} "
        f"({time.monotonic() - started:.0f} s)"
    )
    ok = (
        survived == crashed == args.kills
        and lost == 0
        and errors == 0
        and expected == found
        and all(fault_results.values())
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
