"""Measure the cost of the epoch-end weight fingerprint on a ~10M-parameter model.

What it measures (one process, side by side):
  * A ``Sequential([Input((784,)), Dense(2048, relu) x3, Dense(10)])`` model
    (10,020,874 parameters), Adam, sparse categorical cross-entropy, fitted on
    seeded random data (no download): 2,048 samples, batch 64 (32 steps per
    epoch), 3 epochs, verbose=0, with ``TrackingCallback(log_batches=True)``
    writing to a temporary SQLite file. An untimed 1-epoch warm-up fit comes
    first (tf.function tracing).
  * (a) the median wall time of one epoch, on_epoch_begin to on_epoch_end of a
    clock callback listed after the tracker (so it includes the tracker's
    epoch-end work), first epoch excluded;
  * (b) the median time of ``fingerprint_model(model)`` called directly, and
    split into ``model.get_weights()`` and ``fingerprint_arrays`` (hashing);
  * (c) the time of the tracker's own ``on_epoch_end`` (fingerprint plus the
    synchronous DB flush), via a timing subclass;
  * the per-batch hook cost (``on_train_batch_begin``/``_end``) on this model
    and on a tiny ``Dense(10)`` model: it should not depend on the model size.

Run:  python benchmarks/fingerprint.py [--samples 2048] [--batch-size 64]
      [--epochs 3] [--repeats 10]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tracker.record.fingerprint import fingerprint_arrays, fingerprint_model  # noqa: E402
from tracker.record.callback import TrackingCallback  # noqa: E402

SEED = 1234
GOAL_PCT = 5.0
median = statistics.median


class TimedTracker(TrackingCallback):
    """TrackingCallback that records how long some of its hooks take."""

    def __init__(self, *args, **kwargs):
        self.times: dict[str, list[float]] = {"epoch_end": [], "flush": [], "batch_begin": [], "batch_end": []}
        self._in_epoch_end = False
        super().__init__(*args, **kwargs)

    def _flush(self):
        t0 = time.perf_counter()
        super()._flush()
        if self._in_epoch_end:
            self.times["flush"].append(time.perf_counter() - t0)

    def on_epoch_end(self, epoch, logs=None):
        self._in_epoch_end, t0 = True, time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.times["epoch_end"].append(time.perf_counter() - t0)
        self._in_epoch_end = False

    def on_train_batch_begin(self, batch, logs=None):
        t0 = time.perf_counter()
        super().on_train_batch_begin(batch, logs)
        self.times["batch_begin"].append(time.perf_counter() - t0)

    def on_train_batch_end(self, batch, logs=None):
        t0 = time.perf_counter()
        super().on_train_batch_end(batch, logs)
        self.times["batch_end"].append(time.perf_counter() - t0)


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch; list it after the tracker to include its epoch end."""

    def __init__(self):
        super().__init__()
        self.epochs: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.perf_counter() - self._t0)


