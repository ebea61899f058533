"""The run's own rows: the run, its phases, and how each one ends.

A ``Ledger`` keeps the stack of open phases of one run (fit, with validation
passes nested inside it; evaluate; predict), numbers them, and queues the
operations that create, update and close the run and phase rows. It knows
the run only through its ``RunIdentity`` and the writer only through
``submit``; the recorder (``tracker.record.recorder``) drives it.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tracker.db.sweep_writes import ExperimentRow, JoinExperiment
from tracker.db.values import utcnow
from tracker.db.writes import EndPhase, InsertPhase, InsertRun, Op, Pending, ResumeRun, UpdateRun
from tracker.errors import TrackingWarning
from tracker.record.environment import (
    environment,
    jsonable,
    model_info,
    optimizer_config,
)
from tracker.record.extensions import StartedRun, run_context
from tracker.record.system import SystemSampler
from tracker.record.writer import Writer
from tracker.status import FinalWeights, PhaseKind, Status

__all__ = ["EndedEpoch", "Ledger", "PhaseHandle", "RunIdentity"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RunIdentity:
    """Who the run is: its id, name, params and tags, and whether it continues an earlier run.

    ``next_seq`` is the sequence number the next phase gets (above 0 when
    resuming). ``name`` None means the model's name, read at the first phase
    (or the name a tool gives the run, see ``tracker.record.extensions``).
    ``experiment``: the experiment the user put the run in, if any.
    """

    run_id: str
    name: str | None
    params: dict[str, Any]
    tags: dict[str, str]
    resumed: bool = False
    next_seq: int = 0
    experiment: str | None = None


@dataclass(eq=False, slots=True)
class PhaseHandle:
    """A phase as the recorder sees it; ``id`` is set once its row is written."""

    kind: PhaseKind
    seq: int
    t0: float
    parent: PhaseHandle | None = None
    epoch: int | None = None  # validation: the epoch it validates
    initial_epoch: int | None = None  # fit: the first epoch Keras passed
    id: int | None = None
    batch_count: int = 0
    last_batch: int = -1  # the highest batch index seen (validation, evaluate, predict)
    sample_count: int = 0
    output_shapes: dict[str, list[int]] = field(default_factory=dict)
    begin_op: InsertPhase | None = None

    def add_outputs(self, shapes: Mapping[str, list[int]]) -> None:
        """Count a predict batch's samples (the first output's rows) and grow each output's shape."""
        first = next(iter(shapes.values()))
        self.sample_count += first[0] if first else 1
        for key, shape in shapes.items():
            known = self.output_shapes.get(key)
            if known is None:
                self.output_shapes[key] = list(shape)
            elif shape:
                known[0] += shape[0]


