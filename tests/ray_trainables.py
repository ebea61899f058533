"""Trainables the Ray Tune tests run in Ray's workers (imported there: the tests put this folder on their path).

Each keeps its ground truth outside the tracker: a spy callback listed
before the one that calls ``tune.report`` (so it sees every epoch, including
the one Ray ends inside ``tune.report``; Keras's own ``History`` comes after
the user's callbacks and misses it) writes each epoch's logs as JSON to
``out/<trial id>.json`` with each value's IEEE-754 bits, plus what the trial
saw (pid, Ray node id, attempt).
"""

from __future__ import annotations

import json
import os
import signal
import struct
from pathlib import Path

EPOCHS = 4


def _bits(value: float) -> int:
    return struct.unpack("<q", struct.pack("<d", float(value)))[0]


def _data(n: int = 64, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def _attempt(out: Path, trial_id: str) -> int:
    """How many times this trial has started (1 on its first attempt), counted in a file."""
    marker = out / f"{trial_id}.attempts"
    count = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(count))
    return count


def fit_trial(config, db=None, out=None, explicit=False, epochs=EPOCHS):
    """Fit a tiny model for ``epochs`` epochs, reporting ``score`` (the validation loss) each epoch.

    ``config`` may ask for faults: ``fail`` = ``"before"`` (raise before
    ``fit``), ``"fit"`` (raise in epoch 2), ``"fit-once"`` (raise in epoch 2 of
    the first attempt only), ``"kill"`` (SIGKILL the worker in epoch 2 of
    every attempt), ``"kill-once"`` (of the first attempt only).
    """
    import keras
    from ray import tune

    import tracker

    out = Path(out)
    trial_id = tune.get_context().get_trial_id()
    attempt = _attempt(out, trial_id)
    fail = config.get("fail")
    callbacks = []
    if explicit:
        callbacks.append(tracker.TrackingCallback(db, log_batches=False))
    else:
        tracker.autolog(db, log_batches=False)
    if fail == "before":
        raise ValueError("bad config: no model for this trial")
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(config["lr"]), loss="mse")
    x, y = _data()
    seen: dict[str, list[int]] = {}

    class Faults(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2 and (fail in ("fit", "kill") or (fail in ("fit-once", "kill-once") and attempt == 1)):
                if fail.startswith("kill"):
                    _dump(out, trial_id, seen, attempt)
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(f"trial {trial_id} broke in epoch 2")

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                seen.setdefault(key, []).append(_bits(value))

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tune.report({"score": float(logs["val_loss"]), "epoch": epoch})

    try:
        model.fit(x, y, epochs=epochs, batch_size=16, validation_split=0.25, verbose=0,
                  callbacks=[Faults(), Spy(), Report(), *callbacks])
    finally:
        _dump(out, trial_id, seen, attempt)


def _dump(out: Path, trial_id: str, seen: dict, attempt: int) -> None:
    path = out / f"{trial_id}.json"
    earlier = json.loads(path.read_text()) if path.exists() else []
    import ray

    node = ray.get_runtime_context().get_node_id()
    earlier.append({"attempt": attempt, "pid": os.getpid(), "node": node, "history": seen})
    path.write_text(json.dumps(earlier))
