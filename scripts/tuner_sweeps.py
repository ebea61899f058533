"""The sweeps of docs/sweeps.md: a KerasTuner search and an Optuna study, tracked by autolog alone.

Usage: python scripts/tuner_sweeps.py DB [WORKDIR]

WORKDIR holds KerasTuner's trial folders (default: DB's folder, ``DB-kt``).

``kt-dense``: RandomSearch over units and learning rate, 3 trials of 2
epochs. ``optuna-dense``: 5 trials of up to 4 epochs, with optuna-integration's
KerasPruningCallback and a MedianPruner. Seeded: every run of the script
searches the same trials.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna_integration import KerasPruningCallback  # noqa: E402

import tracker  # noqa: E402

db = sys.argv[1]
workdir = sys.argv[2] if len(sys.argv) > 2 else f"{db}-kt"
rng = np.random.default_rng(0)
x = rng.random((96, 8)).astype("float32")
y = (x @ rng.random((8, 1)) + 0.1 * rng.random((96, 1))).astype("float32")
tracker.autolog(db)


def build(hp):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")), loss="mse")
    return model


tuner = kt.RandomSearch(build, objective="val_loss", max_trials=3, seed=2, directory=workdir,
                        project_name="kt-dense", overwrite=True)
tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)


def objective(trial):
    keras.utils.set_random_seed(trial.number)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(trial.suggest_float("lr", 1e-3, 0.3, log=True)), loss="mse")
    history = model.fit(x, y, epochs=4, validation_split=0.25, verbose=0,
                        callbacks=[KerasPruningCallback(trial, "val_loss")])
    return history.history["val_loss"][-1]


optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(study_name="optuna-dense", sampler=optuna.samplers.TPESampler(seed=3),
                            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
study.optimize(objective, n_trials=5)
print("best", tuner.oracle.get_best_trials(1)[0].trial_id, study.best_trial.number,
      [t.state.name for t in study.trials])
