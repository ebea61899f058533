"""Every SQL write of the tracker: typed operations and the functions that apply them.

The recorder (``tracker.record``) never builds SQL. It queues the typed
operations below on its ``Writer``, which applies them in order, in one
transaction per flush, with ``apply``. Each operation is a small frozen-shape
value; the one per-batch record, ``BatchRecord``, is a ``NamedTuple``, and
consecutive batch records are written with one ``executemany``.

An operation refers to its phase through ``PhaseRef``, an object whose
``id`` is set when the phase's row is written (``InsertPhase``), so later
operations can be queued before the row exists.

Imports neither Keras nor pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select, update

from tracker.db.base import table_of
from tracker.db import checkpoint_writes, epoch_amend, system_writes
from tracker.db.checkpoint_writes import InsertCheckpoint, InsertEpochParts, RecordLayouts, RecordStart
from tracker.db.epoch_amend import AmendEpoch
from tracker.db.keys import KeyCache
from tracker.db.metrics import rebuild_run_summary, upsert_run_metrics
from tracker.db.refs import Pending, PhaseRef, resolved
from tracker.db.tables import (
    Batch,
    BatchExtra,
    Epoch,
    EpochValue,
    Key,
    KeySet,
    LRChange,
    LRSeries,
    Param,
    Phase,
    PhaseValue,
    Restore,
    Run,
    StopDecision,
    StopperState,
    Tag,
)
from tracker.db.sweep_writes import JoinExperiment, join_experiment
from tracker.db.system_writes import InsertSystemSample
from tracker.db.types import SafeText
from tracker.db.values import float_packer, pack_batch, value_rows
from tracker.status import LRPoint, PhaseKind

__all__ = [
    "PhaseRef",
    "InsertRun",
    "ResumeRun",
    "UpdateRun",
    "InsertPhase",
    "EndPhase",
    "StartFit",
    "InsertEpoch",
    "Pending",
    "BatchRecord",
    "DecisionTable",
    "InsertDecisions",
    "InsertLRBatchSeries",
    "AmendEpoch",
    "JoinExperiment",
    "Op",
    "KeyCache",
    "apply",
    "write_batches",
    "touch_heartbeat",
]

_RUNS, _PHASES, _EPOCHS = table_of(Run), table_of(Phase), table_of(Epoch)
_BATCHES, _EXTRAS = table_of(Batch), table_of(BatchExtra)
_EPOCH_VALUES, _PHASE_VALUES = table_of(EpochValue), table_of(PhaseValue)
_KEYS, _KEYSETS = table_of(Key), table_of(KeySet)
_PARAMS, _TAGS = table_of(Param), table_of(Tag)


# -- operations ------------------------------------------------------------------


@dataclass(slots=True)
class InsertRun:
    """Create the run row, with its params and tags."""

    row: dict[str, Any]
    params: dict[str, Any]
    tags: dict[str, str]


@dataclass(slots=True)
class ResumeRun:
    """Mark a continued run as running again; add params and tags it lacks."""

    run_id: str
    values: dict[str, Any]
    params: dict[str, Any]
    tags: dict[str, str]


@dataclass(slots=True)
class UpdateRun:
    """Set columns of the run row."""

    run_id: str
    values: dict[str, Any]


@dataclass(slots=True)
class InsertPhase:
    """Create a phase row and set ``phase.id``; count it on the run unless it is a validation pass."""

    run_id: str
    phase: PhaseRef
    row: dict[str, Any]
    parent: PhaseRef | None = None


@dataclass(slots=True)
class EndPhase:
    """Close a phase: its final columns and the logs of ``on_train_end``/``on_test_end``."""

    phase: PhaseRef
    values: dict[str, Any]
    logs: dict[str, Any] | None


@dataclass(slots=True)
class StartFit:
    """A fit's first epoch: store ``initial_epoch``; when above 0, supersede earlier attempts.

    Epochs at or after ``initial_epoch`` trained by earlier fit phases of the
    run were thrown away by the restart (``BackupAndRestore``); they are
    marked superseded and the run's summary is rebuilt without them.
    """

    run_id: str
    phase: PhaseRef
    seq: int
    initial_epoch: int


@dataclass(slots=True)
class InsertEpoch:
    """One finished epoch: its row, its logs, the run's summary and epoch count."""

    run_id: str
    phase: PhaseRef
    epoch: int
    started_at: datetime | None
    ended_at: datetime
    #: The digest, or a pending one (``.result()`` gives it: the hash may still run on a helper thread).
    fingerprint: str | Pending | None
    logs: dict[str, Any] | None


class BatchRecord(NamedTuple):
    """One batch-end hook, as queued on the training thread (see ``tracker.db.tables.Batch``)."""

    phase: PhaseRef
    step: int
    epoch: int | None
    batch: int
    elapsed: float
    logs: dict[str, Any] | None


class DecisionTable(Enum):
    """The decision tables, for ``InsertDecisions``."""

    LR_CHANGES = table_of(LRChange)
    LR_SERIES = table_of(LRSeries)
    STOPS = table_of(StopDecision)
    STOPPER_STATES = table_of(StopperState)
    RESTORES = table_of(Restore)


