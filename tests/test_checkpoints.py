"""Every save of a tracked model is recorded, with its reasoning and its weights' fingerprint.

One real fit holds every ModelCheckpoint mode at once (best-only ``.keras``,
every epoch ``.weights.h5`` with ``{epoch}`` and a metric in the template,
every N batches with ``{batch}``, a whole model to a legacy ``.h5``),
``BackupAndRestore``, and ``EarlyStopping(restore_best_weights=True)``
before a ``model.save()`` after the fit. Ground truth comes from outside the
tracker:

* the files themselves: which epochs rewrote ``best.keras`` (``FileSpy``,
  listed after the savers, hashes its bytes at each epoch end), and the
  weights each file holds, loaded back with Keras;
* ``ModelCheckpoint.best`` after each epoch (``BestSpy``), History's values;
* ``WeightCopies`` (listed first): the weights at each epoch end, as trained.

Runs on TensorFlow, JAX and torch (``backend``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import re

import keras
import numpy as np
import pandas as pd
import pytest

import truth_helpers as th
from conftest import BACKENDS
from tracker import Store, TrackingCallback
from tracker.db.digest import fingerprint_arrays

pytestmark = pytest.mark.backend

EPOCHS = 4
STEPS = 3  # 48 training samples in batches of 16


def small_model(seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mean_squared_error")
    return model


def small_data(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((n, 8)).astype("float32")
    return x, (x.sum(axis=1) + rng.normal(0, 0.1, n)).astype("float32")


def weights_in(path: str) -> list[np.ndarray]:
    """The weights a file holds, read back by Keras itself."""
    if path.endswith(".weights.h5"):
        model = small_model()
        model.load_weights(path)
        return model.get_weights()
    return keras.saving.load_model(path, compile=False).get_weights()


class FileSpy(keras.callbacks.Callback):
    """Listed after the savers: the bytes of a file at each epoch end (None if absent)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path, self.digests = path, {}

    def on_epoch_end(self, epoch, logs=None):
        self.digests[epoch] = hashlib.sha256(open(self.path, "rb").read()).hexdigest() if os.path.exists(self.path) else None


class BestSpy(keras.callbacks.Callback):
    """Listed after the savers: a ModelCheckpoint's ``best`` after each epoch."""

    def __init__(self, saver) -> None:
        super().__init__()
        self.saver, self.after = saver, {}

    def on_epoch_end(self, epoch, logs=None):
        self.after[epoch] = self.saver.best


@pytest.fixture(scope="module", params=BACKENDS)
def fitted(request, tmp_path_factory):
    """One fit per database (SQLite, PostgreSQL), shared by the tests of this module that read it."""
    folder = tmp_path_factory.mktemp("ckpt")
    db = str(folder / "runs.db")
    if request.param != "sqlite":
        server = request.getfixturevalue("pg_server")
        db = server.new()
        request.addfinalizer(lambda: server.drop(db))
    here = os.getcwd()
    os.chdir(folder)  # relative paths, as users write them: the tracker stores them absolute
    try:
        return record_everything(db, folder)
    finally:
        os.chdir(here)


def record_everything(db, folder):
    x, y = small_data()
    model = small_model()
    copies = th.WeightCopies()
    tracker = TrackingCallback(db, run_name="saves")
    best = keras.callbacks.ModelCheckpoint("best.keras", monitor="val_loss", save_best_only=True)
    every = keras.callbacks.ModelCheckpoint("{epoch:02d}-{val_loss:.3f}.weights.h5", save_weights_only=True)
    batches = keras.callbacks.ModelCheckpoint("b{epoch}-{batch}.weights.h5", save_weights_only=True, save_freq=2)
    legacy = keras.callbacks.ModelCheckpoint("legacy.h5")
    backup = keras.callbacks.BackupAndRestore(str(folder / "backup"), delete_checkpoint=False)
    # A huge rate in epoch 2: val_loss gets worse there, so best.keras skips epochs.
    kick = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.5 if e == 2 else 0.01)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=EPOCHS, restore_best_weights=True)
    files, bests = FileSpy("best.keras"), BestSpy(best)
    history = model.fit(x, y, batch_size=16, epochs=EPOCHS, validation_split=0.25, verbose=0,
                        callbacks=[copies, tracker, best, every, batches, legacy, backup, kick, files, bests, stopper])
    model.save("final.keras")
    frame = Store(db).checkpoints(tracker.run_id)
    return {"folder": folder, "model": model, "copies": copies, "history": history.history, "frame": frame,
            "best": best, "files": files, "bests": bests, "run_id": tracker.run_id, "db": db}


