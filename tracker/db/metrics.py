"""Keeping ``run_metrics`` (best and final value per run and key) up to date.

One upsert per epoch end, computed by the database: ``best_min`` and
``best_max`` keep the earliest epoch reaching them, ``final`` is the latest
value (NULL for NaN, as in ``epoch_values.value``). When a resumed fit
supersedes epochs, ``rebuild_run_summary`` recomputes a run's rows and its
``epoch_count`` from the epochs that still count.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tracker.db.base import table_of
from tracker.db.tables import Epoch, EpochValue, Phase, Run, RunMetric
from tracker.status import PhaseKind

__all__ = ["upsert_run_metrics", "rebuild_run_summary", "summarise"]

_TABLE = table_of(RunMetric)


@lru_cache(maxsize=4)
def _statement(dialect: str) -> Any:
    """The upsert, built once per dialect so SQLAlchemy compiles it once."""
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_(_TABLE)
    new, old = stmt.excluded, _TABLE.c
    lower = and_(new.best_min.is_not(None), or_(old.best_min.is_(None), new.best_min < old.best_min))
    higher = and_(new.best_max.is_not(None), or_(old.best_max.is_(None), new.best_max > old.best_max))
    return stmt.on_conflict_do_update(
        index_elements=[old.run_id, old.key_id],
        set_={
            "best_min": case((lower, new.best_min), else_=old.best_min),
            "best_min_epoch": case((lower, new.best_min_epoch), else_=old.best_min_epoch),
            "best_max": case((higher, new.best_max), else_=old.best_max),
            "best_max_epoch": case((higher, new.best_max_epoch), else_=old.best_max_epoch),
            "final": new.final,
            "final_epoch": new.final_epoch,
            "epochs": old.epochs + 1,
        },
    )


def upsert_run_metrics(conn: Connection, run_id: str, epoch: int, rows: Iterable[dict[str, Any]]) -> None:
    """Fold one epoch's numeric values (rows with ``key_id``, ``value``, ``bits``) into run_metrics."""
    params = [
        {
            "run_id": run_id,
            "key_id": r["key_id"],
            "best_min": r["value"],
            "best_min_epoch": epoch if r["value"] is not None else None,
            "best_max": r["value"],
            "best_max_epoch": epoch if r["value"] is not None else None,
            "final": r["value"],
            "final_epoch": epoch,
            "epochs": 1,
        }
        for r in rows
        if r["value"] is not None or r["bits"] is not None  # numbers only (NaN included)
    ]
    if params:
        conn.execute(_statement(conn.dialect.name), params)


def summarise(rows: Iterable[tuple[Any, int, int, float | None]]) -> list[dict[str, Any]]:
    """Return run_metrics rows for ``(run_id, epoch, key_id, value)`` in write order.

    ``value`` is None for NaN, which best skips and final keeps.
    """
    summary: dict[tuple[Any, int], dict[str, Any]] = {}
    for run_id, epoch, key_id, value in rows:
        s = summary.get((run_id, key_id))
        if s is None:
            s = summary[(run_id, key_id)] = {
                "run_id": run_id, "key_id": key_id, "best_min": None, "best_min_epoch": None,
                "best_max": None, "best_max_epoch": None, "epochs": 0,
            }
        if value is not None:
            if s["best_min"] is None or value < s["best_min"]:
                s["best_min"], s["best_min_epoch"] = value, epoch
            if s["best_max"] is None or value > s["best_max"]:
                s["best_max"], s["best_max_epoch"] = value, epoch
        s["final"], s["final_epoch"] = value, epoch
        s["epochs"] += 1
    return list(summary.values())


def rebuild_run_summary(conn: Connection, run_id: str) -> None:
    """Recompute a run's ``run_metrics`` and ``epoch_count`` from its epochs that count."""
    counted = and_(Phase.run_id == run_id, Phase.kind == PhaseKind.FIT, Epoch.superseded.is_(False))
    rows = conn.execute(
        select(Phase.run_id, Epoch.epoch, EpochValue.key_id, EpochValue.value)
        .join(Epoch, Epoch.phase_id == Phase.id)
        .join(EpochValue, EpochValue.epoch_id == Epoch.id)
        .where(counted, or_(EpochValue.value.is_not(None), EpochValue.bits.is_not(None)))
        .order_by(Phase.seq, Epoch.id)
    ).all()
    conn.execute(delete(RunMetric).where(RunMetric.run_id == run_id))
    summary = summarise(rows)
    if summary:
        conn.execute(insert(RunMetric), summary)
    count = conn.execute(
        select(func.count()).select_from(Epoch).join(Phase, Phase.id == Epoch.phase_id).where(counted)
    ).scalar_one()
    conn.execute(update(Run).where(Run.id == run_id).values(epoch_count=count))
