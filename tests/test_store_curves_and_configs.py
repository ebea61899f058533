"""Store.batch_curves (batches as NumPy arrays), Store.configs and Store.metric_keys, on real fits."""

import math

import keras
import numpy as np
import pytest
from conftest import bits, guide_data, guide_model

from tracker import Store, TrackingCallback, UnknownRunError
from tracker.store.series import BatchCurves

ODD_VALUES = {1: float("nan"), 2: float("inf"), 3: -0.0, 4: "text"}  # by batch index, train batches only


class OddBatchLogs(keras.callbacks.Callback):
    """Adds ``odd`` to some train batches' logs: NaN, inf, -0.0 and a string (list it before the tracker)."""

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None and batch in ODD_VALUES:
            logs["odd"] = ODD_VALUES[batch]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("curves") / "runs.db")
    x, y = guide_data(n=96)
    model = guide_model()
    cb = TrackingCallback(path, run_name="curves", params={"lr": 0.1})
    model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, callbacks=[OddBatchLogs(), cb], verbose=0)
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[cb], verbose=0)  # a second fit: phase_seq 2
    model.evaluate(x, y, batch_size=32, callbacks=[cb], verbose=0)
    model.predict(x, batch_size=48, callbacks=[cb], verbose=0)
    return path, cb.run_id, model


@pytest.mark.parametrize("phase", ["fit", "validation", "evaluate", "predict"])
def test_batch_curves_hold_every_float_of_store_batches_bit_for_bit(recorded, phase):
    path, run_id, _ = recorded
    store = Store(path)
    curves = store.batch_curves(run_id, phase)
    frame = store.batches(run_id, phase)
    assert isinstance(curves, BatchCurves) and curves.phase == phase and len(curves) == len(frame)
    assert curves.phase_seq.tolist() == frame["phase_seq"].tolist()
    assert curves.batch.tolist() == frame["batch"].tolist() and curves.step.tolist() == frame["step"].tolist()
    assert curves.epoch.tolist() == frame["epoch"].fillna(-1).tolist()
    keys = [c for c in frame.columns if c not in ("phase", "phase_seq", "call", "epoch", "batch", "step", "elapsed")]
    assert sorted(curves.values) == sorted(keys)
    for key, (rows, values) in curves.values.items():
        assert values.dtype == np.float64 and list(rows) == sorted(rows)
        column = frame[key].astype(object).tolist()
        expected = {i: v for i, v in enumerate(column) if isinstance(v, float)}
        assert dict(zip(rows.tolist(), map(bits, values))) == {i: bits(v) for i, v in expected.items()}


def test_batch_curves_keep_nan_inf_and_negative_zero_and_leave_text_out(recorded):
    path, run_id, _ = recorded
    curves = Store(path).batch_curves(run_id, "fit")
    rows, values = curves.values["odd"]
    first_fit = curves.phase_seq == curves.phase_seq[0]
    logged = {(int(curves.epoch[r]), int(curves.batch[r])): v for r, v in zip(rows, values) if first_fit[r]}
    for epoch in (0, 1):
        assert math.isnan(logged[(epoch, 1)]) and logged[(epoch, 2)] == math.inf
        assert bits(logged[(epoch, 3)]) == bits(-0.0)
        assert (epoch, 4) not in logged and (epoch, 0) not in logged  # the string is an extra; batch 0 logged none
    assert np.all(np.diff(curves.step[first_fit]) > 0) and sorted(set(curves.phase_seq.tolist())) == [0, 3]


def test_batch_curves_refuse_an_unknown_phase_or_run(recorded):
    path, run_id, _ = recorded
    with pytest.raises(ValueError, match="phase must be fit, validation, evaluate or predict"):
        Store(path).batch_curves(run_id, "train")
    with pytest.raises(UnknownRunError):
        Store(path).batch_curves("no-such-run")


def test_configs_hold_the_model_config_and_each_fits_optimizer_config_and_keras_params(recorded):
    path, run_id, model = recorded
    configs = Store(path).configs(run_id)
    assert configs["model_config"]["name"] == model.get_config()["name"]
    assert [layer["class_name"] for layer in configs["model_config"]["layers"]] == ["InputLayer", "Dense"]
    fits = configs["fits"]
    assert [f["phase_seq"] for f in fits] == [0, 3]
    assert all(f["optimizer_config"]["class_name"] == "RMSprop" for f in fits)
    assert [f["keras_params"]["epochs"] for f in fits] == [2, 1]
    assert [f["keras_params"]["steps"] for f in fits] == [5, 3]


def test_metric_keys_are_the_numeric_epoch_keys_sorted(recorded):
    path, run_id, _ = recorded
    store = Store(path)
    keys = store.metric_keys()
    assert keys == sorted(store.metrics(run_id)["key"])
    assert keys == ["loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error"]
