"""Checkpoints and lineage on the read side: the saves of a run, where its fits started, its family.

Plain functions behind ``Store.checkpoints``, ``Store.lineage`` and
``Store.run(ref)["started_from"]`` (documented there). Imports neither Keras
nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, literal, select

from tracker.db.checkpoint_tables import Checkpoint, FitStart
from tracker.db.tables import Phase, Run
from tracker.db.values import decode
from tracker.status import PhaseKind
from tracker.store.base import AnySelect, enum_values, float_column, int_columns, read_frame
from tracker.store.liveness import HEARTBEAT_TIMEOUT, effective_status
from tracker.store.names import shown_key
from tracker.store.runs import add_call, call_numbers

__all__ = ["CHECKPOINT_COLUMNS", "LINEAGE_COLUMNS", "checkpoints_frame", "started_from", "lineage_frame",
           "names_and_statuses", "trashed"]

#: The columns of ``Store.checkpoints``.
CHECKPOINT_COLUMNS = [
    "run_id", "name", "phase", "phase_seq", "call", "epoch", "batch", "step", "saved", "kind", "reason", "path",
    "saver", "hook", "monitor", "value", "best", "fingerprint", "saved_at",
]
#: The columns of ``Store.lineage``.
LINEAGE_COLUMNS = ["relation", "depth", "parent_id", "parent", "parent_status", "epoch", "batch", "child_id", "child",
                   "child_status", "fit", "layers"]

_FIT = literal(PhaseKind.FIT.value).label("phase")


def checkpoints_frame(engine: Engine, run_id: str | None) -> pd.DataFrame:
    """One row per save and per skipped epoch, of one run or of every run (see ``Store.checkpoints``)."""
    stmt: AnySelect = (
        select(
            Phase.run_id, Run.name, _FIT, Phase.seq.label("phase_seq"), Checkpoint.epoch, Checkpoint.batch,
            Checkpoint.step, Checkpoint.saved, Checkpoint.kind, Checkpoint.reason, Checkpoint.path, Checkpoint.saver,
            Checkpoint.hook, Checkpoint.monitor, Checkpoint.value, Checkpoint.value_bits, Checkpoint.best,
            Checkpoint.best_bits, Checkpoint.fingerprint, Checkpoint.saved_at,
        )
        .join(Phase, Phase.id == Checkpoint.phase_id)
        .join(Run, Run.id == Phase.run_id)
        .order_by(Run.started_at, Phase.seq, Checkpoint.saved_at, Checkpoint.id)
    )
    stmt = stmt.where(Phase.run_id == run_id) if run_id is not None else stmt.where(Run.deleted_at.is_(None))
    frame = enum_values(read_frame(engine, stmt), ["kind", "reason"])
    for column in ("value", "best"):
        cells = [decode(None if v is None or pd.isna(v) else v, None if b is None or pd.isna(b) else int(b), None)
                 for v, b in zip(frame[column], frame[f"{column}_bits"])]
        frame[column] = float_column(cells)
    frame = frame.drop(columns=["value_bits", "best_bits"])
    frame["saved"] = frame["saved"].astype(bool)
    frame["monitor"] = pd.Series([shown_key(m) if isinstance(m, str) else m for m in frame["monitor"]],
                                 dtype="object", index=frame.index)
    frame["saved_at"] = pd.to_datetime(frame["saved_at"], format="ISO8601")
    add_call(frame, call_numbers(engine, None if run_id is None else [run_id]))
    return int_columns(frame[CHECKPOINT_COLUMNS], ["epoch", "batch", "step"])


def _starts(engine: Engine, where: Any) -> list[Any]:
    """The recorded starts from another run's weights: ``(run_id, seq, layers, source run, seq, epoch, batch)``."""
    stmt = (
        select(Phase.run_id, Phase.seq, FitStart.layers, FitStart.source_run_id, FitStart.source_phase_seq,
               FitStart.source_epoch, FitStart.source_batch)
        .join(Phase, Phase.id == FitStart.phase_id)
        .where(FitStart.source_run_id.is_not(None), where)
        .order_by(Phase.seq, FitStart.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(stmt).all())


def started_from(engine: Engine, run_id: str) -> dict[str, Any] | None:
    """``{"run_id", "epoch"}`` of the recorded epoch the run's first fit started from (whole model), or None."""
    with engine.connect() as conn:
        first = conn.execute(
            select(Phase.seq).where(Phase.run_id == run_id, Phase.kind == PhaseKind.FIT.value).order_by(Phase.seq)
        ).scalar()
    if first is None:
        return None
    for _, seq, layers, source, _, epoch, _ in _starts(engine, Phase.run_id == run_id):
        if seq == first and layers is None:
            # A parent in the trash is out of view (as in every listing) until it is undeleted.
            return None if trashed(engine, {source}) else {"run_id": source, "epoch": epoch}
    return None


def trashed(engine: Engine, ids: set[str]) -> set[str]:
    """The runs among ``ids`` that are in the trash (``tracker delete``): out of view until undeleted."""
    if not ids:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(select(Run.id).where(Run.id.in_(sorted(ids)), Run.deleted_at.is_not(None))).scalars())


def names_and_statuses(engine: Engine, ids: set[str]) -> dict[str, tuple[str | None, str]]:
    """Each run's name and status (``crashed`` decided as for ``Store.runs``), by id; runs in the trash left out."""
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(Run.id, Run.name, Run.status, Run.host, Run.pid, Run.started_at, Run.heartbeat_at)
                            .where(Run.id.in_(sorted(ids)), Run.deleted_at.is_(None))).all()
    return {r[0]: (r[1], effective_status(getattr(r[2], "value", r[2]), r[3], r[4], r[5], r[6],
                                          timeout=HEARTBEAT_TIMEOUT)) for r in rows}


def lineage_frame(engine: Engine, run_id: str) -> pd.DataFrame:
    """The run's ancestors and descendants, one row per start (see ``Store.lineage``)."""
    edges: list[tuple[str, int, Any]] = []
    for relation in ("ancestor", "descendant"):
        seen, frontier, depth = {run_id}, [run_id], 0
        while frontier:
            depth += 1
            column = Phase.run_id if relation == "ancestor" else FitStart.source_run_id
            found = _starts(engine, column.in_(frontier))
            frontier = []
            for row in found:
                edges.append((relation, depth, row))
                other = row[3] if relation == "ancestor" else row[0]
                if other not in seen:
                    seen.add(other)
                    frontier.append(other)
    ids = {r[0] for _, _, r in edges} | {r[3] for _, _, r in edges}
    info = names_and_statuses(engine, ids)
    out_of_view = trashed(engine, ids)
    edges = [e for e in edges if e[2][0] not in out_of_view and e[2][3] not in out_of_view]
    calls = call_numbers(engine, sorted({r[0] for _, _, r in edges})) if edges else {}
    rows = []
    for relation, depth, (child, seq, layers, parent, _, epoch, batch) in edges:
        parent_name, parent_status = info.get(parent, (None, "absent"))
        child_name, child_status = info.get(child, (None, "absent"))
        rows.append([relation, depth, parent, parent_name, parent_status, epoch, batch, child, child_name,
                     child_status, calls.get((child, seq)), ", ".join(layers) if layers else None])
    frame = pd.DataFrame(rows, columns=LINEAGE_COLUMNS)
    return int_columns(frame, ["depth", "epoch", "batch", "fit"])
