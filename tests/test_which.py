"""``tracker which FILE``: the run and epoch whose weights a model file holds, exactly.

Files of every kind (``.keras`` zipped and unzipped, ``.weights.h5``, legacy
``.h5``), renamed copies, files saved by other code (KerasTuner's trial
checkpoints). Ground truth from outside the tracker: the weights each file
holds, read back by Keras, compared with ``WeightCopies`` (the weights at
each epoch end); ``History`` for the best epoch; ``EarlyStopping``'s restore.
The model nests a sub-model with BatchNormalization, whose legacy ``.h5``
order (trainable weights first) differs from ``model.weights``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import truth_helpers as th
from tracker import ModelFileError, Store, TrackingCallback
from tracker.cli import main

EPOCHS = 4


def nested_model(seed: int = 1, learning_rate: float = 0.02) -> keras.Model:
    keras.utils.set_random_seed(seed)
    body = keras.Sequential([keras.Input((8,)), keras.layers.Dense(6), keras.layers.BatchNormalization(),
                             keras.layers.Dense(4, activation="relu")], name="body")
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(body(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mean_squared_error")
    return model


def data(n: int = 64):
    rng = np.random.default_rng(0)
    x = rng.random((n, 8)).astype("float32")
    return x, (x.sum(axis=1) + rng.normal(0, 0.1, n)).astype("float32")


def weights_in(path: str) -> list[np.ndarray]:
    """The weights a file holds, read back by Keras itself."""
    if path.endswith(".weights.h5"):
        model = nested_model()
        model.load_weights(path)
        return model.get_weights()
    return keras.saving.load_model(path, compile=False).get_weights()


def train(db, tmp_path):
    """A recorded fit, and its weights saved in every kind of file (and renamed copies)."""
    os.chdir(tmp_path)
    x, y = data()
    model = nested_model()
    copies = th.WeightCopies()
    tracker = TrackingCallback(db, run_name="source")
    kick = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.5 if e == EPOCHS - 1 else 0.02)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=EPOCHS, restore_best_weights=True)
    best = keras.callbacks.ModelCheckpoint("best.keras", monitor="val_loss", save_best_only=True)
    history = model.fit(x, y, batch_size=16, epochs=EPOCHS, validation_split=0.25, verbose=0,
                        callbacks=[copies, tracker, best, kick, stopper])
    files = {"best": str(tmp_path / "best.keras")}
    model.save("final.keras")
    model.save_weights("final.weights.h5")
    model.save("final.h5")
    keras.saving.save_model(model, "unzipped", zipped=False)
    files.update(keras=str(tmp_path / "final.keras"), weights=str(tmp_path / "final.weights.h5"),
                 legacy=str(tmp_path / "final.h5"), unzipped=str(tmp_path / "unzipped"))
    for kind in ("best", "keras", "weights", "legacy"):  # renamed copies, shipped elsewhere
        files[f"{kind}-copy"] = str(shutil.copy(files[kind], tmp_path / f"model-v3-{kind}.bin"))
    val_loss = history.history["val_loss"]
    return {"db": db, "run_id": tracker.run_id, "copies": copies, "files": files, "tmp": tmp_path,
            "best_epoch": int(np.nanargmin(val_loss)), "restored": copies.epoch_of(model.get_weights())}


@pytest.fixture
def trained(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return train(db, tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One recorded fit on SQLite, for the tests of what goes wrong."""
    tmp = tmp_path_factory.mktemp("which")
    here = os.getcwd()
    try:
        return train(str(tmp / "runs.db"), tmp)
    finally:
        os.chdir(here)


@pytest.mark.backend
def test_every_file_kind_and_every_renamed_copy_names_the_run_and_epoch_whose_weights_it_holds(trained):
    store = Store(trained["db"])
    assert trained["restored"] == trained["best_epoch"] < EPOCHS - 1, "the setup must restore its best epoch"
    for kind, path in trained["files"].items():
        original = path if not kind.endswith("-copy") else trained["files"][kind.removesuffix("-copy")]
        truth = trained["copies"].epoch_of(weights_in(original))  # a copy has the original's bytes
        assert truth is not None, kind
        found = store.which(path)
        assert [(r.run_id, r.epoch) for r in found.itertuples()] == [(trained["run_id"], truth)], kind
        row = found.iloc[0]
        assert row["name"] == "source" and row["status"] == "finished" and row["monitor"] == "val_loss"
        assert bool(row["is_best"]) == (truth == trained["best_epoch"])
        assert bool(row["is_restored"]) == (truth == trained["restored"])
        assert row["val_loss"] == row["value"]  # the epoch's metrics come with it


@pytest.mark.backend
@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
def test_the_cli_gives_json_rows_and_every_run_whose_epoch_ended_with_those_weights(trained):
    # A second run starts from best.keras, frozen (BatchNormalization's statistics too): its epoch 0 ends
    # with the same weights.
    model = keras.saving.load_model(trained["files"]["best"])
    model.trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mean_squared_error")
    again = TrackingCallback(trained["db"], run_name="frozen")
    model.fit(*data(), batch_size=16, epochs=1, verbose=0, callbacks=[again])
    result = CliRunner().invoke(main, ["--db", trained["db"], "which", trained["files"]["best-copy"], "--format", "json"])
    assert result.exit_code == 0, result.output
    found = {(r["run_id"], r["epoch"]) for r in json.loads(result.output)}
    assert found == {(trained["run_id"], trained["best_epoch"]), (again.run_id, 0)}
    table = CliRunner().invoke(main, ["--db", trained["db"], "which", trained["files"]["best"]])
    assert table.exit_code == 0 and "source" in table.output and "frozen" in table.output


