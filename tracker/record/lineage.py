"""Where each fit started, and what ``tracker which`` needs to read this run's files.

``Starts`` belongs to one run's recorder. For each fit it:

* records the model's weights layouts (``tracker.record.layout``) once per
  run and layout: computed by Keras' own saving walk when the fit begins
  (again only when the model's variables change);
* fingerprints the weights the fit starts from, once every
  ``on_train_begin`` has run (``BackupAndRestore`` loads its backup there),
  at the fit's first epoch begin, and queues a ``RecordStart``: the
  background writer looks the fingerprint up among other runs' epochs and
  saves (``tracker.db.checkpoint_writes.find_source``). A model loaded with
  ``load_model``, ``load_weights`` or from a ``ModelCheckpoint`` file holds
  exactly a recorded epoch's weights, so its fit is that epoch's child;
* for a model that holds sub-models (a base model with a new head), has the
  decisions fingerprint each sub-model too, from the same copy, at every
  epoch end (``epoch_parts``); a later fit whose sub-model starts with
  those weights (or with another run's whole weights) is a partial start,
  naming the sub-model. Nothing else is claimed: layers matched one by one
  are not told.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker.db.checkpoint_writes import InsertEpochParts, RecordLayouts, RecordStart
from tracker.db.writes import Op, PhaseRef
from tracker.record.decisions import StopsAndRestores
from tracker.record.faults import Faults, guarded
from tracker.record.fingerprint import fingerprint_later, fingerprint_with_parts
from tracker.record.layout import layouts, sub_models

__all__ = ["Starts"]


class Starts:
    """The starts and layouts of one run's fits (see the module docstring)."""

    def __init__(self, submit: Callable[[Op], None], run_id: str, decisions: StopsAndRestores, faults: Faults) -> None:
        self.submit, self.run_id, self.decisions, self.faults = submit, run_id, decisions, faults
        self.fit: PhaseRef | None = None
        self.model: Any = None
        self.known: tuple[int, ...] = ()  # the variables whose layouts were computed
        self.digests: set[tuple[str, str]] = set()  # layouts queued for this run
        self.parts: dict[str, list[int]] = {}
        self.waiting = False  # the fit's start is not fingerprinted yet

    @guarded("recording the weights layout")
    def begin_fit(self, fit: PhaseRef, model: Any) -> None:
        """``on_train_begin``: the layouts (if the model's variables are new) and its sub-models."""
        self.fit, self.model, self.waiting = fit, model, True
        variables = tuple(id(v) for v in model.weights)
        if variables != self.known:
            self.known = variables
            self.parts = sub_models(model)
            new = [(f, d, e) for f, d, e in layouts(model) if (f, d) not in self.digests]
            self.digests.update((f, d) for f, d, _ in new)
            if new:
                self.submit(RecordLayouts(self.run_id, new))
        self.decisions.parts = self.parts

    @guarded("recording where the fit started")
    def fit_started(self) -> None:
        """The fit's first epoch begins (every ``on_train_begin`` has run): fingerprint its start."""
        if not self.waiting or self.fit is None:
            return
        self.waiting = False
        if self.parts:
            whole, parts = fingerprint_with_parts(self.model, self.parts)
            self.submit(RecordStart(self.run_id, self.fit, whole, parts))
        else:
            self.submit(RecordStart(self.run_id, self.fit, fingerprint_later(self.model)))

    def epoch_written(self, epoch: int) -> None:
        """The epoch's row is queued: queue its sub-models' fingerprints after it."""
        parts = self.decisions.part_fingerprints.pop(epoch, None)
        if parts is not None and self.fit is not None:
            self.submit(InsertEpochParts(self.fit, epoch, parts))
