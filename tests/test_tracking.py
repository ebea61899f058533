"""TrackingCallback on real fits: what is stored equals what Keras passed."""

import math
import socket
import struct
import time

import keras
import numpy as np
import pytest
from conftest import sql, bits, guide_data, guide_model

import tracker
from tracker import Store, TrackingCallback


class Recorder(keras.callbacks.Callback):
    """Test-only: copies what Keras passes to the hooks."""

    def __init__(self):
        super().__init__()
        self.train_batches, self.test_batches, self.epochs = [], [], {}

    def on_train_batch_end(self, batch, logs=None):
        self.train_batches.append((batch, dict(logs)))

    def on_test_batch_end(self, batch, logs=None):
        self.test_batches.append((batch, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[epoch] = dict(logs)


def nan_metric(y_true, y_pred):
    """A metric that is always NaN."""
    return keras.ops.mean(y_pred) * float("nan")


def test_epoch_values_equal_history_bit_for_bit_with_nan_metric(db, data):
    x, y = data
    model = guide_model(metrics=["mean_absolute_error", nan_metric])
    cb = TrackingCallback(db)
    history = model.fit(x, y, batch_size=32, epochs=5, validation_split=0.25, callbacks=[cb], verbose=0)

    stored = Store(db).epochs(cb.run_id)
    assert list(stored["epoch"]) == [0, 1, 2, 3, 4]
    assert set(history.history) <= set(stored.columns)
    assert {"val_loss", "val_nan_metric", "nan_metric"} <= set(history.history)
    for key, values in history.history.items():
        assert [bits(v) for v in stored[key]] == [bits(v) for v in values], key
    assert all(math.isnan(v) for v in stored["nan_metric"])


def test_train_batch_indices_are_those_keras_passed_with_steps_per_execution(db, data):
    x, y = data
    model = guide_model(steps_per_execution=4)
    recorder = Recorder()
    cb = TrackingCallback(db)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[cb, recorder], verbose=0)

    batches = Store(db).batches(cb.run_id, phase="fit")
    keras_indices = [b for b, _ in recorder.train_batches]
    assert keras_indices[:4] == [3, 7, 11, 15]  # 16 steps per epoch, 4 per execution
    assert list(batches["batch"]) == keras_indices
    assert list(batches["epoch"]) == [0] * 4 + [1] * 4
    for (_, logs), (_, row) in zip(recorder.train_batches, batches.iterrows()):
        assert bits(row["loss"]) == bits(logs["loss"])
        assert bits(row["mean_absolute_error"]) == bits(logs["mean_absolute_error"])


class RaiseAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"boom in epoch {epoch}")


class RaiseInBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            raise ValueError("bad batch")


def test_fit_raising_in_epoch_2_leaves_failed_run_with_epochs_0_and_1(db, data):
    x, y = data
    model = guide_model()
    cb = TrackingCallback(db)
    with pytest.raises(RuntimeError, match="boom in epoch 2"):
        model.fit(x, y, batch_size=32, epochs=5, callbacks=[cb, RaiseAtEpoch(2)], verbose=0)

    store = Store(db)
    run = store.runs().set_index("run_id").loc[cb.run_id]
    assert run["status"] == "failed"
    assert run["ended_at"] is not None
    assert list(store.epochs(cb.run_id)["epoch"]) == [0, 1]
    status, error = sql(db, "SELECT status, error FROM phases WHERE run_id = :r", {"r": cb.run_id})[0]
    assert status == "failed"
    assert "RuntimeError: boom in epoch 2" in error


def test_batches_buffered_before_a_failure_are_kept(db, data):
    x, y = data
    model = guide_model()
    cb = TrackingCallback(db)
    with pytest.raises(ValueError, match="bad batch"):
        model.fit(x, y, batch_size=32, epochs=2, callbacks=[cb, RaiseInBatch()], verbose=0)
    batches = Store(db).batches(cb.run_id)
    # The tracker saw batches 0, 1 and 2 before the user's callback raised in batch 2.
    assert list(batches["batch"]) == [0, 1, 2]
    assert Store(db).runs()["status"].tolist() == ["failed"]


class Interrupt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            raise KeyboardInterrupt


