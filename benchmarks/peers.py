"""Time the same Keras fit untracked, under TrackingCallback and under its peers.

What it measures:
  * The model and data of ``benchmarks/overhead.py`` (imported from it): the
    Keras guide's ``Sequential([Input((784,)), Dense(1)])``, RMSprop(0.1), MSE
    loss, MAE metric, on seeded random float32 data (no download), 20,000
    samples, batch 32, 3 epochs, verbose=0. Every fit gets a fresh model built
    from the same seed.
  * These configurations, each skipped with a note when its package is
    missing (or dropped, with the error, if it fails in the warm-up):
      untracked                 callbacks=[]
      ours                      TrackingCallback(log_batches=True), the default
      ours, epochs only         TrackingCallback(log_batches=False)
      CSVLogger                 keras.callbacks.CSVLogger (one row per epoch)
      TensorBoard epoch/batch   keras.callbacks.TensorBoard(update_freq=...);
                                needs the ``tensorboard`` package
      MLflow autolog epoch      mlflow.keras.autolog() with its defaults: it
                                also logs the dataset and, after fit, the
                                model, whose pip requirements it infers in a
                                subprocess that loads the model
      ... log_models=False      the same without logging the model
      MLflow autolog per step   autolog(log_every_epoch=False,
                                log_every_n_steps=1, log_models=False), where
                                the installed mlflow's Keras 3 autolog has
                                that parameter
      W&B offline epoch/batch   wandb.init(mode="offline") and
                                WandbMetricsLogger(log_freq="epoch"|"batch")
  * One untimed warm-up fit of every configuration (tf.function tracing,
    imports, the W&B service, MLflow's schema), then ``--rounds`` rounds. Each
    round runs every configuration once, in an order rotated by one place per
    round, so that each one takes every position in turn.
  * Per configuration: the median wall time of the ``model.fit`` call, its
    ratio to the untracked median of the same run, and the min-max over the
    rounds. Also the median CPU time of the fit, summed over this process and
    every process it started (W&B's ``wandb-core`` service, MLflow's
    requirements subprocess), and its ratio: on a shared machine it moves much
    less than wall time with the other load. And the median wall time spent
    outside ``fit``: building the callback or ``wandb.init`` before, and
    ``close()``, ``wandb.finish()`` or disabling autolog after. MLflow autolog
    does its run start, dataset and model logging inside the patched ``fit``,
    so these count in its fit time. ``wandb.finish()`` returns before W&B's
    service has finished writing the run file, so the script waits until the
    file stops growing (counting the time up to its last write) before it
    starts the next fit.
  * What each configuration recorded in the warm-up fit (rows, points, files),
    to show that a per-batch setting did log every batch.

Everything stays in one temporary directory, which is deleted at the end:
each peer's store, ``WANDB_DIR``/``WANDB_CONFIG_DIR``/``WANDB_CACHE_DIR``, and
MLflow's tracking database and artifact root. W&B runs offline, needs no
login, and MLflow's telemetry is switched off (``MLFLOW_DISABLE_TELEMETRY``),
so nothing is sent anywhere. MLflow's store is SQLite, its default in 3.x
and the same storage as ours (mlflow 3.17 refuses a ``file:`` store unless
``MLFLOW_ALLOW_FILE_STORE`` is set).

Run it in the project's venv, where the peers are absent (it says which it
skips), or install the peers in a separate venv so the project's pins stay as
they are (tensorflow-cpu 2.21 brings Keras 3.15; none of them needs torch):

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install -e ".[tensorflow]" mlflow wandb tensorboard
    /tmp/peers-venv/bin/python benchmarks/peers.py [--rounds 3] [--epochs 3]
        [--samples 20000] [--batch-size 32] [--only NAME ...]

It prints a Markdown table, with the date, the versions and the machine,
ready to paste into docs/performance.md. It always exits 0: it is a measurement, not a
test.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import importlib.util
import inspect
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
# No peer may phone home: W&B offline and silent, MLflow without telemetry.
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import tracker  # noqa: E402
from overhead import make_data, make_model  # noqa: E402  (the same model and data)
from tracker import Store, TrackingCallback  # noqa: E402

UNTRACKED = "untracked"


def has(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(slots=True)
class Attached:
    """One configuration, set up for one fit."""

    callbacks: list[Any]
    # Run after fit; may return seconds it spent idle waiting, not to be counted.
    finish: Callable[[], float | None] = lambda: None
    recorded: Callable[[], str] = lambda: ""


@dataclass(slots=True)
class Config:
    """A way of running the fit; ``attach(tmpdir, tag)`` prepares one fit."""

    name: str
    attach: Callable[[Path, str], Attached]
    peer: str | None = None  # the distribution whose version the table shows
    fit_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    outside_s: list[float] = field(default_factory=list)
    recorded: str = ""


# -- the configurations ----------------------------------------------------------


def untracked(tmpdir: Path, tag: str) -> Attached:
    return Attached([])


def ours(log_batches: bool) -> Callable[[Path, str], Attached]:
    def attach(tmpdir: Path, tag: str) -> Attached:
        db = tmpdir / f"ours-{int(log_batches)}.db"
        cb = TrackingCallback(db, run_name=f"peers-{tag}", log_batches=log_batches)

        def recorded() -> str:
            store = Store(db)
            return (f"{len(store.epochs(cb.run_id))} epoch rows, "
                    f"{len(store.batches(cb.run_id, 'fit'))} train batch rows")

        return Attached([cb], cb.close, recorded)

    return attach


def csv_logger(tmpdir: Path, tag: str) -> Attached:
    path = tmpdir / f"csv-{tag}.csv"

    def recorded() -> str:
        return f"{len(path.read_text().splitlines()) - 1} epoch rows in a CSV file"

    return Attached([keras.callbacks.CSVLogger(str(path))], recorded=recorded)


def tensorboard(update_freq: str) -> Callable[[Path, str], Attached]:
    def attach(tmpdir: Path, tag: str) -> Attached:
        log_dir = tmpdir / f"tb-{update_freq}-{tag}"
        cb = keras.callbacks.TensorBoard(log_dir=str(log_dir), update_freq=update_freq)

        def recorded() -> str:
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")  # summary_iterator's deprecation notice
            points: dict[str, int] = {}
            for path in log_dir.rglob("events.out.tfevents.*"):
                for event in tf.compat.v1.train.summary_iterator(str(path)):
                    for value in event.summary.value:
                        points[value.tag] = points.get(value.tag, 0) + 1
            size = sum(p.stat().st_size for p in log_dir.rglob("*") if p.is_file())
            return f"{sum(points.values())} summary values ({', '.join(sorted(points))}), {size:,} bytes"

        return Attached([cb], recorded=recorded)

    return attach


def mlflow_supports_per_step() -> bool:
    """Whether the installed mlflow's Keras 3 autolog takes ``log_every_n_steps``."""
    import mlflow.keras

    return "log_every_n_steps" in inspect.signature(mlflow.keras.autolog).parameters


