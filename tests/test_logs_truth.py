"""Every logged value, bit for bit, wherever the tracker sits and however Keras dispatches.

Ground truth: Keras' own ``History`` for epochs, and ``BatchSpy`` for
batches. ``BatchSpy`` is ``async_safe`` like the tracker, so that on JAX and
torch Keras keeps dispatching batch-end hooks to its thread pool with the
spy listed (a callback without ``async_safe`` would make dispatch
synchronous and hide the races these tests are about).
"""

from __future__ import annotations

import threading
import time

import keras
import pytest

import truth_helpers as th
from tracker import TrackingCallback

pytestmark = pytest.mark.backend


def assert_epochs_equal_history(db_path: str, run: str, history: dict[str, list]) -> None:
    stored = th.epoch_values(db_path, run)
    n = len(next(iter(history.values())))
    assert sorted(stored) == list(range(n)), f"stored epochs {sorted(stored)}, History has {n}"
    stored_keys = {k for values in stored.values() for k in values}
    assert stored_keys == set(history), f"stored keys {sorted(stored_keys)}, History keys {sorted(history)}"
    for key, values in history.items():
        got = [stored[e].get(key) for e in range(n)]
        assert th.bit_list(got) == th.bit_list(values), f"{key}: stored {got}, History {values}"


def _schedulers(kind: str) -> list:
    lrs = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.01 if e < 1 else 0.005)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", mode="max", min_delta=1e9, patience=1, factor=0.5)
    return {"LearningRateScheduler": [lrs], "ReduceLROnPlateau": [plateau], "both": [lrs, plateau]}[kind]


@pytest.mark.parametrize("kind", ["LearningRateScheduler", "ReduceLROnPlateau", "both"])
@pytest.mark.parametrize("position", th.POSITIONS, ids=lambda p: f"tracker-{p}")
def test_stored_epochs_equal_history_whatever_the_list_order(db_path, kind, position):
    """LearningRateScheduler and ReduceLROnPlateau add ``learning_rate`` to the
    epoch logs in their ``on_epoch_end``; History (run after every user
    callback) has it, so the stored epochs must have it too."""
    x, y = th.make_data(64)
    model = th.make_model(learning_rate=0.01)
    tracker = TrackingCallback(db_path)
    order = th.Ordering(position, deciders=_schedulers(kind))
    history = model.fit(x, y, batch_size=32, epochs=3, validation_split=0.25, callbacks=order.callbacks(tracker), verbose=0)
    assert "learning_rate" in history.history
    assert_epochs_equal_history(db_path, tracker.run_id, history.history)


class AddsAKey(keras.callbacks.Callback):
    """A user callback that adds its own key to the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        logs["custom/score"] = float(epoch) * 0.5 - 1.0


@pytest.mark.parametrize("position", ["first", "last"], ids=lambda p: f"tracker-{p}")
def test_a_key_added_by_any_later_callback_is_stored(db_path, position):
    x, y = th.make_data(32)
    tracker = TrackingCallback(db_path)
    callbacks = [tracker, AddsAKey()] if position == "first" else [AddsAKey(), tracker]
    history = th.make_model().fit(x, y, batch_size=16, epochs=2, callbacks=callbacks, verbose=0)
    assert_epochs_equal_history(db_path, tracker.run_id, history.history)


def _order_problem(got: list[int], want: list[int]) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    parts = []
    if missing:
        parts.append(f"missing batches {missing}")
    if extra:
        parts.append(f"batches Keras did not run here {extra}")
    inversions = [f"{a} before {b}" for a, b in zip(got, got[1:]) if a > b]
    if inversions:
        parts.append("out of order: " + ", ".join(inversions[:6]))
    if not parts and got != want:
        parts.append(f"stored {got}, Keras {want}")
    return "; ".join(parts)


def assert_batches_equal_spy(db_path: str, run: str, kind: str, truth: dict) -> None:
    problems = batch_problems(db_path, run, kind, truth)
    assert not problems, "\n".join(problems[:20]) + (f"\n... {len(problems)} problems" if len(problems) > 20 else "")


def batch_problems(db_path: str, run: str, kind: str, truth: dict) -> list[str]:
    """Per epoch, all of the spy's batches, in batch-index order, values bit-exact."""
    stored = th.batches(db_path, run, kind)
    by_epoch: dict = {}
    for row in stored:
        by_epoch.setdefault(row.epoch, []).append(row)
    problems = []
    for epoch in sorted(set(by_epoch) - set(truth), key=str):
        problems.append(f"{kind}: {len(by_epoch[epoch])} batches filed under epoch {epoch}, where Keras ran none")
    for epoch, spied in truth.items():
        rows = by_epoch.get(epoch, [])
        got_idx, want_idx = [r.batch for r in rows], [b for b, _ in spied]
        if got_idx != want_idx:
            problems.append(f"{kind} epoch {epoch}: " + _order_problem(got_idx, want_idx))
            continue
        for row, (batch, logs) in zip(rows, spied):
            for key, value in logs.items():
                if key not in row.values or th.bits(row.values[key]) != th.bits(value):
                    problems.append(f"{kind} epoch {epoch} batch {batch} {key}: stored {row.values.get(key)}, Keras {value}")
    keys = {k for spied in truth.values() for _, logs in spied for k in logs}
    if stored and th.batch_keys(db_path, run, kind) != keys:
        problems.append(f"{kind} keys {sorted(th.batch_keys(db_path, run, kind))}, Keras {sorted(keys)}")
    return problems


