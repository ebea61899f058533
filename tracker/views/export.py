"""Exporting any report or query result to a CSV or JSON file, and reading a CSV back.

One writer for the CLI's ``--format csv|json`` and for files
(``tracker.formatting.render``), so they agree byte for byte. CSV floats use
Python's shortest round-trip repr; a logged NaN is written ``NaN`` and a
missing cell is empty, so ``read_csv`` below gives back the same numbers and
tells the two apart (``pandas.read_csv`` alone reads both as NaN). Text
cells and headers that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab, CR or LF; see ``tracker.views.output``) get
a leading ``'`` unless ``neutralise_formulas=False``, and a field holding a
line break is quoted, so ``read_csv`` gives back the exact values of a file
written with ``neutralise_formulas=False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracker.errors import InvalidArgumentError
from tracker.store.rows import frame_rows
from tracker.views.output import render

__all__ = ["export", "export_rows", "read_csv"]


def export(frame: Any, path: str | Path, *, fmt: str | None = None, neutralise_formulas: bool = True) -> Path:
    """Write a DataFrame to ``path`` as CSV or JSON and return the path.

    Args:
        frame: Any report or query result (a pandas DataFrame).
        path: Where to write. Its folder must exist.
        fmt: ``csv`` or ``json``. Default: from the file's suffix, else csv.
        neutralise_formulas: Prefix formula-like text cells with ``'`` in CSV.
            Default True.

    Raises:
        ValueError: ``fmt`` is not csv or json, the folder does not exist, or
            the file cannot be written (an ``InvalidArgumentError``).
    """
    columns, rows = frame_rows(frame)
    return export_rows(columns, rows, path, fmt=fmt, neutralise_formulas=neutralise_formulas)


def export_rows(columns: list[str], rows: list[list[Any]], path: str | Path, *, fmt: str | None = None,
                neutralise_formulas: bool = True) -> Path:
    """Write plain rows (``columns``, ``rows``) to ``path`` as CSV or JSON and return the path.

    Takes the arguments of ``export`` and raises what it raises.
    """
    out = Path(path)
    kind = (fmt or out.suffix.lstrip(".") or "csv").lower()
    if kind not in ("csv", "json"):
        raise InvalidArgumentError(f"Cannot export as {kind!r}; use a .csv or .json file.")
    if not out.parent.is_dir():
        raise InvalidArgumentError(f"Cannot write {out}: the folder {out.parent} does not exist.")
    text = render(columns, rows, kind, neutralise_formulas=neutralise_formulas) + "\n"
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:  # a folder that is not writable, a full disk, a path that is a folder
        raise InvalidArgumentError(f"Cannot write {out}: {exc.strerror}.") from None
    return out


def _column(cells: list[str]) -> Any:
    import pandas as pd

    from tracker.store.base import float_column

    present = [c for c in cells if c != ""]
    if present and all(c in ("True", "False") for c in present):
        return pd.array([None if c == "" else c == "True" for c in cells], dtype="boolean")
    try:
        ints = [None if c == "" else int(c) for c in cells]
    except ValueError:
        pass
    else:
        return pd.array(ints, dtype="Int64")
    try:
        return float_column([None if c == "" else float(c) for c in cells])
    except ValueError:
        return pd.Series([None if c == "" else c for c in cells], dtype="object")


def read_csv(path: str | Path) -> Any:
    """Read a CSV written by ``export`` (or ``--format csv``) back into a DataFrame, exactly.

    Numbers come back as written (``float64``, or ``Float64`` where cells
    are missing); ``NaN`` stays a NaN and an empty cell is ``<NA>``; integer
    columns are ``Int64``, ``True``/``False`` columns ``boolean``, the rest
    text. Times stay ISO text. Cells of any length are read (Python's csv
    module stops at 128 KiB by default).

    Raises:
        InvalidArgumentError: the file cannot be read.
    """
    import csv
    import sys

    import pandas as pd

    limit = csv.field_size_limit(sys.maxsize)  # a logged text may be longer than csv's 128 KiB default
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise InvalidArgumentError(f"Cannot read {path}: {exc.strerror}.") from None
    finally:
        csv.field_size_limit(limit)
    if not rows:
        return pd.DataFrame()
    header, body = rows[0], rows[1:]
    return pd.DataFrame({name: _column([r[i] for r in body]) for i, name in enumerate(header)}, columns=header)
