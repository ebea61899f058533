"""Which weights a fit ends with: EMA, restores through sub-models, a restorer's false claim.

Issue 17, points 6, 8 and 19. Ground truth, taken outside the tracker:

* ``WeightCopies`` (listed first) copies the weights at each epoch end, as
  trained; ``CopiesAfter`` (listed right after ``SwapEMAWeights``) copies
  them as the callbacks after it see them.
* ``TrainEndCopy`` (listed first) copies the weights when ``on_train_end``
  begins: what Keras left in the model after the last epoch
  (``finalize_variable_values`` writes an EMA optimizer's moving averages
  there), before any restorer acts.
* The model's weights after ``fit``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import truth_helpers as th
from conftest import sql
from tracker import TrackingCallback
from tracker.record.fingerprint import fingerprint_arrays

pytestmark = pytest.mark.backend

EPOCHS = 5


class TrainEndCopy(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.weights: list[np.ndarray] | None = None

    def on_train_end(self, logs=None):
        self.weights = [np.copy(w) for w in self.model.get_weights()]


class CopiesAfter(th.WeightCopies):
    """The weights at each epoch end as a callback at this place in the list sees them."""


def kick_last_epoch():
    """0.05, then a huge rate in the last epoch: its loss is the worst, an earlier epoch is best."""
    return keras.callbacks.LearningRateScheduler(lambda e, lr: 3.0 if e == EPOCHS - 1 else 0.05)


def ema_fit(db, callbacks_for, *, validation_split=0.25):
    x, y = th.make_data(64, features=16)
    model = th.make_model(keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.5), features=16)
    tracker = TrackingCallback(db)
    model.fit(x, y, batch_size=8, epochs=EPOCHS, validation_split=validation_split, verbose=0,
              callbacks=callbacks_for(tracker))
    return model, tracker


def final_weights(db, run):
    (fit,) = [p for _, p in th.store(db).run(run)["phases"].iterrows() if p["phase"] == "fit"]
    return fit["final_weights"]


def stored_fingerprints(db, run):
    return dict(sql(db, "SELECT e.epoch, e.fingerprint FROM epochs e JOIN phases p ON p.id = e.phase_id "
                           "WHERE p.run_id = :run ORDER BY e.epoch", {"run": run}))


# -- EMA: Keras writes the moving averages at the end of fit, which is no restore ---------------------


@pytest.mark.parametrize("swap", [None, "for validation", "on epoch"])
@pytest.mark.parametrize("position", ["first", "last"])
def test_ema_weights_written_at_the_end_of_fit_are_no_restore(db, swap, position):
    copies, at_end = th.WeightCopies(), TrainEndCopy()
    deciders = [] if swap is None else [keras.callbacks.SwapEMAWeights(swap_on_epoch=swap == "on epoch")]
    model, tracker = ema_fit(db, lambda t: th.Ordering(position, [copies, at_end], deciders).callbacks(t))

    final = model.get_weights()
    assert th.same_weights(final, at_end.weights), "the truth: nothing changed the weights Keras left at train end"
    assert copies.epoch_of(final) is None, "the truth: they are no epoch's weights as trained (the EMA weights)"

    assert th.restores(db, tracker.run_id) == [], "no callback restored anything"
    assert final_weights(db, tracker.run_id) == "ema"
    # SwapEMAWeights swaps weights around validation and epoch ends: the stored
    # fingerprints are still those of the weights as each epoch trained them.
    assert stored_fingerprints(db, tracker.run_id) == {e: fingerprint_arrays(c) for e, c in copies.copies.items()}


@pytest.mark.parametrize("position", ["first", "last"])
def test_a_real_restore_on_top_of_ema_is_found(db, position):
    copies = th.WeightCopies()
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    model, tracker = ema_fit(db, lambda t: th.Ordering(position, [copies], [kick_last_epoch(), stopper]).callbacks(t))
    truth = copies.epoch_of(model.get_weights())
    assert truth is not None and truth == stopper.best_epoch != EPOCHS - 1, "the setup must restore an earlier epoch"

    (row,) = th.restores(db, tracker.run_id)
    assert (row.restored_epoch, row.last_epoch, row.restored_by, row.hook) == (
        truth, EPOCHS - 1, "EarlyStopping", "on_train_end")
    assert final_weights(db, tracker.run_id) == "trained"


@pytest.mark.parametrize("position", ["first", "last"])
def test_a_restore_of_an_epochs_ema_weights_names_that_epoch(db, position):
    """SwapEMAWeights(swap_on_epoch=True) before EarlyStopping: the stopper keeps each epoch's EMA weights."""
    copies, seen = th.WeightCopies(), CopiesAfter()
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    model, tracker = ema_fit(
        db, lambda t: th.Ordering(position, [copies], [swap, seen, kick_last_epoch(), stopper]).callbacks(t))
    final = model.get_weights()
    truth = seen.epoch_of(final)
    assert truth is not None and truth == stopper.best_epoch != EPOCHS - 1, "the setup must restore an earlier epoch"
    assert copies.epoch_of(final) is None, "the truth: they are not that epoch's weights as trained"

    (row,) = th.restores(db, tracker.run_id)
    assert (row.restored_epoch, row.last_epoch, row.restored_by, row.hook) == (
        truth, EPOCHS - 1, "EarlyStopping", "on_train_end")
    assert final_weights(db, tracker.run_id) == "ema"
    assert th.store(db).restores(tracker.run_id)["final_weights"].tolist() == ["ema"]


