"""Tests for the callbacks ported from the guide "Writing your own callbacks".

All tests run real (tiny) fits of the guide's model on random data; the
helper callbacks defined here only observe or rewrite `logs`, nothing is
mocked.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import re  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tracker.callbacks as guide_callbacks  # noqa: E402
from tracker.callbacks import LR_SCHEDULE  # noqa: E402
from tracker.callbacks import CustomCallback  # noqa: E402
from tracker.callbacks import CustomLearningRateScheduler  # noqa: E402
from tracker.callbacks import EarlyStoppingAtMinLoss  # noqa: E402
from tracker.callbacks import LossAndErrorPrintingCallback  # noqa: E402
from tracker.callbacks import lr_schedule  # noqa: E402

TRAIN_KEYS = ["loss", "mean_absolute_error"]
EPOCH_KEYS = TRAIN_KEYS + ["val_loss", "val_mean_absolute_error"]


def get_data(n=64, seed=0):
    """Random MNIST-like data: 784 features in [0, 1), labels 0..9."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype("float32")
    y = rng.integers(0, 10, n).astype("float32")
    return x, y


def get_model(learning_rate=0.1, seed=1):
    """The guide's model: one Dense unit on 784 inputs, RMSprop, MSE/MAE."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


class LogRecorder(keras.callbacks.Callback):
    """Test-only: records the logs passed to batch and epoch hooks."""

    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("train_batch", batch, dict(logs)))

    def on_test_batch_end(self, batch, logs=None):
        self.events.append(("test_batch", batch, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch", epoch, dict(logs)))


class WeightSnapshots(keras.callbacks.Callback):
    """Test-only: copies the weights at every epoch end (put it BEFORE the
    early stopper so the copy is taken before any restore)."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = [np.copy(w) for w in self.model.get_weights()]


class ScriptedLoss(keras.callbacks.Callback):
    """Test-only: overwrites (or deletes) logs["loss"] before the stopper.

    Keras 3 passes the same logs dict to every callback of the list, so a
    callback placed earlier in the list can rewrite what later ones see.
    """

    def __init__(self, losses=None, drop=False):
        super().__init__()
        self.losses = losses
        self.drop = drop

    def on_epoch_end(self, epoch, logs=None):
        if self.drop:
            logs.pop("loss")
        else:
            logs["loss"] = self.losses[epoch]


class StopperState(keras.callbacks.Callback):
    """Test-only: records the early stopper's state after each epoch (put it
    AFTER the stopper)."""

    def __init__(self, stopper):
        super().__init__()
        self.stopper = stopper
        self.waits = []
        self.best_epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.waits.append(self.stopper.wait)
        self.best_epochs.append(self.stopper.best_epoch)


class LearningRateProbe(keras.callbacks.Callback):
    """Test-only: the learning rate at the first batch of every epoch."""

    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            lr = self.model.optimizer.learning_rate
            self.lrs.append(float(keras.ops.convert_to_numpy(lr)))


def assert_weights_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert np.array_equal(a, e)


def test_exports():
    assert sorted(guide_callbacks.__all__) == sorted(
        [
            "CustomCallback",
            "LossAndErrorPrintingCallback",
            "EarlyStoppingAtMinLoss",
            "CustomLearningRateScheduler",
            "LR_SCHEDULE",
            "lr_schedule",
        ]
    )
    for name in guide_callbacks.__all__:
        assert hasattr(guide_callbacks, name)


# --------------------------------------------------------------- CustomCallback


def test_custom_callback_prints_every_hook(capsys):
    x, y = get_data(64)
    x_val, y_val = get_data(32, seed=1)
    model = get_model()
    capsys.readouterr()

    model.fit(
        x, y, batch_size=32, epochs=2, verbose=0,
        validation_data=(x_val, y_val), callbacks=[CustomCallback()],
    )
    expected = ["Starting training; got log keys: []"]
    for epoch in range(2):
        expected.append(f"Start epoch {epoch} of training; got log keys: []")
        for batch in range(2):
            expected += [
                f"...Training: start of batch {batch}; got log keys: []",
                f"...Training: end of batch {batch}; got log keys: "
                f"{TRAIN_KEYS}",
            ]
        expected += [
            "Start testing; got log keys: []",
            "...Evaluating: start of batch 0; got log keys: []",
            f"...Evaluating: end of batch 0; got log keys: {TRAIN_KEYS}",
            f"Stop testing; got log keys: {TRAIN_KEYS}",
            f"End epoch {epoch} of training; got log keys: {EPOCH_KEYS}",
        ]
    expected.append(f"Stop training; got log keys: {EPOCH_KEYS}")
    assert capsys.readouterr().out.splitlines() == expected
    assert "'val_loss'" in expected[-2]

    model.evaluate(x, y, batch_size=32, verbose=0, callbacks=[CustomCallback()])
    assert capsys.readouterr().out.splitlines() == [
        "Start testing; got log keys: []",
        "...Evaluating: start of batch 0; got log keys: []",
        f"...Evaluating: end of batch 0; got log keys: {TRAIN_KEYS}",
        "...Evaluating: start of batch 1; got log keys: []",
        f"...Evaluating: end of batch 1; got log keys: {TRAIN_KEYS}",
        f"Stop testing; got log keys: {TRAIN_KEYS}",
    ]

    model.predict(x, batch_size=32, verbose=0, callbacks=[CustomCallback()])
    assert capsys.readouterr().out.splitlines() == [
        "Start predicting; got log keys: []",
        "...Predicting: start of batch 0; got log keys: []",
        "...Predicting: end of batch 0; got log keys: ['outputs']",
        "...Predicting: start of batch 1; got log keys: []",
        "...Predicting: end of batch 1; got log keys: ['outputs']",
        "Stop predicting; got log keys: []",
    ]


