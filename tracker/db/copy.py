"""Copying runs, with everything they hold, from one tracker database to another.

From a laptop's SQLite file to the team's PostgreSQL server, or back for
offline analysis (``tracker db copy``). The destination is migrated first.
Values are copied as stored, so they stay bit-exact (NaN payloads, -0.0,
integers beyond float64, packed batch values). Row ids are the destination's
own: phases, epochs, keys, key sets and experiments (by name) are mapped on the way.

Copying is idempotent: a run the destination already holds as the source
holds it is skipped; one it holds only in part (copied while it was still
running, or interrupted) is replaced by a full copy in one transaction. A run
whose destination copy has more than the source (it was continued there) is
left alone and reported. ``runs.created_by`` is copied as stored, except by
a PostgreSQL role under row-level security (a writer): its copies belong to
it, like the runs it records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select
from sqlalchemy.exc import DBAPIError

from tracker.db.base import table_of
from tracker.db.engine import checkpoint_wal
from tracker.db.keys import KeyCache
from tracker.db.roles import confined_to_own_runs
from tracker.db.tables import (
    Batch,
    BatchExtra,
    Epoch,
    EpochValue,
    Experiment,
    Key,
    KeySet,
    LRChange,
    LRSeries,
    Param,
    Phase,
    PhaseValue,
    Restore,
    Run,
    RunMetric,
    StopDecision,
    StopperState,
    Tag,
    Trial,
)
from tracker.db.checkpoint_tables import Checkpoint, EpochPart, FitStart, WeightLayout
from tracker.db.sweep_writes import experiment_id
from tracker.db.system_tables import SystemSample
from tracker.errors import DatabaseError

__all__ = ["CopyReport", "copy_runs"]

_CHUNK = 5000
_RUNS, _PHASES, _EPOCHS, _BATCHES = table_of(Run), table_of(Phase), table_of(Epoch), table_of(Batch)
_DECISIONS = [table_of(t) for t in (LRChange, LRSeries, StopDecision, StopperState, Restore, Checkpoint, FitStart)]
_EXPERIMENTS = table_of(Experiment)


@dataclass
class CopyReport:
    """What a copy did, by run id: ``copied``, ``replaced`` (completed), ``skipped``, ``kept`` (newer there)."""

    copied: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    rows: int = 0


def _without(row: Any, *names: str) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k not in names}


def _counts(conn: Connection, run_id: str) -> tuple[Any, ...] | None:
    """What a run holds, to tell a full copy from a partial one."""
    run = conn.execute(
        select(_RUNS.c.status, _RUNS.c.ended_at, _RUNS.c.phase_count, _RUNS.c.epoch_count).where(_RUNS.c.id == run_id)
    ).first()
    if run is None:
        return None
    phase_ids = select(_PHASES.c.id).where(_PHASES.c.run_id == run_id)
    batches = conn.execute(select(func.count()).select_from(_BATCHES).where(_BATCHES.c.phase_id.in_(phase_ids))).scalar()
    epochs = conn.execute(select(func.count()).select_from(_EPOCHS).where(_EPOCHS.c.phase_id.in_(phase_ids))).scalar()
    status = getattr(run.status, "value", run.status)
    return (status, run.ended_at, run.phase_count, epochs, batches)


def _more(dst: tuple[Any, ...], src: tuple[Any, ...]) -> bool:
    return dst[2] > src[2] or dst[3] > src[3] or dst[4] > src[4]


def copy_runs(
    source: Engine,
    destination: Engine,
    run_ids: Sequence[str],
    *,
    progress: Callable[[str, int], None] | None = None,
    report: CopyReport | None = None,
) -> CopyReport:
    """Copy the runs ``run_ids`` from ``source`` to ``destination`` (see the module docstring).

    Args:
        source: The database to read.
        destination: The database to write, already at the head revision.
        run_ids: The runs to copy (ids as in the source).
        progress: Called with ``(run_id, rows copied so far)`` as the copy goes.
        report: The report to fill in as each run's copy commits. Default: a
            new one. Pass one to know what was done when the copy is
            interrupted (Ctrl-C): each run is copied in one transaction, so
            the runs it lists are whole, and copying again resumes.

    Returns:
        ``report``.

    Ends with a checkpoint (``checkpoint_wal``): an SQLite destination file
    alone then holds every run copied.
    """
    report = CopyReport() if report is None else report
    keys = KeyCache()
    with source.connect() as src:
        src_keys: dict[int, str] = {
            int(i): str(n) for i, n in _rows(src.execute(select(table_of(Key).c.id, table_of(Key).c.name)))
        }
        src_keysets: dict[int, tuple[str, ...]] = {
            int(i): tuple(src_keys[int(k)] for k in str(ids).split(","))
            for i, ids in _rows(src.execute(select(table_of(KeySet).c.id, table_of(KeySet).c.key_ids)))
        }
        for run_id in run_ids:
            wanted = _counts(src, run_id)
            if wanted is None:
                continue
            with destination.connect() as dst:
                dst.execution_options(sqlite_begin="IMMEDIATE")
                with dst.begin():
                    have = _counts(dst, run_id)
                    if have == wanted:
                        report.skipped.append(run_id)
                        continue
                    if have is not None and _more(have, wanted):
                        report.kept.append(run_id)
                        continue
                    if have is not None:
                        _delete_partial(dst, run_id)
                    try:
                        report.rows += _copy_run(src, dst, keys, run_id, src_keys, src_keysets, progress,
                                                 keep_owner=not confined_to_own_runs(dst))
                    except BaseException:
                        keys.rollback()
                        raise
                keys.commit()
            (report.replaced if have is not None else report.copied).append(run_id)
    checkpoint_wal(destination)  # an SQLite destination file alone then holds the copy
    return report


def _delete_partial(dst: Connection, run_id: str) -> None:
    """Delete the destination's partial copy of a run, or say in one sentence who may.

    Raises:
        DatabaseError: the role may not delete it (on a server, only the owner
            deletes runs; see ``tracker db grant``).
    """
    try:
        deleted = dst.execute(delete(_RUNS).where(_RUNS.c.id == run_id)).rowcount
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "42501":
            raise
        deleted = 0
    if not deleted:
        raise DatabaseError(
            f"Cannot complete run {run_id[:8]} at the destination: completing it replaces its partial copy, "
            "which this database role may not delete; run the copy as the database's owner."
        )


def _insert(dst: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    batch = list(rows)
    if batch:
        dst.execute(insert(table), batch)
    return len(batch)


def _copy_run(
    src: Connection,
    dst: Connection,
    keys: KeyCache,
    run_id: str,
    src_keys: dict[int, str],
    src_keysets: dict[int, tuple[str, ...]],
    progress: Callable[[str, int], None] | None,
    *,
    keep_owner: bool,
) -> int:
    rows = 0
    run = src.execute(select(_RUNS).where(_RUNS.c.id == run_id)).one()
    values = _without(run) if keep_owner else _without(run, "created_by")
    if run.experiment_id is not None:  # the destination's experiment of that name (created if missing)
        experiment = src.execute(select(_EXPERIMENTS).where(_EXPERIMENTS.c.id == run.experiment_id)).one()
        values["experiment_id"] = experiment_id(dst, **_without(experiment, "id"))
    rows += _insert(dst, _RUNS, [values])
    for model in (Param, Tag, Trial):
        table = table_of(model)
        rows += _insert(dst, table, (_without(r) for r in src.execute(select(table).where(table.c.run_id == run_id))))
    phase_map: dict[int, int] = {}
    for phase in src.execute(select(_PHASES).where(_PHASES.c.run_id == run_id).order_by(_PHASES.c.seq)):
        values = _without(phase, "id")
        values["parent_id"] = phase_map.get(phase.parent_id) if phase.parent_id is not None else None
        new_id = dst.execute(insert(_PHASES).values(**values)).inserted_primary_key
        assert new_id is not None
        phase_map[phase.id] = new_id[0]
        rows += 1
    old_phases = list(phase_map)
    epoch_map: dict[int, int] = {}
    for epoch in src.execute(select(_EPOCHS).where(_EPOCHS.c.phase_id.in_(old_phases)).order_by(_EPOCHS.c.id)):
        values = _without(epoch, "id")
        values["phase_id"] = phase_map[epoch.phase_id]
        new_id = dst.execute(insert(_EPOCHS).values(**values)).inserted_primary_key
        assert new_id is not None
        epoch_map[epoch.id] = new_id[0]
        rows += 1
    ids = keys.key_ids(dst, src_keys.values())

    def mapped(table: Table, owner: str, owners: dict[int, int]) -> int:
        copied = 0
        source_rows = src.execute(select(table).where(table.c[owner].in_(list(owners)))).all() if owners else []
        for start in range(0, len(source_rows), _CHUNK):
            copied += _insert(dst, table, (
                {**_without(r), owner: owners[r._mapping[owner]], "key_id": ids[src_keys[r.key_id]]}
                for r in source_rows[start : start + _CHUNK]
            ))
        return copied

    rows += mapped(table_of(EpochValue), "epoch_id", epoch_map)
    rows += mapped(table_of(PhaseValue), "phase_id", phase_map)
    for old, new in phase_map.items():
        result = src.execution_options(yield_per=_CHUNK).execute(
            select(_BATCHES).where(_BATCHES.c.phase_id == old).order_by(_BATCHES.c.step)
        )
        for chunk in result.partitions():
            out = []
            for r in chunk:
                values = {**_without(r), "phase_id": new}
                if r.keyset_id is not None:
                    values["keyset_id"] = keys.keyset_id(dst, src_keysets[r.keyset_id])
                out.append(values)
            rows += _insert(dst, _BATCHES, out)
            if progress is not None:
                progress(run_id, rows)
    rows += mapped(table_of(BatchExtra), "phase_id", phase_map)
    for table in _DECISIONS:
        source_rows = src.execute(select(table).where(table.c.phase_id.in_(old_phases))).all() if old_phases else []
        rows += _insert(dst, table, ({**_without(r, "id"), "phase_id": phase_map[r.phase_id]} for r in source_rows))
    parts = table_of(EpochPart)
    source_parts = src.execute(select(parts).where(parts.c.epoch_id.in_(list(epoch_map)))).all() if epoch_map else []
    rows += _insert(dst, parts, ({**_without(r, "id"), "epoch_id": epoch_map[r.epoch_id]} for r in source_parts))
    for owned in (table_of(WeightLayout), table_of(SystemSample)):  # rows of the run with ids of their own
        rows += _insert(dst, owned, (_without(r, "id") for r in src.execute(select(owned).where(owned.c.run_id == run_id))))
    metrics = table_of(RunMetric)
    rows += _insert(dst, metrics, (
        {**_without(r), "key_id": ids[src_keys[r.key_id]]}
        for r in src.execute(select(metrics).where(metrics.c.run_id == run_id))
    ))
    if progress is not None:
        progress(run_id, rows)
    return rows


def _rows(result: Any) -> list[Any]:
    """A result's rows, untyped (SQLAlchemy 2.1 types ``Table.c`` columns as ``object``)."""
    return list(result)
