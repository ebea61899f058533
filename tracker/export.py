"""Exporting any report or query result to a CSV or JSON file.

One writer for the CLI's ``--format csv|json`` and for files
(``tracker.formatting.render``), so they agree byte for byte. CSV floats use
Python's shortest round-trip repr, so ``pandas.read_csv`` gives back the same
numbers. Text cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-`` or ``@``) get a leading ``'`` unless
``neutralise_formulas=False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracker.formatting import frame_rows, render

__all__ = ["export"]


def export(frame: Any, path: str | Path, *, fmt: str | None = None, neutralise_formulas: bool = True) -> Path:
    """Write a DataFrame to ``path`` as CSV or JSON and return the path.

    Args:
        frame: Any report or query result (a pandas DataFrame).
        path: Where to write. Its folder must exist.
        fmt: ``csv`` or ``json``. Default: from the file's suffix, else csv.
        neutralise_formulas: Prefix formula-like text cells with ``'`` in CSV.
            Default True.

    Raises:
        ValueError: ``fmt`` is not csv or json, or the folder does not exist.
    """
    out = Path(path)
    kind = (fmt or out.suffix.lstrip(".") or "csv").lower()
    if kind not in ("csv", "json"):
        raise ValueError(f"Cannot export as {kind!r}; use a .csv or .json file.")
    if not out.parent.is_dir():
        raise ValueError(f"Cannot write {out}: the folder {out.parent} does not exist.")
    columns, rows = frame_rows(frame)
    out.write_text(render(columns, rows, kind, neutralise_formulas=neutralise_formulas) + "\n", encoding="utf-8")
    return out
