"""Measure what tracking costs a fit: hooks on the training thread, the writer thread's CPU, wall time.

What it measures:
  * The guide's model -- ``Sequential([Input((784,)), Dense(1)])``, RMSprop(0.1),
    MSE loss, MAE metric -- fitted on seeded random float32 data (no download),
    batch size 32, 3 epochs, verbose=0.
  * A tracked fit (TrackingCallback, log_batches=True, a fresh SQLite file per
    run) against an untracked fit (callbacks=[]), in one process, in paired
    runs whose order alternates to cancel drift, after one untimed warm-up fit
    of each (tf.function tracing); every fit gets a fresh model from one seed.
  * **Hooks**: the time spent inside the recorder on the training thread --
    every Keras hook of the callback and every event the Keras capture reports
    (the epoch writes, the synchronous flushes) -- timed with perf_counter.
  * **Writer**: the CPU time of the background writer thread (time.thread_time
    inside the thread): encoding and inserting, which competes with training
    for the interpreter.
  * **Wall**: the median over pairs of tracked / untracked fit time.
  * **The timer's own cost**: one more fit with every timed recorder method
    replaced by an empty one, timed the same way; its cost per call (the call
    through the timing wrapper and the two clock reads, about 1 us here) is
    subtracted from the hook time, per call. Both figures are printed.
  Hooks and writer are given as a percentage of the untracked fit. Goals:
  hooks <= 1%, hooks + writer <= 3%. The rows read back are checked.

  With ``--optuna`` every fit, tracked or not, runs as the objective of an Optuna trial (importing
  optuna installs the tracker's integration, so the tracked run is the trial's): the integrations
  add nothing per batch, and this shows it.

Run:  python benchmarks/overhead.py [--pairs 7] [--samples 20000] [--epochs 3] [--batch-size 32] [--optuna]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections import defaultdict
from typing import Any

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tracker import Store  # noqa: E402
from tracker.record.callback import TrackingCallback  # noqa: E402
from tracker.record.recorder import Recorder  # noqa: E402

SEED = 1234
GOALS = {"hooks": 1.0, "total": 3.0}
# Every method through which Keras (hooks) or the capture (events) reaches the recorder.
TIMED = [
    "train_begin", "epoch_begin", "train_batch_begin", "train_batch_end", "epoch_end", "train_end", "test_begin", "test_batch_end",
    "test_end", "predict_begin", "predict_batch_end", "predict_end", "event_begin", "event_end", "call_returned",
    "call_failed", "lr_set", "stop_requested", "weights_setting", "weights_set",
]


class Clock:
    """Accumulates the time spent in the recorder's methods, per method."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.active: Recorder | None = None


CLOCK = Clock()


def _timed(name: str, method: Any) -> Any:
    def wrapper(self: Recorder, *args: Any, **kwargs: Any) -> Any:
        if self is not CLOCK.active:
            return method(self, *args, **kwargs)
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            CLOCK.seconds[name] += time.perf_counter() - t0
            CLOCK.calls[name] += 1

    wrapper.__name__ = name
    return wrapper


REAL = {name: _timed(name, getattr(Recorder, name)) for name in TIMED}
EMPTY = {name: _timed(name, lambda self, *args, **kwargs: None) for name in TIMED}


def use(methods: dict[str, Any]) -> None:
    """Install the timed recorder methods: the real ones, or empty ones (to time the timer itself)."""
    for name, method in methods.items():
        setattr(Recorder, name, method)


use(REAL)


def make_data(samples: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x = rng.random((samples, 784), dtype=np.float32)
    y = rng.random((samples, 1), dtype=np.float32)
    return x, y


def make_model() -> keras.Model:
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1), loss="mean_squared_error",
                  metrics=["mean_absolute_error"])
    return model


def fit(x: np.ndarray, y: np.ndarray, args: argparse.Namespace, db: str | None = None) -> tuple[float, Any]:
    """One fit on a fresh model (with --optuna, inside an Optuna trial); return (seconds, callback or None)."""
    if not args.optuna:
        return _fit(x, y, args, db)
    import optuna  # importing it installs the tracker's Optuna integration

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    found: dict[str, tuple[float, Any]] = {}

    def objective(trial: Any) -> float:
        trial.suggest_float("lr", 0.1, 0.1)
        found["fit"] = _fit(x, y, args, db)
        return 0.0

    optuna.create_study(study_name="overhead").optimize(objective, n_trials=1)
    return found["fit"]


