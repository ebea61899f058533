"""One run's recording: what the callback's hooks and the Keras capture feed.

``Recorder`` is the ``capture.Listener`` of a ``TrackingCallback``: the callback forwards its Keras hooks
here, and the capture (``tracker.record.capture``) adds what hooks cannot see: when every callback has
run an event, a call that raised, and the LR, stop and weight decisions as they are made.

Data path: hooks → ``Ledger`` (run and phase rows, system samples), ``LearningRates``,
``StopsAndRestores`` → typed operations (``tracker.db.writes``) queued on the ``Writer``. Per batch
the recorder counts and appends one ``BatchRecord``, under a lock on JAX and torch, where Keras may run batch hooks on worker threads
(``async_safe``), late and out of order: a batch is filed by the phase it
belongs to and keyed by its step, never by arrival. An epoch is queued once every
callback's ``on_epoch_end`` has run (its logs are what ``History`` keeps) and
written by the background writer while the next step computes. ``fit`` returns
only after everything is written (or reported as not writable).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tracker.db.values import logged_items, utcnow
from tracker.db.epoch_amend import AmendEpoch, unchanged
from tracker.db.writes import BatchRecord, InsertEpoch, StartFit
from tracker.errors import TrackingWarning
from tracker.record import capture
from tracker.record.capture import Actor
from tracker.record.checkpoints import Position, Saves
from tracker.record.decisions import StopsAndRestores
from tracker.record.environment import hooks_may_run_concurrently, output_shapes
from tracker.record.extensions import ending
from tracker.record.faults import Faults, guarded
from tracker.record.learning_rate import LearningRates
from tracker.record.lineage import Starts
from tracker.record.ledger import EndedEpoch, Ledger, PhaseHandle, RunIdentity
from tracker.record.nested_logs import full_logs
from tracker.record.sampling import Sampler
from tracker.record.writer import Writer
from tracker.status import PhaseKind, Status

__all__ = ["Recorder"]

logger = logging.getLogger(__name__)
_now = time.perf_counter
# BatchRecord built from a tuple in C (its generated __new__ is a Python call).
_record = functools.partial(tuple.__new__, BatchRecord)

# Which open phases a failing Keras method owns.
_METHOD_KINDS = {
    "fit": {PhaseKind.FIT},
    "evaluate": {PhaseKind.EVALUATE, PhaseKind.VALIDATION},
    "predict": {PhaseKind.PREDICT},
}
# The phase a call opens when it is not nested in another one.
_FIRST_KIND = {"fit": PhaseKind.FIT, "evaluate": PhaseKind.EVALUATE, "predict": PhaseKind.PREDICT}


class Recorder:
    """Records one run (see the module docstring).

    Args:
        identity: The run's id, name, params and tags.
        db: The database path or URL; the recorder's ``Writer`` writes there.
        log_batches: Record every batch (True), none (False), or every N-th
            step plus the last batch of each epoch and pass (an int N).
        strict: Raise ``TrackingWriteError`` instead of warning.
        flush_every: Wake the background writer after this many batches.
        flush_interval: Seconds between the background writer's flushes.
        system_interval: Seconds between timed system samples; None: no system metrics.
    """

    def __init__(self, identity: RunIdentity, db: str, *, log_batches: bool | int, strict: bool,
                 flush_every: int = 128, flush_interval: float = 2.0, system_interval: float | None = None) -> None:
        self.identity = identity
        # on_reset: the open rows, in a fresh file (the old one was deleted).
        writer = self.writer = Writer(db, run_id=identity.run_id, on_reset=lambda: self.ledger.recreate(),
                                      flush_every=flush_every, flush_interval=flush_interval, strict=strict)
        self.log_batches = log_batches
        self.every = int(log_batches)  # 0: off, 1: every batch, N: every N-th step
        self.strict = strict
        self.model: Any = None
        self.keras_params: Mapping[str, Any] = {}
        self._add_batch = writer.add_batch
        self.ledger = Ledger(identity, writer, system_interval=system_interval)
        self.lr = LearningRates(writer.submit, log_batches=self.every > 0)
        self.decisions = StopsAndRestores(writer.submit)
        self.faults = Faults(strict=strict)
        self.saves = Saves(writer, self.decisions, lambda: Position(self._fit, self._epoch, self._epoch_base), self.faults)
        self.saves.claiming = self._epoch_claimed
        self.starts = Starts(writer.submit, identity.run_id, self.decisions, self.faults)  # lineage and layouts
        self._lock = threading.Lock()
        self._sampler = Sampler(self.every, writer.add_batch, self._lock)
        self._concurrent = True  # Keras may run batch hooks on a pool (thread-safe backends); read at each fit
        self._in_event: str | None = None
        self._siblings: list[Any] = []
        self._fit: PhaseHandle | None = None
        self._test: PhaseHandle | None = None
        self._predict: PhaseHandle | None = None
        self._epoch: int | None = None
        self._epoch_started_at: datetime | None = None
        self._epoch_base = 0
        self._epoch_last_batch = -1
        self._epoch_batches: list[int] = []
        self._ended: EndedEpoch | None = None
        self._epochs_written: set[int] = set()
        self._train_end_logs: Mapping[str, Any] | None = None
        self._validation_logs: Mapping[str, Any] | None = None  # the epoch's validation pass ended with these
        self._failure: capture.EventFailure | None = None  # what a callback raised, until the call fails

    # -- fit ------------------------------------------------------------------------------

    @guarded("on_train_begin")
    def train_begin(self) -> None:
        fit = self._fit = self.ledger.begin_phase(PhaseKind.FIT, self.model, self.keras_params)
        self._concurrent = hooks_may_run_concurrently()
        self._epoch = None
        self._epoch_base = 0
        self._ended = None
        self._epochs_written = set()
        self._train_end_logs = None
        self.lr.begin_fit(fit, self.model)
        siblings = self._siblings if self._in_event == "on_train_begin" else []
        self.decisions.begin_fit(fit, self.model, siblings)
        self.saves.begin_fit(fit, self.model, siblings)
        self.starts.begin_fit(fit, self.model)
        capture.watch(self)

    @guarded("on_epoch_begin")
    def epoch_begin(self, epoch: int) -> None:
        fit = self._fit
        if fit is None:
            return
        self._write_ended_epoch(flush=False)
        self._epoch = epoch
        self._epoch_started_at = utcnow()
        self._epoch_last_batch = -1
        self._epoch_batches, self._validation_logs = [], None
        if fit.initial_epoch is None:
            fit.initial_epoch = epoch  # the fit's first epoch: above 0 on a resume
            self.writer.submit(StartFit(self.identity.run_id, fit, fit.seq, epoch))
            self.starts.fit_started()  # every on_train_begin has run (a backup is loaded)
        self.lr.epoch_begun(epoch)
        if self._in_event != "on_epoch_begin":
            self.lr.epoch_started(epoch)  # called directly, not through a CallbackList

    def train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Only under loss scaling with a schedule: the step the batch begins at (see LearningRates)."""
        if self._fit is not None and self.lr.probing:
            try:
                self.lr.batch_began(batch, self.model)
            except Exception as exc:  # noqa: BLE001
                self.faults.report(exc, "on_train_batch_begin")

    def train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """The per-batch path: a count and an append, safe from Keras' worker threads."""
        fit = self._fit
        if fit is None:
            return
        try:
            if self._concurrent:  # JAX, torch: Keras may run this on several worker threads at once
                with self._lock:
                    self._count_train_batch(fit, batch, logs)
            else:  # TensorFlow runs batch hooks on the training thread, one at a time
                self._count_train_batch(fit, batch, logs)
        except Exception as exc:  # noqa: BLE001
            self.faults.report(exc, "on_train_batch_end")

    def _count_train_batch(self, fit: PhaseHandle, batch: int, logs: Mapping[str, Any] | None) -> None:
        fit.batch_count += 1
        if batch > self._epoch_last_batch:
            self._epoch_last_batch = batch
        every = self.every
        if every == 1:  # the common case, kept short: it runs for every batch
            self._add_batch(_record((fit, self._epoch_base + batch, self._epoch, batch, _now() - fit.t0,
                                     (dict(logs) if type(logs) is dict else full_logs(logs)) if logs else None)))
            if self.lr.has_schedule:
                self._epoch_batches.append(batch)
        elif every:
            record = BatchRecord(fit, self._epoch_base + batch, self._epoch, batch, _now() - fit.t0,
                                 full_logs(logs) if logs else None)
            if self._sampler.sample(record) and self.lr.has_schedule:
                self._epoch_batches.append(batch)

    @guarded("on_epoch_end")
    def epoch_end(self, epoch: int, logs: Mapping[str, Any] | None) -> None:
        fit = self._fit
        if fit is None:
            return
        if self._ended is not None and self._ended.epoch == epoch and self._ended.early is not None:
            return  # written early, at a save of a callback listed before the tracker (see _epoch_claimed)
        if epoch in self._epochs_written or (self._ended is not None and self._ended.epoch == epoch):
            warnings.warn(
                f"tracker: on_epoch_end({epoch}) was called twice in one fit; the first one is kept.",
                TrackingWarning,
                stacklevel=4,
            )
            return
        self._write_ended_epoch(flush=False)
        fingerprint = self.decisions.epoch_trained(epoch)
        if self.every > 1:
            held = self._sampler.release(fit, self._epoch_last_batch)
            if held is not None and self.lr.has_schedule:
                self._epoch_batches.append(held.batch)
        with self._lock:  # every batch hook of the epoch has run (Keras waits for them)
            batches, self._epoch_batches = self._epoch_batches, []
            self._epoch_base += self._epoch_last_batch + 1
            self._epoch_last_batch = -1
        self.lr.epoch_ended(epoch, batches)
        self._ended = EndedEpoch(epoch, self._epoch_started_at, utcnow(), fingerprint, logs, self._validation_logs)
        if self._in_event != "on_epoch_end":
            self._write_ended_epoch(flush=True)

    def _write_ended_epoch(self, *, flush: bool) -> None:
        ended, self._ended = self._ended, None
        fit = self._fit
        if ended is None or fit is None:
            return
        self._epochs_written.add(ended.epoch)
        # The stoppers' state first: a reader that sees the epoch sees its state too.
        self.decisions.epoch_states(ended.epoch)
        items = logged_items(full_logs(ended.logs, validation=ended.validation))
        if ended.early is None:
            self.writer.submit(InsertEpoch(self.identity.run_id, fit, ended.epoch, ended.started_at, ended.ended_at,
                                           ended.fingerprint, items))
        elif not unchanged(ended.early, items):  # a callback after the saver changed the logs
            self.writer.submit(AmendEpoch(self.identity.run_id, fit, ended.epoch, items))
        self.starts.epoch_written(ended.epoch)
        self.saves.epoch_written(ended.epoch, dict(ended.logs or {}))
        self.ledger.epoch_ended(ended.epoch)  # the system sample of the epoch
        if flush:
            self.writer.raise_pending()  # a strict-mode failure of an earlier write surfaces here
            # Written off the training thread: with every batch recorded, at the next
            # batch (while its step computes); else now (no batch may come soon).
            (self.writer.wake_soon if self.every == 1 else self.writer.wake)()

    @guarded("recording the epoch a save claims")
    def _epoch_claimed(self, epoch: int, logs: Any) -> None:
        """A callback saves a file in ``on_epoch_end`` (a backup, a checkpoint): write the epoch first and
        wait, so a process killed once the file exists still has the epoch it claims (``epoch_amend``)."""
        if self._fit is None or self._in_event != "on_epoch_end" or epoch in self._epochs_written:
            return
        if (self._ended is None or self._ended.epoch != epoch) and isinstance(logs, Mapping):
            self.epoch_end(epoch, logs)  # the tracker is listed after the saver
        ended = self._ended
        if ended is not None and ended.epoch == epoch and ended.early is None:
            ended.early = logged_items(full_logs(ended.logs, validation=ended.validation))
            self.writer.submit(InsertEpoch(self.identity.run_id, self._fit, epoch, ended.started_at, ended.ended_at,
                                           ended.fingerprint, ended.early))
            self.writer.flush(wait=self.writer.background_wait)

    @guarded("on_train_end")
    def train_end(self, logs: Mapping[str, Any] | None) -> None:
        self._train_end_logs = logs
        if self._in_event != "on_train_end":
            self._finish_fit()

    def _finish_fit(self) -> None:
        fit = self._fit
        if fit is None:
            return
        self._write_ended_epoch(flush=False)
        capture.unwatch(self)
        final_weights = self.decisions.end_fit(completed=True)
        self.lr.end_fit()
        self._fit = None
        self.ledger.end_phase(fit, Status.FINISHED, full_logs(self._train_end_logs, validation=self._validation_logs),
                              self.model, final_weights=final_weights)

    # -- evaluate (standalone, or validation inside fit) and predict ------------------

    @guarded("on_test_begin")
    def test_begin(self) -> None:
        inside_fit = self._fit is not None and bool(self.ledger.phases) and self.ledger.phases[-1] is self._fit
        kind = PhaseKind.VALIDATION if inside_fit else PhaseKind.EVALUATE
        epoch = self._epoch if inside_fit else None
        self._test = self.ledger.begin_phase(kind, self.model, self.keras_params, epoch=epoch)

    def test_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        handle = self._test
        if handle is None:
            return
        try:
            with self._lock:
                handle.batch_count += 1
                if batch > handle.last_batch:
                    handle.last_batch = batch
                if self.every:
                    self._sampler.sample(BatchRecord(handle, batch, handle.epoch, batch, time.perf_counter() - handle.t0,
                                             full_logs(logs) if logs else None))
        except Exception as exc:  # noqa: BLE001
            self.faults.report(exc, "on_test_batch_end")

    @guarded("on_test_end")
    def test_end(self, logs: Mapping[str, Any] | None) -> None:
        handle, self._test = self._test, None
        if handle is not None:
            if self.every > 1:
                self._sampler.release(handle, handle.last_batch)
            if handle.kind is PhaseKind.VALIDATION:
                self._validation_logs = logs
            self.ledger.end_phase(handle, Status.FINISHED, full_logs(logs), self.model)

    @guarded("on_predict_begin")
    def predict_begin(self) -> None:
        self._predict = self.ledger.begin_phase(PhaseKind.PREDICT, self.model, self.keras_params)

    def predict_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        handle = self._predict
        if handle is None:
            return
        try:
            shapes = output_shapes(dict(logs or {}))
            with self._lock:
                handle.batch_count += 1
                if batch > handle.last_batch:
                    handle.last_batch = batch
                if self.every:  # timing only: outputs are never stored
                    self._sampler.sample(BatchRecord(handle, batch, None, batch, time.perf_counter() - handle.t0, None))
                if shapes:
                    handle.add_outputs(shapes)
        except Exception as exc:  # noqa: BLE001
            self.faults.report(exc, "on_predict_batch_end")

    @guarded("on_predict_end")
    def predict_end(self, logs: Mapping[str, Any] | None) -> None:
        handle, self._predict = self._predict, None
        if handle is not None:
            if self.every > 1:
                self._sampler.release(handle, handle.last_batch)
            self.ledger.end_phase(handle, Status.FINISHED, full_logs(logs), self.model)

    # -- capture.Listener -------------------------------------------------------------

    @guarded("recording before the callbacks")
    def event_begin(self, event: str, callbacks: list[Any]) -> None:
        self._in_event = event
        if event == "on_train_begin":
            self._siblings = list(callbacks)
        elif event == "on_epoch_end" and self._fit is not None and self._epoch is not None:
            self.decisions.epoch_ending(self._epoch)  # the weights as trained, before any callback acts
            self.saves.epoch_ending(self._epoch)

    @guarded("recording after the callbacks")
    def event_end(self, event: str) -> None:
        self._in_event = None
        if event == "on_epoch_begin" and self._fit is not None and self._epoch is not None:
            self.lr.epoch_started(self._epoch)
        elif event == "on_epoch_end":
            self._write_ended_epoch(flush=True)
        elif event == "on_train_end":
            self._finish_fit()

    @guarded("recording an epoch a callback aborted")
    def event_failed(self, failure: capture.EventFailure) -> None:
        """A callback listed before the tracker raised in ``on_epoch_end``: keep the epoch Keras computed."""
        epoch, ended, self._failure = failure.epoch, self._ended, failure
        if failure.event != "on_epoch_end" or epoch is None or failure.logs is None or self._fit is None:
            return
        if epoch not in self._epochs_written and (ended is None or ended.epoch != epoch):
            self.epoch_end(epoch, failure.logs)
        self._write_ended_epoch(flush=False)  # the fit raises next (call_failed)

    @guarded("recording the end of fit")
    def call_returned(self, method: str) -> None:
        if method == "fit" and self._fit is not None:
            self._in_event = None
            self._finish_fit()

    @guarded("recording the failure")
    def call_failed(self, method: str, exc: BaseException, model: Any = None) -> None:
        """Close the phases of a failing call (Keras skips the end hooks when a call raises);
        one that raised before its begin hook, inside no other call, is a phase that failed at once."""
        self._in_event, failure, self._failure = None, self._failure, None
        kinds = _METHOD_KINDS.get(method, set())
        status, error, stop = ending(exc, failure)  # a tuning tool's stop is pruned, not failed
        if method == "fit" and self._fit is not None:
            self._write_ended_epoch(flush=False)
            capture.unwatch(self)
            self.decisions.end_fit(completed=False, stop=stop, at=failure.epoch if failure else self._epoch)
            self.lr.end_fit()
        if not any(h.kind in kinds for h in self.ledger.phases):
            if not self.ledger.phases and method in _FIRST_KIND:  # raised before its begin hook
                self.model = model if model is not None else self.model
                self.ledger.failed_at_once(_FIRST_KIND[method], self.model, status, error)
            return
        for handle in self.ledger.fail_phases(kinds, status, error, self.model):
            for attr in ("_fit", "_test", "_predict"):
                if getattr(self, attr) is handle:
                    setattr(self, attr, None)

    def watches_optimizer(self, optimizer: Any) -> bool:
        return self.lr.name_of(optimizer) is not None

    @guarded("recording an LR change")
    def lr_set(self, optimizer: Any, old: float | None, new: float | None, actor: Actor) -> None:
        self.lr.lr_set(optimizer, old, new, actor)

    @guarded("recording a stop")
    def stop_requested(self, actor: Actor) -> None:
        self.decisions.stop_requested(actor, self._epoch)

    @guarded("recording a restore")
    def weights_setting(self, actor: Actor) -> None:
        self.decisions.weights_setting(actor, self._epoch)

    @guarded("recording a restore")
    def weights_set(self, actor: Actor) -> None:
        self.decisions.weights_set(actor, self._epoch)

    @guarded("recording the EMA weights")
    def weights_finalized(self, optimizer: Any) -> None:
        self.decisions.ema_finalized()