def test_keyboard_interrupt_marks_run_interrupted(db, data):
    x, y = data
    cb = TrackingCallback(db)
    with pytest.raises(KeyboardInterrupt):
        guide_model().fit(x, y, batch_size=32, epochs=2, callbacks=[cb, Interrupt()], verbose=0)
    assert Store(db).runs()["status"].tolist() == ["interrupted"]


def test_fit_evaluate_predict_with_one_callback_is_one_run_of_three_phases(db, data):
    x, y = data
    model = guide_model()
    recorder = Recorder()
    cb = TrackingCallback(db, run_name="three-phases")
    model.fit(x, y, batch_size=32, epochs=2, validation_data=(x[:48], y[:48]), callbacks=[cb, recorder], verbose=0)
    n_validation_batches = len(recorder.test_batches)
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    outputs = model.predict(x[:100], batch_size=32, callbacks=[cb], verbose=0)

    store = Store(db)
    runs = store.runs()
    assert len(runs) == 1 and runs.loc[0, "phases"] == 3 and runs.loc[0, "status"] == "finished"
    phases = sql(
        db,
        "SELECT seq, kind, parent_id, epoch, status, batch_count, sample_count, output_shapes "
        "FROM phases WHERE run_id = :r ORDER BY seq",
        {"r": cb.run_id},
    )
    fit_id = sql(db, "SELECT id FROM phases WHERE kind = 'fit'")[0][0]
    kinds = [p[1] for p in phases]
    assert kinds == ["fit", "validation", "validation", "evaluate", "predict"]
    assert [p[2] for p in phases] == [None, fit_id, fit_id, None, None]
    assert [p[3] for p in phases[1:3]] == [0, 1]  # which epoch each validation belongs to
    assert all(p[4] == "finished" for p in phases)

    validation = store.batches(cb.run_id, phase="validation")
    evaluate = store.batches(cb.run_id, phase="evaluate")
    assert len(validation) == n_validation_batches == 2 * 2  # 48 samples / 32, twice
    assert list(validation["epoch"]) == [0, 0, 1, 1]
    assert len(evaluate) == 128 // 16
    assert list(evaluate["batch"]) == list(range(8))
    for (_, logs), (_, row) in zip(recorder.test_batches, validation.iterrows()):
        assert bits(row["loss"]) == bits(logs["loss"])

    predict = store.batches(cb.run_id, phase="predict")
    assert list(predict["batch"]) == [0, 1, 2, 3]
    assert list(predict.columns) == ["phase", "phase_seq", "call", "epoch", "batch", "step", "elapsed"]  # never the outputs
    assert tuple(phases[4][5:7]) == (4, 100)
    assert phases[4][7] == '{"outputs": [100, 1]}'
    assert outputs.shape == (100, 1)


def test_run_records_model_optimizer_params_tags_and_environment(db, data):
    x, y = data
    model = guide_model()
    cb = TrackingCallback(db, run_name="meta", params={"lr": 0.1, "layers": [1]}, tags={"team": "ü"})
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[cb], verbose=0)
    run = sql(db, "SELECT * FROM runs")[0]._mapping
    phase = sql(db, "SELECT * FROM phases")[0]._mapping
    params = dict(sql(db, "SELECT key, value FROM params"))
    tags = dict(sql(db, "SELECT key, value FROM tags"))
    epoch = sql(db, "SELECT started_at, ended_at FROM epochs")[0]
    assert run["name"] == "meta" and run["id"] == cb.run_id
    assert run["param_count"] == 785 and run["trainable_param_count"] == 785
    assert run["non_trainable_param_count"] == 0
    assert '"Dense"' in run["model_config"]
    assert run["host"] == socket.gethostname() and run["pid"] > 0
    assert '"keras": "3.' in run["versions"] and '"tensorflow"' in run["versions"]
    assert run["started_at"] <= run["ended_at"]
    assert '"RMSprop"' in phase["optimizer_config"] and '"learning_rate": 0.1' in phase["optimizer_config"]
    assert phase["keras_params"] == '{"verbose": 0, "epochs": 1, "steps": 4}'
    assert params == {"lr": "0.1", "layers": "[1]"}  # JSON text, exact
    assert tags == {"team": "ü"}
    assert epoch[0] <= epoch[1]


