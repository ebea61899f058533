"""Bytes on disk per batch value: the tracker's packed rows beside a raw sqlite3 table, in one run.

What it measures:
  * A real tracked fit of the guide's model (Dense(1) on 784 inputs, RMSprop,
    MSE + MAE: 2 keys per batch) on seeded random data, 20,000 samples, batch
    32, 3 epochs (1,875 batches, 3,750 batch values), written by
    TrackingCallback(log_batches=True) into a fresh SQLite file.
  * The bytes of the batch tables (``batches`` and ``batch_extras``, with
    their indexes; ``keys``/``keysets`` are a few hundred bytes and counted
    too), read from SQLite's ``dbstat`` table, divided by the number of
    batch values.
  * The same values written by raw ``sqlite3`` into the smallest honest
    table: ``(run, step, key_id, value REAL)`` WITHOUT ROWID, keyed by its
    natural key -- the baseline the issue calls "about 20 bytes".
  * The projection for a long run of 1,000,000 batches x 4 keys.

Run:  python benchmarks/storage.py [--samples 20000] [--epochs 3]
Goal: <= 30 bytes per batch value.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tracker import Store, TrackingCallback  # noqa: E402

GOAL = 30.0
BATCH_TABLES = ("batches", "batch_extras", "keys", "keysets")


def table_bytes(path: str, tables: tuple[str, ...]) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')").fetchall()
        names = [name for name, table in rows if table in tables]
        return sum(conn.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?", (n,)).fetchone()[0]
                   for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1234)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.random((args.samples, 1), dtype=np.float32)
    keras.utils.set_random_seed(1234)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(0.1), loss="mean_squared_error", metrics=["mean_absolute_error"])
    with tempfile.TemporaryDirectory(prefix="tracker-storage-") as tmp:
        ours = os.path.join(tmp, "ours.db")
        cb = TrackingCallback(ours, run_name="storage")
        model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0, callbacks=[cb])
        frame = Store(ours).batches("storage")
        keys = [c for c in frame.columns if c not in ("phase", "phase_seq", "epoch", "batch", "step", "elapsed")]
        values = len(frame) * len(keys)
        ours_bytes = table_bytes(ours, BATCH_TABLES)

        raw = os.path.join(tmp, "raw.db")
        with sqlite3.connect(raw) as conn:
            conn.execute("CREATE TABLE v (run INTEGER, step INTEGER, key_id INTEGER, value REAL, "
                         "PRIMARY KEY (run, step, key_id)) WITHOUT ROWID")
            conn.executemany("INSERT INTO v VALUES (1, ?, ?, ?)",
                             [(int(s), k, float(frame.iloc[i][key])) for i, s in enumerate(frame["step"])
                              for k, key in enumerate(keys)])
        raw_bytes = table_bytes(raw, ("v",))
    per_value, raw_per_value = ours_bytes / values, raw_bytes / values
    print(f"{len(frame):,} batches x {len(keys)} keys = {values:,} batch values")
    print(f"tracker (packed batch rows): {ours_bytes:,} bytes = {per_value:.1f} B/value (goal <= {GOAL:g})")
    print(f"raw sqlite3 (run, step, key_id, REAL) WITHOUT ROWID: {raw_bytes:,} bytes = {raw_per_value:.1f} B/value")
    print(f"ratio tracker/raw: {per_value / raw_per_value:.2f}; a 1,000,000-batch x 4-key run would take about "
          f"{per_value * 4e6 / 1e6:.0f} MB of batch data")
    print("GOAL MET" if per_value <= GOAL else "GOAL MISSED")


if __name__ == "__main__":
    main()