def test_custom_callback_accepts_missing_logs(capsys):
    callback = CustomCallback()
    callback.on_train_begin()
    callback.on_epoch_end(3)
    callback.on_predict_batch_end(7, None)
    assert capsys.readouterr().out.splitlines() == [
        "Starting training; got log keys: []",
        "End epoch 3 of training; got log keys: []",
        "...Predicting: end of batch 7; got log keys: []",
    ]


# ------------------------------------------------- LossAndErrorPrintingCallback

BATCH_RE = re.compile(r"^Up to batch (\d+), the average loss is (.{7})\.$")
EPOCH_RE = re.compile(
    r"^The average loss for epoch (\d+) is (.{7}) "
    r"and mean absolute error is (.{7})\.$"
)


def test_loss_and_error_printing_matches_logs(capsys):
    x, y = get_data(96)
    x_val, y_val = get_data(32, seed=1)
    model = get_model()
    recorder = LogRecorder()
    capsys.readouterr()

    history = model.fit(
        x, y, batch_size=32, epochs=3, verbose=0,
        validation_data=(x_val, y_val),
        callbacks=[LossAndErrorPrintingCallback(), recorder],
    )
    lines = capsys.readouterr().out.splitlines()
    # 3 train batches + 1 validation batch + 1 epoch line, per epoch.
    assert len(lines) == 3 * 5
    expected = []
    for kind, index, logs in recorder.events:
        if kind == "epoch":
            expected.append(
                f"The average loss for epoch {index} is {logs['loss']:7.2f} "
                f"and mean absolute error is "
                f"{logs['mean_absolute_error']:7.2f}."
            )
        else:
            expected.append(
                f"Up to batch {index}, the average loss is "
                f"{logs['loss']:7.2f}."
            )
    assert lines == expected

    epoch_lines = [m for m in map(EPOCH_RE.match, lines) if m]
    assert [int(m.group(1)) for m in epoch_lines] == [0, 1, 2]
    for m, loss, mae in zip(
        epoch_lines,
        history.history["loss"],
        history.history["mean_absolute_error"],
    ):
        assert m.group(2) == f"{loss:7.2f}"
        assert m.group(3) == f"{mae:7.2f}"
    batch_lines = [m for m in map(BATCH_RE.match, lines) if m]
    assert len(batch_lines) == 3 * 4
    # The last training batch's running average is the epoch's loss.
    assert batch_lines[2].group(2) == f"{history.history['loss'][0]:7.2f}"
    # The validation batch's loss is the epoch's val_loss.
    assert batch_lines[3].group(1) == "0"
    assert batch_lines[3].group(2) == f"{history.history['val_loss'][0]:7.2f}"

    loss, _ = model.evaluate(
        x, y, batch_size=32, verbose=0,
        callbacks=[LossAndErrorPrintingCallback()],
    )
    lines = capsys.readouterr().out.splitlines()
    assert [BATCH_RE.match(line).group(1) for line in lines] == ["0", "1", "2"]
    assert lines[-1] == f"Up to batch 2, the average loss is {loss:7.2f}."


# ------------------------------------------------------ EarlyStoppingAtMinLoss


