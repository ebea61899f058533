"""LR changes, early-stop decisions and restores, checked against ground truth.

The truth is computed independently of the tracker, by test-only callbacks:
``WeightCopies`` copies ``model.get_weights()`` at each epoch end (listed
before any restorer, so it copies the weights as trained), and ``LRTruth``
reads the learning rate at the first batch of each epoch (listed after the
schedulers, so it sees the rate the epoch really trains with).
"""

import math

import keras
import numpy as np
import pytest
from conftest import WeightCopies, guide_data, guide_model, sql

from tracker import Store, TrackingCallback
from tracker.callbacks import LR_SCHEDULE, CustomLearningRateScheduler, EarlyStoppingAtMinLoss, lr_schedule

POSITIONS = ["tracker-first", "tracker-last", "tracker-middle"]


class LRTruth(keras.callbacks.Callback):
    def __init__(self, every_batch=False):
        super().__init__()
        self.by_epoch, self.by_batch, self.steps = {}, [], {}
        self.every_batch = every_batch
        self._epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._first = epoch, True

    def on_train_batch_begin(self, batch, logs=None):
        opt = self.model.optimizer
        if self._first or self.every_batch:
            lr = float(np.asarray(opt.learning_rate))
            step = int(np.asarray(opt.iterations))
            if self._first:
                self.by_epoch[self._epoch] = lr
                self.steps[self._epoch] = step
            if self.every_batch:
                self.by_batch.append((self._epoch, batch, step, lr))
            self._first = False

    def changes(self):
        epochs = sorted(self.by_epoch)
        return [
            (e, self.steps[e], self.by_epoch[p], self.by_epoch[e])
            for p, e in zip(epochs, epochs[1:])
            if self.by_epoch[p] != self.by_epoch[e]
        ]


def arrange(position, tracker, truth_first, others, truth_last=()):
    """Callbacks list with the tracker first, last or in the middle."""
    if position == "tracker-first":
        return [tracker, *truth_first, *others, *truth_last]
    if position == "tracker-last":
        return [*truth_first, *others, *truth_last, tracker]
    return [*truth_first, others[0], tracker, *others[1:], *truth_last]


def fit(db, callbacks_for, epochs=8, **kw):
    x, y = guide_data(n=64)
    model = guide_model(**kw)
    tracker = TrackingCallback(db)
    callbacks = callbacks_for(tracker)
    model.fit(x, y, batch_size=16, epochs=epochs, callbacks=callbacks, verbose=0)
    return model, tracker


# -- restores -------------------------------------------------------------------


@pytest.mark.parametrize("position", POSITIONS)
def test_guide_stopper_restoring_in_on_epoch_end(db, position):
    copies, stopper = WeightCopies(), EarlyStoppingAtMinLoss(patience=0)
    model, tracker = fit(db, lambda t: arrange(position, t, [copies], [stopper, keras.callbacks.History()]))
    assert stopper.stopped_epoch > 0, "the setup must make the guide's stopper stop"
    truth = copies.epoch_of(model.get_weights())
    assert truth == stopper.best_epoch != stopper.stopped_epoch

    restores = Store(db).restores(tracker.run_id)
    assert len(restores) == 1
    row = restores.iloc[0]
    assert row["restored_epoch"] == truth
    assert row["last_epoch"] == stopper.stopped_epoch == max(copies.copies)
    assert (row["restored_by"], row["hook"], row["at_epoch"]) == ("EarlyStoppingAtMinLoss", "on_epoch_end", stopper.stopped_epoch)
    assert row["monitor"] == "loss"
    assert row["value_at_restored"] == stopper.best < row["value_at_last"]

    stops = Store(db).early_stops(tracker.run_id)
    assert len(stops) == 1
    stop = stops.iloc[0]
    assert (stop["stopper"], bool(stop["stopped"]), stop["stopped_epoch"]) == ("EarlyStoppingAtMinLoss", True, stopper.stopped_epoch)
    assert (stop["best_epoch"], stop["best"], stop["monitor"], stop["patience"]) == (truth, stopper.best, "loss", 0)


