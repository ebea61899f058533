"""Measure what recording costs a Ray Tune sweep, and that concurrent trials on the server lose nothing.

What it measures, in one run, on a local Ray cluster (``ray.init(num_cpus=2)``, the driver imports
``tracker`` as a user's would):
  a. A ``--trials``-trial sweep (default 32; FIFO, so every trial trains all its epochs;
     ``reuse_actors=True``, two trials at a time) of a small dense model -- ``Input(32)``,
     ``Dense(64, relu)``, ``Dense(1)``, Adam, MSE, MAE metric -- on seeded random float32 data,
     ``--batches`` batches (default 200) of 32 x ``--epochs`` epochs (default 3), ``tune.report`` in a
     callback at each epoch end. The same sweep with ``tracker.autolog(db)`` in the trainable (every
     batch logged, the default) and without it, side by side, for a fresh SQLite file and a fresh
     PostgreSQL database, in ``--pairs`` pairs (default 3) whose order alternates (untracked first in
     the first pair, tracked first in the second, ...); each ratio is the median over pairs:
       * **wall**: ``Tuner.fit()`` wall time, tracked / untracked;
       * **batch**: inside each trial, a timing callback listed first takes the time from one
         ``on_train_batch_begin`` to the next (a whole batch: the step and every callback's hooks,
         the tracker's included); the trial's median, then the median over trials, tracked /
         untracked. **epoch/batch**: the epoch's time (epochs after the first, which traces the
         step) over its batches, the same way: unlike the median batch it counts the slow batches
         too (a batch waiting on the writer thread, the epoch's first batch). Goal (the project's):
         batch <= 1.03. The database server runs on the same cores as the trials.
     The tracked sweeps' rows are counted: one run per trial, every epoch and batch.
  b. ``--concurrent`` trials (default 16) at once (``tune.with_resources``: 2 / N CPUs each, one
     actor each) writing to a fresh PostgreSQL database with ``tracker.autolog(db)``: the runs, epochs
     and batches in the database against the trials' own counts, each epoch's loss bit for bit as the
     trial saw it, and how many trials were training at the same time (from their own clocks).

The PostgreSQL databases (``bench_ray_<pid>_<random>``) and the SQLite file are removed at the end.

``--api class`` runs the same trials as a class trainable (``tune.Trainable``: one epoch per ``step``,
``fit(initial_epoch=i, epochs=i + 1)``, its metrics returned): each step's fit continues the trial's run.

Run:  python benchmarks/ray_sweep.py [--trials 32] [--epochs 3] [--batches 200] [--pairs 3] [--concurrent 16]
          [--api function|class] [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

REPO = Path(__file__).resolve().parent.parent
GOAL = 1.03
BATCH_SIZE = 32


class Timings:
    """What a trial measures of itself: each whole batch (one ``on_train_batch_begin`` to the next,
    within an epoch), each epoch's time over its batches (epochs after the first), each epoch's loss."""

    def __init__(self, batches: int) -> None:
        self.batches, self.began, self.seen = batches, time.time(), 0
        self.periods: list[float] = []
        self.per_batch: list[float] = []
        self.losses: list[int] = []

    def callback(self) -> Any:
        """The timing callback, to list first."""
        import keras

        timings = self

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch_start, self.last = time.perf_counter(), None

            def on_train_batch_begin(self, batch, logs=None):
                now = time.perf_counter()
                if self.last is not None:
                    timings.periods.append(now - self.last)
                self.last = now
                timings.seen += 1

            def on_epoch_end(self, epoch, logs=None):
                if epoch > 0:
                    timings.per_batch.append((time.perf_counter() - self.epoch_start) / timings.batches)

        return Timer()

    def report(self, loss: float) -> dict:
        """What the trial reports at an epoch's end whose loss is ``loss``."""
        import numpy as np

        self.losses.append(struct.unpack("<q", struct.pack("<d", float(loss)))[0])
        return {"score": float(loss), "batch_ms": 1e3 * float(np.median(self.periods)),
                "epoch_batch_ms": 1e3 * float(np.median(self.per_batch)) if self.per_batch else float("nan"),
                "batches_seen": self.seen, "loss_bits": list(self.losses), "began": self.began, "ended": time.time()}


