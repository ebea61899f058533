"""A million batches through the real callback: memory stays flat, the batches read back fast.

What it measures:
  * A synthetic feed through the real ``TrackingCallback``: its Keras hooks
    called in the order Keras calls them (train begin, then per epoch: epoch
    begin, ``--batches-per-epoch`` batch ends with Keras-like float logs of
    ``--keys`` keys, epoch end; train end), for ``--batches`` batches in all,
    against a tiny built model (so fingerprints and configs are real), into a
    fresh SQLite file. Nothing is sampled: log_batches=True.
  * The process's resident memory (RSS, from /proc) every 100,000 batches and
    its peak, to show that the tracker keeps no per-batch Python objects
    once they are written (the write queue is bounded and drained by the
    background writer).
  * The time of ``Store.batches(run)`` reading every batch back, in a fresh
    process, and the file's size.

Run:  python benchmarks/long_run.py [--batches 1000000] [--keys 4] [--batches-per-epoch 10000]
Goals: memory flat (the last sample within a few MB of the first after warm-up); read <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402

from tracker import TrackingCallback  # noqa: E402

READ = (
    "import sys, time\n"
    "from tracker import Store\n"
    "t0 = time.perf_counter(); store = Store(sys.argv[1]); frame = store.batches('long')\n"
    "print(len(frame), time.perf_counter() - t0, len(frame.columns))\n"
)


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--batches-per-epoch", type=int, default=10_000)
    args = parser.parse_args()
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    keys = ["loss", "mean_absolute_error", "accuracy", "auc", "precision", "recall"][: args.keys]
    with tempfile.TemporaryDirectory(prefix="tracker-long-") as tmp:
        db = os.path.join(tmp, "long.db")
        cb = TrackingCallback(db, run_name="long")
        cb.set_model(model)
        cb.set_params({"epochs": args.batches // args.batches_per_epoch, "steps": args.batches_per_epoch, "verbose": 0})
        samples: list[tuple[int, float]] = []
        t0 = time.perf_counter()
        cb.on_train_begin()
        done = 0
        epoch = 0
        while done < args.batches:
            cb.on_epoch_begin(epoch)
            for batch in range(args.batches_per_epoch):
                cb.on_train_batch_end(batch, {k: 1.0 / (done + i + 1) for i, k in enumerate(keys)})
                done += 1
                if done % 100_000 == 0:
                    samples.append((done, rss_mb()))
            cb.on_epoch_end(epoch, {k: 1.0 / (epoch + 1) for k in keys})
            epoch += 1
        cb.on_train_end({k: 0.5 for k in keys})
        feed = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = os.path.getsize(db) / 2**20
        out = subprocess.run([sys.executable, "-c", READ, db], capture_output=True, text=True, check=True).stdout.split()
    rows, read_s, columns = int(out[0]), float(out[1]), int(out[2])
    print(f"{done:,} batches x {len(keys)} keys through TrackingCallback in {feed:.1f} s "
          f"({done / feed:,.0f} batches/s); file {size:.0f} MB")
    print("RSS (MB) by batches fed: " + ", ".join(f"{n // 1000}k: {mb:.0f}" for n, mb in samples))
    first, last = samples[1][1] if len(samples) > 1 else samples[0][1], samples[-1][1]
    print(f"RSS after warm-up {first:.0f} MB, at the end {last:.0f} MB (growth {last - first:+.0f} MB); "
          f"peak RSS {peak:.0f} MB")
    print(f"Store.batches read {rows:,} rows x {columns} columns in {read_s:.2f} s (goal <= 3 s)")
    print("GOALS MET" if rows == done and read_s <= 3.0 and last - first < 20 else "GOALS MISSED")


if __name__ == "__main__":
    main()
