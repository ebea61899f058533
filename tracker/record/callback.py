"""TrackingCallback: one instance is one run, recorded into SQLite.

Data path: this callback → ``tracker.record.writer`` (buffered, ordered ops) →
``tracker.db.tables`` tables. Per batch the callback only appends a tuple to an
in-memory queue; disk writes happen at phase begin/end, at epoch end and in a
background flusher.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import keras
from sqlalchemy import Connection, insert, update

from tracker.record import calls, observers
from tracker.record.decisions import DecisionRecorder
from tracker.record.ledger import RunLedger
from tracker.db.metrics import upsert_run_metrics
from tracker.db.engine import DEFAULT_DB
from tracker.errors import TrackingWriteError, UnknownRunError
from tracker.record.resume import find_run_to_resume
from tracker.record.environment import output_shapes
from tracker.db.tables import (
    Epoch,
    EpochValue,
    Param,
    Phase,
    PhaseKind,
    PhaseStatus,
    PhaseValue,
    Run,
    Tag,
)
from tracker.errors import TrackingWarning
from tracker.db.values import utcnow, value_rows
from tracker.record.writer import BATCH, PhaseHandle, Writer

__all__ = ["TrackingCallback"]

logger = logging.getLogger(__name__)

_RUNS, _PHASES, _EPOCHS = Run.__table__, Phase.__table__, Epoch.__table__
_PARAMS, _TAGS = Param.__table__, Tag.__table__
_EPOCH_VALUES, _PHASE_VALUES = EpochValue.__table__, PhaseValue.__table__

# Which open phases a failing Keras method owns.
_METHOD_KINDS = {
    "fit": {PhaseKind.FIT},
    "evaluate": {PhaseKind.EVALUATE, PhaseKind.VALIDATION},
    "predict": {PhaseKind.PREDICT},
}


class TrackingCallback(keras.callbacks.Callback):
    """Record a run (every fit, evaluate and predict it sees) into a SQLite file.

    One instance is one run: pass the same instance to ``fit``, ``evaluate``
    and ``predict`` and each call becomes a phase of that run. The validation
    inside ``fit`` is recorded as ``validation`` phases, one per epoch.

    Args:
        db: A file path or an SQLAlchemy URL. Default ``"tracker.db"`` in the
            current directory. The file is created and migrated if needed.
        run_name: A name for the run. Default: the model's name.
        params: User parameters to store with the run (JSON values).
            Default none.
        tags: User tags, string to string. Default none.
        log_batches: Store every batch-end ``logs`` of train, validation and
            evaluate, and a timing row per predict batch. Default True.
        flush_every: Wake the background writer after this many batches.
            Default 128.
        flush_interval: The background writer also writes every this many
            seconds. Default 2.0.
        strict: Raise ``TrackingWriteError`` when recording fails, instead of
            warning and going on. Default False.
        resume: Continue an earlier run instead of starting a new one, for a
            job restarted after preemption (with ``BackupAndRestore``).
            ``True`` continues the newest unfinished run named ``run_name``
            (or starts one if there is none); a run id continues that run.
            Default False.

    Attributes:
        run_id: The run's id (32 hex characters), known at construction.
        async_safe: True. The batch hooks only append to a queue under a
            lock, so on the JAX and torch backends Keras may call them from
            its worker threads.

    Example:
        ```python
        cb = TrackingCallback("runs.db", params={"lr": 0.1}, tags={"exp": "a"})
        model.fit(x, y, epochs=3, validation_split=0.2, callbacks=[cb])
        model.evaluate(x, y, callbacks=[cb])
        print(tracker.Store("runs.db").epochs(cb.run_id))
        ```
    """

    async_safe = True

    def __init__(
        self,
        db: str | os.PathLike[str] = DEFAULT_DB,
        *,
        run_name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        log_batches: bool = True,
        flush_every: int = 128,
        flush_interval: float = 2.0,
        strict: bool = False,
        resume: bool | str = False,
    ) -> None:
        super().__init__()
        if run_name is not None and not isinstance(run_name, str):
            raise ValueError(f"run_name must be a string or None, not {type(run_name).__name__}.")
        if params is not None and not isinstance(params, Mapping):
            raise ValueError("params must be a mapping of names to JSON values, e.g. {'lr': 0.1}.")
        if tags is not None:
            if not isinstance(tags, Mapping):
                raise ValueError("tags must be a mapping of strings to strings, e.g. {'exp': 'a'}.")
            bad = [k for k, v in tags.items() if not isinstance(k, str) or not isinstance(v, str)]
            if bad:
                raise ValueError(f"tags must map strings to strings; fix the tag(s) {bad!r}.")
        if not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"flush_every must be a positive integer, not {flush_every!r}.")
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be a positive number of seconds, not {flush_interval!r}.")

        self.run_id: str = uuid.uuid4().hex
        self.run_name = run_name
        self.run_params: dict[str, Any] = {str(k): v for k, v in (params or {}).items()}
        self.run_tags: dict[str, str] = dict(tags or {})
        self.log_batches = bool(log_batches)
        self.strict = bool(strict)
        self._writer = Writer(
            os.fspath(db), flush_every=flush_every, flush_interval=flush_interval, strict=strict
        )
        self._writer.run_id = self.run_id
        self._writer.on_reset = lambda: self._ledger.recreate()
        self.db_url = self._writer.url
        self._ledger = RunLedger(self, self._writer)
        self._epoch: int | None = None
        self._epoch_started: datetime | None = None
        self._fault_reasons: set[str] = set()
        self._batch_lock = threading.Lock()
        self._epoch_batches: list[int] = []
        self._decisions = DecisionRecorder(self)
        calls.install()
        observers.install()
        try:
            engine = self._writer.open()
            if resume:
                found = find_run_to_resume(engine, resume, run_name)
                if found is not None:
                    self.run_id, self._ledger.phase_seq = found
                    self._writer.run_id = self.run_id
                    self._ledger.resumed = True
        except (ValueError, UnknownRunError):
            raise
        except Exception as exc:  # noqa: BLE001 - reported, retried at each flush
            if strict:
                raise
            warnings.warn(
                f"{exc} Tracking keeps records in memory and retries; training is not affected.",
                TrackingWarning,
                stacklevel=2,
            )

    # -- fault handling --------------------------------------------------------

    def _fault(self, exc: BaseException, where: str) -> None:
        """Report a tracking failure without disturbing training (unless strict)."""
        if self.strict:
            if isinstance(exc, TrackingWriteError):
                raise exc
            raise TrackingWriteError(f"tracker: {where} failed: {exc}") from exc
        logger.exception("tracker: %s failed", where)
        reason = f"{where}: {type(exc).__name__}"
        if reason not in self._fault_reasons:
            self._fault_reasons.add(reason)
            warnings.warn(
                f"tracker: {where} failed ({type(exc).__name__}: {exc}); training goes on.",
                TrackingWarning,
                stacklevel=3,
            )

    def _flush(self) -> None:
        self._writer.flush()

    # -- told by tracker.record.calls and tracker.record.observers ------------------------------------

    def _before_call(self, method: str, callbacks: list[Any]) -> None:
        if method == "fit":
            self._decisions.callbacks = [cb for cb in callbacks if cb is not self]

    def _after_call(self, method: str) -> None:
        if method == "fit":
            try:
                self._decisions.end_fit(completed=True)
                self._flush()
            except Exception as exc:  # noqa: BLE001
                self._fault(exc, "recording the end of fit")

    def _watches_optimizer(self, optimizer: Any) -> bool:
        return self._decisions.name_of(optimizer) is not None

    def _on_lr_set(self, optimizer: Any, old: float | None, new: float | None, actor: observers.Actor) -> None:
        self._decisions.on_lr_set(optimizer, old, new, actor)

    def _on_stop_training(self, actor: observers.Actor) -> None:
        self._decisions.on_stop_training(actor)

    def _before_set_weights(self, actor: observers.Actor) -> None:
        self._decisions.before_set_weights(actor)

    def _after_set_weights(self, actor: observers.Actor) -> None:
        self._decisions.after_set_weights(actor)

    def _on_call_failed(self, method: str, exc: BaseException) -> None:
        """Close the phases of a failing ``fit``/``evaluate``/``predict`` call.

        Called by ``tracker.record.calls`` because Keras skips the end hooks when
        a call raises.
        """
        kinds = _METHOD_KINDS.get(method, set())
        if method == "fit":
            try:
                self._decisions.end_fit(completed=False)
            except Exception as fault:  # noqa: BLE001
                self._fault(fault, "recording the failure")
        if not any(PhaseKind(h.kind) in kinds for h in self._ledger.phases):
            return
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        status = PhaseStatus.INTERRUPTED if interrupted else PhaseStatus.FAILED
        error = f"{type(exc).__name__}: {exc}"
        try:
            while self._ledger.phases:
                handle = self._ledger.phases[-1]
                self._ledger.end_phase(handle, status, None, error=error)
                if PhaseKind(handle.kind) in kinds:
                    break
        except Exception as fault:  # noqa: BLE001
            self._fault(fault, "recording the failure")

    # -- fit -----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        try:
            handle = self._ledger.begin_phase(PhaseKind.FIT)
            self._decisions.begin_fit(handle)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_started = utcnow()
        self._epoch_batches = []
        try:
            fit = self._ledger.current(PhaseKind.FIT)
            if fit is not None and fit.initial_epoch is None:
                fit.initial_epoch = epoch  # the fit's first epoch: above 0 on a resume
                self._writer.submit(
                    lambda conn, h=fit: conn.execute(
                        update(_PHASES).where(_PHASES.c.id == h.id).values(initial_epoch=h.initial_epoch)
                    )
                )
            if self._decisions.phase is not None:
                self._decisions.epoch_begin(epoch)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_epoch_begin")


    def _count_batch(self, handle: PhaseHandle, epoch: int | None, batch: int, logs: Any) -> None:
        """Number one batch-end hook of ``handle`` and queue its record.

        The one per-batch path of every phase: a counter and an in-memory
        append, under a lock because Keras may call batch hooks from worker
        threads (``async_safe``). ``logs`` is copied (or None for predict,
        whose outputs are never stored).
        """
        with self._batch_lock:
            seq = handle.batch_count
            handle.batch_count = seq + 1
            if self.log_batches:
                self._writer.add_batch((BATCH, handle, seq, epoch, batch, time.perf_counter() - handle.t0, logs))

    def on_train_batch_end(self, batch, logs=None):
        try:
            self._count_batch(self._ledger.phases[-1], self._epoch, batch, dict(logs) if logs else None)
            if self.log_batches and self._decisions.has_schedule:
                self._epoch_batches.append(batch)
            if self._decisions.lr_due:
                self._decisions.first_batch()
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_train_batch_end")

    def on_epoch_end(self, epoch, logs=None):
        try:
            handle = self._ledger.current(PhaseKind.FIT)
            if handle is None:
                return
            epoch_logs = dict(logs) if logs else None
            started, ended = self._epoch_started, utcnow()
            fingerprint = self._decisions.epoch_end(epoch, self._epoch_batches)
            run_id = self.run_id

            def write_epoch(conn: Connection) -> None:
                epoch_id = conn.execute(
                    insert(_EPOCHS).values(
                        phase_id=handle.id, epoch=epoch, started_at=started, ended_at=ended, fingerprint=fingerprint
                    )
                ).inserted_primary_key[0]
                rows = value_rows(epoch_logs, epoch_id=epoch_id)
                if rows:
                    conn.execute(insert(_EPOCH_VALUES), rows)
                    upsert_run_metrics(conn, run_id, epoch, rows)
                conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(epoch_count=_RUNS.c.epoch_count + 1))

            self._writer.submit(write_epoch)
            self._flush()
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_epoch_end")

    def on_train_end(self, logs=None):
        try:
            handle = self._ledger.current(PhaseKind.FIT)
            if handle is not None:
                self._ledger.end_phase(handle, PhaseStatus.FINISHED, logs)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_train_end")

    # -- evaluate (standalone, or validation inside fit) --------------------------

    def on_test_begin(self, logs=None):
        try:
            inside_fit = bool(self._ledger.phases) and self._ledger.phases[-1].kind == PhaseKind.FIT.value
            self._ledger.begin_phase(PhaseKind.VALIDATION if inside_fit else PhaseKind.EVALUATE)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_test_begin")

    def on_test_batch_end(self, batch, logs=None):
        try:
            self._count_batch(self._ledger.phases[-1], None, batch, dict(logs) if logs else None)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_test_batch_end")

    def on_test_end(self, logs=None):
        try:
            handle = self._ledger.phases[-1] if self._ledger.phases else None
            if handle is not None and handle.kind in (PhaseKind.EVALUATE.value, PhaseKind.VALIDATION.value):
                self._ledger.end_phase(handle, PhaseStatus.FINISHED, logs)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_test_end")

    # -- predict -----------------------------------------------------------------

    def on_predict_begin(self, logs=None):
        try:
            self._ledger.begin_phase(PhaseKind.PREDICT)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_predict_begin")

    def on_predict_batch_end(self, batch, logs=None):
        try:
            handle = self._ledger.phases[-1]
            shapes = output_shapes(logs or {})
            self._count_batch(handle, None, batch, None)  # timing only: outputs are never stored
            with self._batch_lock:
                if shapes:
                    first = next(iter(shapes.values()))
                    handle.sample_count += first[0] if first else 1
                    for key, shape in shapes.items():
                        known = handle.output_shapes.get(key)
                        if known is None:
                            handle.output_shapes[key] = list(shape)
                        elif shape:
                            known[0] += shape[0]
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_predict_batch_end")

    def on_predict_end(self, logs=None):
        try:
            handle = self._ledger.current(PhaseKind.PREDICT)
            if handle is not None:
                self._ledger.end_phase(handle, PhaseStatus.FINISHED, logs)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "on_predict_end")

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Write everything still buffered. Called automatically at phase end and exit."""
        self._writer.close()

    @property
    def pending(self) -> int:
        """Records buffered in memory and not yet written."""
        return self._writer.pending