class Ledger:
    """Queues the run and phase rows of one run (see the module docstring).

    ``system`` is the run's system metrics sampler (``system_interval``
    seconds between timed samples; None: no system metrics), started when
    an outermost phase begins and stopped, with a last sample, when it ends.
    """

    def __init__(self, run: RunIdentity, writer: Writer, *, system_interval: float | None = None) -> None:
        self.run = run
        self.writer = writer
        self.system = None if system_interval is None else SystemSampler(run.run_id, writer.submit,
                                                                          interval=system_interval)
        self.phases: list[PhaseHandle] = []
        self.phases_begun = 0
        self.run_written = False
        self.model_recorded = False
        self.run_status = Status.FINISHED
        self.run_row: dict[str, Any] | None = None
        self.join: JoinExperiment | None = None
        self.held = False  # the tool ends the run (RunContext.held): a finished fit leaves it running

    def _ensure_run(self, model: Any) -> None:
        if self.run_written:
            return
        self.run_written = True
        env = environment()
        if self.run.resumed:
            values = dict(status=Status.RUNNING, ended_at=None, error=None, **env)
            self.writer.submit(ResumeRun(self.run.run_id, values, self.run.params, self.run.tags))
            if self.run.experiment is not None:
                self.writer.submit(JoinExperiment(self.run.run_id, ExperimentRow(self.run.experiment)))
            context = run_context()
            self.held = context is not None and context.held
            self._tell_started(context)
            return
        context = run_context()
        self.held = context is not None and context.held
        if self.run.name is None and context is not None:
            self.run.name = context.run_name
        if context is not None:  # what the user gave wins, key by key
            self.run.params, self.run.tags = {**context.params, **self.run.params}, {**context.tags, **self.run.tags}
        name = self.run.name if self.run.name is not None else getattr(model, "name", None)
        self.run_row = {"id": self.run.run_id, "name": name, "status": Status.RUNNING, "started_at": utcnow(), **env}
        self.writer.submit(InsertRun(self.run_row, self.run.params, self.run.tags))
        experiment = context.experiment if context is not None else None
        if self.run.experiment is not None:
            experiment = replace(experiment, name=self.run.experiment) if experiment else ExperimentRow(self.run.experiment)
        if experiment is not None:
            self.join = JoinExperiment(self.run.run_id, experiment, context.trial if context else None)
            self.writer.submit(self.join)
        self._tell_started(context)

    def _tell_started(self, context: Any) -> None:
        """Tell the tool whose context this is (if any) that the run started (or was continued)."""
        if context is not None and context.started is not None:
            try:
                context.started(StartedRun(self.writer.url, self.run.run_id))
            except Exception:  # noqa: BLE001 - a tool's hook must never break a run
                logger.exception("tracker: telling a tool its run started failed")

    def recreate(self) -> list[Op]:
        """Operations that rebuild this run's open rows in a fresh file (the old one was deleted)."""
        row = dict(
            self.run_row
            or {"id": self.run.run_id, "name": self.run.name, "started_at": utcnow(), **environment()}
        )
        row.update(status=Status.RUNNING, ended_at=None)
        ops: list[Op] = [InsertRun(row, self.run.params, self.run.tags)]
        if self.join is not None:
            ops.append(self.join)
        ops.extend(h.begin_op for h in self.phases if h.begin_op is not None)
        return ops

    def update_run(self, **values: Any) -> None:
        self.writer.submit(UpdateRun(self.run.run_id, values))

    def record_model(self, model: Any) -> None:
        """Store the model's name, config and parameter counts once it is built."""
        if self.model_recorded:
            return
        info = model_info(model)
        if info is not None:
            self.model_recorded = True
            self.update_run(**info)

    def begin_phase(
        self, kind: PhaseKind, model: Any, keras_params: Mapping[str, Any] | None, *, epoch: int | None = None
    ) -> PhaseHandle:
        """Open a phase (nested in the open one, for validation) and queue its row."""
        outermost = not self.phases
        self._ensure_run(model)
        if outermost and self.run.next_seq > 0 and not (self.run.resumed and self.phases_begun == 0):
            self.update_run(status=Status.RUNNING, ended_at=None)
        parent = self.phases[-1] if self.phases else None
        handle = PhaseHandle(kind=kind, seq=self.run.next_seq, t0=time.perf_counter(), parent=parent, epoch=epoch)
        self.run.next_seq += 1
        self.phases_begun += 1
        row = {
            "run_id": self.run.run_id,
            "seq": handle.seq,
            "kind": kind,
            "epoch": epoch,
            "status": Status.RUNNING,
            "started_at": utcnow(),
            "keras_params": jsonable(dict(keras_params or {})),
            "optimizer_config": optimizer_config(model) if kind is PhaseKind.FIT else None,
        }
        handle.begin_op = InsertPhase(self.run.run_id, handle, row, parent)
        self.writer.submit(handle.begin_op)
        self.phases.append(handle)
        self.record_model(model)
        if outermost:
            # Not a synchronous flush: the background writer writes the run and
            # phase rows while the first step computes (or within flush_interval).
            self.writer.start()
            self.writer.wake_soon()
            if self.system is not None:
                self.system.start(handle.seq)
        return handle

    def end_phase(
        self,
        handle: PhaseHandle,
        status: Status,
        logs: Mapping[str, Any] | None,
        model: Any,
        *,
        error: str | None = None,
        final_weights: FinalWeights | None = None,
    ) -> None:
        """Close a phase; closing the outermost one closes the run and writes everything.

        ``final_weights``: for a finished fit, which weights it left in the model.
        """
        if handle in self.phases:
            self.phases.remove(handle)
        values: dict[str, Any] = {
            "status": status,
            "ended_at": utcnow(),
            "batch_count": handle.batch_count,
            "error": error,
        }
        if final_weights is not None:
            values["final_weights"] = final_weights
        if handle.kind is PhaseKind.PREDICT:
            values["sample_count"] = handle.sample_count
            values["output_shapes"] = handle.output_shapes
        self.writer.submit(EndPhase(handle, values, dict(logs) if logs else None))
        if status is Status.FAILED:
            self.run_status = Status.FAILED
        elif status in (Status.INTERRUPTED, Status.PRUNED) and self.run_status is Status.FINISHED:
            self.run_status = status
        self.record_model(model)
        if not self.phases:
            if self.system is not None:
                self.system.stop()  # its last sample is written with the run's end
            run_values: dict[str, Any] = {"status": self.run_status, "ended_at": utcnow()}
            if self.held and self.run_status is Status.FINISHED:
                run_values = {"status": Status.RUNNING}  # its tool ends it, with its trial
            if error is not None:
                run_values["error"] = error
            self.update_run(**run_values)
            self.writer.stop()
            self.writer.flush(wait=2.0)
            self.writer.checkpoint()  # the database file alone now holds the run
            lost = self.writer.unwritten()
            if lost is not None:
                warnings.warn(lost, TrackingWarning, stacklevel=4)
            return
        # A nested phase (validation) ends just before its epoch does; both
        # are written while the next step computes.
        self.writer.wake_soon()

    def epoch_ended(self, epoch: int) -> None:
        """An epoch of the open fit ended (every callback's ``on_epoch_end`` ran): its system sample."""
        if self.system is not None:
            self.system.epoch_ended(epoch)

    def failed_at_once(self, kind: PhaseKind, model: Any, status: Status, error: str | None) -> None:
        """Record a call that raised before its begin hook: a phase that begins and ends ``status``.

        Keras checks a call's arguments and builds the model before it builds
        its callback list, so such a call has no Keras params: none are stored.
        """
        handle = self.begin_phase(kind, model, {})
        self.end_phase(handle, status, None, model, error=error)

    def fail_phases(self, kinds: set[PhaseKind], status: Status, error: str | None, model: Any) -> list[PhaseHandle]:
        """Close the open phases, innermost first, up to the outermost of ``kinds``; return them."""
        closed = []
        while self.phases:
            handle = self.phases[-1]
            closed.append(handle)
            self.end_phase(handle, status, None, model, error=error)
            if handle.kind in kinds:
                break
        return closed

    def current(self, kind: PhaseKind) -> PhaseHandle | None:
        """The innermost open phase of ``kind``, or None."""
        for handle in reversed(self.phases):
            if handle.kind is kind:
                return handle
        return None


@dataclass(slots=True)
class EndedEpoch:
    """An epoch whose own hook has run, waiting for the other callbacks' ``on_epoch_end``."""

    epoch: int
    started_at: datetime | None
    ended_at: datetime
    fingerprint: Pending | None
    logs: Mapping[str, Any] | None
    validation: Mapping[str, Any] | None = None  # the logs the epoch's validation pass ended with
    early: dict[str, Any] | None = None  # the logs as written before a save (tracker.db.epoch_amend)
