"""A training job the live dashboard test steers: fits the guide's model with the tracker and, after
each epoch is recorded, waits for the test's go-ahead file.

Usage: python train_live.py DB GATE_DIR
At the end of epoch N it waits for GATE_DIR/goN (or GATE_DIR/stop, which stops training). The
tracker is listed first, so the epoch is in the database before the job waits.
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

    def on_epoch_end(self, epoch, logs=None):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (self.folder / "stop").exists():
                self.model.stop_training = True
                return
            if (self.folder / f"go{epoch}").exists():
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
