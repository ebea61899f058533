"""Recording decisions within a fit: LR changes and series, stops, restores.

A ``DecisionRecorder`` belongs to one TrackingCallback. The observers in
``tracker.record.observers`` tell it about LR assignments, ``stop_training`` and
``set_weights`` as they happen; the callback's hooks tell it where the fit
is. Everything is written through the callback's ordered writer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, insert

from tracker.record import observers
from tracker.record.fingerprint import fingerprint_model
from tracker.db.tables import LRChange, LRPoint, LRSeries, Restore, StopDecision

if TYPE_CHECKING:
    from tracker.record.writer import PhaseHandle

__all__ = ["DecisionRecorder", "find_optimizers"]

_LR_CHANGES, _LR_SERIES = LRChange.__table__, LRSeries.__table__
_STOPS, _RESTORES = StopDecision.__table__, Restore.__table__
_REASONING = ("monitor", "mode", "min_delta", "patience", "baseline", "start_from_epoch", "best", "best_epoch", "wait")


def find_optimizers(model: Any) -> dict[str, Any]:
    """Return the model's optimizers by attribute name (``optimizer`` first).

    A model with several optimizers (a GAN's ``d_optimizer`` and
    ``g_optimizer``, say) keeps them as attributes; each gets its own series.
    """
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    found: dict[str, Any] = {}
    main = getattr(model, "optimizer", None)
    if isinstance(main, BaseOptimizer):
        found["optimizer"] = main
    for name, value in list(vars(model).items()):
        if isinstance(value, BaseOptimizer) and all(value is not o for o in found.values()):
            found[name.lstrip("_")] = value
    return found


def _iterations(optimizer: Any) -> int | None:
    try:
        return int(np.asarray(optimizer.iterations))
    except Exception:  # noqa: BLE001
        return None


def _number(value: Any) -> Any:
    """A stopper attribute as a plain column value (None if not a scalar)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if isinstance(value, (int, np.integer)) or (number.is_integer() and not isinstance(value, (float, np.floating))):
        return int(number)
    return number


def _is_schedule(optimizer: Any) -> bool:
    from keras.src.optimizers.schedules.learning_rate_schedule import LearningRateSchedule

    return isinstance(getattr(optimizer, "_learning_rate", None), LearningRateSchedule)


@dataclass
class _Change:
    optimizer: str
    step: int | None
    old: float | None
    new: float | None
    source: str
    hook: str | None
    epoch: int | None = None


