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


def _spy(seen: dict):
    """A callback that keeps each epoch's logs in ``seen`` as IEEE-754 bits (list it before ``tune.report``'s)."""
    import keras

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                seen.setdefault(key, []).append(_bits(value))

    return Spy()


def _faults(fail, attempt: int, breaks, message: str, dump):
    """A callback that, at an epoch's begin where ``breaks(epoch)``, raises ``message`` or kills the worker.

    ``fail``: ``"fit"`` / ``"kill"`` on every attempt, ``"fit-once"`` / ``"kill-once"`` on the first only;
    ``dump()`` writes what the spy saw before a kill.
    """
    import keras

    class Faults(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if breaks(epoch) and (fail in ("fit", "kill") or (fail in ("fit-once", "kill-once") and attempt == 1)):
                if fail.startswith("kill"):
                    dump()
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(message)

    return Faults()


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

    faults = _faults(fail, attempt, lambda epoch: epoch == 2, f"trial {trial_id} broke in epoch 2",
                     lambda: _dump(out, trial_id, seen, attempt))

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tune.report({"score": float(logs["val_loss"]), "epoch": epoch})

    try:
        model.fit(x, y, epochs=epochs, batch_size=16, validation_split=0.25, verbose=0,
                  callbacks=[faults, _spy(seen), Report(), *callbacks])
    finally:
        _dump(out, trial_id, seen, attempt)
    if fail == "after":
        raise RuntimeError(f"trial {trial_id} broke after its fit")


def _dump(out: Path, trial_id: str, seen: dict, attempt: int) -> None:
    path = out / f"{trial_id}.json"
    earlier = json.loads(path.read_text()) if path.exists() else []
    import ray

    node = ray.get_runtime_context().get_node_id()
    earlier.append({"attempt": attempt, "pid": os.getpid(), "node": node, "history": seen})
    path.write_text(json.dumps(earlier))


def _tune():
    from ray import tune

    return tune


class StepTrainable(_tune().Trainable):
    """A class-API trainable: ``setup`` builds the model, each ``step`` fits one epoch and reports ``score``.

    ``config`` may ask for ``idiom`` = ``"initial_epoch"`` (the default: ``fit(initial_epoch=i,
    epochs=i + 1)``, epochs numbered across steps) or ``"one_epoch"`` (``fit(epochs=1)`` each step, then
    ``evaluate``), and for faults: ``fail`` = ``"before"`` (raise in the first step before ``fit``),
    ``"fit"`` (raise inside the third step's fit), ``"fit-once"`` (the same, on the first attempt only),
    ``"after"`` (raise in the third step after its fit), ``"kill"`` / ``"kill-once"`` (SIGKILL the worker
    inside the third step's fit). The spy's epochs are written to ``out/<trial id>.json`` after each step.
    """

    def setup(self, config, db=None, out=None, explicit=False):
        import tracker

        self.out, self.db = Path(out), db
        self.attempt = _attempt(self.out, self.trial_id)
        self.tracking = tracker.TrackingCallback(db, log_batches=False) if explicit else None
        if not explicit:
            tracker.autolog(db, log_batches=False)
        self.seen: dict[str, list[int]] = {}
        self.model = None
        self._build(config)

    def _build(self, config):
        import keras

        self.fail, self.idiom = config.get("fail"), config.get("idiom", "initial_epoch")
        keras.utils.set_random_seed(int(config.get("seed", 0)))
        self.model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        self.model.compile(optimizer=keras.optimizers.SGD(config["lr"]), loss="mse")

    def step(self):

        if self.fail == "before" and self.iteration == 0:
            raise ValueError("bad config: no model for this trial")
        x, y = _data()
        step, fail, attempt, trial_id, out, seen = self.iteration, self.fail, self.attempt, self.trial_id, \
            self.out, self.seen
        faults = _faults(fail, attempt, lambda epoch: step == 2, f"trial {trial_id} broke in step 2",
                         lambda: _dump_attempt(out, trial_id, seen, attempt))
        callbacks = [faults, _spy(seen), *([self.tracking] if self.tracking is not None else [])]
        if self.idiom == "one_epoch":
            history = self.model.fit(x, y, epochs=1, batch_size=16, validation_split=0.25, verbose=0,
                                     callbacks=callbacks)
            score = self.model.evaluate(x, y, batch_size=16, verbose=0, callbacks=callbacks[2:])
        else:
            history = self.model.fit(x, y, initial_epoch=step, epochs=step + 1, batch_size=16,
                                     validation_split=0.25, verbose=0, callbacks=callbacks)
            score = history.history["val_loss"][-1]
        _dump_attempt(out, trial_id, seen, attempt)
        if fail == "after" and step == 2:
            raise RuntimeError(f"trial {trial_id} broke after step 2's fit")
        return {"score": float(score), "loss": float(history.history["loss"][-1])}

    def save_checkpoint(self, checkpoint_dir):
        return None  # Ray keeps the returned dict; a retry starts the trial over (and continues its run)

    def load_checkpoint(self, checkpoint):
        pass

    def reset_config(self, new_config):
        self._build(new_config)
        self.seen = {}
        self.attempt = _attempt(self.out, self.trial_id)
        return True


def _dump_attempt(out: Path, trial_id: str, seen: dict, attempt: int) -> None:
    """Write this attempt's epochs (replacing what an earlier step of the same attempt wrote)."""
    path = out / f"{trial_id}.json"
    earlier = [a for a in (json.loads(path.read_text()) if path.exists() else []) if a["attempt"] != attempt]
    import ray

    earlier.append({"attempt": attempt, "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                    "history": seen})
    path.write_text(json.dumps(earlier))
