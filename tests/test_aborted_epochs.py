"""An epoch whose ``on_epoch_end`` a callback cut short by raising (issue 17, point 9).

A pruning callback (optuna-integration's ``KerasPruningCallback`` raising
``optuna.TrialPruned``) or a Ray Tune report ends the fit inside
``on_epoch_end``. Every callback listed after it never sees that epoch's end:
an explicit tracker listed after it, and an autologged one (``autolog`` lists
it last). The epoch was trained and Keras computed its logs, so it is kept.

Ground truth: a ``keras.callbacks.History`` listed FIRST (Keras appends its own
History after the user's callbacks, so that one never sees the epoch either;
Keras then uses the one in the list as ``model.history``), and the exception
the fit raised.
"""

from __future__ import annotations

import keras
import optuna
import pytest
from optuna_integration import KerasPruningCallback

import tracker
import truth_helpers as th
from tracker import TrackingCallback
from tracker.record import capture

pytestmark = pytest.mark.backend

ABORTED_AT = 2


@pytest.fixture(autouse=True)
def _autolog_off_afterwards():
    yield
    tracker.autolog(disable=True)


class AbortAt(keras.callbacks.Callback):
    """Raises in ``on_epoch_end`` of one epoch, after adding a key to the logs (as a pruner reporting might)."""

    def __init__(self, epoch: int, exc: BaseException) -> None:
        super().__init__()
        self.epoch, self.exc = epoch, exc

    def on_epoch_end(self, epoch, logs=None):
        logs["aborter_saw"] = float(epoch)
        if epoch == self.epoch:
            raise self.exc


def _assert_epochs_equal_history(db, run, history):
    stored = th.epoch_values(db, run)
    assert sorted(stored) == history.epoch == list(range(ABORTED_AT + 1)), "every epoch History saw, no other"
    for key, values in history.history.items():
        assert [th.bits(stored[e][key]) for e in history.epoch] == [th.bits(v) for v in values], key


@pytest.mark.parametrize("how", ["tracker-after-the-raiser", "tracker-before-the-raiser", "autolog"])
@pytest.mark.parametrize("exc, status", [(RuntimeError("pruned here"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_an_epoch_a_callback_aborts_in_on_epoch_end_keeps_the_logs_keras_computed(db, how, exc, status):
    x, y = th.make_data(48, features=16)
    model = th.make_model(features=16)
    history = keras.callbacks.History()
    aborter = AbortAt(ABORTED_AT, exc)
    if how == "autolog":
        tracker.autolog(db=db)
        callbacks, cb = [history, aborter], None
    else:
        cb = TrackingCallback(db)
        callbacks = [history, aborter, cb] if how == "tracker-after-the-raiser" else [history, cb, aborter]
    with pytest.raises(type(exc)) as raised:
        model.fit(x, y, batch_size=16, epochs=5, validation_split=0.25, callbacks=callbacks, verbose=0)
    assert raised.value is exc
    assert model.history is history and history.epoch == [0, 1, 2], "the truth: History (listed first) saw epoch 2"

    (run,) = th.run_ids(db)
    assert cb is None or run == cb.run_id
    _assert_epochs_equal_history(db, run, history)
    # The logs as the callbacks before the raise left them: the aborter's own key is there too.
    assert th.epoch_values(db, run)[ABORTED_AT]["aborter_saw"] == float(ABORTED_AT)
    (fit,) = th.phases(db, run)
    assert fit.status == status and th.run_info(db, run)["status"] == status
    assert th.run_listing(db, run)["epochs"] == ABORTED_AT + 1


class _AlwaysPruneFrom(optuna.pruners.BasePruner):
    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study, trial):
        return trial.last_step is not None and trial.last_step >= self.step


def test_optunas_keras_pruning_callback_under_autolog_keeps_the_pruned_epoch(db_path):
    """The real pruning callback, raising optuna.TrialPruned from on_epoch_end, before an autologged tracker."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tracker.autolog(db=db_path)
    x, y = th.make_data(48, features=16)
    histories = []

    def objective(trial):
        model = th.make_model(features=16)
        history = keras.callbacks.History()
        histories.append(history)
        model.fit(x, y, batch_size=16, epochs=5, validation_split=0.25, verbose=0,
                  callbacks=[history, KerasPruningCallback(trial, "val_loss")])
        return 0.0

    study = optuna.create_study(pruner=_AlwaysPruneFrom(ABORTED_AT))
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    (run,) = th.run_ids(db_path)
    _assert_epochs_equal_history(db_path, run, histories[0])
    info = th.run_info(db_path, run)
    # Issue 19: Optuna's stop is a decision, recorded as such, never as a failure.
    assert info["status"] == "pruned" and info["error"] is None
    (stop,) = tracker.Store(db_path).early_stops(run).to_dict("records")
    assert (stop["stopper"], stop["hook"], stop["epoch"], stop["step"]) == ("_AlwaysPruneFrom", "on_epoch_end",
                                                                             ABORTED_AT, ABORTED_AT)
    assert th.bits(stop["value"]) == th.bits(histories[0].history["val_loss"][ABORTED_AT])


class FailureListener:
    """A minimal ``capture.Listener`` that only keeps what ``event_failed`` tells it."""

    def __init__(self) -> None:
        self.model = None
        self.failures: list[capture.EventFailure] = []

    def event_failed(self, failure):
        self.failures.append(failure)

    def __getattr__(self, name):  # every other Listener method: nothing to do
        if name in {m for m in dir(capture.Listener) if not m.startswith("_")}:
            return lambda *args, **kwargs: None
        raise AttributeError(name)


class ListenedTo(keras.callbacks.Callback):
    def __init__(self, listener) -> None:
        super().__init__()
        self.capture_listener = listener


def test_a_listener_learns_what_was_raised_by_whom_in_which_epoch_with_the_logs(tmp_path):
    """What a later sweep status (pruned) builds on: the exception, the epoch, the raiser and the logs."""
    x, y = th.make_data(48, features=16)
    listener = FailureListener()
    history, aborter = keras.callbacks.History(), AbortAt(ABORTED_AT, RuntimeError("pruned"))
    with pytest.raises(RuntimeError):
        th.make_model(features=16).fit(x, y, batch_size=16, epochs=5, verbose=0,
                                       callbacks=[history, aborter, ListenedTo(listener)])
    (failure,) = listener.failures
    assert (failure.event, failure.epoch, failure.callback) == ("on_epoch_end", ABORTED_AT, aborter)
    assert failure.exc is aborter.exc
    assert {k: th.bits(v) for k, v in failure.logs.items() if k in history.history} == {
        k: th.bits(v[-1]) for k, v in history.history.items()
    }
    assert failure.logs["aborter_saw"] == float(ABORTED_AT)
