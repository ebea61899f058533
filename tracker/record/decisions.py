"""Recording the stop and restore decisions of a fit.

``StopsAndRestores`` belongs to one run's recorder. The capture
(``tracker.record.capture``) tells it when ``model.stop_training`` is set and
when ``model.set_weights`` runs, with the callback that did it; the recorder
tells it where the fit is.

* **Stops.** Each ``stop_training = True`` is one row: the stopper, its hook,
  the epoch (and batch, for a stop inside a batch), and the stopper's
  reasoning where it exposes it (monitor, mode, min_delta, patience,
  baseline, start_from_epoch, best, best_epoch, wait). A stopper that ran to
  the end of the fit without stopping gets a ``stopped = false`` row.
* **Restores.** The weights are fingerprinted at each epoch end, as trained
  (before any callback's ``on_epoch_end`` runs), and once the fit is over,
  after every ``on_train_end``. If the final weights are not the last
  epoch's, a restore row names the epoch whose weights they are and the
  callback, hook and epoch of the ``set_weights``/``load_weights`` call (on
  the model, or on a layer or sub-model inside it) that put them back.

  When several epochs ended with identical weights (an epoch with an LR of
  0, say), the restored epoch is the one the restoring callback says it
  restored (its ``best_epoch``) when that is one of them, else the earliest.
  The fingerprints decide: a ``best_epoch`` whose weights are not the final
  ones is not believed.
* **EMA.** An optimizer with ``use_ema`` has Keras write its moving averages
  into the model at the end of ``fit`` (``finalize_variable_values``). Final
  weights equal to what it wrote are the EMA weights, not a restore. Each
  epoch end also fingerprints the moving averages, so a restore of an
  epoch's EMA weights (``SwapEMAWeights(swap_on_epoch=True)`` before the
  restorer) names that epoch. ``end_fit`` says which kind the final weights
  are (``FinalWeights``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracker.db.sweep_writes import ToolStop, stop_row
from tracker.db.writes import DecisionTable, InsertDecisions, Op, Pending, PhaseRef
from tracker.record.capture import Actor
from tracker.record.fingerprint import fingerprint_later, fingerprint_model, fingerprint_with_parts
from tracker.record.optimizers import find_optimizers, moving_average_weights
from tracker.status import FinalWeights, Status

__all__ = ["StopsAndRestores"]

_REASONING = ("monitor", "mode", "min_delta", "patience", "baseline", "start_from_epoch", "best", "best_epoch", "wait")
_INTEGERS = ("patience", "best_epoch", "wait", "start_from_epoch")


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


def _reasoning(callback: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for attr in _REASONING:
        value = getattr(callback, attr, None) if callback is not None else None
        if attr in ("monitor", "mode"):
            row[attr] = value if isinstance(value, str) else None
        else:
            number = _number(value)
            if isinstance(number, float) and attr in _INTEGERS:
                number = int(number) if math.isfinite(number) else None
            row[attr] = number
    return row


@dataclass(slots=True)
class _WeightSet:
    actor: Actor
    epoch: int | None
    fingerprint: str
    claimed_epoch: int | None  # the restorer's best_epoch when it set the weights


class StopsAndRestores:
    """The stop and restore decisions of one run's fits (see the module docstring)."""

    def __init__(self, submit: Callable[[Op], None]) -> None:
        self.submit = submit
        self.phase: PhaseRef | None = None
        self.model: Any = None
        self.siblings: list[Any] = []
        self.fingerprints: dict[int, Pending] = {}  # epoch -> its fingerprint (maybe still hashing)
        self.stopped_by: set[int] = set()
        self.weight_sets: list[_WeightSet] = []
        self.last_epoch: int | None = None
        self.ema: list[Any] = []  # the fit's optimizers with use_ema
        self.ema_fingerprints: dict[int, Pending] = {}  # epoch -> its moving averages' fingerprint
        self.finalized: Pending | None = None  # the weights Keras wrote at the end of fit (EMA)
        self.parts: dict[str, list[int]] = {}  # sub-models to fingerprint too (set by tracker.record.lineage)
        self.part_fingerprints: dict[int, Any] = {}  # epoch -> its sub-models' fingerprints (PartsPending)

    def _rows(self, table: DecisionTable, rows: list[dict[str, Any]]) -> None:
        if rows and self.phase is not None:
            self.submit(InsertDecisions(table, self.phase, rows))

    def begin_fit(self, phase: PhaseRef, model: Any, siblings: list[Any]) -> None:
        self.phase, self.model, self.siblings = phase, model, siblings
        self.fingerprints, self.stopped_by, self.weight_sets = {}, set(), []
        self.last_epoch = None
        self.ema = [o for o in find_optimizers(model).values() if getattr(o, "use_ema", False)]
        self.ema_fingerprints, self.finalized = {}, None
        self.parts, self.part_fingerprints = {}, {}

    def _take(self, epoch: int) -> None:
        """Fingerprint the weights as they are, for ``epoch`` (and its sub-models, if any)."""
        if self.parts:
            self.fingerprints[epoch], self.part_fingerprints[epoch] = fingerprint_with_parts(self.model, self.parts)
        else:
            self.fingerprints[epoch] = fingerprint_later(self.model)

    def epoch_ending(self, epoch: int) -> None:
        """Before any callback's ``on_epoch_end``: fingerprint the weights as the epoch trained them.

        The weights are copied now; big ones are hashed on a helper thread
        (``fingerprint_later``). With an EMA optimizer, its moving averages too.
        """
        if epoch not in self.fingerprints:
            self._take(epoch)
        if self.ema and epoch not in self.ema_fingerprints:
            averaged = moving_average_weights(self.model, self.ema)
            if averaged is not None:
                self.ema_fingerprints[epoch] = fingerprint_later(self.model, averaged)

    def epoch_trained(self, epoch: int) -> Pending:
        """In the tracker's ``on_epoch_end``: the fingerprint of the weights the epoch trained to
        (taken now if the callback list did not say the event began); ``result()`` waits for it."""
        self.last_epoch = epoch
        self.epoch_ending(epoch)
        return self.fingerprints[epoch]

    def ema_finalized(self) -> None:
        """Keras has written an EMA optimizer's moving averages into the model (end of ``fit``)."""
        self.finalized = fingerprint_later(self.model)

    def epoch_states(self, epoch: int) -> None:
        """Once every ``on_epoch_end`` has run: each stopper's state (callbacks with patience and wait)."""
        rows = []
        for callback in self.siblings:
            if getattr(callback, "capture_listener", None) is not None:
                continue
            if not (hasattr(callback, "patience") and hasattr(callback, "wait")):
                continue
            row = _reasoning(callback)
            row.update(stopper=type(callback).__name__, epoch=epoch)
            rows.append(row)
        self._rows(DecisionTable.STOPPER_STATES, rows)

    def weights_setting(self, actor: Actor, epoch: int | None) -> None:
        # A restore inside on_epoch_end(k) by a callback listed before the
        # tracker: fingerprint epoch k as trained, before it is overwritten.
        if actor.hook == "on_epoch_end" and epoch is not None and epoch not in self.fingerprints:
            self._take(epoch)

    def weights_set(self, actor: Actor, epoch: int | None) -> None:
        at = _number(actor.frame_locals.get("epoch", epoch))
        claimed = _number(getattr(actor.callback, "best_epoch", None)) if actor.callback is not None else None
        self.weight_sets.append(
            _WeightSet(actor, at, fingerprint_model(self.model), claimed if isinstance(claimed, int) else None)
        )

    def stop_requested(self, actor: Actor, epoch: int | None) -> None:
        if self.phase is None:
            return
        at = actor.frame_locals.get("epoch", epoch)
        batch = actor.frame_locals.get("batch") if actor.hook and "batch" in actor.hook else None
        row = _reasoning(actor.callback)
        row.update(stopped=True, stopper=actor.name, hook=actor.hook, epoch=_number(at), batch=_number(batch),
                   stopped_epoch=_number(at))
        if actor.callback is not None:
            self.stopped_by.add(id(actor.callback))
        self._rows(DecisionTable.STOPS, [row])

    def end_fit(self, completed: bool, *, stop: ToolStop | None = None, at: int | None = None) -> FinalWeights | None:
        """After the fit (every ``on_train_end`` has run), or after it raised.

        ``stop``: what was raised is a tuning tool's stop (a pruned trial,
        ``tracker.record.extensions``), recorded as a stop decision at epoch
        ``at`` (the epoch whose ``on_epoch_end`` raised it, else the current one).

        Returns which weights a completed fit left in the model (None if it
        did not complete or trained no epoch).
        """
        if self.phase is None:
            return None
        if stop is not None and stop.status is not Status.FINISHED:  # a tool's end of a trial run to its end: no stop
            self._rows(DecisionTable.STOPS, [stop_row(stop, self.last_epoch if at is None else at)])
        final = None
        if completed:
            self._record_not_stopped()
            final = self._record_restore()
        self.phase = None
        return final

    def _record_not_stopped(self) -> None:
        rows = []
        for callback in self.siblings:
            if id(callback) in self.stopped_by or getattr(callback, "capture_listener", None) is not None:
                continue
            if not hasattr(callback, "stopped_epoch"):
                continue  # stoppers keep stopped_epoch; ReduceLROnPlateau has patience only
            row = _reasoning(callback)
            row.update(stopped=False, stopper=type(callback).__name__, hook=None, epoch=self.last_epoch)
            rows.append(row)
        self._rows(DecisionTable.STOPS, rows)

    def _record_restore(self) -> FinalWeights | None:
        if not self.fingerprints or self.last_epoch is None:
            return None
        final = fingerprint_model(self.model)
        last = self.fingerprints.get(self.last_epoch)
        if last is not None and final == last.result():
            return FinalWeights.TRAINED
        if self.finalized is not None and final == self.finalized.result():
            return FinalWeights.EMA  # what Keras wrote at the end of fit: no restore
        kind = FinalWeights.TRAINED
        matches = sorted(e for e, fp in self.fingerprints.items() if fp.result() == final)
        if not matches:  # an epoch's moving averages, else weights no epoch ended with
            matches = sorted(e for e, fp in self.ema_fingerprints.items() if fp.result() == final)
            kind = FinalWeights.EMA if matches else FinalWeights.OTHER
        by = next((w for w in reversed(self.weight_sets) if w.fingerprint == final), None)
        restored = None
        if matches:
            claimed = by.claimed_epoch if by is not None else None
            restored = claimed if claimed in matches else matches[0]
        row = {
            "restored_epoch": restored,
            "last_epoch": self.last_epoch,
            "restored_by": by.actor.name if by is not None else "unknown",
            "hook": by.actor.hook if by is not None else None,
            "at_epoch": by.epoch if by is not None else None,
            "fingerprint": final,
        }
        self._rows(DecisionTable.RESTORES, [row])
        return kind
