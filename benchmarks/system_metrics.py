"""Measure what system metrics cost a fit: the sampler thread's CPU, and the training thread's share.

What it measures:
  * The guide's model -- ``Sequential([Input((784,)), Dense(1)])``, RMSprop(0.1),
    MSE loss, MAE metric -- fitted on seeded random float32 data (no download),
    batch size 32, verbose=0, tracked into a fresh SQLite file per fit.
  * The same fit with ``system_metrics=False`` and with system metrics on
    (``system_interval`` as given: the default 10 s, and a tenth of it), in one
    process, in paired runs whose order alternates to cancel drift, after one
    untimed warm-up fit of each.
  * **Sampler**: the CPU time of the sampling thread (``time.thread_time``
    inside it: psutil's reads, NVML's when there is a GPU, building each
    sample), as a percentage of the process's CPU time during that fit
    (``time.process_time``, every thread). Goal: <= 0.2 %.
  * **Training thread**: the time the training thread spends starting the
    sampler, asking for each epoch's sample and stopping it (it waits for the
    last sample), timed with perf_counter around those calls; as a
    percentage of the fit's wall time.
  * **Side by side**: the median over pairs of the process CPU time of the fit
    with system metrics over the one without. The fit's own variation is
    larger than the sampler's cost, so this ratio mostly shows that noise; the
    thread's own CPU time is the measure.
  The samples read back are counted.

Run:  python benchmarks/system_metrics.py [--pairs 5] [--samples 60000] [--epochs 4] [--interval 10]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tracker import Store, TrackingCallback  # noqa: E402
from tracker.record.system import SystemSampler  # noqa: E402

SEED = 1234
GOAL = 0.2  # percent of the fit's CPU time


class TrainingThreadClock:
    """Times the sampler's methods the training thread calls (start, epoch_ended, stop)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._originals = {name: getattr(SystemSampler, name) for name in ("start", "epoch_ended", "stop")}

    def __enter__(self) -> TrainingThreadClock:
        for name, original in self._originals.items():
            def timed(sampler: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                began = time.perf_counter()
                try:
                    return _original(sampler, *args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - began
            setattr(SystemSampler, name, timed)
        return self

    def __exit__(self, *exc: Any) -> None:
        for name, original in self._originals.items():
            setattr(SystemSampler, name, original)


def model() -> keras.Model:
    keras.utils.set_random_seed(SEED)
    m = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.RMSprop(0.1), loss="mean_squared_error", metrics=["mean_absolute_error"])
    return m


def one_fit(folder: str, x: np.ndarray, y: np.ndarray, epochs: int, interval: float | None) -> dict[str, float]:
    db = os.path.join(folder, f"{time.perf_counter_ns()}.db")
    cb = TrackingCallback(db, system_metrics=interval is not None, system_interval=interval or 10.0)
    m = model()
    with TrainingThreadClock() as clock:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        m.fit(x, y, batch_size=32, epochs=epochs, callbacks=[cb], verbose=0)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sampler = cb.capture_listener.ledger.system
    samples = len(Store(db).system(cb.run_id))
    return {"cpu": cpu, "wall": wall, "sampler": sampler.thread_cpu if sampler else 0.0, "training": clock.seconds,
            "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--interval", type=float, default=10.0, help="system_interval of the sampled fits")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.random((args.samples, 1), dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        one_fit(folder, x, y, 1, None)  # warm-up: tracing
        one_fit(folder, x, y, 1, args.interval)
        off, on = [], []
        for i in range(args.pairs):
            order = (None, args.interval) if i % 2 == 0 else (args.interval, None)
            for interval in order:
                (off if interval is None else on).append(one_fit(folder, x, y, args.epochs, interval))
    median = statistics.median
    fit_cpu, fit_wall = median(r["cpu"] for r in on), median(r["wall"] for r in on)
    sampler = [100 * r["sampler"] / r["cpu"] for r in on]
    training = [100 * r["training"] / r["wall"] for r in on]
    print(f"system_interval={args.interval:g} s, {args.pairs} pairs of fits of {args.samples} samples x {args.epochs} "
          f"epochs (median fit: {fit_wall:.1f} s wall, {fit_cpu:.1f} s CPU), "
          f"{median(r['samples'] for r in on):.0f} samples per fit")
    print(f"  sampler thread CPU / fit CPU:     {median(sampler):.4f} %  (max {max(sampler):.4f} %; goal <= {GOAL} %)")
    print(f"  training thread / fit wall:       {median(training):.4f} %  "
          f"({median(r['training'] for r in on) * 1e3:.2f} ms per fit)")
    ratio = median(a["cpu"] / b["cpu"] for a, b in zip(on, off))
    print(f"  side by side, fit CPU on / off:   {ratio:.4f}  (the fit's own noise; see the docstring)")


if __name__ == "__main__":
    main()