@dataclass(slots=True)
class InsertDecisions:
    """Rows of one decision table, for one phase."""

    table: DecisionTable
    phase: PhaseRef
    rows: list[dict[str, Any]]


@dataclass(slots=True)
class InsertLRBatchSeries:
    """The per-batch learning rate of a schedule, evaluated when written (off the training thread).

    ``points`` are ``(batch, step)``; ``lr_at(step)`` returns the rate the
    optimizer uses at that global step.
    """

    phase: PhaseRef
    optimizer: str
    epoch: int
    points: list[tuple[int | None, int]]
    lr_at: Callable[[int], float | None] = field(repr=False)


Op = (InsertRun | ResumeRun | UpdateRun | InsertPhase | EndPhase | StartFit | InsertEpoch | InsertDecisions
      | InsertLRBatchSeries | JoinExperiment | InsertCheckpoint | RecordLayouts | RecordStart | InsertEpochParts
      | AmendEpoch | InsertSystemSample)


# -- applying -------------------------------------------------------------------------


def _insert_run(conn: Connection, keys: KeyCache, op: InsertRun) -> None:
    conn.execute(insert(_RUNS).values(**op.row))
    run_id = op.row["id"]
    if op.params:
        conn.execute(insert(_PARAMS), [{"run_id": run_id, "key": k, "value": v} for k, v in op.params.items()])
    if op.tags:
        conn.execute(insert(_TAGS), [{"run_id": run_id, "key": k, "value": v} for k, v in op.tags.items()])


def _resume_run(conn: Connection, keys: KeyCache, op: ResumeRun) -> None:
    conn.execute(update(_RUNS).where(_RUNS.c.id == op.run_id).values(**op.values))
    for table, given in ((_PARAMS, op.params), (_TAGS, op.tags)):
        if not given:
            continue
        have: set[str] = set(conn.execute(select(table.c.key).where(table.c.run_id == op.run_id)).scalars())
        rows = [{"run_id": op.run_id, "key": k, "value": v} for k, v in given.items() if k not in have]
        if rows:
            conn.execute(insert(table), rows)


def _update_run(conn: Connection, keys: KeyCache, op: UpdateRun) -> None:
    conn.execute(update(_RUNS).where(_RUNS.c.id == op.run_id).values(**op.values))


def _insert_phase(conn: Connection, keys: KeyCache, op: InsertPhase) -> None:
    parent_id = op.parent.id if op.parent is not None else None
    key = conn.execute(insert(_PHASES).values(**op.row, parent_id=parent_id)).inserted_primary_key
    assert key is not None
    op.phase.id = key[0]
    if op.row["kind"] is not PhaseKind.VALIDATION:
        conn.execute(update(_RUNS).where(_RUNS.c.id == op.run_id).values(phase_count=_RUNS.c.phase_count + 1))


def _end_phase(conn: Connection, keys: KeyCache, op: EndPhase) -> None:
    conn.execute(update(_PHASES).where(_PHASES.c.id == op.phase.id).values(**op.values))
    rows = value_rows(conn, keys, op.logs, phase_id=op.phase.id)
    if rows:
        conn.execute(insert(_PHASE_VALUES), rows)


def _start_fit(conn: Connection, keys: KeyCache, op: StartFit) -> None:
    conn.execute(update(_PHASES).where(_PHASES.c.id == op.phase.id).values(initial_epoch=op.initial_epoch))
    if op.initial_epoch <= 0:
        return
    earlier = select(_PHASES.c.id).where(
        _PHASES.c.run_id == op.run_id, _PHASES.c.kind == PhaseKind.FIT.value, _PHASES.c.seq < op.seq
    )
    result = conn.execute(
        update(_EPOCHS)
        .where(_EPOCHS.c.superseded.is_(False), _EPOCHS.c.epoch >= op.initial_epoch, _EPOCHS.c.phase_id.in_(earlier))
        .values(superseded=True)
    )
    if result.rowcount:
        rebuild_run_summary(conn, op.run_id)


def _insert_epoch(conn: Connection, keys: KeyCache, op: InsertEpoch) -> None:
    key = conn.execute(
        insert(_EPOCHS).values(
            phase_id=op.phase.id, epoch=op.epoch, started_at=op.started_at, ended_at=op.ended_at,
            fingerprint=resolved(op.fingerprint),
            superseded=False,
        )
    ).inserted_primary_key
    assert key is not None
    epoch_id = key[0]
    rows = value_rows(conn, keys, op.logs, epoch_id=epoch_id)
    if rows:
        conn.execute(insert(_EPOCH_VALUES), rows)
        upsert_run_metrics(conn, op.run_id, op.epoch, rows)
    conn.execute(update(_RUNS).where(_RUNS.c.id == op.run_id).values(epoch_count=_RUNS.c.epoch_count + 1))


