"""The example of docs/checkpoints.md: a best-only checkpoint, a renamed copy, a fine-tune from it.

Usage: python scripts/checkpoints.py DB

Writes, in DB's folder: ``best.keras`` (ModelCheckpoint's best epoch of the
run ``pretrain``), ``model-v3.keras`` (a renamed copy of it), and
``untrained.weights.h5`` (weights no run recorded). The run ``finetune``
starts from ``best.keras``. Seeded: every run of the script trains the same.
"""

import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tracker  # noqa: E402

db = os.path.abspath(sys.argv[1])
os.chdir(os.path.dirname(db))
rng = np.random.default_rng(0)
x = rng.random((256, 8)).astype("float32")
y = x.sum(axis=1)


def build(seed=1):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


# Train, keeping the best epoch's model; the rate jumps in epoch 3, so some epochs are worse.
model = build()
model.fit(x, y, epochs=6, validation_split=0.25, verbose=0, callbacks=[
    tracker.TrackingCallback(db, run_name="pretrain"),
    keras.callbacks.ModelCheckpoint("best.keras", monitor="val_loss", save_best_only=True),
    keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.3 if epoch == 3 else 0.01),
])
shutil.copy("best.keras", "model-v3.keras")  # shipped under another name

# Fine-tune from the best checkpoint.
tuned = keras.saving.load_model("best.keras")
tuned.fit(x, y, epochs=2, verbose=0, callbacks=[tracker.TrackingCallback(db, run_name="finetune")])

build(seed=7).save_weights("untrained.weights.h5")  # weights no run recorded
print("wrote best.keras, model-v3.keras and untrained.weights.h5")
