"""Tables for people: cells rounded for reading, laid out to fit the terminal.

``render_table`` turns plain rows into text no wider than the terminal.
Cells are written for reading, not for round-tripping (``--format csv`` and
``json`` are exact):

* floats to 6 significant digits, a logged NaN as ``NaN``, ±inf as ``inf``;
  ints as ints; a missing cell is blank;
* times in UTC to the second, with the zone: ``2026-11-27 12:56:27Z``;
* durations (``Duration``) as ``0.84s``, ``12.3s``, ``4m05s``, ``2h03m``;
* text (cells and headers) through ``printable``: control characters (C0,
  DEL, C1), bidi controls and lone surrogates shown escaped (``\\x1b``,
  ``\\n``, ``\\t``, ``\\u202e``), so a run name, param, tag or logs key can
  neither drive the terminal (window title, OSC 52 clipboard, hyperlinks)
  nor break the table; text longer than ``TEXT_LIMIT`` characters cut there,
  with a marker giving the full length.

A table too wide for the terminal first wraps its long headers at ``_`` and
``:``, then long text cells at spaces (folding words that are still too
long), and as a last resort continues in a further block of columns below,
repeating the ``keys`` columns (a run's id and name, say) at the left of each
block. No line is wider than the width.

Terminal cell widths (wide and combining characters) and the wrapping and
folding of long cells are rich's (installed with Keras). The columns are laid
out here rather than by ``rich.table.Table``, which takes about 2 ms a row:
20 s for a listing of 10,000 runs, against under a second this way.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "Duration", "TEXT_LIMIT", "cell_text", "format_duration", "format_time", "printable", "render_table",
    "terminal_width",
]

#: Below this, a text column is narrowed only by wrapping it (for deciding how many columns fit).
TEXT_MIN = 16
_GAP = 2  # spaces between two columns
_BREAK = re.compile(r"(?<=[_:/])")
#: Characters a terminal acts on or reorders text by: C0 and C1 controls, DEL, the bidi controls
#: (ALM, LRM, RLM, the embeddings and overrides U+202A-U+202E, the isolates U+2066-U+2069) and lone
#: surrogates (an undecodable file name), which a UTF-8 terminal cannot even be sent.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
#: Text longer than this many characters is cut in a table (csv and json keep all of it).
TEXT_LIMIT = 300


class Duration(float):
    """A number of seconds, shown as a duration (``4m05s``) in tables."""

    __slots__ = ()


def terminal_width() -> int:
    """The width to lay tables out for.

    ``$COLUMNS`` when set, else the width of the terminal on stdout, else of
    the one on stderr (``tracker runs | less``), else 80.
    """
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    for stream in (sys.stdout, sys.stderr):
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            continue
    return 80


def format_time(value: datetime) -> str:
    """A time in UTC to the second with the zone (a naive time is taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%SZ")


def format_duration(seconds: float) -> str:
    """``0.84s``, ``12.3s``, ``4m05s``, ``2h03m``, ``3d04h``; NaN as ``NaN``."""
    if not math.isfinite(seconds):
        return "NaN" if math.isnan(seconds) else ("inf" if seconds > 0 else "-inf")
    sign, s = ("-" if seconds < 0 else ""), abs(seconds)
    if s < 10:
        return f"{sign}{s:.2f}s"
    if s < 60:
        return f"{sign}{s:.1f}s"
    whole = int(round(s))
    if whole < 3600:
        return f"{sign}{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{sign}{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{sign}{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str, *, limit: int | None = TEXT_LIMIT) -> str:
    """``text`` safe to print: control and bidi characters escaped, cut after ``limit`` characters.

    A newline reads ``\\n``, a tab ``\\t``, ESC ``\\x1b``, U+202E ``\\u202e``.
    Text longer than ``limit`` keeps its first ``limit`` characters, then
    ``… (N characters)`` with the full length N. ``limit=None`` never cuts.

    Returns:
        The text to show; unchanged when it holds nothing to escape or cut.
    """
    if limit is not None and len(text) > limit:
        return _CONTROL.sub(_escape, text[:limit]) + f"… ({len(text):,} characters)"
    return _CONTROL.sub(_escape, text)


def _is_missing(value: Any) -> bool:
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def cell_text(value: Any) -> str:
    """A cell as people read it (see the module docstring)."""
    if _is_missing(value):
        return ""
    if isinstance(value, Duration):
        return format_duration(float(value))
    if isinstance(value, datetime):
        return format_time(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        import json

        return printable(json.dumps(value, ensure_ascii=False))
    return printable(str(value))


def _is_number(value: Any) -> bool:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fixed(values: Sequence[Any]) -> bool:
    """A column of numbers, times, booleans or durations: never wrapped."""
    return all(_is_missing(v) or not isinstance(v, str) for v in values)


def _width(text: str) -> int:
    """The cells a text takes in a terminal (its widest line)."""
    if text.isascii():
        return len(text) if "\n" not in text else max(len(line) for line in text.split("\n"))
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.split("\n")), default=0)