def mlflow_autolog(experiment: str, **autolog: Any) -> Callable[[Path, str], Attached]:
    """``mlflow.keras.autolog(silent=True, **autolog)``, into an experiment of its own."""

    def attach(tmpdir: Path, tag: str) -> Attached:
        import mlflow
        import mlflow.keras

        root = tmpdir / "mlflow"
        root.mkdir(exist_ok=True)
        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
        if mlflow.get_experiment_by_name(experiment) is None:
            mlflow.create_experiment(experiment, artifact_location=(root / "artifacts" / experiment).as_uri())
        mlflow.set_experiment(experiment)
        mlflow.keras.autolog(silent=True, **autolog)

        def recorded() -> str:
            run = mlflow.last_active_run()
            client = mlflow.MlflowClient()
            points = {k: len(client.get_metric_history(run.info.run_id, k)) for k in run.data.metrics}
            artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
            models = mlflow.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run.info.run_id}'", output_format="list")
            per_key = ", ".join(f"{k} {n}" for k, n in sorted(points.items()))
            return (f"{sum(points.values())} metric points ({per_key}), "
                    f"{len(run.data.params)} params, artifacts {artifacts}, "
                    f"{len(run.inputs.dataset_inputs)} dataset input(s), "
                    f"{len(models)} logged model(s)")

        return Attached([], lambda: mlflow.keras.autolog(disable=True), recorded)

    return attach


