"""Measure ``tracker which`` on a 100 MB weights file (goal: identified in at most 3 s, wall time).

What it does:
  * records a ``Sequential([Input((5000,)), Dense(5000), Dense(10)])`` model
    (25,055,010 float32 parameters: 100.2 MB) trained 2 epochs on 32 seeded
    random samples, with ``TrackingCallback`` writing a temporary SQLite file
    and ``ModelCheckpoint`` saving ``.weights.h5`` each epoch; then saves the
    model as ``.keras`` and legacy ``.h5`` after the fit;
  * adds ``--runs`` (default 200) other recorded runs of small models, so the
    lookup is not in an almost empty database;
  * times ``tracker which FILE`` as a user runs it: a new Python process,
    wall clock from start to exit (imports, reading the file with h5py,
    hashing, the lookup and printing), median of ``--repeats`` (default 5),
    for each file kind; and ``Store.which`` in this process (warm).

Run:  python benchmarks/which.py [--runs 200] [--repeats 5]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tracker import Store, TrackingCallback  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="which-bench-")
    db = os.path.join(folder, "runs.db")
    rng = np.random.default_rng(0)

    small_x, small_y = rng.random((32, 8)).astype("float32"), rng.random(32).astype("float32")
    started = time.perf_counter()
    for i in range(args.runs):
        keras.utils.set_random_seed(i)
        small = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
        small.compile(optimizer="sgd", loss="mse")
        small.fit(small_x, small_y, epochs=2, verbose=0, callbacks=[TrackingCallback(db, log_batches=False)])
    print(f"{args.runs} small runs recorded in {time.perf_counter() - started:.1f} s")

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5000,)), keras.layers.Dense(5000), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="sparse_categorical_crossentropy")
    x, y = rng.random((32, 5000)).astype("float32"), rng.integers(0, 10, 32)
    save = keras.callbacks.ModelCheckpoint(os.path.join(folder, "e{epoch}.weights.h5"), save_weights_only=True)
    tracker = TrackingCallback(db, run_name="big")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[tracker, save])
    model.save(os.path.join(folder, "big.keras"))
    model.save(os.path.join(folder, "big.h5"))
    params = model.count_params()
    files = {"weights.h5": os.path.join(folder, "e2.weights.h5"), "keras": os.path.join(folder, "big.keras"),
             "legacy h5": os.path.join(folder, "big.h5")}
    print(f"model: {params:,} float32 parameters ({params * 4 / 1e6:.1f} MB)")

    store = Store(db)
    for kind, path in files.items():
        size = os.path.getsize(path) / 1e6
        walls = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "tracker.cli", "--db", db, "which", path, "--format", "csv"],
                                    capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            assert result.returncode == 0 and tracker.run_id in result.stdout, result.stderr
        t0 = time.perf_counter()
        found = store.which(path)
        warm = time.perf_counter() - t0
        assert list(found["run_id"]) == [tracker.run_id] and list(found["epoch"]) == [1]
        print(f"{kind:>10} ({size:.1f} MB): tracker which, wall: median {statistics.median(walls):.2f} s "
              f"(min {min(walls):.2f}, max {max(walls):.2f}); Store.which in process {warm:.2f} s (goal <= 3 s)")


if __name__ == "__main__":
    main()