@pytest.mark.parametrize("position", ["tracker-first", "tracker-last"])
@pytest.mark.parametrize("patience, stops_early", [(1, True), (20, False)])
def test_keras_early_stopping_restoring_in_on_train_end(db, position, patience, stops_early):
    copies = WeightCopies()
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=patience, restore_best_weights=True)
    model, tracker = fit(db, lambda t: arrange(position, t, [copies], [stopper]))
    assert (stopper.stopped_epoch > 0) == stops_early
    last = max(copies.copies)
    truth = copies.epoch_of(model.get_weights())
    assert truth == stopper.best_epoch != last, "Keras restores the best epoch even without stopping"

    row = Store(db).restores(tracker.run_id).iloc[0]
    assert (row["restored_epoch"], row["last_epoch"]) == (truth, last)
    assert (row["restored_by"], row["hook"]) == ("EarlyStopping", "on_train_end")

    stops = Store(db).early_stops(tracker.run_id)
    assert len(stops) == 1
    stop = stops.iloc[0]
    assert bool(stop["stopped"]) == stops_early
    assert stop["stopper"] == "EarlyStopping" and stop["best_epoch"] == truth and stop["patience"] == patience
    assert stop["monitor"] == "loss" and stop["best"] == stopper.best
    if stops_early:
        assert stop["stopped_epoch"] == stopper.stopped_epoch and stop["hook"] == "on_epoch_end"
    else:
        assert pd_isna(stop["stopped_epoch"]) and stop["epoch"] == last and stop["wait"] == stopper.wait


def pd_isna(value):
    import pandas as pd

    return pd.isna(value)


@pytest.mark.parametrize("position", ["tracker-first", "tracker-last"])
def test_no_restore_when_restore_best_weights_is_off(db, position):
    copies = WeightCopies()
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=False)
    model, tracker = fit(db, lambda t: arrange(position, t, [copies], [stopper]))
    assert stopper.stopped_epoch > 0
    assert copies.epoch_of(model.get_weights()) == max(copies.copies)  # the truth: last epoch's weights
    assert Store(db).restores(tracker.run_id).empty
    stop = Store(db).early_stops(tracker.run_id).iloc[0]
    assert bool(stop["stopped"]) and stop["stopped_epoch"] == stopper.stopped_epoch


def test_epoch_fingerprints_tell_every_epoch_apart(db):
    copies = WeightCopies()
    _, tracker = fit(db, lambda t: [copies, t], epochs=5)
    fingerprints = [r[0] for r in sql(db, "SELECT fingerprint FROM epochs ORDER BY epoch")]
    assert len(fingerprints) == 5 and len(set(fingerprints)) == 5
    assert all(len(fp) == 32 for fp in fingerprints)


# -- stops ----------------------------------------------------------------------


@pytest.mark.parametrize("position", ["tracker-first", "tracker-last"])
def test_terminate_on_nan_records_the_stop_and_the_stopper(db, position):
    x, y = guide_data(n=64)
    y[5] = np.nan  # the loss goes NaN in the first batch that holds sample 5
    tracker = TrackingCallback(db)
    callbacks = arrange(position, tracker, [], [keras.callbacks.TerminateOnNaN()])
    guide_model().fit(x, y, batch_size=16, epochs=3, shuffle=False, callbacks=callbacks, verbose=0)
    stop = Store(db).early_stops(tracker.run_id).iloc[0]
    assert (stop["stopper"], bool(stop["stopped"]), stop["hook"]) == ("TerminateOnNaN", True, "on_train_batch_end")
    assert (stop["stopped_epoch"], stop["batch"]) == (0, 0)
    batches = Store(db).batches(tracker.run_id)
    assert len(batches) == 1 and math.isnan(batches["loss"][0])


# -- learning rate ----------------------------------------------------------------


@pytest.mark.parametrize("position", ["tracker-first", "tracker-last"])
def test_guide_scheduler_changes_are_recorded_where_they_take_effect(db, position):
    truth = LRTruth()
    _, tracker = fit(
        db,
        lambda t: arrange(position, t, [], [CustomLearningRateScheduler(lr_schedule)], [truth]),
        epochs=14,
    )
    expected_epochs = [epoch for epoch, _ in LR_SCHEDULE]
    assert [c[0] for c in truth.changes()] == expected_epochs
    changes = Store(db).lr_changes(tracker.run_id)
    assert list(zip(changes["epoch"], changes["step"], changes["old_lr"], changes["new_lr"])) == truth.changes()
    assert list(changes["new_lr"]) == [float(np.float32(lr)) for _, lr in LR_SCHEDULE]
    assert set(changes["source"]) == {"CustomLearningRateScheduler"}
    assert set(changes["hook"]) == {"on_epoch_begin"}
    assert list(changes["step"]) == [e * 4 for e in expected_epochs]  # 64 samples / 16 per batch

    series = Store(db).lr_series(tracker.run_id)
    epochs = series[series["point"] == "epoch"]
    assert dict(zip(epochs["epoch"], epochs["lr"])) == truth.by_epoch
    start = series[series["point"] == "phase_begin"]
    assert list(start["lr"]) == [float(np.float32(0.1))]