def _words_width(text: str) -> int:
    """The width of the longest word (what a wrapped cell cannot go below without folding)."""
    return max((_width(word) for word in text.split()), default=0)


def _wrap_header(header: str, width: int) -> str:
    """Break a header at ``_``, ``:`` and ``/`` into lines of at most ``width`` (where it can)."""
    lines: list[str] = []
    for part in _BREAK.split(header):
        if lines and _width(lines[-1] + part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(lines)


def _header_min(header: str) -> int:
    return max((_width(part) for part in _BREAK.split(header)), default=0)


def _blocks(needs: list[int], keys: int, width: int) -> list[list[int]]:
    """Split column indices into blocks that fit ``width``, each starting with the key columns."""
    key_cols = list(range(min(keys, len(needs))))
    blocks: list[list[int]] = []
    block = list(key_cols)
    used = sum(needs[i] for i in block) + _GAP * max(len(block) - 1, 0)
    for i in range(len(key_cols), len(needs)):
        extra = needs[i] + (_GAP if block else 0)
        if len(block) > len(key_cols) and used + extra > width:
            blocks.append(block)
            block = list(key_cols)
            used = sum(needs[j] for j in block) + _GAP * max(len(block) - 1, 0)
            extra = needs[i] + (_GAP if block else 0)
        block.append(i)
        used += extra
    if len(block) > len(key_cols) or not blocks:
        blocks.append(block)
    return blocks


def render_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    width: int | None = None,
    keys: int = 0,
) -> str:
    """Return ``rows`` as a table no wider than ``width`` (see the module docstring).

    Args:
        columns: The headers.
        rows: The cells, as Python values (formatted by ``cell_text``;
            headers and text cells go through ``printable``).
        width: The width to fit. Default ``None``: ``terminal_width()``.
        keys: How many leading columns to repeat in each block when the
            columns do not fit side by side. Default 0.

    Returns:
        The table, lines without trailing spaces, no trailing newline;
        ``(no rows)`` when there are none.
    """
    if not rows:
        return "(no rows)"
    width = terminal_width() if width is None else width
    texts = [[cell_text(v) for v in row] for row in rows]
    n = len(columns)
    fixed = [_fixed([row[i] for row in rows]) for i in range(n)]
    data = [max((_width(row[i]) for row in texts), default=0) for i in range(n)]
    originals = [printable(str(c)) for c in columns]
    lows = [d if f else min(d, max(TEXT_MIN, min(_words_width_col(texts, i), width // 2)))
            for i, (d, f) in enumerate(zip(data, fixed))]
    headers = _fit_headers(originals, data, width)
    needs = [max(low, _width(h)) for low, h in zip(lows, headers)]
    if sum(needs) + _GAP * (n - 1) > width:
        # Still too wide with text cells wrapped: continue in blocks below, repeating the keys
        # (as many of them as leave half the width to the rest). Each block wraps its own headers.
        while keys > 0 and sum(needs[:keys]) + _GAP * keys > width // 2:
            keys -= 1
        blocks = _blocks(needs, keys, width)
        for block in blocks:
            for i, header in zip(block, _fit_headers([originals[i] for i in block], [data[i] for i in block],
                                                     width)):
                headers[i] = header
    else:
        blocks = [list(range(n))]
    numeric = [all(_is_missing(row[i]) or _is_number(row[i]) for row in rows) for i in range(n)]
    floors = [data[i] if fixed[i] else lows[i] for i in range(n)]
    out = [_render_block([headers[i] for i in block], [[row[i] for i in block] for row in texts],
                         [numeric[i] for i in block], [max(floors[i], _header_min(headers[i])) for i in block],
                         width) for block in blocks]
    return "\n\n".join(out)


def _fit_headers(headers: list[str], data: list[int], width: int) -> list[str]:
    """Wrap the headers that stick out most past their cells (at _ : /) until the columns fit, if they can."""
    headers = list(headers)
    natural = [max(d, _width(h)) for d, h in zip(data, headers)]
    for i in sorted(range(len(headers)), key=lambda i: _width(headers[i]) - data[i], reverse=True):
        if sum(natural) + _GAP * (len(headers) - 1) <= width or _width(headers[i]) <= data[i]:
            break
        headers[i] = _wrap_header(headers[i], max(data[i], _header_min(headers[i])))
        natural[i] = max(data[i], _width(headers[i]))
    return headers


def _words_width_col(texts: list[list[str]], i: int) -> int:
    return max((_words_width(row[i]) for row in texts), default=0)


def _render_block(headers: list[str], texts: list[list[str]], numeric: list[bool], floors: list[int],
                  width: int) -> str:
    """Lay one block out: headers (bottom-aligned), a rule, the rows; long cells wrapped to their column.

    Columns start at their natural width; while the block is too wide, the
    widest column that may shrink (down to its ``floors`` entry) gives way,
    and as a last resort every column does, its cells then folded.
    """
    n = len(headers)
    widths = [max(_width(h), max((_width(row[i]) for row in texts), default=0)) for i, h in enumerate(headers)]

    def excess() -> int:
        return sum(widths) + _GAP * (n - 1) - width

    for floor in (floors, [1] * n):
        while excess() > 0:
            shrinkable = [i for i in range(n) if widths[i] > floor[i]]
            if not shrinkable:
                break
            i = max(shrinkable, key=widths.__getitem__)
            widths[i] -= min(excess(), widths[i] - floor[i], max(1, widths[i] - max(
                [widths[j] for j in shrinkable if j != i] + [floor[i]])))
    head = [_lines(h, w) for h, w in zip(headers, widths)]
    height = max(len(lines) for lines in head)
    out = []
    for k in range(height):  # headers sit on the rule
        out.append([_pad((["" for _ in range(height - len(lines))] + lines)[k], w, right)
                    for lines, w, right in zip(head, widths, numeric)])
    out.append(["─" * w for w in widths])
    for row in texts:
        cells = [_lines(text, w) for text, w in zip(row, widths)]
        for k in range(max(len(c) for c in cells)):
            out.append([_pad(c[k] if k < len(c) else "", w, right) for c, w, right in zip(cells, widths, numeric)])
    return "\n".join((" " * _GAP).join(line).rstrip() for line in out)


def _pad(text: str, width: int, right: bool) -> str:
    return text.rjust(width) if right and text.isascii() else text.ljust(width) if text.isascii() else (
        " " * max(width - _width(text), 0) + text if right else text + " " * max(width - _width(text), 0))


def _lines(text: str, width: int) -> list[str]:
    """A cell's lines within ``width``: as it is if it fits, else wrapped at spaces, long words folded."""
    lines = text.split("\n")
    if all(_width(line) <= width for line in lines):
        return lines
    from rich.text import Text  # only for a cell that has to wrap: rich costs ~40 ms to import

    return [line.plain.rstrip() for line in Text(text).wrap(_console(), max(width, 1), overflow="fold")]


def _console() -> Any:
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        _CONSOLE = Console(file=io.StringIO(), color_system=None, force_terminal=False, highlight=False,
                           markup=False, emoji=False, legacy_windows=False)
    return _CONSOLE


_CONSOLE: Any = None