def wandb_offline(log_freq: str) -> Callable[[Path, str], Attached]:
    def attach(tmpdir: Path, tag: str) -> Attached:
        import wandb
        from wandb.integration.keras import WandbMetricsLogger

        run = wandb.init(project="peers", name=f"{log_freq}-{tag}", dir=str(tmpdir), mode="offline")
        cb = WandbMetricsLogger(log_freq=log_freq)
        run_dir = Path(run.dir).parent  # .../wandb/offline-run-*/files -> the run folder
        summary: dict[str, Any] = {}

        def finish() -> float:
            summary.update(run.summary)  # offline runs write no wandb-summary.json
            wandb.finish()
            return settle(run_dir)

        def recorded() -> str:
            size = sum(p.stat().st_size for p in run_dir.rglob("*.wandb"))
            keys = sorted(k for k in summary if not k.startswith("_"))
            return (f"{summary.get('_step', -1) + 1} wandb.log calls ({', '.join(keys)}), "
                    f".wandb file {size:,} bytes")

        return Attached([cb], finish, recorded)

    return attach


def settle(run_dir: Path, quiet: float = 0.5, limit: float = 60.0) -> float:
    """Wait until the run's ``.wandb`` file has stopped growing for ``quiet`` seconds.

    ``wandb.finish()`` (0.31, offline) returns before the ``wandb-core``
    service has written the end of the run file. Waiting keeps that work
    inside the W&B timing instead of in the next fit. Returns the idle wait
    after the last write, which the caller does not count.
    """
    start = last_change = time.perf_counter()
    last_size = -1
    while (now := time.perf_counter()) - last_change < quiet and now - start < limit:
        size = sum(p.stat().st_size for p in run_dir.glob("*.wandb"))
        if size != last_size:
            last_size, last_change = size, now
        time.sleep(0.02)
    return time.perf_counter() - last_change


def build_configs(args: argparse.Namespace) -> tuple[list[Config], list[str]]:
    """The configurations that can run here, and a note for each one skipped."""
    configs = [
        Config(UNTRACKED, untracked),
        Config("ours (TrackingCallback, log_batches=True)", ours(True), "keras-run-tracker"),
        Config("ours (TrackingCallback, log_batches=False)", ours(False), "keras-run-tracker"),
        Config("keras CSVLogger", csv_logger),
    ]
    skipped = []
    if has("tensorboard") and has("tensorflow"):
        configs += [Config('TensorBoard update_freq="epoch"', tensorboard("epoch"), "tensorboard"),
                    Config('TensorBoard update_freq="batch"', tensorboard("batch"), "tensorboard")]
    else:
        skipped.append("TensorBoard: the tensorboard package is not installed "
                       "(keras.callbacks.TensorBoard needs it to write summaries)")
    if not has("mlflow"):
        skipped.append("MLflow: mlflow is not installed")
    elif not has("mlflow.keras.callback"):
        skipped.append(f"MLflow: mlflow {dist_version('mlflow')} has no Keras 3 autolog (mlflow.keras.callback)")
    else:
        configs += [Config("MLflow autolog (per epoch; defaults, so the model is logged)",
                           mlflow_autolog("epoch"), "mlflow"),
                    Config("MLflow autolog (per epoch, log_models=False)",
                           mlflow_autolog("epoch-no-model", log_models=False), "mlflow")]
        if mlflow_supports_per_step():
            configs.append(Config("MLflow autolog (log_every_n_steps=1, log_models=False)",
                                  mlflow_autolog("per-step-no-model", log_every_epoch=False,
                                                 log_every_n_steps=1, log_models=False), "mlflow"))
        else:
            skipped.append(f"MLflow per step: mlflow {dist_version('mlflow')}'s Keras autolog "
                           "has no log_every_n_steps")
    if not has("wandb"):
        skipped.append("W&B: wandb is not installed")
    elif not has("tensorflow"):
        skipped.append("W&B: WandbMetricsLogger imports tensorflow, which is not installed")
    else:
        configs += [Config("W&B offline (WandbMetricsLogger, epoch)", wandb_offline("epoch"), "wandb"),
                    Config("W&B offline (WandbMetricsLogger, batch)", wandb_offline("batch"), "wandb")]
    if args.only:
        wanted = [w.lower() for w in args.only]
        configs = [c for c in configs
                   if c.name == UNTRACKED or any(w in c.name.lower() for w in wanted)]
    return configs, skipped


