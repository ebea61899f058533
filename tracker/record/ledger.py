"""The run's own rows: the run, its phases, and how each one ends.

A ``RunLedger`` belongs to one TrackingCallback. It keeps the stack of open
phases (fit, with validation passes nested inside it; evaluate; predict),
numbers them, and queues the writes that create, update and close the run
and phase rows. See ``tracker.record.callback`` for the hooks that drive it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update

from tracker.record.environment import environment, jsonable, model_info, optimizer_config
from tracker.db.tables import Param, Phase, PhaseKind, PhaseStatus, PhaseValue, Run, RunStatus, Tag
from tracker.errors import TrackingWarning
from tracker.db.values import utcnow, value_rows
from tracker.record.writer import PhaseHandle, Writer

__all__ = ["RunLedger"]

_RUNS, _PHASES, _PHASE_VALUES = Run.__table__, Phase.__table__, PhaseValue.__table__
_PARAMS, _TAGS = Param.__table__, Tag.__table__


class RunLedger:
    """Queues the run and phase rows of one TrackingCallback (``cb``)."""

    def __init__(self, cb: Any, writer: Writer) -> None:
        self.cb = cb
        self.writer = writer
        self.phases: list[PhaseHandle] = []
        self.phase_seq = 0
        self.phases_begun = 0
        self.run_written = False
        self.model_recorded = False
        self.run_status = RunStatus.FINISHED
        self.resumed = False
        self.run_row: dict[str, Any] | None = None

    def ensure_run(self) -> None:
        if self.run_written:
            return
        self.run_written = True
        env = environment()
        if self.resumed:
            self.resume_run(env)
            return
        row = {
            "id": self.cb.run_id,
            "name": self.cb.run_name if self.cb.run_name is not None else getattr(self.cb.model, "name", None),
            "status": RunStatus.RUNNING,
            "started_at": utcnow(),
            **env,
        }
        params = [{"run_id": self.cb.run_id, "key": k, "value": v} for k, v in self.cb.run_params.items()]
        tags = [{"run_id": self.cb.run_id, "key": k, "value": v} for k, v in self.cb.run_tags.items()]

        def write_run(conn: Connection) -> None:
            conn.execute(insert(_RUNS).values(**row))
            if params:
                conn.execute(insert(_PARAMS), params)
            if tags:
                conn.execute(insert(_TAGS), tags)

        self.run_row = row
        self.writer.submit(write_run)

    def recreate(self) -> list[Any]:
        """Ops that rebuild this run's open state in a fresh file (see Writer._check_file)."""
        row = dict(self.run_row or {
            "id": self.cb.run_id, "name": self.cb.run_name, "started_at": utcnow(), **environment()
        })
        row.update(status=RunStatus.RUNNING, ended_at=None)
        ops: list[Any] = [lambda conn: conn.execute(insert(_RUNS).values(**row))]
        ops.extend(h.begin_op for h in self.phases if h.begin_op is not None)
        return ops

    def resume_run(self, env: dict[str, Any]) -> None:
        """Mark the continued run as running again, from this process."""
        run_id = self.cb.run_id
        params = [{"run_id": run_id, "key": k, "value": v} for k, v in self.cb.run_params.items()]
        tags = [{"run_id": run_id, "key": k, "value": v} for k, v in self.cb.run_tags.items()]

        def write(conn: Connection) -> None:
            conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id)
                .values(status=RunStatus.RUNNING, ended_at=None, error=None, **env)
            )
            for table, rows in ((_PARAMS, params), (_TAGS, tags)):
                for row in rows:
                    exists = conn.execute(
                        select(table.c.key).where(table.c.run_id == run_id, table.c.key == row["key"])
                    ).first()
                    if exists is None:
                        conn.execute(insert(table).values(**row))

        self.writer.submit(write)

    def update_run(self, **values: Any) -> None:
        run_id = self.cb.run_id

        def write(conn: Connection) -> None:
            conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(**values))

        self.writer.submit(write)

    def record_model(self) -> None:
        if self.model_recorded:
            return
        info = model_info(self.cb.model)
        if info is not None:
            self.model_recorded = True
            self.update_run(**info)

    def begin_phase(self, kind: PhaseKind) -> PhaseHandle:
        outermost = not self.phases
        self.ensure_run()
        if outermost and self.phase_seq > 0 and not (self.resumed and self.phases_begun == 0):
            self.update_run(status=RunStatus.RUNNING, ended_at=None)
        parent = self.phases[-1] if self.phases else None
        epoch = self.cb._epoch if kind is PhaseKind.VALIDATION else None
        handle = PhaseHandle(kind=kind.value, seq=self.phase_seq, t0=time.perf_counter(), parent=parent, epoch=epoch)
        self.phase_seq += 1
        self.phases_begun += 1
        row = {
            "run_id": self.cb.run_id,
            "seq": handle.seq,
            "kind": kind,
            "epoch": epoch,
            "status": PhaseStatus.RUNNING,
            "started_at": utcnow(),
            "keras_params": jsonable(dict(self.cb.params or {})),
            "optimizer_config": optimizer_config(self.cb.model) if kind is PhaseKind.FIT else None,
        }

        run_id = self.cb.run_id

        def write_phase(conn: Connection) -> None:
            values = dict(row, parent_id=parent.id if parent is not None else None)
            handle.id = conn.execute(insert(_PHASES).values(**values)).inserted_primary_key[0]
            if kind is not PhaseKind.VALIDATION:
                conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(phase_count=_RUNS.c.phase_count + 1))

        write_phase.assigns = handle  # type: ignore[attr-defined]
        handle.begin_op = write_phase
        self.writer.submit(write_phase)
        self.phases.append(handle)
        self.record_model()
        if outermost:
            # Not a synchronous flush: the background writer starts with the
            # run and phase rows right away, off the training thread.
            self.writer.start()
            self.writer.wake()
        return handle

    def end_phase(
        self,
        handle: PhaseHandle,
        status: PhaseStatus,
        logs: Mapping[str, Any] | None,
        error: str | None = None,
    ) -> None:
        if handle in self.phases:
            self.phases.remove(handle)
        values: dict[str, Any] = {
            "status": status,
            "ended_at": utcnow(),
            "batch_count": handle.batch_count,
            "error": error,
        }
        if handle.kind == PhaseKind.PREDICT.value:
            values["sample_count"] = handle.sample_count
            values["output_shapes"] = handle.output_shapes
        end_logs = dict(logs) if logs else None

        def write_end(conn: Connection) -> None:
            conn.execute(update(_PHASES).where(_PHASES.c.id == handle.id).values(**values))
            rows = value_rows(end_logs, phase_id=handle.id)
            if rows:
                conn.execute(insert(_PHASE_VALUES), rows)

        self.writer.submit(write_end)
        if status is PhaseStatus.FAILED:
            self.run_status = RunStatus.FAILED
        elif status is PhaseStatus.INTERRUPTED and self.run_status is RunStatus.FINISHED:
            self.run_status = RunStatus.INTERRUPTED
        self.record_model()
        if not self.phases:
            run_values: dict[str, Any] = {"status": self.run_status, "ended_at": utcnow()}
            if error is not None:
                run_values["error"] = error
            self.update_run(**run_values)
            self.writer.stop()
            self.writer.flush(wait=2.0)
            lost = self.writer.unwritten()
            if lost is not None:
                warnings.warn(lost, TrackingWarning, stacklevel=3)
            return
        # A nested phase (validation) ends just before its epoch does, and
        # the epoch end flushes synchronously; don't pay for two flushes.
        self.writer.wake()

    def current(self, kind: PhaseKind) -> PhaseHandle | None:
        for handle in reversed(self.phases):
            if handle.kind == kind.value:
                return handle
        return None