# -- restores made through a sub-model, a layer, load_weights or variable.assign ---------------------


def nested_model():
    """A functional model holding a Sequential trunk (a sub-model) and a Dense head."""
    keras.utils.set_random_seed(1)
    trunk = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(4)],
                             name="trunk")
    inputs = keras.Input((16,))
    outputs = keras.layers.Dense(1, name="head")(trunk(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mean_squared_error")
    return model


class PartsRestorer(keras.callbacks.Callback):
    """Keeps the weights of epoch ``keep`` part by part and puts them back in ``hook`` of epoch ``at``."""

    def __init__(self, how: str, keep: int, hook: str, at: int = EPOCHS - 1, path: str | None = None) -> None:
        super().__init__()
        self.how, self.keep, self.hook, self.at, self.path = how, keep, hook, at, path
        self.kept: list[tuple[object, list[np.ndarray]]] = []

    def _parts(self):
        trunk, head = self.model.get_layer("trunk"), self.model.get_layer("head")
        if self.how == "sub-model":
            return [trunk, head]
        return [*trunk.layers, head]  # layer by layer

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.keep:
            if self.how == "load_weights":
                self.model.save_weights(self.path)
            elif self.how == "variable.assign":
                self.kept = [(v, np.copy(v.numpy())) for v in self.model.weights]
            else:
                self.kept = [(part, [np.copy(w) for w in part.get_weights()]) for part in self._parts()]
        if self.hook == "on_epoch_end" and epoch == self.at:
            self._restore()

    def on_train_end(self, logs=None):
        if self.hook == "on_train_end":
            self._restore()

    def _restore(self):
        if self.how == "load_weights":
            self.model.load_weights(self.path)
        elif self.how == "variable.assign":
            for variable, value in self.kept:
                variable.assign(value)
        else:
            for part, weights in self.kept:
                part.set_weights(weights)


@pytest.mark.parametrize("how", ["sub-model", "layer by layer", "load_weights", "variable.assign"])
@pytest.mark.parametrize("hook", ["on_train_end", "on_epoch_end"])
@pytest.mark.parametrize("position", ["first", "last"])
def test_a_restore_through_a_sub_model_or_layer_names_the_callback_and_hook(db, tmp_path, how, hook, position):
    copies = th.WeightCopies()
    restorer = PartsRestorer(how, keep=1, hook=hook, path=str(tmp_path / "best.weights.h5"))
    x, y = th.make_data(64, features=16)
    model = nested_model()
    tracker = TrackingCallback(db)
    model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
              callbacks=th.Ordering(position, [copies], [restorer]).callbacks(tracker))
    truth = copies.epoch_of(model.get_weights())
    assert truth == 1, "the truth: the model ends with epoch 1's weights"

    (row,) = th.restores(db, tracker.run_id)
    assert (row.restored_epoch, row.last_epoch) == (truth, EPOCHS - 1)
    if how == "variable.assign":  # no call the tracker can see: found, and the restorer not guessed
        assert (row.restored_by, row.hook, row.at_epoch) == ("unknown", None, None)
    else:
        assert (row.restored_by, row.hook, row.at_epoch) == ("PartsRestorer", hook, EPOCHS - 1)
    assert final_weights(db, tracker.run_id) == "trained"


# -- the fingerprints decide, not the restorer's claim ------------------------------------------------


class ClaimsOneRestoresAnother(keras.callbacks.Callback):
    """Keeps the weights of epoch ``kept``, says ``best_epoch = claimed``, restores the kept ones at train end."""

    def __init__(self, kept: int, claimed: int) -> None:
        super().__init__()
        self.kept, self.best_epoch, self.weights = kept, claimed, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.kept:
            self.weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.weights)


@pytest.mark.parametrize("position", ["first", "last"])
def test_a_restorers_best_epoch_is_not_believed_when_its_weights_are_not_the_final_ones(db, position):
    copies = th.WeightCopies()
    restorer = ClaimsOneRestoresAnother(kept=1, claimed=3)
    x, y = th.make_data(64, features=16)
    model = th.make_model(keras.optimizers.SGD(0.05), features=16)
    tracker = TrackingCallback(db)
    model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
              callbacks=th.Ordering(position, [copies], [restorer]).callbacks(tracker))
    assert copies.epoch_of(model.get_weights()) == 1
    assert not th.same_weights(copies.copies[1], copies.copies[3]), "the claimed epoch's weights differ"

    (row,) = th.restores(db, tracker.run_id)
    assert (row.restored_epoch, row.restored_by, row.last_epoch) == (1, "ClaimsOneRestoresAnother", EPOCHS - 1)