@pytest.mark.parametrize("position", ["first", "last"], ids=lambda p: f"tracker-{p}")
def test_async_dispatched_batches_are_all_stored_in_order_under_their_epoch_and_phase(db_path, position):
    """On JAX and torch, with every batch-hook callback ``async_safe``, Keras runs
    batch-end hooks on a thread pool and waits for them only at epoch end: the
    last train batches can run after validation began, and out of order."""
    x, y = th.make_data(240, features=16)
    model = th.make_model(learning_rate=0.001, features=16)
    spy = th.BatchSpy()
    tracker = TrackingCallback(db_path)
    callbacks = [tracker, spy] if position == "first" else [spy, tracker]
    epochs = 5
    history = model.fit(x, y, batch_size=4, epochs=epochs, validation_split=0.2, callbacks=callbacks, verbose=0)
    train, test = spy.train_by_epoch(), spy.test_by_epoch()
    assert [len(train[e]) for e in range(epochs)] == [48] * epochs  # 192 samples / 4
    assert [len(test[e]) for e in range(epochs)] == [12] * epochs  # 48 / 4
    problems = batch_problems(db_path, tracker.run_id, "train", train)
    problems += batch_problems(db_path, tracker.run_id, "validation", test)
    assert not problems, "\n".join(problems[:30])
    assert_epochs_equal_history(db_path, tracker.run_id, history.history)


def test_steps_per_execution_batches_are_the_end_steps_keras_passed(db_path):
    if keras.backend.backend() == "torch":
        pytest.skip("steps_per_execution must be 1 with the PyTorch backend (Keras raises ValueError)")
    x, y = th.make_data(100, features=16)
    model = th.make_model(learning_rate=0.001, features=16, steps_per_execution=2)
    spy = th.BatchSpy()
    tracker = TrackingCallback(db_path)
    history = model.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, callbacks=[tracker, spy], verbose=0)
    train = spy.train_by_epoch()
    assert [b for b, _ in train[0]] == [1, 3, 5, 7, 9]  # 80 samples / 8 = 10 steps, 2 per execution
    problems = batch_problems(db_path, tracker.run_id, "train", train)
    problems += batch_problems(db_path, tracker.run_id, "validation", spy.test_by_epoch())
    assert not problems, "\n".join(problems[:30])
    assert_epochs_equal_history(db_path, tracker.run_id, history.history)


def test_evaluate_and_predict_join_the_fit_run_with_every_batch(db_path):
    x, y = th.make_data(96, features=16)
    model = th.make_model(learning_rate=0.001, features=16)
    spy = th.BatchSpy()
    tracker = TrackingCallback(db_path, run_name="joined")
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[tracker, spy], verbose=0)
    spy.test.clear()
    result = model.evaluate(x, y, batch_size=8, callbacks=[tracker, spy], verbose=0, return_dict=True)
    outputs = model.predict(x[:40], batch_size=16, callbacks=[tracker], verbose=0)

    assert th.run_ids(db_path) == [tracker.run_id]
    assert [p.kind for p in th.phases(db_path, tracker.run_id)] == ["fit", "evaluate", "predict"]
    assert_batches_equal_spy(db_path, tracker.run_id, "evaluate", spy.test_by_epoch())
    assert [b.batch for b in th.batches(db_path, tracker.run_id, "predict")] == [0, 1, 2]
    assert outputs.shape == (40, 1) and set(result) == {"loss", "mean_absolute_error"}


class ClockSpy(keras.callbacks.Callback):
    """Reads ``time.perf_counter()`` when the fit and each validation pass begin and at every batch end.

    ``async_safe`` like the tracker: on JAX and torch Keras may run the batch
    hooks on worker threads, but one batch's hooks still run in list order.
    """

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.fit_begin: float | None = None
        self.test_begin: dict[int, float] = {}
        self.train: dict[tuple[int, int], float] = {}
        self.test: dict[tuple[int, int], float] = {}

    def on_train_begin(self, logs=None):
        self.fit_begin = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_test_begin(self, logs=None):
        self.test_begin[self._epoch] = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        with self.lock:
            self.train[(self._epoch, batch)] = now

    def on_test_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        with self.lock:
            self.test[(self._epoch, batch)] = now


def test_a_batchs_elapsed_is_the_time_since_its_phase_began_on_a_clock_outside_the_tracker(db_path):
    """Issue 17, point 21: a clock read just before and just after the tracker's hooks bounds
    every stored ``elapsed``: train batches from the fit's start, validation batches from their pass's."""
    x, y = th.make_data(96, features=16)
    before, after = ClockSpy(), ClockSpy()
    tracker = TrackingCallback(db_path)
    th.make_model(features=16).fit(x, y, batch_size=8, epochs=3, validation_split=0.25, verbose=0,
                                   callbacks=[before, tracker, after])
    rounding = 1e-6  # elapsed is stored in whole microseconds
    for kind, count, ends_before, ends_after, begin_before, begin_after in (
        ("train", 27, before.train, after.train, lambda e: before.fit_begin, lambda e: after.fit_begin),
        ("validation", 9, before.test, after.test, before.test_begin.get, after.test_begin.get),
    ):
        stored = th.batch_elapsed(db_path, tracker.run_id, kind)
        assert len(stored) == count and sorted(stored) == sorted(ends_before) == sorted(ends_after), kind
        outside = [
            (key, ends_before[key] - begin_after(key[0]), value, ends_after[key] - begin_before(key[0]))
            for key, value in stored.items()
            if not ends_before[key] - begin_after(key[0]) - rounding <= value
            <= ends_after[key] - begin_before(key[0]) + rounding
        ]
        assert not outside, f"{kind} (epoch, batch), lower bound, stored elapsed, upper bound: {outside[:5]}"
