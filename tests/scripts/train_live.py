"""A training job the live dashboard test steers: fits the guide's model with the tracker and, before
each epoch after the first, waits for the test's go-ahead file.

Usage: python train_live.py DB GATE_DIR
Before epoch N (N >= 1) it waits for GATE_DIR/go{N-1}, so epoch N-1 is in the database while it
waits: the tracker writes an epoch once every callback's on_epoch_end has run. GATE_DIR/stop
stops training instead: Keras then trains one batch of epoch N and ends it, so the run ends with
N + 1 epochs. It prints ``DONE RUN_ID`` at the end.
"""

import os
import sys
import time
from pathlib import Path

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tracker import TrackingCallback  # noqa: E402


class Gate(keras.callbacks.Callback):
    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (self.folder / "stop").exists():
                self.model.stop_training = True
                return
            if (self.folder / f"go{epoch - 1}").exists():
                return
            time.sleep(0.02)
        raise TimeoutError(f"no go-ahead for epoch {epoch}")


def main() -> None:
    db, gate = sys.argv[1], Path(sys.argv[2])
    rng = np.random.default_rng(0)
    x = rng.random((64, 784)).astype("float32")
    y = rng.integers(0, 10, 64).astype("float32")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="mean_squared_error", metrics=["mean_absolute_error"])
    tracker = TrackingCallback(db, run_name="live", flush_interval=0.2)
    model.fit(x, y, batch_size=16, epochs=100, validation_split=0.25, callbacks=[tracker, Gate(gate)], verbose=0)
    print("DONE", tracker.run_id, flush=True)


if __name__ == "__main__":
    main()
