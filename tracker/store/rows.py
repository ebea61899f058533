"""A frame's exact rows and JSON values: the one conversion every output starts from.

``frame_rows`` turns a DataFrame of the Store into plain ``(columns, rows)``
(a missing cell None, a logged NaN still NaN); ``json_value`` and ``to_json``
write cells as JSON values: exact floats, NaN and ±inf as ``"NaN"``,
``"Infinity"``, ``"-Infinity"``, times as ISO 8601 with their zone (the
tracker stores UTC). CSV/JSON output (``tracker.views.output``), the reports
and the dashboard's JSON all use these, so they agree.
"""

from __future__ import annotations

import math
from datetime import timezone
from typing import Any

__all__ = ["json_value", "frame_rows", "to_json"]


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