def rows(frame, saver_path_suffix=None, **equal):
    out = frame
    for column, value in equal.items():
        out = out[out[column] == value]
    if saver_path_suffix is not None:
        out = out[out["path"].str.endswith(saver_path_suffix)]
    return [r._asdict() for r in out.itertuples(index=False)]


def test_a_best_only_checkpoint_records_its_saves_and_its_skipped_epochs_with_the_reasoning(fitted):
    frame, files, bests, history = fitted["frame"], fitted["files"], fitted["bests"], fitted["history"]
    written = [e for e in range(EPOCHS) if files.digests[e] != (files.digests.get(e - 1) if e else None)]
    assert written and len(written) < EPOCHS, "the setup must save some epochs and skip others"
    mine = rows(frame, "best.keras")
    assert [r["epoch"] for r in mine if r["saved"]] == written
    assert [r["epoch"] for r in mine if not r["saved"]] == [e for e in range(EPOCHS) if e not in written]
    before = None
    for r in mine:
        e = r["epoch"]
        assert r["path"] == str(fitted["folder"] / "best.keras") and r["kind"] == "model"
        assert r["reason"] == ("improved" if r["saved"] else "not_improved")
        assert r["saver"] == "ModelCheckpoint" and r["monitor"] == "val_loss" and pd_missing(r["batch"])
        assert th.bits(r["value"]) == th.bits(history["val_loss"][e])
        expected_before = before if r["saved"] else bests.after[e]
        assert (pd_missing(r["best"]) and expected_before is None) or th.bits(r["best"]) == th.bits(expected_before)
        before = bests.after[e]
    assert bests.after[EPOCHS - 1] == fitted["best"].best


def test_each_save_has_the_fingerprint_of_the_weights_in_its_file(fitted):
    frame, copies = fitted["frame"], fitted["copies"]
    saved = frame[frame["saved"]]
    assert len(saved) > 2 * EPOCHS
    for r in saved.itertuples(index=False):
        if r.kind == "backup":
            continue  # rewritten every epoch: checked against the weight copies below
        assert os.path.isabs(r.path) and os.path.exists(r.path), r.path
        if r.reason != "final" and pd_missing(r.batch):
            assert r.fingerprint == fingerprint_arrays(copies.copies[r.epoch])
    last = {}
    for r in saved.itertuples(index=False):
        last[r.path] = r.fingerprint
    for path, fingerprint in last.items():
        if not path.endswith("latest.weights.h5"):
            assert fingerprint_arrays(weights_in(path)) == fingerprint, path


def test_a_checkpoint_every_epoch_names_each_file_as_keras_formatted_it(fitted):
    history, folder = fitted["history"], fitted["folder"]
    mine = rows(fitted["frame"], ".weights.h5", reason="periodic", saver="ModelCheckpoint")
    every = [r for r in mine if pd_missing(r["batch"])]
    assert [r["epoch"] for r in every] == list(range(EPOCHS))
    for r in every:
        expected = f"{r['epoch'] + 1:02d}-{history['val_loss'][r['epoch']]:.3f}.weights.h5"  # Keras' {epoch} is epoch + 1
        assert r["path"] == str(folder / expected) and r["kind"] == "weights" and pd_missing(r["monitor"])
    legacy = rows(fitted["frame"], "legacy.h5")
    assert [r["epoch"] for r in legacy] == list(range(EPOCHS)) and {r["kind"] for r in legacy} == {"model"}


def test_a_checkpoint_every_n_batches_records_the_batch_and_step_keras_named_the_file_with(fitted):
    batches = [r for r in rows(fitted["frame"], saver="ModelCheckpoint") if not pd_missing(r["batch"])]
    files = sorted(p for p in os.listdir(fitted["folder"]) if re.fullmatch(r"b\d+-\d+\.weights\.h5", p))
    assert len(batches) == EPOCHS * STEPS // 2 == len(files)
    for r in batches:
        assert r["path"] == str(fitted["folder"] / f"b{r['epoch'] + 1}-{r['batch'] + 1}.weights.h5")
        assert r["step"] == r["epoch"] * STEPS + r["batch"] and r["reason"] == "periodic"
        assert fingerprint_arrays(weights_in(r["path"])) == r["fingerprint"]


def test_backup_and_restore_writes_backup_rows_of_the_weights_each_epoch_trained(fitted):
    backups = rows(fitted["frame"], kind="backup")
    assert [r["epoch"] for r in backups] == list(range(EPOCHS))
    for r in backups:
        assert r["saver"] == "BackupAndRestore" and r["path"] == str(fitted["folder"] / "backup" / "latest.weights.h5")
        assert r["fingerprint"] == fingerprint_arrays(fitted["copies"].copies[r["epoch"]])
    assert fingerprint_arrays(weights_in(backups[-1]["path"])) == backups[-1]["fingerprint"]