def test_no_match_is_one_sentence_and_exit_status_1(shared):
    fresh = nested_model(seed=7)
    path = str(shared["tmp"] / "fresh.weights.h5")
    fresh.save_weights(path)
    result = CliRunner().invoke(main, ["--db", shared["db"], "which", path])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == f"Error: No recorded epoch of this database ended with the weights in {path}."
    assert len(Store(shared["db"]).which(path)) == 0


@pytest.mark.parametrize("case", ["missing", "text", "other-zip", "other-hdf5", "truncated-keras", "truncated-h5"])
def test_a_file_that_is_missing_not_a_model_or_corrupt_is_one_sentence_and_exit_status_1(shared, case):
    tmp, files = shared["tmp"], shared["files"]
    path = str(tmp / f"{case}.keras")
    if case == "text":
        open(path, "w").write("not a model\n")
    elif case == "other-zip":
        import zipfile

        with zipfile.ZipFile(path, "w") as z:
            z.writestr("notes.txt", "hello")
    elif case == "other-hdf5":
        import h5py

        with h5py.File(path, "w") as f:
            f["data"] = np.arange(3)
    elif case.startswith("truncated"):
        source = files["keras" if case == "truncated-keras" else "legacy"]
        blob = open(source, "rb").read()
        open(path, "wb").write(blob[: len(blob) // 2])
    result = CliRunner().invoke(main, ["--db", shared["db"], "which", path])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and path in lines[0], result.output
    with pytest.raises(ModelFileError):
        Store(shared["db"]).which(path)


def test_several_files_print_the_matches_and_a_sentence_for_each_file_that_failed(shared):
    missing = str(shared["tmp"] / "gone.keras")
    result = CliRunner().invoke(main, ["--db", shared["db"], "which", shared["files"]["keras"], missing,
                                       shared["files"]["legacy-copy"], "--format", "csv"])
    assert result.exit_code == 1
    assert f"Error: {missing} does not exist." in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines[0].startswith("file,run_id,") and len(lines) == 3


def test_which_reads_the_file_without_importing_keras_or_a_backend(shared):
    code = (
        "import sys\n"
        "from tracker.cli import main\n"
        "try:\n"
        "    main(['--db', sys.argv[1], 'which', sys.argv[2], '--format', 'json'], standalone_mode=False)\n"
        "finally:\n"
        "    print('\\nBACKENDS', sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax', 'torch')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, shared["db"], shared["files"]["legacy-copy"]],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shared["run_id"] in result.stdout and "BACKENDS []" in result.stdout


class SeenWeights(keras.callbacks.Callback):
    """The weights at each epoch end of every trial's fit, kept in the class: KerasTuner deep-copies
    its callbacks for each trial."""

    seen: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        SeenWeights.seen.append([np.copy(w) for w in self.model.get_weights()])


@pytest.mark.backend
def test_keras_tuner_trial_checkpoints_name_their_trials_runs(db, tmp_path):
    import keras_tuner

    import tracker

    def build(hp):
        model = nested_model(seed=hp.Int("seed", 1, 1000))
        model.compile(optimizer=keras.optimizers.SGD(hp.Choice("lr", [0.01, 0.02])), loss="mean_squared_error")
        return model

    SeenWeights.seen = []
    tuner = keras_tuner.RandomSearch(build, objective="val_loss", max_trials=2, seed=3, directory=str(tmp_path),
                                     project_name="search", overwrite=True)
    tracker.autolog(db)
    try:
        tuner.search(*data(), epochs=1, batch_size=16, validation_split=0.25, verbose=0, callbacks=[SeenWeights()])
    finally:
        tracker.autolog(disable=True)
    store = Store(db)
    runs = list(store.runs()["run_id"])  # one run per trial's fit, in the order the trials ran
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    assert len(runs) == len(trials) == len(SeenWeights.seen) == 2
    for run_id, trial, seen in zip(runs, trials, SeenWeights.seen):
        path = os.path.join(str(tmp_path), "search", f"trial_{trial.trial_id}", "checkpoint.weights.h5")
        model = nested_model()
        model.load_weights(path)
        assert th.same_weights(model.get_weights(), seen)  # the file holds that trial's epoch 0
        saves = store.checkpoints(run_id)
        assert list(saves["saver"]) == ["SaveBestEpoch"] and list(saves["path"]) == [path]
        assert list(saves["reason"]) == ["improved"] and list(saves["monitor"]) == ["val_loss"]
        assert [(r.run_id, r.epoch) for r in store.which(path).itertuples()] == [(run_id, 0)]


@pytest.mark.backend
def test_bfloat16_weights_are_fingerprinted_and_identified_in_every_file_kind(db, tmp_path):
    """Before the fix, hashing a bfloat16 array raised (the buffer protocol has no bfloat16): every
    fingerprint of such a model failed with a TrackingWarning, which the test suite makes an error."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, dtype="bfloat16"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mean_squared_error")
    copies, tracker = th.WeightCopies(), TrackingCallback(db, run_name="half")
    model.fit(*data(), batch_size=16, epochs=2, verbose=0, callbacks=[copies, tracker])
    assert str(model.get_weights()[0].dtype) == "bfloat16"
    store = Store(db)
    for name in ("half.weights.h5", "half.keras", "half.h5"):
        path = str(tmp_path / name)
        model.save_weights(path) if name.endswith(".weights.h5") else model.save(path)
        assert [(r.run_id, r.epoch) for r in store.which(path).itertuples()] == [(tracker.run_id, copies.last_epoch)]
