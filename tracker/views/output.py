"""Rendering rows for the terminal and for pipes: table, CSV or JSON.

Works on plain rows (the CLI's fast ``runs`` path never imports pandas) and
on DataFrames. Floats keep Python's shortest round-trip repr in CSV and
JSON; JSON writes NaN and ±inf as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``,
and a missing cell as ``null`` (CSV: ``NaN`` and an empty cell); DEL, C1
and bidi controls are written as ``\\uXXXX`` escapes (``json_text``), the
same JSON value but nothing a terminal acts on. Times are
ISO 8601 with their zone: the tracker stores UTC, so a stored time reads
``2026-11-27T12:56:08.589661+00:00``. Tables (for people) are laid out by
``tracker.views.terminal``; exact rows come from ``tracker.store.rows``.

CSV guards against formula injection (OWASP's CSV injection rules): a text
cell, header cells included, that starts with ``=``, ``+``, ``-``, ``@``, a
tab, a carriage return or a line feed (or the full-width ``＝``, ``＋``,
``－``, ``＠``) gets a leading ``'``, unless ``neutralise_formulas=False``.
Numbers are never prefixed (``-1.5`` stays ``-1.5``). A field holding a
comma, a quote, a carriage return or a line feed is quoted, so no value can
start a new row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from tracker.store.rows import json_value

__all__ = ["render", "json_text"]

#: What a spreadsheet may take as the start of a formula (OWASP), and the full-width forms.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NEEDS_QUOTES = re.compile('[",\r\n]')
#: Characters JSON may hold raw that a terminal acts on (C0 is escaped by json.dumps itself):
#: DEL, C1, the bidi controls and lone surrogates. Written as \uXXXX escapes: the same JSON value.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def json_text(value: Any) -> str:
    """``value`` (already JSON-safe) as JSON text that is safe to print and parses back to the same value.

    Non-ASCII text stays readable (``ensure_ascii=False``); the characters
    a terminal would act on are written as ``\\uXXXX`` escapes.
    """
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


def _cell_text(value: Any) -> str:
    value = json_value(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _neutral(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _csv_line(cells: Sequence[str]) -> str:
    """One CSV record (RFC 4180): a field holding ``,``, ``"``, CR or LF quoted, its quotes doubled."""
    if len(cells) == 1 and cells[0] == "":
        return '""'  # a lone empty field, told apart from an empty line
    return ",".join('"' + c.replace('"', '""') + '"' if _NEEDS_QUOTES.search(c) else c for c in cells)


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
        neutralise_formulas: CSV only: prefix text cells and headers that
            start with ``=``, ``+``, ``-``, ``@``, tab, CR or LF (or a
            full-width ``=+-@``) with ``'``. Default True.
        width: Table only: the width to fit. Default: the terminal's.
        keys: Table only: how many leading columns to repeat when the table
            continues in a further block. Default 0.
    """
    if fmt == "json":
        return json_text([{c: json_value(v) for c, v in zip(columns, row)} for row in rows])
    if fmt == "csv":
        header = [str(c) for c in columns]
        lines = [_csv_line([_neutral(c) for c in header] if neutralise_formulas else header)]
        for row in rows:
            cells = [_cell_text(v) for v in row]
            if neutralise_formulas:
                cells = [_neutral(c) if isinstance(v, str) else c for c, v in zip(cells, row)]
            lines.append(_csv_line(cells))
        return "\n".join(lines)
    from tracker.views.terminal import render_table

    return render_table(columns, rows, width=width, keys=keys)
