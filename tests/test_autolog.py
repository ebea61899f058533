"""``tracker.autolog()``: every fit tracked without passing a callback.

The API under test (being added):

    tracker.autolog(db="tracker.db", *, log_batches=True, tags=None)
    tracker.autolog(disable=True)

After ``autolog()``, every ``model.fit`` gets a tracker (one run per fit);
``evaluate`` and ``predict`` on the same model join that fit's run; an
explicit ``TrackingCallback`` in the list takes precedence (one run, not
two); ``disable=True`` undoes it. Until the API exists these tests fail
with AttributeError.
"""

from __future__ import annotations

import keras
import pytest

import tracker
import truth_helpers as th
from tracker import TrackingCallback


@pytest.fixture(autouse=True)
def _autolog_off_afterwards():
    yield
    if hasattr(tracker, "autolog"):
        tracker.autolog(disable=True)


def _fit(model, x, y, **kw):
    kw.setdefault("batch_size", 16)
    kw.setdefault("epochs", 2)
    kw.setdefault("verbose", 0)
    return model.fit(x, y, **kw)


@pytest.mark.backend
def test_autolog_records_every_fit_as_its_own_run_equal_to_its_history(db_path):
    tracker.autolog(db=db_path)
    x, y = th.make_data(48, features=16)
    histories = [
        _fit(th.make_model(features=16, seed=s), x, y, validation_split=0.25).history for s in (1, 2)
    ]
    runs = th.run_ids(db_path)
    assert len(runs) == 2, f"two fits, {len(runs)} runs"
    for run, history in zip(runs, histories):
        stored = th.epoch_values(db_path, run)
        for key, values in history.items():
            assert [th.bits(stored[e][key]) for e in sorted(stored)] == [th.bits(v) for v in values], key
        assert th.run_info(db_path, run)["status"] == "finished"


def test_autolog_evaluate_and_predict_join_the_fit_run(db_path):
    tracker.autolog(db=db_path)
    x, y = th.make_data(48, features=16)
    model = th.make_model(features=16)
    _fit(model, x, y)
    model.evaluate(x, y, batch_size=16, verbose=0)
    model.predict(x, batch_size=16, verbose=0)
    runs = th.run_ids(db_path)
    assert len(runs) == 1, f"fit, evaluate and predict of one model made {len(runs)} runs"
    assert [p.kind for p in th.phases(db_path, runs[0])] == ["fit", "evaluate", "predict"]
    assert [b.batch for b in th.batches(db_path, runs[0], "evaluate")] == [0, 1, 2]


def test_autolog_a_second_model_gets_its_own_run(db_path):
    tracker.autolog(db=db_path)
    x, y = th.make_data(48, features=16)
    first, second = th.make_model(features=16), th.make_model(features=16, seed=2)
    _fit(first, x, y)
    _fit(second, x, y)
    second.evaluate(x, y, batch_size=16, verbose=0)
    runs = th.run_ids(db_path)
    assert len(runs) == 2
    assert [p.kind for p in th.phases(db_path, runs[0])] == ["fit"]
    assert [p.kind for p in th.phases(db_path, runs[1])] == ["fit", "evaluate"]


@pytest.mark.parametrize("as_tuple", [False, True], ids=["list", "tuple"])
def test_an_explicit_tracking_callback_takes_precedence_over_autolog(db_path, as_tuple):
    tracker.autolog(db=db_path)
    x, y = th.make_data(48, features=16)
    cb = TrackingCallback(db_path, run_name="explicit")
    callbacks = (cb,) if as_tuple else [cb]
    _fit(th.make_model(features=16), x, y, callbacks=callbacks)
    assert th.run_ids(db_path) == [cb.run_id], "one run, the explicit callback's"


def test_autolog_leaves_the_users_callbacks_list_as_it_was(db_path):
    tracker.autolog(db=db_path)
    x, y = th.make_data(48, features=16)
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=5)
    callbacks = [stopper]
    _fit(th.make_model(features=16), x, y, callbacks=callbacks)
    assert callbacks == [stopper]
    assert len(th.run_ids(db_path)) == 1


def test_autolog_disable_undoes_it(db_path):
    tracker.autolog(db=db_path)
    x, y = th.make_data(48, features=16)
    _fit(th.make_model(features=16), x, y)
    tracker.autolog(disable=True)
    model = th.make_model(features=16, seed=2)
    _fit(model, x, y)
    model.evaluate(x, y, batch_size=16, verbose=0)
    runs = th.run_ids(db_path)
    assert len(runs) == 1, "nothing is recorded after autolog(disable=True)"
    assert [p.kind for p in th.phases(db_path, runs[0])] == ["fit"]


def test_autolog_tags_and_log_batches_apply_to_every_run(db_path):
    tracker.autolog(db=db_path, log_batches=False, tags={"sweep": "a"})
    x, y = th.make_data(48, features=16)
    _fit(th.make_model(features=16), x, y)
    (run,) = th.run_ids(db_path)
    assert th.tags(db_path, run) == {"sweep": "a"}
    assert th.batches(db_path, run) == [] and len(th.epochs(db_path, run)) == 2


@pytest.mark.backend
def test_autolog_records_keras_early_stopping_restore_exactly(db_path):
    tracker.autolog(db=db_path)
    x, y = th.make_data(64)
    model = th.make_model(learning_rate=0.01)
    copies = th.WeightCopies()
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
    kick = keras.callbacks.LearningRateScheduler(lambda e, lr: 5.0 if e == 5 else lr)  # the last epoch is the worst
    _fit(model, x, y, epochs=6, validation_split=0.25, callbacks=[copies, kick, stopper])
    truth = copies.epoch_of(model.get_weights())
    assert truth == stopper.best_epoch != copies.last_epoch, "the setup must restore"
    (run,) = th.run_ids(db_path)
    got = [(r.restored_epoch, r.last_epoch, r.restored_by, r.hook) for r in th.restores(db_path, run)]
    assert got == [(truth, copies.last_epoch, "EarlyStopping", "on_train_end")]
    stops = [(s.stopper, s.stopped, s.best_epoch) for s in th.early_stops(db_path, run)]
    assert stops == [("EarlyStopping", False, truth)]
