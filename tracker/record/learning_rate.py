"""Recording the learning rate of a fit: its series and every change, with who made it.

``LearningRates`` belongs to one run's recorder. The recorder tells it where
the fit is; the capture (``tracker.record.capture``) tells it about every
assignment to an optimizer's ``learning_rate``.

When the LR is read:

* at fit start (``phase_begin``);
* once every callback's ``on_epoch_begin`` has run (``epoch_started``): the
  rate the epoch's first step trains with. The optimizer's variables are
  attached then on every backend (JAX detaches them during the epoch);
* for an optimizer on a ``LearningRateSchedule``, per recorded batch: the
  schedule's rate at that batch's global step, computed as the optimizer
  does, one step at a time, when the rows are written (off the training
  thread). A step is the optimizer's own counter, which its schedule is
  evaluated at (``optimizers.iterations``: every batch, also under gradient
  accumulation, where ``optimizer.iterations`` counts updates only). A
  batch's step is the epoch's first step plus its index, except
  under loss scaling (mixed precision), which skips the updates whose
  gradients overflowed: then the step is read at each batch's begin.

A change's ``epoch`` is the first epoch that trains with the new value, and
``step`` the first global step: a change made in ``on_epoch_begin(k)`` (or
``on_train_begin``) is epoch k; in ``on_epoch_end(k)`` (ReduceLROnPlateau)
epoch k+1; inside an epoch (a batch hook) that epoch, at the step read then.
A change made behind the setter's back (``variable.assign``) is noticed at
the next read and recorded with source ``unknown``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from tracker.db.writes import (
    DecisionTable,
    InsertDecisions,
    InsertLRBatchSeries,
    Op,
    PhaseRef,
)
from tracker.record.capture import Actor
from tracker.record.optimizers import (
    find_optimizers,
    iterations,
    rate_at,
    read_lr,
    schedule_of,
)
from tracker.status import LRPoint

__all__ = ["LearningRates"]

# Hooks after which a change takes effect from the next epoch start.
_BETWEEN_EPOCHS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here


@dataclass(slots=True)
class _Change:
    optimizer: str
    step: int | None
    old: float | None
    new: float | None
    source: str
    hook: str | None
    epoch: int | None = None

    def row(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer, "epoch": self.epoch, "step": self.step, "old_lr": self.old,
            "new_lr": self.new, "source": self.source, "hook": self.hook,
        }


class LearningRates:
    """The LR series and changes of one run's fits (see the module docstring)."""

    def __init__(self, submit: Callable[[Op], None], *, log_batches: bool) -> None:
        self.submit = submit
        self.log_batches = log_batches
        self.phase: PhaseRef | None = None
        self.optimizers: dict[str, Any] = {}
        self.known: dict[str, float | None] = {}
        self.first_step: dict[str, int | None] = {}
        self.pending: list[_Change] = []
        self.epoch: int | None = None
        self.last_epoch: int | None = None
        self.in_epoch = False
        self.has_schedule = False
        self.loss_scaled = False
        self.probed: dict[str, dict[int, int]] = {}

    def _rows(self, table: DecisionTable, rows: list[dict[str, Any]]) -> None:
        if rows and self.phase is not None:
            self.submit(InsertDecisions(table, self.phase, rows))

    def name_of(self, optimizer: Any) -> str | None:
        """The model attribute holding ``optimizer`` (``optimizer`` for the main one), if watched."""
        for name, candidate in self.optimizers.items():
            if candidate is optimizer:
                return name
        return None

    # -- the fit, as the recorder sees it -------------------------------------------

    def begin_fit(self, phase: PhaseRef, model: Any) -> None:
        self.phase = phase
        self.optimizers = find_optimizers(model)
        self.known, self.first_step, self.pending = {}, {}, []
        self.epoch = self.last_epoch = None
        self.in_epoch = False
        self.has_schedule = any(schedule_of(o) is not None for o in self.optimizers.values())
        self.loss_scaled = getattr(getattr(model, "optimizer", None), "inner_optimizer", None) is not None
        self.probed = {}
        rows = []
        for name, optimizer in self.optimizers.items():
            lr = self.known[name] = read_lr(optimizer)
            rows.append({"optimizer": name, "point": LRPoint.PHASE_BEGIN, "step": iterations(optimizer), "lr": lr})
        self._rows(DecisionTable.LR_SERIES, rows)

    def epoch_begun(self, epoch: int) -> None:
        """In the tracker's ``on_epoch_begin``: the step each optimizer starts the epoch at."""
        self.epoch = epoch
        self.in_epoch = False
        for name, optimizer in self.optimizers.items():
            self.first_step[name] = iterations(optimizer)

    def epoch_started(self, epoch: int) -> None:
        """Every ``on_epoch_begin`` has run: read the rate the epoch trains with."""
        changes, self.pending = self.pending, []
        for change in changes:
            change.epoch = epoch
            if change.step is None:
                change.step = self.first_step.get(change.optimizer)
        rows = []
        for name, optimizer in self.optimizers.items():
            lr = read_lr(optimizer)
            step = self.first_step.get(name)
            if schedule_of(optimizer) is None and lr is not None and not _same(lr, self.known.get(name)):
                # Changed without the setter (e.g. learning_rate.assign()).
                changes.append(_Change(name, step, self.known.get(name), lr, "unknown", None, epoch))
            if lr is not None:
                self.known[name] = lr
            rows.append({"optimizer": name, "point": LRPoint.EPOCH, "epoch": epoch, "step": step, "lr": lr})
        self._rows(DecisionTable.LR_CHANGES, [c.row() for c in changes])
        self._rows(DecisionTable.LR_SERIES, rows)
        self.has_schedule = any(schedule_of(o) is not None for o in self.optimizers.values())
        self.in_epoch = True

    def epoch_ended(self, epoch: int, batches: list[int]) -> None:
        """In the tracker's ``on_epoch_end`` (every batch hook has run): per-batch rates of schedules."""
        self.in_epoch = False
        self.last_epoch = epoch
        if not (self.log_batches and batches) or self.phase is None:
            return
        for name, optimizer in self.optimizers.items():
            schedule = schedule_of(optimizer)
            first = self.first_step.get(name)
            if schedule is None or first is None:
                continue
            ordered = sorted(batches)
            probed = self.probed.get(name, {})
            if probed:  # loss scaling: the step each batch began at, read at its begin
                starts = sorted(probed)
                points: list[tuple[int | None, int]] = []
                for b in ordered:
                    begin = max((s for s in starts if s <= b), default=None)
                    points.append((b, probed[begin] + (b - begin) if begin is not None else first + b))
            else:  # one optimizer update per step
                points = [(b, first + b) for b in ordered]
            self.submit(InsertLRBatchSeries(self.phase, name, epoch, points, partial(rate_at, schedule)))
        self.probed = {}

    @property
    def probing(self) -> bool:
        """True when each batch's step must be read at its begin: a schedule under loss scaling,
        whose skipped updates leave the step count behind the batch count."""
        return self.log_batches and self.loss_scaled and self.has_schedule

    def batch_began(self, batch: int, model: Any) -> None:
        """At ``on_train_batch_begin`` (on the training thread): the step each scheduled optimizer is at."""
        if getattr(model, "_jax_state", None) is not None and hasattr(model, "jax_state_sync"):
            model.jax_state_sync()  # JAX detaches the variables during an epoch; Keras' Callback.model does this too
        for name, optimizer in self.optimizers.items():
            if schedule_of(optimizer) is not None:
                step = iterations(optimizer)
                if step is not None:
                    self.probed.setdefault(name, {})[batch] = step

    def lr_set(self, optimizer: Any, old: float | None, new: float | None, actor: Actor) -> None:
        name = self.name_of(optimizer)
        if name is None:
            return
        self.known[name] = new
        change = _Change(name, None, old, new, actor.name, actor.hook)
        if self.in_epoch and actor.hook not in _BETWEEN_EPOCHS:
            change.epoch, change.step = self.epoch, iterations(optimizer)
            self._rows(DecisionTable.LR_CHANGES, [change.row()])
        else:
            self.pending.append(change)

    def end_fit(self) -> None:
        """After the fit: changes made at its end take effect from the epoch after the last."""
        next_epoch = None if self.last_epoch is None else self.last_epoch + 1
        for name, optimizer in self.optimizers.items():
            lr = read_lr(optimizer)
            if schedule_of(optimizer) is None and lr is not None and not _same(lr, self.known.get(name)):
                self.pending.append(_Change(name, None, self.known.get(name), lr, "unknown", None))
                self.known[name] = lr
        for change in self.pending:
            change.epoch = next_epoch
            if change.step is None:
                change.step = iterations(self.optimizers[change.optimizer])
        self._rows(DecisionTable.LR_CHANGES, [c.row() for c in self.pending])
        self.pending = []
        self.phase = None
        self.in_epoch = False