class Peek(keras.callbacks.Callback):
    """Test-only: reads the database during fit, waiting (bounded) for each epoch to be written."""

    def __init__(self, db):
        super().__init__()
        self.db = db
        self.seen = []
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the background writer, woken at the epoch's end
            if sql(self.db, "SELECT count(*) FROM epochs")[0][0] >= epoch:
                break
            time.sleep(0.01)
        self.seen.append(sql(self.db, "SELECT status FROM runs")[0][0])
        self.epochs.append(sql(self.db, "SELECT count(*) FROM epochs")[0][0])


@pytest.mark.parametrize("tracker_first", [True, False])
def test_status_is_running_during_fit_and_each_epoch_is_written_while_training_goes_on(db, data, tracker_first):
    x, y = data
    peek = Peek(db)
    cb = TrackingCallback(db)
    guide_model().fit(x, y, batch_size=32, epochs=3, callbacks=[cb, peek] if tracker_first else [peek, cb], verbose=0)
    assert peek.seen == ["running"] * 2
    # Epoch k is written once every callback's on_epoch_end(k) has run, by the background writer.
    assert peek.epochs == [1, 2]
    assert len(Store(db).epochs(cb.run_id)) == 3  # fit returns with everything written
    assert Store(db).runs()["status"].tolist() == ["finished"]


class InjectLogs(keras.callbacks.Callback):
    """Test-only: puts odd values into the epoch logs before the tracker sees them."""

    VALUES = {
        "neg_zero": -0.0,
        "pos_inf": math.inf,
        "neg_inf": -math.inf,
        "neg_nan": -math.nan,
        "payload_nan": struct.unpack("<d", struct.pack("<q", 0x7FF0000000000123))[0],
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "big_int": 2**70 + 1,
        "text": "héllo, world",
        "array": np.array([[1.5, 2.0]]),
        "none": None,
        "np_float32": np.float32(0.1),
    }

    def on_epoch_end(self, epoch, logs=None):
        logs.update(self.VALUES)


def test_special_values_round_trip_exactly_and_non_numbers_are_kept(db, data):
    x, y = data
    cb = TrackingCallback(db)
    guide_model().fit(x, y, batch_size=64, epochs=1, callbacks=[InjectLogs(), cb], verbose=0)
    row = Store(db).epochs(cb.run_id).iloc[0]
    for key in ("neg_zero", "pos_inf", "neg_inf", "neg_nan", "payload_nan", "tiny", "huge"):
        assert bits(row[key]) == bits(InjectLogs.VALUES[key]), key
    assert math.copysign(1.0, row["neg_zero"]) == -1.0
    assert row["big_int"] == 2**70 + 1 and isinstance(row["big_int"], int)
    assert row["text"] == "héllo, world"
    assert row["array"] == "[[1.5, 2.0]]"
    assert row["none"] is None
    assert row["np_float32"] == float(np.float32(0.1))


def test_log_batches_false_stores_epochs_but_no_batches(db, data):
    x, y = data
    cb = TrackingCallback(db, log_batches=False)
    guide_model().fit(x, y, batch_size=32, epochs=2, callbacks=[cb], verbose=0)
    store = Store(db)
    assert len(store.epochs(cb.run_id)) == 2
    assert store.batches(cb.run_id).empty
    assert sql(db, "SELECT batch_count FROM phases")[0][0] == 8  # 4 per epoch, counted


def test_two_callbacks_make_two_runs_and_a_second_fit_is_a_second_phase(db, data):
    x, y = data
    model = guide_model()
    first, second = TrackingCallback(db), TrackingCallback(db)
    model.fit(x, y, batch_size=64, epochs=1, callbacks=[first], verbose=0)
    model.fit(x, y, batch_size=64, epochs=2, callbacks=[first], verbose=0)
    model.fit(x, y, batch_size=64, epochs=1, callbacks=[second], verbose=0)
    store = Store(db)
    runs = store.runs().set_index("run_id")
    assert runs.loc[first.run_id, "phases"] == 2 and runs.loc[second.run_id, "phases"] == 1
    epochs = store.epochs(first.run_id)
    assert list(zip(epochs["phase_seq"], epochs["epoch"])) == [(0, 0), (1, 0), (1, 1)]
    assert set(epochs["phase"]) == {"fit"}


