"""Turning read results into exact JSON: the dashboard's one number format.

Floats keep Python's shortest round-trip repr, so ``json.loads`` gives back
the same float64 bit for bit; NaN and ±inf become the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (as ``tracker.store.rows.json_value``
writes them for the CLI). Times are ISO 8601 UTC without an offset, as in the
CLI's JSON. No database access here (that is ``tracker.ui.data``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from tracker.store.rows import json_value

__all__ = ["jsonable", "dumps", "frame_records"]


def jsonable(value: Any) -> Any:
    """Return ``value`` with every cell made JSON-safe, recursively.

    Dicts, lists and tuples are walked; every other value goes through
    ``tracker.store.rows.json_value`` (NaN and ±inf as strings, numpy scalars
    as Python numbers, times as ISO text, pandas' NA as None).
    """
    if isinstance(value, float):  # the common case first
        return value if math.isfinite(value) else json_value(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    converted = json_value(value)
    return value if converted is value else jsonable(converted)


def dumps(value: Any) -> bytes:
    """Return an already JSON-safe ``value`` (see ``jsonable``) as compact UTF-8 JSON.

    Raises:
        ValueError: a non-finite float slipped through (a bug: every read
            shapes its answer with ``jsonable`` first).
    """
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def frame_records(frame: Any) -> list[dict[str, Any]]:
    """Return a DataFrame's rows as dicts of JSON-safe cells.

    Missing cells (None, NaN, NaT, pandas NA) become None: in the Store's
    frames a float NaN outside the logged values is SQL NULL. Logged values
    never pass through here (see ``Dashboard.epochs``), so a logged NaN stays
    ``"NaN"`` there.
    """
    columns = [str(c) for c in frame.columns]
    cells = [[_cell(v) for v in frame[c].tolist()] for c in frame.columns]
    return [dict(zip(columns, row)) for row in zip(*cells)] if columns else [{} for _ in range(len(frame))]


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return jsonable(value)