class DecisionRecorder:
    """Observes one TrackingCallback's fits. See the module docstring."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.callbacks: list[Any] = []
        self.phase: PhaseHandle | None = None
        self.optimizers: dict[str, Any] = {}
        self.lr_due = False
        self.has_schedule = False
        self._reset()

    def _reset(self) -> None:
        self.fingerprints: dict[int, str] = {}
        self.first_step: dict[tuple[int, str], int | None] = {}
        self.known_lr: dict[str, float | None] = {}
        self.pending: list[_Change] = []
        self.stopped_by: set[int] = set()
        self.weight_sets: list[tuple[observers.Actor, int | None, str]] = []
        self.last_epoch: int | None = None

    # -- helpers ---------------------------------------------------------------

    def _submit_rows(self, table: Any, rows: list[dict[str, Any]]) -> None:
        handle = self.phase
        if not rows or handle is None:
            return

        def write(conn: Connection) -> None:
            conn.execute(insert(table), [dict(r, phase_id=handle.id) for r in rows])

        self.tracker._writer.submit(write)

    def name_of(self, optimizer: Any) -> str | None:
        for name, candidate in self.optimizers.items():
            if candidate is optimizer:
                return name
        return None

    # -- fit lifecycle -----------------------------------------------------------

    def begin_fit(self, phase: PhaseHandle) -> None:
        self._reset()
        self.phase = phase
        self.optimizers = find_optimizers(self.tracker.model)
        self.has_schedule = any(_is_schedule(o) for o in self.optimizers.values())
        rows = []
        for name, optimizer in self.optimizers.items():
            lr = observers.read_lr(optimizer)
            self.known_lr[name] = lr
            rows.append({"optimizer": name, "point": LRPoint.PHASE_BEGIN, "step": _iterations(optimizer), "lr": lr})
        self._submit_rows(_LR_SERIES, rows)
        observers.watch(self.tracker)

    def epoch_begin(self, epoch: int) -> None:
        # Each optimizer counts its own steps (a GAN's two need not agree).
        for name, optimizer in self.optimizers.items():
            self.first_step[(epoch, name)] = _iterations(optimizer)
        self.lr_due = True

    def first_batch(self) -> None:
        """At the end of an epoch's first train batch (and after any LR change).

        Reading here rather than at batch begin keeps the per-batch path to
        one hook: a schedule's rate is evaluated at the epoch's first step;
        a plain rate is the value batch 0 trained with.
        """
        self.lr_due = False
        epoch = self.tracker._epoch
        for change in self.pending:
            change.epoch = epoch
        self._write_changes()
        rows = []
        for name, optimizer in self.optimizers.items():
            first = self.first_step.get((epoch, name)) if epoch is not None else None
            if _is_schedule(optimizer):
                step = first if first is not None else _iterations(optimizer)
                lr = _schedule_values(optimizer._learning_rate, [step])[0] if step is not None else None
            else:
                lr = observers.read_lr(optimizer)
                known = self.known_lr.get(name)
                if not (lr == known or (lr != lr and known != known)):
                    # Changed without the setter (e.g. learning_rate.assign()).
                    self.pending.append(_Change(name, first, known, lr, "unknown", None, epoch))
                    self._write_changes()
                step = first
            self.known_lr[name] = lr
            rows.append({"optimizer": name, "point": LRPoint.EPOCH, "epoch": epoch, "step": step, "lr": lr})
        self._submit_rows(_LR_SERIES, rows)

    def epoch_end(self, epoch: int, batches: list[int]) -> str | None:
        """Return the fingerprint of the weights this epoch trained to."""
        self.last_epoch = epoch
        if epoch not in self.fingerprints:
            self.fingerprints[epoch] = fingerprint_model(self.tracker.model)
        self._batch_series(epoch, batches)
        return self.fingerprints[epoch]

    def _batch_series(self, epoch: int, batches: list[int]) -> None:
        if not batches:
            return
        rows = []
        for name, optimizer in self.optimizers.items():
            first = self.first_step.get((epoch, name))
            if not _is_schedule(optimizer) or first is None:
                continue
            steps = [first + b for b in batches]
            rates = _schedule_values(optimizer._learning_rate, steps)
            rows.extend(
                {"optimizer": name, "point": LRPoint.BATCH, "epoch": epoch, "batch": b, "step": s, "lr": r}
                for b, s, r in zip(batches, steps, rates)
            )
        self._submit_rows(_LR_SERIES, rows)

    def end_fit(self, completed: bool) -> None:
        """After fit returned (every on_train_end has run) or raised."""
        observers.unwatch(self.tracker)
        if self.phase is None:
            return
        next_epoch = None if self.last_epoch is None else self.last_epoch + 1
        for change in self.pending:
            change.epoch = next_epoch
        self._write_changes()
        if completed:
            self._record_not_stopped()
            self._record_restore()
        self.phase = None

    # -- events from the observers -------------------------------------------------

    def on_lr_set(self, optimizer: Any, old: float | None, new: float | None, actor: observers.Actor) -> None:
        name = self.name_of(optimizer)
        if name is None:
            return
        self.known_lr[name] = new
        self.pending.append(_Change(name, _iterations(optimizer), old, new, actor.name, actor.hook))
        self.lr_due = True

    def _write_changes(self) -> None:
        rows = [
            {
                "optimizer": c.optimizer,
                "epoch": c.epoch,
                "step": c.step,
                "old_lr": c.old,
                "new_lr": c.new,
                "source": c.source,
                "hook": c.hook,
            }
            for c in self.pending
        ]
        self.pending = []
        self._submit_rows(_LR_CHANGES, rows)

    def on_stop_training(self, actor: observers.Actor) -> None:
        if self.phase is None:
            return
        epoch = actor.frame_locals.get("epoch", self.tracker._epoch)
        batch = actor.frame_locals.get("batch") if actor.hook and "batch" in actor.hook else None
        row = self._reasoning(actor.callback)
        row.update(
            stopped=True,
            stopper=actor.name,
            hook=actor.hook,
            epoch=_number(epoch),
            batch=_number(batch),
            stopped_epoch=_number(epoch),
        )
        if actor.callback is not None:
            self.stopped_by.add(id(actor.callback))
        self._submit_rows(_STOPS, [row])

    def _reasoning(self, callback: Any) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for attr in _REASONING:
            value = getattr(callback, attr, None) if callback is not None else None
            if attr in ("monitor", "mode"):
                row[attr] = value if isinstance(value, str) else None
            else:
                number = _number(value)
                if isinstance(number, float) and attr in ("patience", "best_epoch", "wait", "start_from_epoch"):
                    number = int(number) if math.isfinite(number) else None
                row[attr] = number
        return row

    def _record_not_stopped(self) -> None:
        rows = []
        for callback in self.callbacks:
            if id(callback) in self.stopped_by or callback is self.tracker:
                continue
            if not hasattr(callback, "stopped_epoch"):
                continue  # stoppers keep stopped_epoch; ReduceLROnPlateau has patience only
            row = self._reasoning(callback)
            row.update(stopped=False, stopper=type(callback).__name__, hook=None, epoch=self.last_epoch)
            rows.append(row)
        self._submit_rows(_STOPS, rows)

    def before_set_weights(self, actor: observers.Actor) -> None:
        # A restore inside on_epoch_end(k) by a callback listed before the
        # tracker: fingerprint epoch k as trained, before it is overwritten.
        epoch = self.tracker._epoch
        if actor.hook == "on_epoch_end" and epoch is not None and epoch not in self.fingerprints:
            self.fingerprints[epoch] = fingerprint_model(self.tracker.model)

    def after_set_weights(self, actor: observers.Actor) -> None:
        epoch = actor.frame_locals.get("epoch", self.tracker._epoch)
        self.weight_sets.append((actor, _number(epoch), fingerprint_model(self.tracker.model)))

    def _record_restore(self) -> None:
        if not self.fingerprints or self.last_epoch is None:
            return
        final = fingerprint_model(self.tracker.model)
        if final == self.fingerprints.get(self.last_epoch):
            return
        matches = [e for e, fp in self.fingerprints.items() if fp == final]
        restored_epoch = max(matches) if matches else None
        by = hook = at_epoch = None
        for actor, epoch, fp in reversed(self.weight_sets):
            if fp == final:
                by, hook, at_epoch = actor.name, actor.hook, epoch
                break
        row = {
            "restored_epoch": restored_epoch,
            "last_epoch": self.last_epoch,
            "restored_by": by or "unknown",
            "hook": hook,
            "at_epoch": at_epoch,
            "fingerprint": final,
        }
        self._submit_rows(_RESTORES, [row])


def _schedule_values(schedule: Any, steps: list[int]) -> list[float]:
    """Evaluate a LearningRateSchedule at many steps (vectorised when it allows)."""
    import keras

    try:
        values = keras.ops.convert_to_numpy(schedule(keras.ops.convert_to_tensor(np.array(steps, dtype="int64"))))
        values = np.asarray(values, dtype="float64").reshape(-1)
        if values.shape[0] == len(steps):
            return [float(v) for v in values]
    except Exception:  # noqa: BLE001 - a schedule that only takes scalars
        pass
    return [float(np.asarray(keras.ops.convert_to_numpy(schedule(s)))) for s in steps]