# -- timing ----------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time used so far by this process, its children and their descendants.

    Wall time on a shared machine moves with the other load; CPU time moves much
    less. It must include the other processes a peer works in (W&B's
    ``wandb-core`` service, MLflow's requirements subprocess): live descendants
    are read from /proc, finished children from ``getrusage``.
    """
    total = time.process_time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total += usage.ru_utime + usage.ru_stime
    try:
        parents: dict[int, int] = {}
        times: dict[int, float] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            # utime, stime, and cutime, cstime of its own finished children
            times[pid] = sum(int(f) for f in fields[11:15]) / tick
        me = os.getpid()
        for pid, cpu in times.items():
            ancestor = parents.get(pid)
            while ancestor is not None and ancestor not in (me, 0, 1):
                ancestor = parents.get(ancestor)
            if ancestor == me:
                total += cpu
    except (OSError, ValueError):
        pass
    return total


def run_once(config: Config, x, y, args: argparse.Namespace, tmpdir: Path, tag: str) -> Attached:
    """One fit of ``config`` on a fresh model; append its times to the config."""
    model = make_model()
    gc.collect()
    t0 = time.perf_counter()
    attached = config.attach(tmpdir, tag)
    c1 = cpu_seconds()
    t1 = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              callbacks=attached.callbacks)
    t2 = time.perf_counter()
    c2 = cpu_seconds()
    idle = attached.finish() or 0.0
    t3 = time.perf_counter()
    config.fit_s.append(t2 - t1)
    config.cpu_s.append(c2 - c1)
    config.outside_s.append((t1 - t0) + (t3 - t2 - idle))
    return attached


def warm_up(configs: list[Config], x, y, args, tmpdir: Path) -> list[str]:
    """One untimed fit of each config; drop (and report) those that fail."""
    failed = []
    for config in list(configs):
        try:
            attached = run_once(config, x, y, args, tmpdir, "warmup")
            config.recorded = attached.recorded()
            print(f"warm-up: {config.name}: {config.recorded or 'done'}", flush=True)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
            traceback.print_exc(limit=3)
            failed.append(f"{config.name}: failed in the warm-up with {type(exc).__name__}: {exc}")
            print(f"warm-up: {config.name}: FAILED, dropped", flush=True)
            configs.remove(config)
        config.fit_s.clear()
        config.cpu_s.clear()
        config.outside_s.clear()
    return failed


# -- the report ------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or model
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = ""
    try:
        kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1])
        mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{cores} cores ({model}){mem}, {platform.system()} {platform.release()}"


def load() -> str:
    """The 1-minute load average: other work on the machine spreads the times."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


def versions(configs: list[Config]) -> str:
    parts = [f"Python {platform.python_version()}", f"Keras {keras.__version__}"]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        parts.append(f"TensorFlow {tf.__version__}")
    else:
        parts.append(f"backend {backend}")
    ours_version = tracker.__version__
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__)), timeout=5).stdout.strip()
        if commit:
            ours_version += f" ({commit})"
    except (OSError, subprocess.SubprocessError):
        pass
    parts.append(f"keras-run-tracker {ours_version}")
    for peer in dict.fromkeys(c.peer for c in configs if c.peer and c.peer != "keras-run-tracker"):
        parts.append(f"{peer} {dist_version(peer)}")
    return ", ".join(parts)


