"""A 1,000-trial Optuna-like experiment written straight through ``tracker.db`` writes (no fits).

Used by ``benchmarks/sweep.py``. Each trial is one run, written with the
operations a tracked fit queues (``tracker.db.writes``: ``InsertRun``,
``JoinExperiment``, ``InsertPhase``, ``InsertEpoch`` per epoch, ``EndPhase``,
``UpdateRun``), then ended as the Optuna integration ends it
(``tracker.db.sweep_writes.end_trial``): three params (``lr`` log-uniform
over 1e-4..1e-1, ``units`` 8..256, ``activation`` one of three), 30 epochs of
``loss`` and ``val_loss`` (float32 values), about a quarter pruned at epoch
3 to 15 with a ``MedianPruner`` stop decision, a few failed.

Run alone to make the file: ``python benchmarks/sweep_data.py [--trials 1000]``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from tracker.db.migrate import HEAD_REVISION, open_database
from tracker.db.sweep_writes import ExperimentRow, JoinExperiment, ToolStop, TrialEnd, TrialRow, end_trial
from tracker.db.writes import EndPhase, InsertEpoch, InsertPhase, InsertRun, KeyCache, UpdateRun, apply
from tracker.status import PhaseKind, Status

EXPERIMENT = "bench-sweep"
PATH = "/tmp/tracker-sweep-{n}.db"
EPOCHS = 30
T0 = datetime(2026, 1, 1)
VERSIONS = {"python": "3.11.7", "tracker": "0.1.0", "keras": "3.15.1", "backend": "tensorflow"}
MARK = f"sweep-bench-1-rev{HEAD_REVISION}"  # the tag marking a complete file of this generator


class Ref:
    """A phase as the write operations refer to it."""

    def __init__(self) -> None:
        self.id: int | None = None


def _trial_ops(i: int, rnd: random.Random, rng: np.random.Generator) -> tuple[list[Any], str, TrialEnd]:
    run_id = f"{rnd.getrandbits(128):032x}"
    start = T0 + timedelta(minutes=2 * i)
    params = {"lr": 10 ** rnd.uniform(-4, -1), "units": rnd.randrange(8, 257, 8),
              "activation": rnd.choice(["relu", "tanh", "gelu"])}
    # The loss the params make: best near lr=3e-3, wider nets a little better, tanh a little worse.
    floor = 0.08 + 0.25 * (math.log10(params["lr"]) + 2.5) ** 2 + 0.02 * (256 - params["units"]) / 256 \
        + (0.03 if params["activation"] == "tanh" else 0.0)
    t = np.arange(EPOCHS)
    val = (floor + 1.5 * np.exp(-t / (3 + 4 * rnd.random()))) * (1 + 0.02 * rng.standard_normal(EPOCHS))
    loss = val * 0.9
    roll = rnd.random()
    pruned_at = rnd.randrange(3, 16) if roll < 0.25 else None
    failed = 0.25 <= roll < 0.27
    epochs = pruned_at + 1 if pruned_at is not None else (rnd.randrange(1, 5) if failed else EPOCHS)
    fit = Ref()
    ops: list[Any] = [
        InsertRun({"id": run_id, "name": f"trial-{i}", "status": Status.RUNNING, "started_at": start, "host": "bench",
                   "pid": 4000 + i, "versions": VERSIONS}, dict(params), {"trial": str(i), "bench": MARK}),
        JoinExperiment(run_id, ExperimentRow(EXPERIMENT, "optuna", None, "min"), TrialRow(str(i), i)),
        InsertPhase(run_id, fit, {"run_id": run_id, "seq": 0, "kind": PhaseKind.FIT, "epoch": None,
                                  "status": Status.RUNNING, "started_at": start,
                                  "keras_params": {"verbose": 0, "epochs": EPOCHS, "steps": 20}}),
    ]
    for e in range(epochs):
        began = start + timedelta(seconds=3 * e)
        ops.append(InsertEpoch(run_id, fit, e, began, began + timedelta(seconds=2.9), None,
                               {"loss": float(np.float32(loss[e])), "val_loss": float(np.float32(val[e]))}))
    end = start + timedelta(seconds=3 * epochs)
    status = Status.FAILED if failed else (Status.PRUNED if pruned_at is not None else Status.FINISHED)
    ops.append(EndPhase(fit, {"status": status, "ended_at": end, "batch_count": 20 * epochs,
                              "error": "RuntimeError: diverged" if failed else None}, None))
    ops.append(UpdateRun(run_id, {"status": status, "ended_at": end, "heartbeat_at": end,
                                  "error": "RuntimeError: diverged" if failed else None}))
    last = float(np.float32(val[epochs - 1]))
    if failed:
        trial_end = TrialEnd("FAIL", None, params)
    elif pruned_at is not None:
        trial_end = TrialEnd("PRUNED", None, params)
        ops.append(("stop", fit, pruned_at, last))
    else:
        trial_end = TrialEnd("COMPLETE", last, params)
    return ops, run_id, trial_end


def complete(path: str, trials: int) -> bool:
    """True if ``path`` holds this generator's experiment of ``trials`` trials."""
    if not os.path.exists(path):
        return False
    from tracker.store import Store

    try:
        store = Store(path)
        found = store.runs(tags={"bench": MARK}, limit=trials + 1)
        store.engine.dispose()
        return len(found) == trials
    except Exception:  # noqa: BLE001 - an older or partial file: make it again
        return False


def ensure(trials: int = 1000) -> str:
    """Return the path of the benchmark database, making it if it is missing or incomplete."""
    from tracker.db.decision_tables import StopDecision
    from tracker.db.base import table_of
    from tracker.db.sweep_writes import stop_row
    from sqlalchemy import insert

    path = PATH.format(n=trials)
    if complete(path, trials):
        return path
    for p in (path, path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    t = time.perf_counter()
    engine, _ = open_database(path)
    keys, rnd, rng = KeyCache(), random.Random(19), np.random.default_rng(19)
    with engine.connect() as conn:
        for lo in range(0, trials, 100):
            with conn.begin():
                for i in range(lo, min(trials, lo + 100)):
                    ops, run_id, trial_end = _trial_ops(i, rnd, rng)
                    for op in ops:
                        if isinstance(op, tuple):  # the pruner's stop at the pruned epoch
                            _, fit, epoch, value = op
                            stop = ToolStop("MedianPruner", epoch, value, "val_loss", "on_epoch_end")
                            conn.execute(insert(table_of(StopDecision)).values(phase_id=fit.id, **stop_row(stop, epoch)))
                        else:
                            apply(conn, keys, op)
                    end_trial(conn, [run_id], trial_end, now=T0 + timedelta(minutes=2 * i + 1.5))
            keys.commit()
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    print(f"generated {path} ({trials:,} trials) in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    print(ensure(parser.parse_args().trials))
