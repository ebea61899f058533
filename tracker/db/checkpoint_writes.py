"""The writes of checkpoints and lineage: typed operations and the functions that apply them.

Queued by the recorder (``tracker.record.checkpoints``,
``tracker.record.lineage``) on its ``Writer`` like every other operation
(``tracker.db.writes.apply`` dispatches them here). Digests may still be
computing on the fingerprint thread when an operation is queued: they are
resolved when it is written, off the training thread. Finding where a fit
started is a lookup by fingerprint, done here too, by the background writer.

Imports neither Keras nor pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, insert, select, true

from tracker.db.base import table_of
from tracker.db.checkpoint_tables import Checkpoint, EpochPart, FitStart, WeightLayout
from tracker.db.refs import Pending, PhaseRef, resolved
from tracker.db.tables import Epoch, Phase

__all__ = ["InsertCheckpoint", "RecordLayouts", "RecordStart", "InsertEpochParts", "PartsPending", "APPLY",
           "find_source"]

_CHECKPOINTS, _LAYOUTS = table_of(Checkpoint), table_of(WeightLayout)
_STARTS, _PARTS = table_of(FitStart), table_of(EpochPart)
_EPOCHS, _PHASES = table_of(Epoch), table_of(Phase)


class PartsPending:
    """Sub-model fingerprints still being hashed: ``result()`` gives ``{layer path: digest}``."""

    def __init__(self, compute: Callable[[], dict[str, str]]) -> None:
        self._compute = compute

    def result(self) -> dict[str, str]:
        return self._compute()


@dataclass(slots=True)
class InsertCheckpoint:
    """One save, or one epoch a best-only saver skipped (see ``tracker.db.checkpoint_tables.Checkpoint``)."""

    phase: PhaseRef
    row: dict[str, Any]
    fingerprint: str | Pending | None = None


@dataclass(slots=True)
class RecordLayouts:
    """The run's weights layouts (``format, digest, entries``), each stored once per run."""

    run_id: str
    layouts: list[tuple[str, str, list[list[Any]]]]


@dataclass(slots=True)
class RecordStart:
    """Where a fit started: its start fingerprint, and its sub-models' (``{layer path: digest}``)."""

    run_id: str
    phase: PhaseRef
    fingerprint: str | Pending | None
    parts: Any = None  # PartsPending, a dict, or None


@dataclass(slots=True)
class InsertEpochParts:
    """The sub-model fingerprints of an epoch already queued (``InsertEpoch``) for ``phase``."""

    phase: PhaseRef
    epoch: int
    parts: Any = field(default=None)  # PartsPending or a dict


def _insert_checkpoint(conn: Connection, keys: Any, op: InsertCheckpoint) -> None:
    conn.execute(insert(_CHECKPOINTS).values(**op.row, phase_id=op.phase.id, fingerprint=resolved(op.fingerprint)))


def _record_layouts(conn: Connection, keys: Any, op: RecordLayouts) -> None:
    have = {(f, d) for f, d in conn.execute(
        select(_LAYOUTS.c.format, _LAYOUTS.c.digest).where(_LAYOUTS.c.run_id == op.run_id))}
    rows = [{"run_id": op.run_id, "format": f, "digest": d, "entries": e}
            for f, d, e in op.layouts if (f, d) not in have]
    if rows:
        conn.execute(insert(_LAYOUTS), rows)


def find_source(conn: Connection, fingerprint: str, run_id: str | None, *,
                parts: bool = False) -> tuple[str, int, int, int | None] | None:
    """The earliest recorded weights of another run equal to ``fingerprint``.

    Looks at epoch ends first (``epochs.fingerprint``; with ``parts``, also
    the sub-models' ``epoch_parts``), then at saves inside an epoch
    (``checkpoints``). Returns ``(run_id, phase_seq, epoch, batch)``, batch
    None for an epoch's end; None if no other run recorded these weights.
    """
    other = _PHASES.c.run_id != run_id if run_id is not None else true()
    order = (_EPOCHS.c.ended_at, _EPOCHS.c.id)
    found = conn.execute(
        select(_PHASES.c.run_id, _PHASES.c.seq, _EPOCHS.c.epoch)
        .join(_PHASES, _PHASES.c.id == _EPOCHS.c.phase_id)
        .where(_EPOCHS.c.fingerprint == fingerprint, other).order_by(*order).limit(1)
    ).first()
    if found is None and parts:
        found = conn.execute(
            select(_PHASES.c.run_id, _PHASES.c.seq, _EPOCHS.c.epoch)
            .join(_EPOCHS, _EPOCHS.c.id == _PARTS.c.epoch_id)
            .join(_PHASES, _PHASES.c.id == _EPOCHS.c.phase_id)
            .where(_PARTS.c.fingerprint == fingerprint, other).order_by(*order).limit(1)
        ).first()
    if found is not None:
        return str(found[0]), int(found[1]), int(found[2]), None
    saved = conn.execute(
        select(_PHASES.c.run_id, _PHASES.c.seq, _CHECKPOINTS.c.epoch, _CHECKPOINTS.c.batch)
        .join(_PHASES, _PHASES.c.id == _CHECKPOINTS.c.phase_id)
        .where(_CHECKPOINTS.c.fingerprint == fingerprint, _CHECKPOINTS.c.saved.is_(True), other)
        .order_by(_CHECKPOINTS.c.saved_at, _CHECKPOINTS.c.id).limit(1)
    ).first()
    if saved is None or saved[2] is None:
        return None
    return str(saved[0]), int(saved[1]), int(saved[2]), None if saved[3] is None else int(saved[3])


def _source_columns(found: tuple[str, int, int, int | None] | None) -> dict[str, Any]:
    run, seq, epoch, batch = found if found is not None else (None, None, None, None)
    return {"source_run_id": run, "source_phase_seq": seq, "source_epoch": epoch, "source_batch": batch}


def _record_start(conn: Connection, keys: Any, op: RecordStart) -> None:
    fingerprint = resolved(op.fingerprint)
    found = find_source(conn, fingerprint, op.run_id) if fingerprint is not None else None
    rows = [{"phase_id": op.phase.id, "fingerprint": fingerprint, "layers": None, **_source_columns(found)}]
    if found is None and op.parts is not None:
        parts = op.parts if isinstance(op.parts, dict) else op.parts.result()
        for layer, digest in parts.items():
            part = find_source(conn, digest, op.run_id, parts=True)
            if part is not None:
                rows.append({"phase_id": op.phase.id, "fingerprint": digest, "layers": [layer], **_source_columns(part)})
    conn.execute(insert(_STARTS), rows)


def _insert_epoch_parts(conn: Connection, keys: Any, op: InsertEpochParts) -> None:
    parts = op.parts if isinstance(op.parts, dict) else op.parts.result()
    epoch_id = conn.execute(
        select(_EPOCHS.c.id).where(and_(_EPOCHS.c.phase_id == op.phase.id, _EPOCHS.c.epoch == op.epoch))
    ).scalar()
    if epoch_id is not None and parts:
        conn.execute(insert(_PARTS), [{"epoch_id": epoch_id, "layer": k, "fingerprint": v} for k, v in parts.items()])


#: How ``tracker.db.writes.apply`` applies each operation of this module (``keys``, its key cache, is unused).
APPLY: dict[type, Callable[[Connection, Any, Any], None]] = {
    InsertCheckpoint: _insert_checkpoint,
    RecordLayouts: _record_layouts,
    RecordStart: _record_start,
    InsertEpochParts: _insert_epoch_parts,
}