def _fit(x: np.ndarray, y: np.ndarray, args: argparse.Namespace, db: str | None = None) -> tuple[float, Any]:
    model = make_model()
    cb = None
    if db is not None:
        cb = TrackingCallback(db, run_name="overhead", log_batches=True)
        CLOCK.active = cb.capture_listener
        CLOCK.seconds.clear()
        CLOCK.calls.clear()
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[cb] if cb else [])
    return time.perf_counter() - t0, cb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--optuna", action="store_true",
                        help="fit inside an Optuna trial (the tracker's Optuna integration active), both variants")
    args = parser.parse_args()

    x, y = make_data(args.samples)
    n_batches = args.epochs * math.ceil(args.samples / args.batch_size)
    print(f"keras {keras.__version__} ({keras.backend.backend()}){' in Optuna trials' if args.optuna else ''}; "
          f"{args.samples} samples, batch {args.batch_size}, "
          f"{args.epochs} epochs = {n_batches} train batches per fit; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="tracker-overhead-") as tmpdir:
        fit(x, y, args, os.path.join(tmpdir, "warmup.db"))
        fit(x, y, args)
        # The timer's own cost: the same fit with every timed recorder method
        # empty, so what is timed is the call and the timer alone.
        use(EMPTY)
        fit(x, y, args, os.path.join(tmpdir, "empty.db"))
        timer_us = 1e6 * CLOCK.seconds["train_batch_end"] / CLOCK.calls["train_batch_end"]
        use(REAL)
        print(f"timer's own cost, timed on empty hooks: {timer_us:.2f} us a call")
        ratios, hooks, net_hooks, writers, per_batch = [], [], [], [], []
        for i in range(args.pairs):
            order = ("tracked", "untracked") if i % 2 == 0 else ("untracked", "tracked")
            times: dict[str, float] = {}
            for variant in order:
                db = os.path.join(tmpdir, f"run-{i}.db") if variant == "tracked" else None
                times[variant], cb = fit(x, y, args, db)
                if cb is not None:
                    tracked_cb = cb
            store = Store(os.path.join(tmpdir, f"run-{i}.db"))
            rows = len(store.batches("overhead"))
            assert rows == n_batches, f"pair {i}: {rows} batch rows, expected {n_batches}"
            if args.optuna:  # the run is the trial's: the integration was at work
                assert store.run("overhead")["run"].get("trial") == "0", "the run is not the Optuna trial's"
            hook = sum(CLOCK.seconds.values())
            writer_cpu = tracked_cb.capture_listener.writer.thread_cpu
            base = times["untracked"]
            ratios.append(times["tracked"] / base)
            hooks.append(100 * hook / base)
            net_hooks.append(100 * (hook - 1e-6 * timer_us * sum(CLOCK.calls.values())) / base)
            writers.append(100 * writer_cpu / base)
            per_batch.append(1e6 * CLOCK.seconds["train_batch_end"] / CLOCK.calls["train_batch_end"])
            print(f"pair {i + 1} ({order[0]} first): tracked {times['tracked']:.3f} s, untracked {base:.3f} s, "
                  f"ratio {ratios[-1]:.3f}; hooks {1e3 * hook:.1f} ms = {hooks[-1]:.2f}%, "
                  f"writer CPU {1e3 * writer_cpu:.1f} ms = {writers[-1]:.2f}%; {rows} batch rows")
    print("recorder time by method (last pair):")
    for name, secs in sorted(CLOCK.seconds.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<18} {1e3 * secs:8.1f} ms over {CLOCK.calls[name]} calls")
    hook_pct, writer_pct = statistics.median(net_hooks), statistics.median(writers)
    total = statistics.median(h + w for h, w in zip(net_hooks, writers))
    print(f"per-batch hook: median {statistics.median(per_batch):.1f} us as timed, "
          f"{statistics.median(per_batch) - timer_us:.1f} us less the timer's own {timer_us:.1f} us")
    print(f"hooks as timed (with the timer's own cost): {statistics.median(hooks):.2f}%; "
          f"with the writer: {statistics.median(h + w for h, w in zip(hooks, writers)):.2f}%")
    print(f"overhead over {args.pairs} pairs (medians, less the timer's own cost): hooks {hook_pct:.2f}% "
          f"(goal <= {GOALS['hooks']:g}%), writer thread CPU {writer_pct:.2f}%, hooks + writer {total:.2f}% "
          f"(goal <= {GOALS['total']:g}%), wall ratio tracked/untracked {statistics.median(ratios):.3f}")
    met = hook_pct <= GOALS["hooks"] and total <= GOALS["total"]
    print("GOALS MET" if met else "GOALS MISSED")


if __name__ == "__main__":
    main()
