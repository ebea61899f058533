"""The learning rate, bit for bit, on every backend.

Ground truth:

* ``LRSpy`` (listed last) reads ``float(np.asarray(optimizer.learning_rate))``
  and ``optimizer.iterations`` at ``on_train_batch_begin`` on the training
  thread. On JAX it first calls ``model.jax_state_sync()`` (the trainer keeps
  the live optimizer state outside the variables during an epoch); the
  ``Callback.model`` property does the same on JAX.
* ``lr_at_step(schedule, step)``: the schedule evaluated the way an
  optimizer evaluates it, through a probe optimizer built on the same
  schedule object whose own ``iterations`` variable is set to ``step``. It is
  checked against the spy wherever the spy could read, and used for the
  steps no hook can see (``steps_per_execution``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import truth_helpers as th
from tracker import TrackingCallback

pytestmark = pytest.mark.backend


def lr_at_step(schedule, step: int) -> float:
    """The rate an optimizer on ``schedule`` trains with at ``step`` (its own code path)."""
    probe = keras.optimizers.SGD(learning_rate=schedule)
    probe.iterations.assign(step)
    return th.read_lr(probe)


def fit(db_path, model, callbacks_for, *, n=64, batch_size=16, epochs=3, features=784, **fit_kw):
    x, y = th.make_data(n, features=features)
    tracker = TrackingCallback(db_path)
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=callbacks_for(tracker), verbose=0, **fit_kw)
    return tracker, history


# -- plain rates: never NaN, no false "unknown" changes ------------------------------------


def test_a_constant_rate_reads_as_itself_every_epoch_with_no_change_rows(db_path):
    spy = th.LRSpy()
    tracker, _ = fit(db_path, th.make_model(learning_rate=0.01), lambda t: [t, spy], epochs=4)
    epochs = th.lr_series(db_path, tracker.run_id, "epoch")
    assert [(p.epoch, p.lr) for p in epochs] == sorted(spy.by_epoch.items())
    begin = th.lr_series(db_path, tracker.run_id, "phase_begin")
    assert [p.lr for p in begin] == [spy.start]
    assert th.lr_changes(db_path, tracker.run_id) == []


def test_learning_rate_scheduler_makes_exactly_its_changes_and_no_unknown_ones(db_path):
    spy = th.LRSpy()
    scheduler = keras.callbacks.LearningRateScheduler(lambda e, lr: {1: 0.005, 3: 0.001}.get(e, lr))
    tracker, _ = fit(db_path, th.make_model(learning_rate=0.01), lambda t: [t, scheduler, spy], epochs=4)
    assert len(spy.changes()) == 2
    stored = th.lr_changes(db_path, tracker.run_id)
    assert [(c.epoch, c.step, c.old_lr, c.new_lr, c.source, c.hook) for c in stored] == [
        (*change, "LearningRateScheduler", "on_epoch_begin") for change in spy.changes()
    ]


# -- schedules: a per-batch series, bit for bit ------------------------------------------------


SCHEDULES = {
    "exponential": lambda: keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.7),
    "exponential-staircase": lambda: keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5, staircase=True),
    "piecewise": lambda: keras.optimizers.schedules.PiecewiseConstantDecay([5, 9], [0.1, 0.05, 0.01]),
    "cosine": lambda: keras.optimizers.schedules.CosineDecay(0.1, decay_steps=20, alpha=0.1),
    "cosine-warmup": lambda: keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=16, warmup_target=0.1, warmup_steps=4
    ),
    # values float32 cannot hold: every step lands on an awkward rounding
    "awkward-float32": lambda: keras.optimizers.schedules.ExponentialDecay(0.123456789, 1, 0.987654321),
    "inverse-time": lambda: keras.optimizers.schedules.InverseTimeDecay(0.3, decay_steps=1, decay_rate=0.37),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_per_batch_series_is_bit_exact_at_every_step(db_path, name):
    schedule = SCHEDULES[name]()
    spy = th.LRSpy(every_batch=True)
    model = th.make_model(keras.optimizers.SGD(schedule), features=16)
    tracker, _ = fit(db_path, model, lambda t: [t, spy], n=48, batch_size=8, epochs=3, features=16)

    truth = [(e, b, s, th.bits(lr)) for e, b, s, lr in spy.by_batch]
    assert len(truth) == 18
    probed = (truth[0], truth[7], truth[-1])  # eager schedule calls are slow on JAX: a sample
    assert [t[3] for t in probed] == [th.bits(lr_at_step(schedule, t[2])) for t in probed], "the two truths agree"
    if name != "piecewise" and not name.endswith("staircase"):
        assert len({t[3] for t in truth}) == 18, "the setup must change the rate at every step"
    stored = th.lr_series(db_path, tracker.run_id, "batch")
    got = [(p.epoch, p.batch, p.step, None if p.lr is None else th.bits(p.lr)) for p in stored]
    assert [g[:3] for g in got] == [t[:3] for t in truth], "one row per train batch, in order: (epoch, batch, step)"
    want = {t[2]: t for t in truth}
    wrong = [
        f"step {g[2]}: stored {th.from_bits(g[3])!r}, trained with {th.from_bits(want[g[2]][3])!r}"
        for g in got
        if g[2] in want and g != want[g[2]]
    ]
    assert not wrong, f"{len(wrong)} of {len(got)} per-batch rates are not bit-exact: " + "; ".join(wrong[:6])
    epochs = th.lr_series(db_path, tracker.run_id, "epoch")
    assert [(p.epoch, p.step, th.bits(p.lr)) for p in epochs] == [
        (e, spy.step_of_epoch[e], th.bits(lr)) for e, lr in sorted(spy.by_epoch.items())
    ]
    assert th.lr_changes(db_path, tracker.run_id) == []


def test_schedule_series_with_steps_per_execution_is_bit_exact(db_path):
    if keras.backend.backend() == "torch":
        pytest.skip("steps_per_execution must be 1 with the PyTorch backend (Keras raises ValueError)")
    schedule = SCHEDULES["awkward-float32"]()
    spy = th.LRSpy(every_batch=True)
    model = th.make_model(keras.optimizers.SGD(schedule), features=16, steps_per_execution=2)
    tracker, _ = fit(db_path, model, lambda t: [t, spy], n=48, batch_size=8, epochs=2, features=16)

    seen = {s: th.bits(lr) for _, _, s, lr in spy.by_batch}
    assert sorted(seen) == [0, 2, 4, 6, 8, 10]  # 6 steps per epoch, a hook every 2
    assert all(seen[s] == th.bits(lr_at_step(schedule, s)) for s in seen), "the two truths agree"
    stored = th.lr_series(db_path, tracker.run_id, "batch")
    assert len(stored) == 6, f"one row per batch hook, got {[(p.epoch, p.batch, p.step) for p in stored]}"
    wrong = [
        (p.epoch, p.batch, p.step, p.lr, lr_at_step(schedule, p.step))
        for p in stored
        if p.step is None or p.lr is None or th.bits(p.lr) != th.bits(lr_at_step(schedule, p.step))
    ]
    assert not wrong, f"(epoch, batch, step, stored lr, the rate at that step): {wrong}"
    observed = [(p.step, th.bits(p.lr)) for p in stored if p.step in seen]
    assert all(seen[s] == b for s, b in observed)


# -- gradient accumulation: the schedule sees every batch, ``iterations`` counts updates -----------


class CounterSpy(keras.callbacks.Callback):
    """At each train batch begin (list it LAST): the optimizer's rate (Keras' own ``learning_rate``
    property, the schedule at its step counter), that counter, and ``optimizer.iterations``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, int, int, int, float]] = []  # (epoch, batch, counter, iterations, lr)
        self.begun = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        th.sync_state(self.model)
        optimizer = self.model.optimizer
        counter = int(np.asarray(keras.ops.convert_to_numpy(optimizer._iterations)))
        assert counter == self.begun, "the counter counts every batch trained (recomputed here)"
        self.begun += 1
        self.rows.append((self._epoch, batch, counter, th.read_step(optimizer), th.read_lr(optimizer)))