@pytest.mark.parametrize("patience", [0, 2])
def test_early_stopping_on_rising_loss_restores_best_weights(capsys, patience):
    # With RMSprop(0.1) on this data the loss overshoots at epoch 0, reaches
    # its minimum at epoch 1 and then keeps rising (it diverges).
    x, y = get_data(128)
    model = get_model(learning_rate=0.1)
    snapshots = WeightSnapshots()
    stopper = EarlyStoppingAtMinLoss(patience=patience)
    epochs = 10
    capsys.readouterr()

    history = model.fit(
        x, y, batch_size=32, epochs=epochs, verbose=0,
        callbacks=[snapshots, stopper],
    )
    losses = history.history["loss"]
    n = len(losses)
    assert n < epochs, f"training did not stop early: {losses}"
    assert stopper.stopped_epoch == n - 1
    assert stopper.best_epoch == int(np.argmin(losses))
    assert stopper.best == losses[stopper.best_epoch] == min(losses)
    assert stopper.stopped_epoch == stopper.best_epoch + max(patience, 1)
    # Strictly decreasing up to the best epoch, never better afterwards.
    assert all(np.diff(losses[: stopper.best_epoch + 1]) < 0)
    assert all(loss >= stopper.best for loss in losses[stopper.best_epoch :])
    assert stopper.wait == max(patience, 1)
    assert model.stop_training

    final = model.get_weights()
    assert_weights_equal(final, snapshots.weights[stopper.best_epoch])
    assert_weights_equal(stopper.best_weights, final)
    last = snapshots.weights[stopper.stopped_epoch]
    assert not all(np.array_equal(a, b) for a, b in zip(final, last))

    assert capsys.readouterr().out.splitlines() == [
        "Restoring model weights from the end of the best epoch.",
        "Epoch %05d: early stopping" % (stopper.stopped_epoch + 1),
    ]

    # State is reset for the next fit.
    stopper.on_train_begin()
    assert (stopper.wait, stopper.stopped_epoch) == (0, 0)
    assert (stopper.best, stopper.best_epoch) == (np.inf, -1)
    assert stopper.best_weights is None


@pytest.mark.parametrize(
    "patience, waits, best_epochs",
    [
        # 3.0 again at epoch 6 is not an improvement (strict np.less).
        (3, [0, 0, 1, 2, 0, 1, 2, 3], [0, 1, 1, 1, 4, 4, 4, 4]),
        # patience 0 and 1 both stop at the first epoch without improvement.
        (0, [0, 0, 1], [0, 1, 1]),
        (1, [0, 0, 1], [0, 1, 1]),
        # Never runs out of patience: every epoch runs, nothing is restored.
        (4, [0, 0, 1, 2, 0, 1, 2, 3, 0, 0], [0, 1, 1, 1, 4, 4, 4, 4, 8, 9]),
    ],
)
def test_early_stopping_patience_counts(capsys, patience, waits, best_epochs):
    losses = [5.0, 4.0, 4.5, 4.2, 3.0, 3.1, 3.0, 3.3, 1.0, 0.5]
    x, y = get_data(64)
    model = get_model()
    snapshots = WeightSnapshots()
    stopper = EarlyStoppingAtMinLoss(patience=patience)
    state = StopperState(stopper)
    capsys.readouterr()

    history = model.fit(
        x, y, batch_size=32, epochs=len(losses), verbose=0,
        callbacks=[ScriptedLoss(losses), snapshots, stopper, state],
    )
    assert state.waits == waits
    assert state.best_epochs == best_epochs
    assert len(history.history["loss"]) == len(waits)
    best_epoch = best_epochs[-1]
    assert stopper.best_epoch == best_epoch
    assert stopper.best == losses[best_epoch]
    out = capsys.readouterr().out
    final = model.get_weights()
    if len(waits) < len(losses):
        assert stopper.stopped_epoch == len(waits) - 1
        assert_weights_equal(final, snapshots.weights[best_epoch])
        assert "Restoring model weights from the end of the best epoch." in out
    else:
        assert stopper.stopped_epoch == 0
        assert_weights_equal(final, snapshots.weights[len(losses) - 1])
        assert out == ""


def test_early_stopping_no_improvement_ever_waits_for_patience(capsys):
    # NaN targets give a NaN loss from the first epoch: np.less(nan, inf) is
    # False, so no epoch ever improves.
    x, _ = get_data(64)
    y = np.full(64, np.nan, dtype="float32")
    model = get_model()
    snapshots = WeightSnapshots()
    stopper = EarlyStoppingAtMinLoss(patience=3)
    state = StopperState(stopper)
    capsys.readouterr()

    history = model.fit(
        x, y, batch_size=32, epochs=8, verbose=0,
        callbacks=[snapshots, stopper, state],
    )
    assert np.isnan(history.history["loss"]).all()
    assert state.waits == [1, 2, 3]
    assert stopper.stopped_epoch == 2
    assert stopper.best_epoch == -1
    assert stopper.best == np.inf
    assert stopper.best_weights is None
    # Nothing to restore: the weights are those of the last epoch.
    for a, b in zip(model.get_weights(), snapshots.weights[2]):
        assert np.array_equal(a, b, equal_nan=True)
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 00003: early stopping"
    ]


