"""Recording every save of a tracked model, and every epoch a best-only saver skipped.

``Saves`` belongs to one run's recorder and is the run's ``SaveListener``
(``tracker.record.save_capture``): Keras' save functions tell it about each
file written from the model, with the callback that saved. It adds the
reasoning and the weights' fingerprint, and queues one ``checkpoints`` row.

* **Who and why.** ``ModelCheckpoint`` (its ``monitor``, ``best``,
  ``save_best_only``, ``save_weights_only``, ``save_freq``) and KerasTuner's
  ``SaveBestEpoch`` (its ``objective`` and ``best_value``) are best-only
  savers when they save only on improvement: a save is ``improved``, with
  the monitored value and the best before it (read when the epoch's
  ``on_epoch_end`` event began, and after each save); a save because the
  monitored value was missing is ``periodic``, as Keras then saves every
  time. ``BackupAndRestore`` writes ``backup`` rows. Any other save during a
  fit is ``periodic``; one in ``on_train_end`` or after the fit is ``final``.
* **Skipped epochs.** Once every callback's ``on_epoch_end`` has run, each
  best-only saver with ``save_freq="epoch"`` that wrote nothing that epoch
  gets a ``saved = false`` row (``not_improved``) with the same reasoning
  and the path it would have written. (A saver that checks every N batches
  skips inside batch hooks, which the tracker does not watch.)
* **Where.** ``epoch`` is Keras' epoch (``{epoch}`` in a filepath is
  ``epoch + 1``); ``batch`` and ``step`` for a save inside an epoch. A save
  after the fit names the epoch whose end-of-epoch weights the model held,
  by fingerprint (the restored one, after ``restore_best_weights``).
* **Cost.** A save inside ``on_epoch_end`` reuses the fingerprint the
  tracker took when the event began, unless weights were set since
  (``set_weights``/``load_weights``, e.g. a restore) or an optimizer keeps
  moving averages (``SwapEMAWeights`` assigns them directly); then, and for
  saves inside an epoch or after the fit, the weights are copied at the save
  and hashed like an epoch's (off the training thread when big). Nothing is
  added to the per-batch path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from tracker.db.checkpoint_writes import InsertCheckpoint
from tracker.db.values import encode, utcnow
from tracker.db.writes import PhaseRef
from tracker.record import save_capture
from tracker.record.decisions import StopsAndRestores
from tracker.record.faults import Faults, guarded
from tracker.record.fingerprint import fingerprint_later
from tracker.record.writer import Writer
from tracker.status import SaveKind, SaveReason

__all__ = ["Position", "Saves"]


class Position(NamedTuple):
    """Where the recorder is: its open fit (None outside one), the epoch, and the steps of earlier epochs."""

    fit: PhaseRef | None
    epoch: int | None
    step_base: int


class _Saver(NamedTuple):
    """What a saving callback exposes: its monitor, whether it saves only on improvement, its best."""

    monitor: str | None
    best_only: bool
    every_epoch: bool
    best: Any
    kind: SaveKind


def _saver(callback: Any) -> _Saver | None:
    """The reasoning a callback exposes, or None for one that is not a known saver."""
    if callback is None:
        return None
    name = type(callback).__name__
    if hasattr(callback, "save_best_only") and hasattr(callback, "filepath"):  # ModelCheckpoint and look-alikes
        monitor = getattr(callback, "monitor", None)
        kind = SaveKind.WEIGHTS if getattr(callback, "save_weights_only", False) else SaveKind.MODEL
        return _Saver(monitor if isinstance(monitor, str) else None, bool(callback.save_best_only),
                      getattr(callback, "save_freq", "epoch") == "epoch", getattr(callback, "best", None), kind)
    objective = getattr(callback, "objective", None)
    if name == "SaveBestEpoch" and hasattr(callback, "best_value"):  # KerasTuner's trial checkpoint
        monitor = getattr(objective, "name", None)
        return _Saver(monitor if isinstance(monitor, str) else None, True, True, callback.best_value, SaveKind.WEIGHTS)
    return None


def _scalar(value: Any) -> float | None:
    if value is None or isinstance(value, (str, bytes)):
        return None
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _encoded(value: Any) -> tuple[float | None, int | None]:
    number = _scalar(value)
    if number is None:
        return None, None
    encoded = encode(number)
    return encoded.value, encoded.bits


class Saves:
    """The saves of one run's model (see the module docstring)."""

    def __init__(self, writer: Writer, decisions: StopsAndRestores, position: Callable[[], Position],
                 faults: Faults) -> None:
        self.writer, self.decisions, self.position, self.faults = writer, decisions, position, faults
        self.submit = writer.submit
        self.last_fit: PhaseRef | None = None
        self.siblings: list[Any] = []
        self.bests: dict[int, Any] = {}  # saver id -> its best before the current event
        self.saved: set[tuple[int, int]] = set()  # (saver id, epoch) of the saves made in on_epoch_end
        self.ending: int | None = None  # the epoch whose on_epoch_end event is running
        #: Called with ``(epoch, logs)`` before a file saved in that epoch's ``on_epoch_end`` is written.
        self.claiming: Callable[[int, Any], None] | None = None
        self.sets_at_ending = 0  # how many set_weights calls the fit had seen when that event began

    def begin_fit(self, fit: PhaseRef, model: Any, siblings: list[Any]) -> None:
        """A fit begins: its model's saves are reported here from now on (also after the fit)."""
        from tracker.record.capture import listeners_in

        savers = [s for s in (getattr(r, "saves", None) for r in listeners_in(siblings)) if s is not None]
        save_capture.track(model, savers if self in savers else [self])
        self.last_fit, self.siblings, self.saved, self.ending = fit, list(siblings), set(), None
        self.bests = {id(cb): s.best for cb in self.siblings if (s := _saver(cb)) is not None}

    def epoch_ending(self, epoch: int) -> None:
        """An ``on_epoch_end`` event begins (before any callback's hook)."""
        self.ending, self.sets_at_ending = epoch, len(self.decisions.weight_sets)
        self.bests = {id(cb): s.best for cb in self.siblings if (s := _saver(cb)) is not None}

    @guarded("recording the epoch a save claims")
    def model_saving(self, save: save_capture.Save) -> None:
        """A save in ``on_epoch_end`` is about to write its file: have the epoch written first."""
        actor = save.actor
        epoch = actor.frame_locals.get("epoch") if actor is not None and actor.hook == "on_epoch_end" else None
        if isinstance(epoch, (int, np.integer)) and int(epoch) == self.ending and self.claiming is not None:
            self.claiming(int(epoch), actor.frame_locals.get("logs"))

    @guarded("recording a save")
    def model_saved(self, save: save_capture.Save) -> None:
        where = self.position()
        phase = where.fit if where.fit is not None else self.last_fit
        if phase is None:
            return
        actor, hook = save.actor, save.actor.hook
        saver = _saver(actor.callback)
        logs = actor.frame_locals.get("logs") if isinstance(actor.frame_locals.get("logs"), dict) else {}
        kind = SaveKind.BACKUP if actor.name == "BackupAndRestore" else save.kind
        row: dict[str, Any] = {"saved": True, "kind": kind, "path": save.path, "saver": actor.name, "hook": hook,
                               "saved_at": utcnow(), "epoch": where.epoch, "batch": None, "step": None}
        if where.fit is None or hook == "on_train_end":
            row["reason"] = SaveReason.FINAL
        else:
            row["reason"] = SaveReason.PERIODIC
        if where.fit is not None and hook is not None and "batch" in hook:
            batch = actor.frame_locals.get("batch")
            if isinstance(batch, (int, np.integer)):
                row["batch"], row["step"] = int(batch), where.step_base + int(batch)
        elif hook == "on_epoch_end" and isinstance(actor.frame_locals.get("epoch"), (int, np.integer)):
            row["epoch"] = int(actor.frame_locals["epoch"])
        if saver is not None and saver.best_only and where.fit is not None:
            value = logs.get(saver.monitor) if saver.monitor is not None else None
            if _scalar(value) is not None:
                row["reason"] = SaveReason.IMPROVED
                row["value"], row["value_bits"] = _encoded(value)
                row["best"], row["best_bits"] = _encoded(self.bests.get(id(actor.callback)))
            row["monitor"] = saver.monitor
            self.bests[id(actor.callback)] = saver.best
        if hook == "on_epoch_end" and row["epoch"] is not None and where.fit is not None:
            self.saved.add((id(actor.callback), row["epoch"]))
        fingerprint = self._fingerprint(save.model, row["epoch"], hook, where)
        if where.fit is None:
            row["epoch"] = self._epoch_of(fingerprint)
        self.submit(InsertCheckpoint(phase, row, fingerprint))
        if where.fit is None:  # no fit is open to write it later
            self.writer.flush(wait=2.0)
            self.writer.checkpoint()

    def _fingerprint(self, model: Any, epoch: int | None, hook: str | None, where: Position) -> Any:
        """The epoch-end fingerprint when the weights are still those, else one of the weights now."""
        decisions = self.decisions
        if (where.fit is not None and hook == "on_epoch_end" and epoch is not None and epoch == self.ending
                and epoch in decisions.fingerprints and not decisions.ema
                and len(decisions.weight_sets) == self.sets_at_ending):
            return decisions.fingerprints[epoch]
        return fingerprint_later(model)

    def _epoch_of(self, fingerprint: Any) -> int | None:
        """After the fit: the last fit's latest epoch whose end-of-epoch weights are these, if any."""
        digest = fingerprint.result()
        same = [e for e, fp in self.decisions.fingerprints.items() if fp.result() == digest]
        return max(same) if same else None

    @guarded("recording the epochs a checkpoint skipped")
    def epoch_written(self, epoch: int, logs: dict[str, Any] | None) -> None:
        """Every callback's ``on_epoch_end`` of ``epoch`` has run: a row per best-only saver that skipped it."""
        self.ending = None
        phase = self.position().fit
        if phase is None:
            return
        for callback in self.siblings:
            saver = _saver(callback)
            if saver is None or not (saver.best_only and saver.every_epoch) or (id(callback), epoch) in self.saved:
                continue
            value = (logs or {}).get(saver.monitor) if saver.monitor is not None else None
            if _scalar(value) is None:
                continue  # Keras saves when the monitored value is missing: no skip to tell
            row: dict[str, Any] = {
                "saved": False, "kind": saver.kind, "reason": SaveReason.NOT_IMPROVED,
                "path": _would_write(callback, epoch, logs), "saver": type(callback).__name__, "hook": "on_epoch_end",
                "epoch": epoch, "batch": None, "step": None, "monitor": saver.monitor, "saved_at": utcnow(),
            }
            row["value"], row["value_bits"] = _encoded(value)
            row["best"], row["best_bits"] = _encoded(saver.best)
            self.submit(InsertCheckpoint(phase, row, None))


def _would_write(callback: Any, epoch: int, logs: dict[str, Any] | None) -> str | None:
    """The path a ``ModelCheckpoint`` would have written at ``epoch`` (its own formatting), or None."""
    import os

    pattern = getattr(callback, "filepath", None)
    if not isinstance(pattern, str):
        return None
    try:
        path = pattern.format(epoch=epoch + 1, **(logs or {}))
    except (KeyError, IndexError, ValueError, AttributeError):
        return None
    return path if "://" in path else os.path.abspath(path)