@pytest.mark.parametrize("accumulate", [3, 4])
def test_schedule_under_gradient_accumulation_is_read_at_the_step_the_optimizer_uses(db_path, accumulate):
    """Issue 17, point 7: ``optimizer.iterations`` counts updates, the schedule is evaluated at every batch."""
    schedule = SCHEDULES["awkward-float32"]()
    spy = CounterSpy()
    model = th.make_model(keras.optimizers.SGD(schedule, gradient_accumulation_steps=accumulate), features=16)
    tracker, _ = fit(db_path, model, lambda t: [t, spy], n=80, batch_size=8, epochs=2, features=16)

    assert len(spy.rows) == 20
    assert all(it == counter // accumulate for _, _, counter, it, _ in spy.rows), "Keras: iterations = counter // G"
    sample = (spy.rows[0], spy.rows[11], spy.rows[-1])
    assert [th.bits(r[4]) for r in sample] == [th.bits(lr_at_step(schedule, r[2])) for r in sample], (
        "the optimizer's rate is the schedule at its counter"
    )
    stored = th.lr_series(db_path, tracker.run_id, "batch")
    got = [(p.epoch, p.batch, p.step, None if p.lr is None else th.bits(p.lr)) for p in stored]
    want = [(e, b, counter, th.bits(lr)) for e, b, counter, _, lr in spy.rows]
    wrong = [(g, w) for g, w in zip(got, want) if g != w]
    assert len(got) == len(want), f"{len(got)} batch rows, {len(want)} batches"
    assert not wrong, f"{len(wrong)} of {len(want)} (epoch, batch, step, lr) rows differ: {wrong[:4]}"
    first = {e: (counter, lr) for e, b, counter, _, lr in reversed(spy.rows)}
    epochs = th.lr_series(db_path, tracker.run_id, "epoch")
    assert [(p.epoch, p.step, th.bits(p.lr)) for p in epochs] == [
        (e, counter, th.bits(lr)) for e, (counter, lr) in sorted(first.items())
    ], "each epoch: the step and rate of its first batch"
    assert th.lr_changes(db_path, tracker.run_id) == []


# -- mixed precision: the LossScaleOptimizer wrapper ------------------------------------------


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision_scheduler_changes_keep_their_source_and_hook(db_path, mixed_float16):
    spy = th.LRSpy()
    scheduler = keras.callbacks.LearningRateScheduler(lambda e, lr: {1: 0.005, 3: 0.001}.get(e, lr))
    model = th.make_model(learning_rate=0.01, features=16)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    tracker, _ = fit(db_path, model, lambda t: [t, scheduler, spy], epochs=4, features=16)
    assert len(spy.changes()) == 2
    stored = th.lr_changes(db_path, tracker.run_id)
    assert [(c.epoch, c.step, c.old_lr, c.new_lr, c.source, c.hook) for c in stored] == [
        (*change, "LearningRateScheduler", "on_epoch_begin") for change in spy.changes()
    ]
    epochs = th.lr_series(db_path, tracker.run_id, "epoch")
    assert [(p.epoch, p.lr) for p in epochs] == sorted(spy.by_epoch.items())


def test_mixed_precision_schedule_has_a_per_batch_series_and_each_epoch_its_first_step_rate(db_path, mixed_float16):
    schedule = SCHEDULES["exponential"]()
    spy = th.LRSpy(every_batch=True)
    model = th.make_model(keras.optimizers.SGD(schedule), features=16)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    tracker, _ = fit(db_path, model, lambda t: [t, spy], n=48, batch_size=8, epochs=3, features=16)

    epochs = th.lr_series(db_path, tracker.run_id, "epoch")
    assert [(p.epoch, p.step, p.lr) for p in epochs] == [
        (e, spy.step_of_epoch[e], lr) for e, lr in sorted(spy.by_epoch.items())
    ], "each epoch's rate is the one its first step trained with"
    stored = th.lr_series(db_path, tracker.run_id, "batch")
    assert [(p.epoch, p.batch, p.step, p.lr) for p in stored] == spy.by_batch
    assert th.lr_changes(db_path, tracker.run_id) == []


# -- the ground truth itself ------------------------------------------------------------------


def test_the_spy_reads_the_same_rate_the_optimizer_trains_with(db_path):
    """Sanity check of the ground truth itself: with SGD the weight change of
    one step is -lr * grad, so the rate read at batch begin is the rate applied."""
    x, y = th.make_data(8, features=4)
    schedule = SCHEDULES["awkward-float32"]()
    model = th.make_model(keras.optimizers.SGD(schedule), features=4, metrics=())
    spy = th.LRSpy(every_batch=True)
    before = [np.copy(w) for w in model.get_weights()]
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[spy], verbose=0, shuffle=False)
    after = model.get_weights()
    # grad of mean((x @ w + b - y)^2) w.r.t. b is 2 * mean(pred - y)
    pred = x @ before[0] + before[1]
    grad_b = 2.0 * np.mean(pred[:, 0] - y, dtype=np.float32)
    applied = (before[1] - after[1])[0] / grad_b
    assert abs(applied - spy.by_batch[0][3]) <= 1e-4 * spy.by_batch[0][3]