@pytest.mark.parametrize("position", ["tracker-first", "tracker-last"])
def test_reduce_lr_on_plateau_changes_take_effect_the_next_epoch(db, position):
    truth = LRTruth()
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_lr=0.0)
    _, tracker = fit(db, lambda t: arrange(position, t, [], [plateau], [truth]))
    assert truth.changes(), "the setup must make ReduceLROnPlateau act"
    changes = Store(db).lr_changes(tracker.run_id)
    assert list(zip(changes["epoch"], changes["step"], changes["old_lr"], changes["new_lr"])) == truth.changes()
    assert set(changes["source"]) == {"ReduceLROnPlateau"} and set(changes["hook"]) == {"on_epoch_end"}
    assert Store(db).early_stops(tracker.run_id).empty  # it has patience but never stops


@pytest.mark.parametrize("position", ["tracker-first", "tracker-last"])
def test_keras_learning_rate_scheduler_is_named_as_the_source(db, position):
    truth = LRTruth()
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 if epoch < 2 else 0.02)
    _, tracker = fit(db, lambda t: arrange(position, t, [], [scheduler], [truth]), epochs=4)
    changes = Store(db).lr_changes(tracker.run_id)
    assert list(zip(changes["epoch"], changes["step"], changes["old_lr"], changes["new_lr"])) == truth.changes()
    assert list(changes["source"]) == ["LearningRateScheduler"]


class AssignBehindTheBack(keras.callbacks.Callback):
    """Changes the LR variable directly, bypassing the optimizer's setter."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.model.optimizer._learning_rate.assign(0.03)


def test_a_change_that_bypasses_the_setter_is_recorded_as_unknown(db):
    truth = LRTruth()
    _, tracker = fit(db, lambda t: [t, AssignBehindTheBack(), truth], epochs=4)
    changes = Store(db).lr_changes(tracker.run_id)
    assert list(zip(changes["epoch"], changes["step"], changes["old_lr"], changes["new_lr"])) == truth.changes()
    assert list(changes["source"]) == ["unknown"]


@pytest.mark.parametrize("position", ["tracker-first", "tracker-last"])
def test_learning_rate_schedule_is_a_series_not_change_rows(db, position):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    x, y = guide_data(n=64)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mean_squared_error")
    truth = LRTruth(every_batch=True)
    tracker = TrackingCallback(db)
    callbacks = [tracker, truth] if position == "tracker-first" else [truth, tracker]
    model.fit(x, y, batch_size=16, epochs=3, callbacks=callbacks, verbose=0)

    store = Store(db)
    assert store.lr_changes(tracker.run_id).empty
    series = store.lr_series(tracker.run_id)
    epochs = series[series["point"] == "epoch"]
    assert dict(zip(epochs["epoch"], epochs["lr"])) == truth.by_epoch
    batches = series[series["point"] == "batch"]
    assert list(zip(batches["epoch"], batches["batch"], batches["step"])) == [t[:3] for t in truth.by_batch]
    np.testing.assert_allclose(batches["lr"], [t[3] for t in truth.by_batch], rtol=1e-7)
    assert len(set(batches["lr"])) == 12  # it really changes every step


class TwoOptimizerModel(keras.Model):
    """A model that keeps a second optimizer, as a GAN keeps two."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.aux_optimizer = keras.optimizers.SGD(learning_rate=0.25)

    def call(self, x):
        return self.dense(x)


def test_each_optimizer_gets_its_own_series(db):
    x, y = guide_data(n=32)
    model = TwoOptimizerModel()
    model.compile(optimizer=keras.optimizers.RMSprop(0.1), loss="mean_squared_error")
    tracker = TrackingCallback(db)
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[tracker], verbose=0)
    series = Store(db).lr_series(tracker.run_id)
    epochs = series[series["point"] == "epoch"]
    assert sorted(zip(epochs["optimizer"], epochs["epoch"], epochs["lr"], epochs["step"])) == [
        ("aux_optimizer", 0, 0.25, 0),  # each optimizer counts its own steps: this one never stepped
        ("aux_optimizer", 1, 0.25, 0),
        ("optimizer", 0, float(np.float32(0.1)), 0),
        ("optimizer", 1, float(np.float32(0.1)), 2),
    ]