def _insert_decisions(conn: Connection, keys: KeyCache, op: InsertDecisions) -> None:
    if op.rows:
        conn.execute(insert(op.table.value), [dict(r, phase_id=op.phase.id) for r in op.rows])


def _insert_lr_batch_series(conn: Connection, keys: KeyCache, op: InsertLRBatchSeries) -> None:
    rates: dict[int, float | None] = {}
    rows = []
    for batch, step in op.points:
        if step not in rates:
            rates[step] = op.lr_at(step)
        rows.append(
            {"phase_id": op.phase.id, "optimizer": op.optimizer, "point": LRPoint.BATCH, "epoch": op.epoch,
             "batch": batch, "step": step, "lr": rates[step]}
        )
    if rows:
        conn.execute(insert(table_of(LRSeries)), rows)


_APPLY: dict[type, Callable[[Connection, KeyCache, Any], None]] = {
    InsertRun: _insert_run,
    ResumeRun: _resume_run,
    UpdateRun: _update_run,
    InsertPhase: _insert_phase,
    EndPhase: _end_phase,
    StartFit: _start_fit,
    InsertEpoch: _insert_epoch,
    InsertDecisions: _insert_decisions,
    InsertLRBatchSeries: _insert_lr_batch_series,
    JoinExperiment: join_experiment,
    **checkpoint_writes.APPLY,  # checkpoints and lineage
    **epoch_amend.APPLY,  # an epoch written early, at a save
    **system_writes.APPLY,  # system metrics
}


def apply(conn: Connection, keys: KeyCache, op: Op) -> None:
    """Apply one operation inside the caller's transaction."""
    _APPLY[type(op)](conn, keys, op)


_ONLY_FLOAT = {float}
_BATCH_COLUMNS = ("phase_id", "step", "epoch", "batch", "elapsed_us", "keyset_id", "vals")
_EXTRA_COLUMNS = ("phase_id", "step", "key_id", "value", "bits", "text")


@lru_cache(maxsize=8)
def _insert_sql(paramstyle: str, table: str, columns: tuple[str, ...]) -> str:
    """A plain ``INSERT`` for the driver's ``executemany``: compiled once, no per-row processing.

    A batch index repeated within one epoch (a hand-written loop) keeps its
    first record instead of failing the whole flush (``ON CONFLICT DO NOTHING``,
    on SQLite and PostgreSQL alike).
    """
    mark = "?" if paramstyle == "qmark" else "%s"
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
            "ON CONFLICT DO NOTHING")


def write_batches(conn: Connection, keys: KeyCache, records: Sequence[BatchRecord]) -> None:
    """Write consecutive batch records with one driver-level ``executemany`` (plus one for any extras).

    The hot path of the writer: rows are plain tuples, values are packed here
    (off the training thread), and the statement goes straight to the DBAPI.
    """
    rows: list[tuple[Any, ...]] = []
    extras: list[tuple[Any, ...]] = []
    keysets = keys.keysets
    append = rows.append
    for phase, step, epoch, batch, elapsed, logs in records:
        phase_id = phase.id
        if logs:
            values = tuple(logs.values())
            if set(map(type, values)) == _ONLY_FLOAT:  # the common case, inlined: names, then bits
                names = tuple(logs)
                keyset_id = keysets.get(names)
                if keyset_id is None:
                    keyset_id = keys.keyset_id(conn, names)
                append((phase_id, step, epoch, batch, round(elapsed * 1e6), keyset_id,
                        float_packer(len(values)).pack(*values)))
                continue
        packed = pack_batch(logs)
        if packed.keys:
            keyset_id = keysets.get(packed.keys)
            if keyset_id is None:
                keyset_id = keys.keyset_id(conn, packed.keys)
            append((phase_id, step, epoch, batch, round(elapsed * 1e6), keyset_id, packed.vals))
        else:
            append((phase_id, step, epoch, batch, round(elapsed * 1e6), None, None))
        if packed.extras:
            ids = keys.key_ids(conn, [k for k, _ in packed.extras])
            extras.extend((phase_id, step, ids[k], e.value, e.bits, _nul_safe(conn, e.text))
                          for k, e in packed.extras)
    paramstyle = conn.dialect.paramstyle
    conn.exec_driver_sql(_insert_sql(paramstyle, "batches", _BATCH_COLUMNS), rows)
    if extras:
        conn.exec_driver_sql(_insert_sql(paramstyle, "batch_extras", _EXTRA_COLUMNS), extras)


def _nul_safe(conn: Connection, text: str | None) -> str | None:
    """What ``SafeText`` would bind (the driver-level insert bypasses column types)."""
    return SafeText().process_bind_param(text, conn.dialect)


def touch_heartbeat(conn: Connection, run_id: str, now: datetime) -> None:
    """Write the run's heartbeat (the writer's sign of life)."""
    conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(heartbeat_at=now))


def run_exists(conn: Connection, run_id: str) -> bool:
    """True if the run row exists (used when resuming)."""
    return conn.execute(select(_RUNS.c.id).where(_RUNS.c.id == run_id)).first() is not None
