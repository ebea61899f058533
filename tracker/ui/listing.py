"""The runs table: ``tracker.store.overview`` rows as the ``/api/runs`` JSON.

``overview`` reads every listed run in a fixed handful of queries, as plain
rows (no pandas); this turns its rows into one JSON object per run, without
building a DataFrame, so 10,000 runs stay well inside the dashboard's time
budget. Part of ``tracker.ui.data``, which validates the arguments. No SQL
here. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from tracker.store.overview import overview
from tracker.ui.jsonable import jsonable

__all__ = ["runs_json", "RUN_MEMBERS"]

#: The members of each ``/api/runs`` object, in order.
RUN_MEMBERS = (
    "run_id", "name", "status", "started_at", "ended_at", "duration_s", "epochs", "phases", "params", "metric",
    "best", "best_epoch", "stopped_epoch", "restored_epoch", "evaluate",
)
_PLAIN = ("run_id", "name", "status", "started_at", "ended_at", "duration_s", "epochs", "phases")
_DECISIONS = ("best_epoch", "stopped_epoch", "restored_epoch")


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
    """Return the listed runs as a JSON array, newest first (see ``Dashboard.runs`` for the members)."""
    found = overview(
        engine, status=status, name=name, sort="-started_at", limit=limit,
        run_ids=None if run_ids is None else list(run_ids), metric=metric, heartbeat_timeout=heartbeat_timeout,
    )
    at = {c: i for i, c in enumerate(found.columns)}
    plain = [(c, at[c]) for c in _PLAIN]
    params = [(c.removeprefix("param:"), at[c]) for c in found.columns if c.startswith("param:")]
    evals = [(c.removeprefix("eval:"), at[c]) for c in found.columns if c.startswith("eval:")]
    decisions = [(c, at[c]) for c in _DECISIONS]
    best, metric = at["best"], found.metric
    items = []
    for row in found.rows:
        item: dict[str, Any] = {c: row[i] for c, i in plain}
        item["started_at"], item["ended_at"] = _iso(item["started_at"]), _iso(item["ended_at"])
        item["params"] = {k: _number(row[i]) for k, i in params}
        item["metric"] = metric
        item["best"] = _number(row[best])
        for c, i in decisions:
            item[c] = row[i]
        results = {k: _number(row[i]) for k, i in evals if row[i] is not None}
        item["evaluate"] = results or None
        items.append(item)
    return _json(items)


def _number(value: Any) -> Any:
    """A value as JSON: NaN and ±inf as strings, a list or dict (a logged array) made JSON-safe."""
    if isinstance(value, float):
        return value if math.isfinite(value) else jsonable(value)
    return jsonable(value) if isinstance(value, (list, dict)) else value


def _iso(value: Any) -> str | None:
    """A stored time as ISO 8601 text (SQLite gives ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace(" ", "T", 1)


_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))
_json = _ENCODER.encode  # the whole answer in one call of the C encoder
