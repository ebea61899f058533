"""A fit that waits at each epoch end until the test lets it go on (for ``tracker watch`` tests).

Usage: python gated_fit.py DB GATE_DIR EPOCHS

Before epoch k > 0 begins (epoch k - 1 is written by then: the tracker
writes an epoch once every callback's on_epoch_end has run) the fit waits
for the file GATE_DIR/(k - 1) to exist, polling, for at most 120 s.
The run is named ``watched``; it has an EarlyStopping that never stops and
a ReduceLROnPlateau.
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
from conftest import guide_data, guide_model  # noqa: E402

from tracker import TrackingCallback  # noqa: E402


class Gate(keras.callbacks.Callback):
    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            return
        deadline = time.monotonic() + 120
        while not (self.folder / str(epoch - 1)).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {epoch} never opened")
            time.sleep(0.02)


def main() -> None:
    db, gates, epochs = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    x, y = guide_data(n=64)
    tracking = TrackingCallback(db, run_name="watched", params={"lr": 0.1})
    callbacks = [
        tracking,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=50),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5),
        Gate(gates),
    ]
    guide_model().fit(x, y, batch_size=16, epochs=epochs, validation_split=0.25, callbacks=callbacks, verbose=0)


if __name__ == "__main__":
    main()