def model_and_data(config: dict, batches: int) -> tuple[Any, Any, Any]:
    """The trial's model, compiled, and its seeded data."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(int(config["seed"]))
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(config["lr"]), loss="mse", metrics=["mean_absolute_error"])
    rng = np.random.default_rng(int(config["seed"]))
    x = rng.normal(size=(batches * BATCH_SIZE, 32)).astype("float32")
    y = (x[:, :4].sum(axis=1, keepdims=True) + 0.1 * rng.normal(size=(len(x), 1))).astype("float32")
    return model, x, y


def trainable(config: dict, db: str | None = None, epochs: int = 3, batches: int = 20) -> None:
    """One trial: a small dense fit, timed from inside, reporting ``score`` at each epoch end."""
    import keras
    from ray import tune

    import tracker

    if db is not None:
        tracker.autolog(db)
    timings = Timings(batches)
    model, x, y = model_and_data(config, batches)

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tune.report(timings.report(logs["loss"]))

    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, verbose=0, shuffle=False,
              callbacks=[timings.callback(), Report()])


def step_trainable() -> Any:
    """The same trial as ``trainable``, as a class trainable (``--api class``): one epoch per ``step``."""
    from ray import tune

    class Steps(tune.Trainable):
        def setup(self, config: dict, db: str | None = None, epochs: int = 3, batches: int = 20) -> None:
            import tracker

            if db is not None:
                tracker.autolog(db)
            self.epochs, self.batches = epochs, batches
            self.reset_config(config)

        def reset_config(self, new_config: dict) -> bool:
            self.timings = Timings(self.batches)
            self.model, self.x, self.y = model_and_data(new_config, self.batches)
            return True

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            return None  # Ray saves at the trial's end; nothing to keep here

        def load_checkpoint(self, checkpoint: Any) -> None:
            pass

        def step(self) -> dict:
            epoch = self.iteration
            history = self.model.fit(self.x, self.y, batch_size=BATCH_SIZE, initial_epoch=epoch, epochs=epoch + 1,
                                     verbose=0, shuffle=False, callbacks=[self.timings.callback()])
            return {**self.timings.report(history.history["loss"][-1]), "done": epoch + 1 >= self.epochs}

    return Steps


def machine() -> str:
    model = "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({model})"


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def postgres_database(server: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from tracker.db.engine import dispose_engines
    from tracker.db.migrate import open_database

    base = make_url(server)
    name = f"bench_ray_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    open_database(url)  # migrated before the trials start, as a team server is
    dispose_engines(url)

    def drop() -> None:
        dispose_engines(url)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return url, drop


def sweep(name: str, db: str | None, trials: int, args: argparse.Namespace, storage: str, *,
          concurrent: int | None = None) -> tuple[float, list[Any]]:
    """Run one sweep; its ``Tuner.fit()`` wall time and its results."""
    from ray import tune

    fn = tune.with_parameters(step_trainable() if args.api == "class" else trainable, db=db, epochs=args.epochs,
                              batches=args.batches)
    if concurrent is not None:
        fn = tune.with_resources(fn, {"cpu": 2 / concurrent})
    space = {"lr": tune.grid_search([10 ** (-1 - 2 * i / max(trials - 1, 1)) for i in range(trials)]),
             "seed": 7}
    tuner = tune.Tuner(fn, param_space=space,
                       tune_config=tune.TuneConfig(metric="score", mode="min", reuse_actors=concurrent is None),
                       run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # Ray's tables of each sweep
        results = tuner.fit()
    wall = time.perf_counter() - started
    if results.errors:
        raise RuntimeError(f"sweep {name}: {len(results.errors)} trials failed: {results.errors[0]}")
    return wall, list(results)


def counts(db: str, experiment: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from tracker.db.engine import resolve_url

    engine = create_engine(resolve_url(db), poolclass=NullPool)
    joined = "FROM runs r JOIN experiments x ON x.id = r.experiment_id JOIN phases p ON p.run_id = r.id"
    try:
        with engine.connect() as conn:
            q = lambda s: conn.execute(text(s), {"e": experiment}).scalar()
            return {
                "runs": q("SELECT count(*) FROM runs r JOIN experiments x ON x.id = r.experiment_id WHERE x.name = :e"),
                "finished": q("SELECT count(*) FROM runs r JOIN experiments x ON x.id = r.experiment_id "
                              "WHERE x.name = :e AND r.status = 'finished'"),
                "epochs": q(f"SELECT count(*) {joined} JOIN epochs ep ON ep.phase_id = p.id WHERE x.name = :e"),
                "batches": q(f"SELECT count(*) {joined} JOIN batches b ON b.phase_id = p.id "
                             "WHERE x.name = :e AND p.kind = 'fit'"),
            }
    finally:
        engine.dispose()


def stored_losses(db: str, experiment: str) -> dict[str, list[int]]:
    """{trial id: each epoch's loss as IEEE-754 bits}, as stored."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from tracker.db.engine import resolve_url

    engine = create_engine(resolve_url(db), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("""
                SELECT t.trial, v.value, v.bits FROM runs r JOIN experiments x ON x.id = r.experiment_id
                JOIN trials t ON t.run_id = r.id JOIN phases p ON p.run_id = r.id
                JOIN epochs ep ON ep.phase_id = p.id JOIN epoch_values v ON v.epoch_id = ep.id
                JOIN keys k ON k.id = v.key_id WHERE x.name = :e AND k.name = 'loss' ORDER BY t.trial, p.seq, ep.epoch
            """), {"e": experiment}).all()
    finally:
        engine.dispose()
    out: dict[str, list[int]] = {}
    for trial, value, raw in rows:
        out.setdefault(trial, []).append(raw if raw is not None else struct.unpack("<q", struct.pack("<d", value))[0])
    return out


def medians(results: list[Any], key: str) -> float:
    return statistics.median(r.metrics[key] for r in results)


def max_overlap(results: list[Any]) -> int:
    events = sorted([(r.metrics["began"], 1) for r in results] + [(r.metrics["ended"], -1) for r in results])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--api", choices=("function", "class"), default="function")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    import ray

    import tracker  # noqa: F401 - the driver-side hook, as a user's driver has it

    logging.getLogger("ray").setLevel(logging.WARNING)

    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    drops = []
    began = time.perf_counter()
    print(f"{machine()}; load average before: {load()}")
    print(f"a. {args.trials} trials x {args.epochs} epochs x {args.batches} batches of {BATCH_SIZE}, "
          f"2 at a time (FIFO, reuse_actors), {args.api} trainables; b. {args.concurrent} trials at once on "
          "PostgreSQL")
    env = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), str(REPO)]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        sqlite = str(tmp / "runs.db")
        pg, drop = postgres_database(args.server)
        drops.append(drop)
        sweep("warm-up", None, 2, args, str(tmp / "ray"))  # Ray's and the workers' first start, untimed
        rows = []
        for backend, db in (("SQLite", sqlite), ("PostgreSQL", pg)):
            pairs = []  # (plain wall, tracked wall, plain batch, tracked batch, plain epoch/batch, tracked e/b)
            found, seen_batches = {}, 0
            expected = {"runs": args.trials, "finished": args.trials, "epochs": args.trials * args.epochs,
                        "batches": args.trials * args.epochs * args.batches}
            for i in range(args.pairs):
                arms = {}
                # The order alternates from pair to pair, to cancel drift (the load, Ray's own state).
                for arm in (("plain", "tracked") if i % 2 == 0 else ("tracked", "plain")):
                    name = f"{arm}-{backend}-{i}"
                    arms[arm] = sweep(name, db if arm == "tracked" else None, args.trials, args, str(tmp / "ray"))
                    if arm == "tracked":
                        count = counts(db, name)
                        seen = sum(r.metrics["batches_seen"] for r in arms[arm][1])
                        if i == 0 or count != expected or seen != expected["batches"]:
                            found, seen_batches = count, seen
                (pw, plain), (tw, tracked) = arms["plain"], arms["tracked"]
                pairs.append((pw, tw, medians(plain, "batch_ms"), medians(tracked, "batch_ms"),
                              medians(plain, "epoch_batch_ms"), medians(tracked, "epoch_batch_ms")))
            rows.append((backend, pairs, found, expected, seen_batches))

        pg2, drop2 = postgres_database(args.server)
        drops.append(drop2)
        wall, results = sweep("concurrent", pg2, args.concurrent, args, str(tmp / "ray"), concurrent=args.concurrent)
        b_found = counts(pg2, "concurrent")
        b_expected = {"runs": len(results), "finished": len(results), "epochs": len(results) * args.epochs,
                      "batches": sum(r.metrics["batches_seen"] for r in results)}
        stored = stored_losses(pg2, "concurrent")
        same = sum(stored.get(r.metrics["trial_id"]) == r.metrics["loss_bits"] for r in results)
        overlap = max_overlap(results)
    finally:
        ray.shutdown()
        for drop in drops:
            drop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)

    print(f"load average after: {load()}; the whole benchmark took {time.perf_counter() - began:.0f} s")
    print("a. tracked (tracker.autolog, every batch logged) / untracked, the same sweep side by side:")
    verdicts = []
    for backend, pairs, found, expected, seen in rows:
        for pw, tw, pb, tb, pe, te in pairs:
            print(f"  {backend}: wall {tw:.1f} s / {pw:.1f} s = {tw / pw:.3f}; batch (median of trial medians) "
                  f"{tb:.3f} ms / {pb:.3f} ms = {tb / pb:.3f}; epoch/batch {te:.3f} ms / {pe:.3f} ms = {te / pe:.3f}")
        ratio = {k: statistics.median(p[j + 1] / p[j] for p in pairs) for k, j in (("wall", 0), ("batch", 2), ("epoch", 4))}
        spread = [p[3] / p[2] for p in pairs]
        print(f"  {backend}, median of {len(pairs)} pairs: wall {ratio['wall']:.3f}; batch {ratio['batch']:.3f} "
              f"(pairs {min(spread):.3f} to {max(spread):.3f}); epoch/batch {ratio['epoch']:.3f}")
        ok = found == expected and seen == expected["batches"]
        print(f"    rows of every tracked sweep: {found} (expected {expected}; the trials saw {seen} batches) "
              f"{'nothing lost' if ok else 'MISMATCH'}")
        verdicts.append(f"{'GOAL MET' if ratio['batch'] <= GOAL else 'GOAL MISSED'}: {backend} per-batch ratio "
                        f"{ratio['batch']:.3f}, median of {len(pairs)} pairs (goal <= {GOAL})")
    ok = b_found == b_expected and same == len(results)
    print(f"b. {len(results)} trials on PostgreSQL, up to {overlap} training at the same time, {wall:.1f} s: "
          f"rows {b_found} (expected {b_expected}); epoch losses bit for bit: {same}/{len(results)} trials; "
          f"{'NOTHING LOST' if ok else 'LOSS OR MISMATCH'}")
    for verdict in verdicts:
        print(verdict)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