def test_unwritable_database_warns_and_training_completes(tmp_path, data):
    x, y = data
    missing = tmp_path / "no-such-dir" / "runs.db"
    with pytest.warns(tracker.TrackingWarning, match="does not exist"):
        cb = TrackingCallback(str(missing))
    with pytest.warns(tracker.TrackingWarning) as caught:
        history = guide_model().fit(x, y, batch_size=64, epochs=2, callbacks=[cb], verbose=0)
    messages = [str(w.message) for w in caught]
    assert any("keeping" in m and "retrying at the next flush" in m for m in messages)
    assert "operations are still in memory" in messages[-1]  # the end-of-run report
    assert len(history.history["loss"]) == 2
    assert cb.pending > 0  # kept in memory for a later retry
    missing.parent.mkdir()
    cb.close()  # the folder exists now: the retry writes everything
    assert cb.pending == 0
    epochs = Store(str(missing)).epochs(cb.run_id)
    assert list(epochs["epoch"]) == [0, 1]
    assert len(Store(str(missing)).batches(cb.run_id)) == 4


def test_strict_mode_raises_on_an_unusable_database(tmp_path):
    with pytest.raises(tracker.DatabaseError, match="does not exist"):
        TrackingCallback(str(tmp_path / "no-such-dir" / "runs.db"), strict=True)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"tags": {"a": 1}}, "tags must map strings to strings"),
        ({"params": [1, 2]}, "params must be a mapping"),
        ({"flush_every": 0}, "flush_every must be a positive integer"),
        ({"run_name": 3}, "run_name must be a string"),
    ],
)
def test_misconfiguration_raises_value_error_naming_the_argument(db, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        TrackingCallback(db, **kwargs)


def test_data_round_trip_of_a_larger_fit_loses_no_batch(db):
    x, y = guide_data(n=1000)
    recorder = Recorder()
    cb = TrackingCallback(db, flush_every=7, flush_interval=0.01)
    guide_model().fit(x, y, batch_size=10, epochs=3, callbacks=[cb, recorder], verbose=0)
    batches = Store(db).batches(cb.run_id)
    assert len(batches) == len(recorder.train_batches) == 300
    assert [bits(v) for v in batches["loss"]] == [bits(logs["loss"]) for _, logs in recorder.train_batches]


class CountingTracker(TrackingCallback):
    """A user's subclass that overrides a batch hook and calls the tracker's own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(batch)
        super().on_train_batch_end(batch, logs)


def test_a_subclass_overriding_a_batch_hook_keeps_its_override_and_the_record(db, data):
    x, y = data
    cb = CountingTracker(db)
    spy = Recorder()
    guide_model().fit(x, y, batch_size=32, epochs=2, callbacks=[cb, spy], verbose=0)
    assert cb.seen == [b for b, _ in spy.train_batches]  # the override ran for every batch
    stored = Store(db).batches(cb.run_id)
    assert stored["batch"].tolist() == cb.seen
    assert [bits(v) for v in stored["loss"]] == [bits(logs["loss"]) for _, logs in spy.train_batches]


def test_batch_hooks_called_by_hand_without_logs_are_recorded(db):
    """A hand-written loop may call the hooks without logs (Keras' own signature allows it)."""
    cb = TrackingCallback(db)
    model = guide_model()
    cb.set_model(model)
    cb.set_params({"epochs": 1, "steps": 2, "verbose": 0})
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_train_batch_end(0)
    cb.on_train_batch_end(1, {"loss": 0.5})
    cb.on_epoch_end(0, {"loss": 0.5})
    cb.on_train_end()
    stored = Store(db).batches(cb.run_id)
    assert stored["batch"].tolist() == [0, 1]
    assert stored["loss"].isna().tolist() == [True, False]


@pytest.mark.parametrize("log_batches", [False, 4])
def test_an_epoch_is_written_during_the_next_one_without_every_batch_recorded(db, data, log_batches):
    """No batch record may come soon (none, or every 4th): the epoch end wakes the writer at once,
    well before a long flush_interval."""
    x, y = data
    peek = Peek(db)
    cb = TrackingCallback(db, log_batches=log_batches, flush_interval=60)
    started = time.monotonic()
    guide_model().fit(x, y, batch_size=32, epochs=3, callbacks=[cb, peek], verbose=0)
    assert peek.epochs == [1, 2]
    assert time.monotonic() - started < 30, "written long before the 60 s flush interval"
