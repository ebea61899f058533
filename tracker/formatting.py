"""Rendering rows for the terminal and for pipes: table, CSV or JSON.

Works on plain rows (the CLI's fast ``runs`` path never imports pandas) and
on DataFrames. Floats keep Python's shortest round-trip repr in CSV and
JSON; JSON writes NaN and ±inf as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``,
and a missing cell as ``null`` (CSV: ``NaN`` and an empty cell). Times are
ISO 8601 with their zone: the tracker stores UTC, so a stored time reads
``2026-11-27T12:56:08.589661+00:00``. Tables (for people) are laid out by
``tracker.terminal``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from datetime import timezone
from typing import Any

__all__ = ["json_value", "render", "frame_rows", "to_json"]

FORMULA_START = ("=", "+", "-", "@")


def json_value(value: Any) -> Any:
    """A cell as a JSON value (exact floats; non-finite floats as strings)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "isoformat"):
        if getattr(value, "tzinfo", False) is None and hasattr(value, "hour"):
            value = value.replace(tzinfo=timezone.utc)  # stored times are UTC
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _missing(value: Any) -> bool:
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def frame_rows(frame: Any) -> tuple[list[str], list[list[Any]]]:
    """Return ``(columns, rows)`` of a DataFrame.

    A missing cell (None, ``<NA>``, ``NaT``, a gap in a text column) becomes
    None; a float NaN stays NaN (a logged NaN), so JSON tells them apart
    (``null`` and ``"NaN"``).
    """
    import numpy as np
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    cells = []
    for i in range(len(frame.columns)):
        series = frame.iloc[:, i]
        if isinstance(series.dtype, pd.Float64Dtype | pd.Float32Dtype):
            mask = series.isna().to_numpy()
            data = series.to_numpy(dtype=np.float64, na_value=np.nan)
            cells.append([None if m else float(v) for v, m in zip(data, mask)])
        elif isinstance(series.dtype, pd.StringDtype):  # pandas 3 text: a gap reads as NaN, and is missing
            mask = series.isna().to_numpy()
            cells.append([None if m else v for v, m in zip(series.astype(object).tolist(), mask)])
        else:
            cells.append([None if _missing(v) else v for v in series.astype(object).tolist()])
    return columns, [list(row) for row in zip(*cells)] if cells else [[] for _ in range(len(frame))]


def to_json(value: Any) -> Any:
    """A nest of dicts, lists and DataFrames as JSON values: frames as lists of row objects.

    Cells as ``json_value`` writes them: exact floats, NaN and ±inf as
    strings, a missing cell as None, times as ISO text with their zone.
    """
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "columns") and hasattr(value, "iloc"):  # a DataFrame
        columns, rows = frame_rows(value)
        return [{c: to_json(v) for c, v in zip(columns, row)} for row in rows]
    return json_value(value)


def _cell_text(value: Any) -> str:
    value = json_value(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    *,
    neutralise_formulas: bool = True,
    width: int | None = None,
    keys: int = 0,
) -> str:
    """Return rows as ``table`` (for people), ``csv`` or ``json`` (row objects).

    Args:
        columns: The column names.
        rows: The cells.
        fmt: ``table``, ``csv`` or ``json``.
        neutralise_formulas: CSV only: prefix text cells starting with
            ``=``, ``+``, ``-`` or ``@`` with ``'``. Default True.
        width: Table only: the width to fit. Default: the terminal's.
        keys: Table only: how many leading columns to repeat when the table
            continues in a further block. Default 0.
    """
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
    from tracker.terminal import render_table

    return render_table(columns, rows, width=width, keys=keys)
