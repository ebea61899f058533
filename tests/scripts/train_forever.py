"""A training job for the kill tests: fits the guide's model with the tracker
until killed. Usage: python train_forever.py DB RUN_NAME [--resume] [--backup DIR] [--epochs N] [--die-at K] [--tracker-last]

``--backup`` lists a BackupAndRestore (with ``double_checkpoint``: a kill in the
middle of writing the backup leaves the previous one to resume from) before
the tracker, or after it with ``--tracker-last``. ``--die-at K`` kills the
process (SIGKILL) in the ``on_epoch_end`` of epoch K, right after the backup
of that epoch was written: the worst moment for the record."""

import argparse
import os
import signal
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tracker.record.callback import TrackingCallback  # noqa: E402


class Slow(keras.callbacks.Callback):
    """Gives the killer time to strike between flushes."""

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.002)


class DieAfterBackup(keras.callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("name")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--backup")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-at", type=int)
    parser.add_argument("--tracker-last", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((256, 784)).astype("float32")
    y = rng.integers(0, 10, 256).astype("float32")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="mean_squared_error", metrics=["mean_absolute_error"])
    callbacks = [TrackingCallback(args.db, run_name=args.name, resume=args.resume, flush_every=16, flush_interval=0.2), Slow()]
    if args.backup:
        backup = keras.callbacks.BackupAndRestore(args.backup, double_checkpoint=True)
        callbacks.insert(len(callbacks) if args.tracker_last else 0, backup)
    if args.die_at is not None:
        callbacks.append(DieAfterBackup(args.die_at))
    model.fit(x, y, batch_size=16, epochs=args.epochs, callbacks=callbacks, verbose=0)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
