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


def _missing(value: Any) -> bool:
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def frame_rows(frame: Any) -> tuple[list[str], list[list[Any]]]:
    """Return ``(columns, rows)`` of a DataFrame.

    A missing cell (None, ``<NA>``, ``NaT``) becomes None; a float NaN stays
    NaN (a logged NaN), so JSON tells them apart (``null`` and ``"NaN"``).
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
        else:
            cells.append([None if _missing(v) else v for v in series.astype(object).tolist()])
    return columns, [list(row) for row in zip(*cells)] if cells else [[] for _ in range(len(frame))]


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
