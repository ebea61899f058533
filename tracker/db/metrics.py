"""Keeping ``run_metrics`` (best and final value per run and key) up to date.

One upsert per epoch end, computed by the database: ``best_min`` and
``best_max`` keep the earliest epoch reaching them, ``final`` is the latest
value (NULL for NaN, as in ``epoch_values.value``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, case, or_
from sqlalchemy.dialects import postgresql, sqlite

from tracker.db.tables import RunMetric

__all__ = ["upsert_run_metrics"]

_TABLE = RunMetric.__table__


@lru_cache(maxsize=4)
def _statement(dialect: str) -> Any:
    """The upsert, built once per dialect so SQLAlchemy compiles it once."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_TABLE)
    new, old = stmt.excluded, _TABLE.c
    lower = and_(new.best_min.is_not(None), or_(old.best_min.is_(None), new.best_min < old.best_min))
    higher = and_(new.best_max.is_not(None), or_(old.best_max.is_(None), new.best_max > old.best_max))
    return stmt.on_conflict_do_update(
        index_elements=[old.run_id, old.key],
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


def upsert_run_metrics(conn: Connection, run_id: str, epoch: int, rows: list[dict[str, Any]]) -> None:
    """Fold one epoch's numeric values (``value_rows`` output) into run_metrics."""
    numeric = [r for r in rows if r["bits"] is not None]
    if not numeric:
        return
    conn.execute(
        _statement(conn.dialect.name),
        [
            {
                "run_id": run_id,
                "key": r["key"],
                "best_min": r["value"],
                "best_min_epoch": epoch if r["value"] is not None else None,
                "best_max": r["value"],
                "best_max_epoch": epoch if r["value"] is not None else None,
                "final": r["value"],
                "final_epoch": epoch,
                "epochs": 1,
            }
            for r in numeric
        ],
    )
