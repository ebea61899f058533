"""The runs table: ``tracker.store.overview`` as the ``/api/runs`` JSON, a list of run objects.

``overview`` reads every listed run in a fixed handful of queries, as plain
rows (no pandas). Here each row becomes one object (``param:NAME`` columns
gathered into ``params``, ``eval:KEY`` columns into ``evaluate``) and the
list is encoded by orjson in one call: 10,000 runs well inside the 300 ms
budget (see ``benchmarks/ui.py``). orjson would write NaN and ±inf as null,
so the few columns that can hold a logged value are made exact first
(``"NaN"``, ``"Infinity"``, ``"-Infinity"``, as everywhere in the API). No
SQL here. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine

from tracker.store.rows import json_value
from tracker.store.overview import Overview, overview
from tracker.ui.jsonable import dumps, jsonable

__all__ = ["runs_json", "run_objects", "encode"]

_TIMES = ("started_at", "ended_at")


def runs_json(
    engine: Engine,
    *,
    metric: str | None,
    status: str | None,
    name: str | None,
    limit: int | None,
    run_ids: Sequence[str] | None,
    heartbeat_timeout: float,
    experiment: str | None = None,
    where: str | None = None,
) -> bytes:
    """Return the runs as a JSON list of objects (UTF-8), newest run first.

    Members are ``Store.overview``'s columns (see ``Dashboard.runs``) with
    ``params`` and ``evaluate`` nested; times are ISO 8601 UTC; NaN and ±inf
    are strings.
    """
    found = overview(
        engine, status=status, name=name, sort="-started_at", limit=limit,
        run_ids=None if run_ids is None else list(run_ids), metric=metric, experiment=experiment,
        where=where, heartbeat_timeout=heartbeat_timeout,
    )
    return encode(run_objects(found))


def run_objects(found: Overview) -> list[dict[str, Any]]:
    """The overview's rows as the API's run objects (``params`` and ``evaluate`` nested), exact."""
    plain: list[tuple[int, str]] = []
    times: list[tuple[int, str]] = []
    params: list[tuple[int, str]] = []
    evals: list[tuple[int, str]] = []
    for i, column in enumerate(found.columns):
        if column.startswith("param:"):
            params.append((i, column.removeprefix("param:")))
        elif column.startswith("eval:"):
            evals.append((i, column.removeprefix("eval:")))
        elif column in _TIMES:
            times.append((i, column))
        else:
            plain.append((i, column))
    out: list[dict[str, Any]] = []
    for row in found.rows:
        item = {column: _exact(row[i]) for i, column in plain}
        for i, column in times:
            item[column] = _iso(row[i])
        item["params"] = {key: _exact(row[i]) for i, key in params}
        results = {key: _exact(row[i]) for i, key in evals if row[i] is not None}
        item["evaluate"] = results or None
        out.append(item)
    return out


def encode(out: Any) -> bytes:
    """``out`` as UTF-8 JSON by orjson (exact floats), or by ``jsonable`` for what orjson does not know."""
    try:
        return orjson.dumps(out)
    except (orjson.JSONEncodeError, TypeError):  # something orjson does not know (a logged array's odd cell)
        return dumps(jsonable(out))


def _exact(value: Any) -> Any:
    """A cell as orjson must see it: non-finite floats as their strings, nested values made JSON-safe."""
    if type(value) is float:
        return value if math.isfinite(value) else json_value(value)
    if value is None or type(value) in (str, int, bool):
        return value
    return jsonable(value)


def _iso(value: Any) -> str | None:
    """A stored time as ISO 8601 text (SQLite gives ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace(" ", "T", 1)