def test_a_save_after_the_fit_names_the_restored_epoch_it_holds(fitted):
    (final,) = rows(fitted["frame"], reason="final")
    restored = fitted["copies"].epoch_of(fitted["model"].get_weights())
    assert restored is not None and restored < EPOCHS - 1, "the setup must restore an earlier epoch"
    assert final["epoch"] == restored and final["saver"] == "user code" and final["kind"] == "model"
    assert final["path"] == str(fitted["folder"] / "final.keras")
    assert final["fingerprint"] == fingerprint_arrays(weights_in(final["path"]))


def pd_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


class Counting(keras.Sequential):
    """Counts ``get_weights`` calls: each fingerprint the tracker takes copies the weights once."""

    calls = 0

    def get_weights(self):
        Counting.calls += 1
        return super().get_weights()


def counted_fit(db, tmp_path, *callbacks) -> int:
    keras.utils.set_random_seed(1)
    model = Counting([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mean_squared_error")
    Counting.calls = 0
    model.fit(*small_data(), batch_size=16, epochs=EPOCHS, validation_split=0.25, verbose=0,
              callbacks=[TrackingCallback(db), *callbacks])
    return Counting.calls


def test_a_save_at_epoch_end_reuses_the_epoch_fingerprint_and_costs_no_copy(db, tmp_path):
    without = counted_fit(db, tmp_path)
    every = keras.callbacks.ModelCheckpoint(str(tmp_path / "{epoch}.weights.h5"), save_weights_only=True)
    best = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), monitor="val_loss", save_best_only=True,
                                           save_weights_only=True)
    assert counted_fit(db, tmp_path, every, best) == without
    store = Store(db)
    saved = store.checkpoints(store.runs()["run_id"].iloc[-1])
    saved = saved[saved["saved"]]
    assert len(saved) > EPOCHS
    last = {r.path: r.fingerprint for r in saved.itertuples(index=False)}
    for path, fingerprint in last.items():
        assert fingerprint_arrays(weights_in(path)) == fingerprint


class ResetAt(keras.callbacks.Callback):
    """Listed before a checkpoint: puts the initial weights back in ``on_epoch_end`` of one epoch."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch, self.initial = epoch, None

    def on_train_begin(self, logs=None):
        self.initial = [np.copy(w) for w in self.model.get_weights()]

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.set_weights(self.initial)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_a_save_after_weights_changed_in_the_same_event_fingerprints_what_was_written(db, tmp_path):
    copies, reset = th.WeightCopies(), ResetAt(1)
    every = keras.callbacks.ModelCheckpoint(str(tmp_path / "{epoch}.weights.h5"), save_weights_only=True)
    tracker = TrackingCallback(db, run_name="reset")
    model = small_model()
    model.fit(*small_data(), batch_size=16, epochs=EPOCHS, validation_split=0.25, verbose=0,
              callbacks=[copies, tracker, reset, every])
    ema_model = small_model()
    ema_model.compile(optimizer=keras.optimizers.SGD(0.01, use_ema=True, ema_momentum=0.5), loss="mean_squared_error")
    ema = TrackingCallback(db, run_name="ema")
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    ema_every = keras.callbacks.ModelCheckpoint(str(tmp_path / "ema{epoch}.weights.h5"), save_weights_only=True)
    ema_copies = th.WeightCopies()
    ema_model.fit(*small_data(), batch_size=16, epochs=2, validation_split=0.25, verbose=0,
                  callbacks=[ema_copies, ema, swap, ema_every])
    store = Store(db)
    for run, trained in (("reset", copies), ("ema", ema_copies)):
        for r in store.checkpoints(run).itertuples(index=False):
            written = fingerprint_arrays(weights_in(r.path))
            assert r.fingerprint == written, (run, r.epoch)
            differs = written != fingerprint_arrays(trained.copies[r.epoch])
            assert differs == (run == "ema" or r.epoch == 1), (run, r.epoch)  # not the epoch's weights as trained


def test_a_save_after_a_fit_whose_tracker_was_passed_inline_is_recorded(db, tmp_path):
    import gc

    model = small_model()
    model.fit(*small_data(), batch_size=16, epochs=1, verbose=0, callbacks=[TrackingCallback(db, run_name="inline")])
    gc.collect()  # nothing of the user's holds the tracker any more
    model.save(str(tmp_path / "after.keras"))
    (row,) = rows(Store(db).checkpoints("inline"))
    assert row["path"] == str(tmp_path / "after.keras") and row["reason"] == "final" and row["epoch"] == 0
    assert row["fingerprint"] == fingerprint_arrays(weights_in(row["path"]))