class ZeroLRAtEpoch(keras.callbacks.Callback):
    """Test-only: trains epoch ``epoch`` with a learning rate of 0, so it ends with the
    very weights the epoch before ended with."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.saved = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.saved = float(np.asarray(self.model.optimizer.learning_rate))
            self.model.optimizer.learning_rate = 0.0
        elif self.saved is not None:
            self.model.optimizer.learning_rate = self.saved
            self.saved = None


class RestoreEpoch(keras.callbacks.Callback):
    """Test-only: restores the weights of epoch ``epoch`` at train end and says so
    through ``best_epoch``, as Keras' EarlyStopping does."""

    def __init__(self, epoch, claim=True):
        super().__init__()
        self.epoch, self.claim, self.weights = epoch, claim, None
        self.best_epoch = epoch if claim else None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.weights)


@pytest.mark.parametrize("claim", [True, False])
@pytest.mark.parametrize("restored", [1, 2])
def test_identical_weights_at_two_epochs_report_the_restorers_epoch_else_the_earliest(db, claim, restored):
    """Issue 9: epochs 1 and 2 end with identical weights (epoch 2 trains with an LR of 0).
    The rule: the epoch the restoring callback names (its best_epoch) when it is one of
    them, else the earliest."""
    x, y = guide_data()
    copies = WeightCopies()
    cb = TrackingCallback(db)
    model = guide_model(learning_rate=0.01)
    model.fit(x, y, batch_size=32, epochs=4, verbose=0,
              callbacks=[copies, ZeroLRAtEpoch(2), cb, RestoreEpoch(restored, claim=claim)])
    assert all(np.array_equal(a, b) for a, b in zip(copies.copies[1], copies.copies[2]))
    assert copies.epoch_of(model.get_weights()) == 2  # the latest of the two, from the copies
    row = Store(db).restores(cb.run_id).iloc[0]
    assert row["restored_epoch"] == (restored if claim else 1)
    assert row["restored_by"] == "RestoreEpoch" and row["last_epoch"] == 3


class StopperStateSpy(keras.callbacks.Callback):
    """Test-only ground truth: the stoppers' own attributes after every on_epoch_end (listed last)."""

    def __init__(self, stoppers):
        super().__init__()
        self.stoppers, self.seen = stoppers, []

    def on_epoch_end(self, epoch, logs=None):
        for s in self.stoppers:
            self.seen.append((epoch, type(s).__name__, s.wait, s.patience, float(s.best)))


@pytest.mark.backend
@pytest.mark.parametrize("position", POSITIONS)
def test_each_stoppers_state_is_recorded_at_every_epoch_end(db, position):
    x, y = guide_data()
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5)
    spy = StopperStateSpy([stop, plateau])
    tracker = TrackingCallback(db)
    guide_model().fit(x, y, batch_size=32, epochs=5, validation_split=0.25, verbose=0,
                      callbacks=[*arrange(position, tracker, [], [stop, plateau]), spy])
    states = Store(db).stopper_states(tracker.run_id)
    stored = [(int(r.epoch), r.stopper, int(r.wait), int(r.patience), float(r.best)) for r in states.itertuples()]
    assert sorted(stored) == sorted(spy.seen)
    assert set(states["monitor"]) == {"val_loss"}


def big_model(seed=1):
    """Over 1 MiB of weights (784 x 512 float32): their fingerprints are hashed on a helper thread."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1), loss="mean_squared_error")
    return model


@pytest.mark.backend
@pytest.mark.parametrize("position", ["tracker-first", "tracker-last"])
@pytest.mark.parametrize("stopper_kind", ["guide", "keras"])
def test_big_weights_hashed_off_the_training_thread_still_tell_the_restored_epoch(db, position, stopper_kind):
    from tracker.record.fingerprint import OFF_THREAD_BYTES, fingerprint_arrays

    x, y = guide_data(n=64)
    model = big_model()
    assert sum(w.nbytes for w in model.get_weights()) >= OFF_THREAD_BYTES
    copies = WeightCopies()
    if stopper_kind == "guide":
        stopper = EarlyStoppingAtMinLoss(patience=0)
    else:
        stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    tracker = TrackingCallback(db)
    model.fit(x, y, batch_size=16, epochs=12, callbacks=arrange(position, tracker, [copies], [stopper]), verbose=0)
    truth = copies.epoch_of(model.get_weights())
    last = max(copies.copies)
    assert truth is not None and truth != last, "the setup must restore an earlier epoch"

    row = Store(db).restores(tracker.run_id).iloc[0]
    assert (row["restored_epoch"], row["last_epoch"]) == (truth, last)
    # Each stored fingerprint is the digest of that epoch's weights as trained (copied by the test).
    stored = dict(sql(db, "SELECT epoch, fingerprint FROM epochs ORDER BY epoch"))
    assert stored == {e: fingerprint_arrays(c) for e, c in copies.copies.items()}