def table(configs: list[Config]) -> list[str]:
    untracked_config = next(c for c in configs if c.name == UNTRACKED)
    base, cpu_base = statistics.median(untracked_config.fit_s), statistics.median(untracked_config.cpu_s)
    lines = ["| configuration | fit, median s | ratio to untracked | fit, min-max s "
             "| CPU, median s | CPU ratio | outside fit, median s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for c in sorted(configs, key=lambda c: statistics.median(c.fit_s)):
        med, cpu = statistics.median(c.fit_s), statistics.median(c.cpu_s)
        lines.append(f"| {c.name} | {med:.2f} | {med / base:.2f}× | {min(c.fit_s):.2f}-{max(c.fit_s):.2f} "
                     f"| {cpu:.2f} | {cpu / cpu_base:.2f}× | {statistics.median(c.outside_s):.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed rounds (default 3: about 10 minutes on a busy 2-core machine with every peer)")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only configurations whose name contains one of these words "
                             "(untracked always runs), e.g. --only ours mlflow")
    args = parser.parse_args()

    configs, skipped = build_configs(args)
    for note in skipped:
        print(f"skipped: {note}")
    x, y = make_data(args.samples)
    n_batches = args.epochs * math.ceil(args.samples / args.batch_size)
    print(f"keras {keras.__version__} ({keras.backend.backend()}); {args.samples} samples, "
          f"batch {args.batch_size}, {args.epochs} epochs = {n_batches} train batches per fit; "
          f"{len(configs)} configurations x {args.rounds} rounds", flush=True)

    started, load_before = time.perf_counter(), load()
    with tempfile.TemporaryDirectory(prefix="tracker-peers-") as tmp:
        tmpdir = Path(tmp)
        for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            os.environ[var] = str(tmpdir / "wandb-home")
        (tmpdir / "wandb-home").mkdir()
        skipped += warm_up(configs, x, y, args, tmpdir)
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[: r % len(configs)]
            for config in order:
                run_once(config, x, y, args, tmpdir, str(r))
            base = next(c for c in configs if c.name == UNTRACKED).fit_s[-1]
            print(f"round {r + 1}/{args.rounds}: "
                  + ", ".join(f"{c.name} {c.fit_s[-1]:.2f}s ({c.fit_s[-1] / base:.2f}×)" for c in configs),
                  flush=True)

    load_after = load()
    print(f"\ntotal {time.perf_counter() - started:.0f} s\n")
    print(f"Measured {datetime.date.today().isoformat()} on {machine()} (load average {load_before} "
          f"at the start, {load_after} at the end); {versions(configs)}. "
          f"{args.samples:,} samples, batch {args.batch_size}, {args.epochs} epochs "
          f"({n_batches:,} train batches per fit); median of {args.rounds} interleaved rounds, "
          f"after one warm-up fit of each.\n")
    print("\n".join(table(configs)))
    print("\nWhat each one recorded in its warm-up fit:\n")
    for c in configs:
        if c.recorded:
            print(f"- {c.name}: {c.recorded}")
    if skipped:
        print("\nNot measured:\n")
        for note in skipped:
            print(f"- {note}")


if __name__ == "__main__":
    main()
