"""Measure the tracking overhead of TrackingCallback on the Keras guide's model.

What it measures:
  * The guide's model -- ``Sequential([Input((784,)), Dense(1)])``, RMSprop(0.1),
    MSE loss, MAE metric -- fitted on seeded random float32 data (no download),
    batch size 32, 3 epochs, verbose=0.
  * A tracked fit (TrackingCallback, log_batches=True, a fresh SQLite file per
    run) against an untracked fit (callbacks=[]), in one process, in paired
    runs whose order alternates (tracked first, then untracked first) to cancel
    drift. One untimed warm-up fit of each comes first (tf.function tracing),
    and every fit gets a fresh model built from the same seed.
  * The median over pairs of the wall-time ratio tracked/untracked, and the
    time spent inside the callback's own ``on_*`` hooks as a percentage of the
    untracked fit time (a subclass wraps every hook with perf_counter). Also
    the per-batch hook cost, the synchronous flush times, and the rows read
    back from SQLite, checked against epochs * ceil(samples / batch_size).

Run:  python benchmarks/overhead.py [--pairs 5] [--samples 20000]
      [--epochs 3] [--batch-size 32]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tracker.record.callback import TrackingCallback  # noqa: E402

SEED = 1234
GOAL_PCT = 2.0

# Every on_* hook of keras.callbacks.Callback that TrackingCallback overrides.
HOOKS = sorted(
    name
    for name in dir(keras.callbacks.Callback)
    if name.startswith("on_")
    and getattr(TrackingCallback, name) is not getattr(keras.callbacks.Callback, name)
)


def _timed(name, method):
    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            dt = time.perf_counter() - t0
            self.hook_time[name] += dt
            self.hook_calls[name] += 1

    wrapper.__name__ = name
    return wrapper


class TimedTrackingCallback(TrackingCallback):
    """TrackingCallback with perf_counter accumulation around each overridden hook."""

    def __init__(self, *args, **kwargs):
        self.hook_time: dict[str, float] = defaultdict(float)
        self.hook_calls: dict[str, int] = defaultdict(int)
        self.sync_flushes: list[float] = []  # main-thread flushes, in order
        super().__init__(*args, **kwargs)

    def _flush(self) -> None:
        t0 = time.perf_counter()
        try:
            super()._flush()
        finally:
            self.sync_flushes.append(time.perf_counter() - t0)


for _name in HOOKS:
    setattr(TimedTrackingCallback, _name, _timed(_name, getattr(TrackingCallback, _name)))


def make_data(samples):
    rng = np.random.default_rng(SEED)
    x = rng.random((samples, 784), dtype=np.float32)
    y = rng.random((samples, 1), dtype=np.float32)
    return x, y


def make_model():
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=0.1),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


def fit(x, y, args, tmpdir=None, tag=""):
    """One fit on a fresh model; return (seconds, callback or None, db path or None)."""
    model = make_model()
    cb = db = None
    callbacks = []
    if tmpdir is not None:
        db = os.path.join(tmpdir, f"run-{tag}.db")
        cb = TimedTrackingCallback(db, run_name=f"overhead-{tag}", log_batches=True)
        callbacks = [cb]
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=callbacks)
    return time.perf_counter() - t0, cb, db


def count_rows(db):
    with sqlite3.connect(db) as conn:
        batches = conn.execute("SELECT count(*) FROM batches").fetchone()[0]
        values = conn.execute("SELECT count(*) FROM batch_values").fetchone()[0]
    return batches, values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    x, y = make_data(args.samples)
    n_batches = args.epochs * math.ceil(args.samples / args.batch_size)
    print(f"keras {keras.__version__} ({keras.backend.backend()}); {args.samples} samples, "
          f"batch {args.batch_size}, {args.epochs} epochs = {n_batches} train batches per fit")
    print(f"timed hooks: {', '.join(HOOKS)}")

    with tempfile.TemporaryDirectory(prefix="tracker-overhead-") as tmpdir:
        fit(x, y, args, tmpdir, "warmup")  # untimed warm-ups: tf.function tracing
        fit(x, y, args)

        ratios, hook_pcts, per_batch_us, flush_ms, final_ms = [], [], [], [], []
        totals: dict[str, float] = defaultdict(float)
        for i in range(args.pairs):
            order = ("tracked", "untracked") if i % 2 == 0 else ("untracked", "tracked")
            times = {}
            for variant in order:
                if variant == "tracked":
                    times[variant], cb, db = fit(x, y, args, tmpdir, str(i))
                else:
                    times[variant], _, _ = fit(x, y, args)
            batches, values = count_rows(db)
            assert batches == n_batches, f"pair {i}: {batches} batch rows, expected {n_batches}"
            hook = sum(cb.hook_time.values())
            ratio = times["tracked"] / times["untracked"]
            pct = 100.0 * hook / times["untracked"]
            calls = cb.hook_calls["on_train_batch_end"]
            per_batch_us.append(1e6 * cb.hook_time["on_train_batch_end"] / calls)
            flush_ms.append(1e3 * sum(cb.sync_flushes))
            final_ms.append(1e3 * cb.sync_flushes[-1])
            ratios.append(ratio)
            hook_pcts.append(pct)
            for name, secs in cb.hook_time.items():
                totals[name] += secs
            print(f"pair {i + 1} ({order[0]} first): tracked {times['tracked']:.3f}s, "
                  f"untracked {times['untracked']:.3f}s, ratio {ratio:.3f}; hooks {1e3 * hook:.1f} ms "
                  f"= {pct:.2f}%; rows: {batches} batches, {values} batch_values")
            print(f"    sync flushes: {len(cb.sync_flushes)} totalling {flush_ms[-1]:.1f} ms "
                  f"(final, at train end: {final_ms[-1]:.1f} ms; "
                  f"epoch ends: {', '.join(f'{1e3 * s:.1f}' for s in cb.sync_flushes[1:-1])} ms)")

    grand = sum(totals.values())
    print("hook time by method (all pairs):")
    for name, secs in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<22} {1e3 * secs:9.1f} ms  {100 * secs / grand:5.1f}%")
    print(f"per-batch hook cost (on_train_batch_end): median {statistics.median(per_batch_us):.1f} us/batch")
    print(f"synchronous flushes per fit: median {statistics.median(flush_ms):.1f} ms total, "
          f"final one median {statistics.median(final_ms):.1f} ms")
    ratio, pct = statistics.median(ratios), statistics.median(hook_pcts)
    print(f"overhead: tracked/untracked median ratio {ratio:.3f} over {args.pairs} pairs; "
          f"hook time {pct:.2f}% of the untracked fit (goal <= 2%)")
    print("GOAL MET" if pct <= GOAL_PCT else "GOAL MISSED")


if __name__ == "__main__":
    main()
