"""Every decision kind, with the tracker first, in the middle and last.

Each case runs one real fit with test-only spies around the callbacks that
decide, and checks everything the tracker stored about the fit's decisions
against what the spies saw Keras do:

* LR: ``LRSpy`` (listed last) reads the rate at the first batch of each epoch
  and after fit. Every stored change must match the spy's (epoch, step, old,
  new) bit for bit, a change made at the last epoch included (it takes
  effect at ``last + 1``), with the deciding callback's class name and hook.
  The per-epoch series must equal the spy's readings. No ``unknown`` rows.
* Restores: ``WeightCopies`` (listed first) copies the weights at each epoch
  end; the epoch whose copy equals the final weights is the truth. A fit
  that ends on its last epoch's weights has no restore row.
* Stops: the stoppers' own ``stopped_epoch``/``best_epoch``/``wait`` and
  ``StopSpy`` (``model.stop_training`` as Keras left it). A stopper that ran
  to the end without stopping has a ``stopped`` false row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import keras
import numpy as np
import pytest

import truth_helpers as th
from tracker import TrackingCallback
from tracker.callbacks import CustomLearningRateScheduler, EarlyStoppingAtMinLoss

pytestmark = pytest.mark.backend


@dataclass
class Case:
    """One decision scenario: the deciders, the fit and what to expect."""

    deciders: list[Any]
    epochs: int = 6
    validation_split: float = 0.0
    learning_rate: float = 0.01
    nan_label: bool = False
    # class name of the callback that changes the LR → the hook it does it in
    lr_hooks: dict[str, str] = field(default_factory=dict)
    # (class name, hook) of the callback expected to restore, if the truth says a restore happened
    restorer: tuple[str, str] | None = None
    stoppers: list[Any] = field(default_factory=list)
    batch_stop: bool = False  # the stop happens inside a batch (TerminateOnNaN)
    expect: Callable[["Outcome"], None] | None = None  # preconditions on the ground truth


@dataclass
class Outcome:
    model: Any
    copies: th.WeightCopies
    lr: th.LRSpy
    stops: th.StopSpy
    history: dict[str, list[Any]]

    @property
    def restored_epoch(self) -> int | None:
        return self.copies.epoch_of(self.model.get_weights())


def _kick(epoch: int):
    """An LR schedule: 0.01, a huge rate in ``epoch`` (the loss jumps up), then 0.01 again."""
    return lambda e, lr: 5.0 if e == epoch else 0.01


def case_learning_rate_scheduler() -> Case:
    scheduler = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.01 if e < 2 else (0.002 if e < 4 else 0.0005))
    return Case([scheduler], lr_hooks={"LearningRateScheduler": "on_epoch_begin"}, expect=_changes(2))


def case_reduce_lr_on_plateau_also_at_the_last_epoch() -> Case:
    # mode=max with a huge min_delta: the loss "never improves" after epoch 0,
    # so with patience 2 it reduces at the end of epochs 2 and 4, the last.
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", mode="max", min_delta=1e9, patience=2, factor=0.5, min_lr=0.0)
    return Case([plateau], epochs=5, lr_hooks={"ReduceLROnPlateau": "on_epoch_end"}, expect=_changes(2, last=True))


def case_guide_custom_lr_scheduler() -> Case:
    scheduler = CustomLearningRateScheduler(lambda e, lr: {1: 0.005, 3: 0.001}.get(e, lr))
    return Case([scheduler], lr_hooks={"CustomLearningRateScheduler": "on_epoch_begin"}, expect=_changes(2))


def case_early_stopping_restores_without_stopping() -> Case:
    # The kick makes the last epoch the worst, so the best is an earlier one.
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
    kick = keras.callbacks.LearningRateScheduler(_kick(5))
    return Case(
        [kick, stopper], validation_split=0.25, lr_hooks={"LearningRateScheduler": "on_epoch_begin"},
        restorer=("EarlyStopping", "on_train_end"), stoppers=[stopper], expect=_restore(stopped=False),
    )


def case_early_stopping_restore_of_the_last_epoch_is_no_restore() -> Case:
    # At a small rate the loss falls for the first three epochs on every backend, so the
    # best epoch is the last: EarlyStopping "restores" the weights it ends with.
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    return Case([stopper], epochs=3, learning_rate=0.001, stoppers=[stopper], expect=_no_restore)


def case_early_stopping_stops_and_restores() -> Case:
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    kick = keras.callbacks.LearningRateScheduler(_kick(3))
    return Case(
        [kick, stopper], lr_hooks={"LearningRateScheduler": "on_epoch_begin"},
        restorer=("EarlyStopping", "on_train_end"), stoppers=[stopper], expect=_restore(stopped=True),
    )


def case_early_stopping_stops_without_restoring() -> Case:
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=False)
    kick = keras.callbacks.LearningRateScheduler(_kick(3))
    return Case(
        [kick, stopper], lr_hooks={"LearningRateScheduler": "on_epoch_begin"}, stoppers=[stopper],
        expect=_stopped_without_restore,
    )


def case_guide_early_stopping_at_min_loss() -> Case:
    stopper = EarlyStoppingAtMinLoss(patience=0)
    kick = keras.callbacks.LearningRateScheduler(_kick(3))
    return Case(
        [kick, stopper], lr_hooks={"LearningRateScheduler": "on_epoch_begin"},
        restorer=("EarlyStoppingAtMinLoss", "on_epoch_end"), stoppers=[stopper], expect=_restore(stopped=True),
    )


def case_terminate_on_nan() -> Case:
    return Case([keras.callbacks.TerminateOnNaN()], nan_label=True, batch_stop=True, expect=_batch_stop)


def _changes(n: int, last: bool = False):
    def check(o: Outcome) -> None:
        changes = o.lr.changes(include_final=True)
        assert len(changes) >= n, f"the setup must change the LR at least {n} times: {changes}"
        if last:
            assert changes[-1][0] == max(o.copies.copies) + 1, "the setup must change the LR at the last epoch"

    return check


def _restore(stopped: bool):
    def check(o: Outcome) -> None:
        assert o.restored_epoch is not None and o.restored_epoch != o.copies.last_epoch, "the setup must restore"
        assert (o.stops.stopped_at is not None) == stopped

    return check


def _no_restore(o: Outcome) -> None:
    assert o.restored_epoch == o.copies.last_epoch, "the setup must end on the last epoch's weights"


def _stopped_without_restore(o: Outcome) -> None:
    assert o.stops.stopped_at is not None and o.restored_epoch == o.copies.last_epoch


def _batch_stop(o: Outcome) -> None:
    assert o.stops.stopped_at == (0, 0), f"the setup must stop in batch 0 of epoch 0: {o.stops.stopped_at}"


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


def run_case(db_path: str, case: Case, position: str) -> tuple[TrackingCallback, Outcome]:
    x, y = th.make_data(64)
    if case.nan_label:
        y[5] = np.nan  # the loss is NaN from the first batch (no shuffle)
    model = th.make_model(learning_rate=case.learning_rate)
    copies, lr_spy = th.WeightCopies(), th.LRSpy()
    stop_spy = th.StopSpy(*case.stoppers, batches=case.batch_stop)
    tracker = TrackingCallback(db_path)
    order = th.Ordering(position, before=[copies], deciders=case.deciders, after=[lr_spy, stop_spy])
    history = model.fit(
        x, y, batch_size=16, epochs=case.epochs, validation_split=case.validation_split, shuffle=not case.nan_label,
        callbacks=order.callbacks(tracker), verbose=0,
    )
    outcome = Outcome(model, copies, lr_spy, stop_spy, dict(history.history))
    if case.expect is not None:
        case.expect(outcome)
    return tracker, outcome


@pytest.fixture(params=th.POSITIONS, ids=lambda p: f"tracker-{p}")
def position(request):
    return request.param


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_decision_matches_ground_truth(db_path, name, position):
    case = CASES[name]()
    tracker, o = run_case(db_path, case, position)
    run = tracker.run_id
    problems: list[str] = []

    # -- learning rate -------------------------------------------------------------
    truth = o.lr.changes(include_final=True)
    stored = th.lr_changes(db_path, run)
    got = [(c.epoch, c.step, c.old_lr, c.new_lr) for c in stored]
    if [(e, s, th.bits(a), th.bits(b)) for e, s, a, b in truth] != [
        (e, s, None if a is None else th.bits(a), None if b is None else th.bits(b)) for e, s, a, b in got
    ]:
        problems.append(f"LR changes (epoch, step, old, new): stored {got}, Keras {truth}")
    sources = [(c.source, c.hook) for c in stored]
    if stored and truth and any(src not in case.lr_hooks or case.lr_hooks[src] != hook for src, hook in sources):
        problems.append(f"LR change sources/hooks {sources}, expected {case.lr_hooks}")
    epochs_lr = {p.epoch: p.lr for p in th.lr_series(db_path, run, "epoch")}
    if {e: th.bits(v) for e, v in o.lr.by_epoch.items()} != {
        e: (None if v is None else th.bits(v)) for e, v in epochs_lr.items()
    }:
        problems.append(f"per-epoch LR series {epochs_lr}, Keras trained with {o.lr.by_epoch}")

    # -- restores ------------------------------------------------------------------
    restores = th.restores(db_path, run)
    last = o.copies.last_epoch
    if o.restored_epoch == last:
        if restores:
            problems.append(f"a restore was recorded but the fit ended on its last epoch's weights: {restores}")
    else:
        want = (o.restored_epoch, last) + (case.restorer or ("?", "?"))
        got_r = [(r.restored_epoch, r.last_epoch, r.restored_by, r.hook) for r in restores]
        if got_r != [want]:
            problems.append(f"restores {got_r}, truth {[want]}")

    # -- stops ---------------------------------------------------------------------
    for stopper in case.stoppers:  # the ground truth agrees with itself
        if stopper.stopped_epoch > 0:
            assert o.stops.stopped_at == (stopper.stopped_epoch, None), (o.stops.stopped_at, stopper.stopped_epoch)
    stops = th.early_stops(db_path, run)
    want_stops = []
    for stopper in case.deciders:
        name_ = type(stopper).__name__
        if isinstance(stopper, keras.callbacks.TerminateOnNaN):
            epoch, batch = o.stops.stopped_at
            want_stops.append((name_, True, epoch, batch, "on_train_batch_end"))
        elif stopper in case.stoppers:
            if stopper.stopped_epoch > 0:
                want_stops.append((name_, True, stopper.stopped_epoch, None, "on_epoch_end"))
            else:
                want_stops.append((name_, False, None, None, None))
    got_s = [(s.stopper, s.stopped, s.stopped_epoch, s.batch, s.hook) for s in stops]
    if got_s != want_stops:
        problems.append(f"stops (stopper, stopped, stopped_epoch, batch, hook) {got_s}, truth {want_stops}")
    for s in stops:
        stopper = next((d for d in case.stoppers if type(d).__name__ == s.stopper), None)
        if stopper is None:
            continue
        reasoning = (s.best_epoch, s.wait, s.monitor, None if s.best is None else th.bits(s.best))
        truth_r = (stopper.best_epoch, stopper.wait, stopper.monitor, th.bits(stopper.best))
        if reasoning != truth_r:
            problems.append(f"{s.stopper} state (best_epoch, wait, monitor, best bits) {reasoning}, truth {truth_r}")
        if not s.stopped and s.epoch != last:
            problems.append(f"{s.stopper} did-not-stop row at epoch {s.epoch}, the fit's last epoch was {last}")

    assert not problems, "\n".join(problems)