def test_early_stopping_warns_when_loss_missing(capsys):
    x, y = get_data(64)
    model = get_model()
    stopper = EarlyStoppingAtMinLoss()
    with pytest.warns(UserWarning) as record:
        history = model.fit(
            x, y, batch_size=32, epochs=3, verbose=0,
            callbacks=[ScriptedLoss(drop=True), stopper],
        )
    messages = [
        str(w.message) for w in record if "not available" in str(w.message)
    ]
    assert len(messages) == 3
    assert "`loss`" in messages[0]
    assert "mean_absolute_error" in messages[0]
    assert len(history.history["mean_absolute_error"]) == 3
    assert (stopper.wait, stopper.stopped_epoch, stopper.best_epoch) == (
        0, 0, -1,
    )
    assert stopper.best_weights is None
    assert not model.stop_training
    assert capsys.readouterr().out == ""


def test_early_stopping_attributes_and_validation():
    stopper = EarlyStoppingAtMinLoss()
    assert stopper.patience == 0
    assert (stopper.monitor, stopper.mode) == ("loss", "min")
    assert (stopper.best_epoch, stopper.best_weights) == (-1, None)
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match="patience"):
            EarlyStoppingAtMinLoss(patience=bad)


# -------------------------------------------------- CustomLearningRateScheduler


def test_lr_schedule_function():
    assert LR_SCHEDULE == [(3, 0.05), (6, 0.01), (9, 0.005), (12, 0.001)]
    assert lr_schedule(0, 0.1) == 0.1
    assert lr_schedule(2, 0.3) == 0.3
    assert lr_schedule(3, 0.1) == 0.05
    assert lr_schedule(4, 0.05) == 0.05
    assert lr_schedule(9, 0.01) == 0.005
    assert lr_schedule(12, 0.005) == 0.001
    assert lr_schedule(13, 0.007) == 0.007


def test_scheduler_sets_learning_rate_each_epoch(capsys):
    x, y = get_data(64)
    model = get_model(learning_rate=0.1)
    probe = LearningRateProbe()
    epochs = 14
    capsys.readouterr()

    model.fit(
        x, y, batch_size=32, epochs=epochs, verbose=0,
        callbacks=[CustomLearningRateScheduler(lr_schedule), probe],
    )
    expected = [0.1] * 3 + [0.05] * 3 + [0.01] * 3 + [0.005] * 3 + [0.001] * 2
    assert len(probe.lrs) == epochs
    assert np.array_equal(
        np.asarray(probe.lrs, dtype="float32"),
        np.asarray(expected, dtype="float32"),
    )
    final_lr = keras.ops.convert_to_numpy(model.optimizer.learning_rate)
    assert np.float32(final_lr) == np.float32(0.001)

    out = capsys.readouterr().out
    printed = re.findall(r"\nEpoch (\d{5}): Learning rate is (.{6})\.", out)
    assert printed == [
        ("%05d" % epoch, "%6.4f" % lr) for epoch, lr in enumerate(expected)
    ]
    assert "\nEpoch 00003: Learning rate is 0.0500.\n" in out


def test_scheduler_rejects_learning_rate_schedule():
    x, y = get_data(64)
    model = get_model()
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=decay),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    with pytest.raises(ValueError, match="LearningRateSchedule") as info:
        model.fit(
            x, y, batch_size=32, epochs=2, verbose=0,
            callbacks=[CustomLearningRateScheduler(lr_schedule)],
        )
    assert "float `learning_rate`" in str(info.value)
    # Keras' traceback filtering re-raises `from None` inside fit(), which
    # drops `__cause__`; called directly, the optimizer's TypeError is kept.
    callback = CustomLearningRateScheduler(lr_schedule)
    callback.set_model(model)
    with pytest.raises(ValueError, match="LearningRateSchedule") as info:
        callback.on_epoch_begin(0)
    assert isinstance(info.value.__cause__, TypeError)


def test_scheduler_requires_learning_rate_attribute():
    # An uncompiled Keras 3 model has no `optimizer` attribute at all.
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    callback = CustomLearningRateScheduler(lr_schedule)
    callback.set_model(model)
    with pytest.raises(
        ValueError, match='Optimizer must have a "learning_rate" attribute.'
    ):
        callback.on_epoch_begin(0)


def test_scheduler_rejects_non_float_schedule_output():
    model = get_model()
    callback = CustomLearningRateScheduler(lambda epoch, lr: "fast")
    callback.set_model(model)
    with pytest.raises(ValueError, match="should be a float"):
        callback.on_epoch_begin(0)
    lr = keras.ops.convert_to_numpy(model.optimizer.learning_rate)
    assert np.float32(lr) == np.float32(0.1)