def make_model(hidden):
    keras.utils.set_random_seed(SEED)
    layers = [keras.layers.Dense(hidden, activation="relu") for _ in range(3)] if hidden else []
    model = keras.Sequential([keras.Input((784,)), *layers, keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def tracked_fit(model, x, y, args, db, epochs):
    tracker, clock = TimedTracker(db, log_batches=True), EpochClock()
    model.fit(x, y, batch_size=args.batch_size, epochs=epochs, verbose=0, callbacks=[tracker, clock])
    tracker.close()
    return tracker, clock


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (the first is excluded); >= 2")
    parser.add_argument("--repeats", type=int, default=10, help="direct fingerprint repetitions")
    args = parser.parse_args()
    args.epochs = max(args.epochs, 2)

    rng = np.random.default_rng(SEED)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.integers(0, 10, size=(args.samples,))
    steps = -(-args.samples // args.batch_size)
    print(f"keras {keras.__version__} ({keras.backend.backend()}); {args.samples} samples, batch "
          f"{args.batch_size} ({steps} steps/epoch), {args.epochs} epochs (first excluded)")

    with tempfile.TemporaryDirectory(prefix="tracker-fingerprint-") as tmp:
        model = make_model(2048)
        params = model.count_params()
        nbytes = sum(w.nbytes for w in model.get_weights())
        print(f"model: {params:,} params, {len(model.weights)} weight arrays, {nbytes / 2**20:.1f} MiB")
        tracked_fit(model, x, y, args, os.path.join(tmp, "warmup.db"), 1)  # untimed warm-up
        db = os.path.join(tmp, "big.db")
        tracker, clock = tracked_fit(model, x, y, args, db, args.epochs)
        epoch_s = median(clock.epochs[1:])
        print("(a) epoch wall times: " + ", ".join(f"{t:.3f}" for t in clock.epochs)
              + f" s; median without the first: {epoch_s:.3f} s")

        total, get, hsh = [], [], []
        for _ in range(args.repeats):
            t0, fp = time.perf_counter(), fingerprint_model(model)
            t1, arrays = time.perf_counter(), model.get_weights()
            t2, _ = time.perf_counter(), fingerprint_arrays(arrays)
            t3 = time.perf_counter()
            total.append(t1 - t0), get.append(t2 - t1), hsh.append(t3 - t2)
        fp_ms, get_ms, hash_ms = 1e3 * median(total), 1e3 * median(get), 1e3 * median(hsh)
        print(f"(b) fingerprint_model, median of {args.repeats}: {fp_ms:.1f} ms "
              f"(min {1e3 * min(total):.1f}, max {1e3 * max(total):.1f}); get_weights {get_ms:.1f} ms, "
              f"hash {hash_ms:.1f} ms ({nbytes / 2**20 / (hash_ms / 1e3):.0f} MiB/s)")
        with sqlite3.connect(db) as conn:
            stored = [r[0] for r in conn.execute("SELECT fingerprint FROM epochs ORDER BY epoch")]
        print(f"    stored epoch fingerprints: {len(stored)}, last matches the model's: {stored[-1:] == [fp]}")

        hook = [1e3 * t for t in tracker.times["epoch_end"]]
        flush = [1e3 * t for t in tracker.times["flush"]]
        print("(c) tracker on_epoch_end: " + ", ".join(f"{t:.1f}" for t in hook)
              + f" ms (median {median(hook):.1f} ms = {median(hook) / 10 / epoch_s:.2f}% of the epoch); "
              + ("of which sync flush: " + ", ".join(f"{t:.1f}" for t in flush) + " ms" if flush
                 else "no synchronous flush (the background writer writes the epoch)"))

        big_begin, big_end = (1e6 * median(tracker.times[k]) for k in ("batch_begin", "batch_end"))
        tiny = make_model(0)
        tracked_fit(tiny, x, y, args, os.path.join(tmp, "tiny-warmup.db"), 1)
        small, _ = tracked_fit(tiny, x, y, args, os.path.join(tmp, "tiny.db"), args.epochs)
        tiny_begin, tiny_end = (1e6 * median(small.times[k]) for k in ("batch_begin", "batch_end"))
        print(f"per-batch hooks (median, {len(tracker.times['batch_end'])} batches): "
              f"{params:,}-param model: begin {big_begin:.1f} us, end {big_end:.1f} us; "
              f"{tiny.count_params():,}-param model: begin {tiny_begin:.1f} us, end {tiny_end:.1f} us")
        same = big_end < max(10 * tiny_end, 50.0)
        print(f"    per-batch cost proportional to model size: {'NO' if same else 'yes'} "
              f"({params / tiny.count_params():,.0f}x the params, {big_end / tiny_end:.1f}x the tiny model's "
              "on_train_batch_end: the hook does no per-parameter work; a big model's steps leave the CPU "
              "caches cold for it)")

    pct = fp_ms / 10 / epoch_s
    print(f"fingerprint cost: {fp_ms:.1f} ms = {pct:.2f}% of the {epoch_s:.3f} s epoch")
    print(f"fingerprint: {params:,} params; {fp_ms:.1f} ms per fingerprint (get_weights {get_ms:.1f} ms "
          f"+ hash {hash_ms:.1f} ms) = {pct:.1f}% of a {epoch_s:.2f} s epoch (goal <= 5%); "
          "per-batch cost: none (fingerprints are taken at epoch end only)")
    print("GOAL MET" if pct <= GOAL_PCT else "GOAL MISSED")


if __name__ == "__main__":
    main()
