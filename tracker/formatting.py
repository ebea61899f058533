"""Rendering rows for the terminal and for pipes: table, CSV or JSON.

Works on plain rows (the CLI's fast ``runs`` path never imports pandas) and
on DataFrames. Floats keep Python's shortest round-trip repr in CSV and
JSON; JSON writes NaN and ±inf as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["json_value", "render", "frame_rows"]

FORMULA_START = ("=", "+", "-", "@")


def json_value(value: Any) -> Any:
    """A cell as a JSON value (exact floats; non-finite floats as strings)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def frame_rows(frame: Any) -> tuple[list[str], list[list[Any]]]:
    """Return ``(columns, rows)`` of a DataFrame."""
    columns = [str(c) for c in frame.columns]
    return columns, frame.astype(object).where(frame.notna(), None).values.tolist()


def _cell_text(value: Any) -> str:
    value = json_value(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, neutralise_formulas: bool = True) -> str:
    """Return rows as ``table`` (for people), ``csv`` or ``json`` (row objects)."""
    if fmt == "json":
        return json.dumps([{c: json_value(v) for c, v in zip(columns, row)} for row in rows], ensure_ascii=False)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            cells = [_cell_text(v) for v in row]
            if neutralise_formulas:
                cells = [
                    f"'{c}" if isinstance(v, str) and c.startswith(FORMULA_START) else c for c, v in zip(cells, row)
                ]
            writer.writerow(cells)
        return out.getvalue().rstrip("\n")
    if not rows:
        return "(no rows)"
    from tabulate import tabulate

    shown = [[_short(_cell_text(v)) for v in row] for row in rows]
    return tabulate(shown, headers=list(columns), tablefmt="simple", disable_numparse=True)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
