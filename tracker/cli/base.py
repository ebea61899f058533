"""What every ``tracker`` command shares: the error-handling group, options, and output.

* ``Group``: a ``TrackerError`` (the user's mistake) becomes one sentence on
  stderr and exit status 1; anything else is a bug and keeps its traceback;
  a closed pipe (``tracker show X | head``) ends the command quietly, status 0.
  Every error message is printed escaped and capped (``printable``): it may
  quote a run name or key from the database;
* ``db_option``/``format_option``: ``--db`` after the command name, and
  ``--format table|csv|json``.
* ``echo_table``/``emit_rows``/``emit_frame``: exact rows for csv/json,
  ``tracker.views.tables`` rows laid out by ``tracker.views.terminal`` for a table.

Imports neither pandas nor Keras (``tracker runs`` stays fast).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from tracker.db.engine import DEFAULT_DB
from tracker.errors import TrackerError

__all__ = [
    "FORMATS", "Group", "db_option", "format_option", "database", "existing_url", "open_store", "plural",
    "echo_table", "emit_rows", "emit_frame", "constant", "pairs",
]

FORMATS = ("table", "csv", "json")


def _quiet_stdout() -> None:
    """Point stdout at the null device, so that nothing more is written to a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass


def _safe(message: str) -> str:
    """An error message as it may be printed: it can quote a hostile run name (escaped, capped)."""
    from tracker.views.terminal import printable

    return printable(message, limit=ERROR_LIMIT)


#: Characters of an error message shown at most (a message may quote a 100 MB run name).
ERROR_LIMIT = 2000


class Group(click.Group):
    """A click group that turns the user's mistakes (``TrackerError``) into one clean sentence.

    Anything else is a bug and keeps its traceback. A reader that stopped
    reading (``tracker show X | head``) ends the command quietly, status 0.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrackerError as exc:
            raise click.ClickException(_safe(str(exc))) from None
        except click.ClickException as exc:
            if type(exc) is not click.ClickException:  # usage errors quote what the user typed
                raise
            raise click.ClickException(_safe(exc.message)) from None
        except BrokenPipeError:
            _quiet_stdout()
            ctx.exit(0)


def _set_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["db"] = value


def db_option(command: Any) -> Any:
    """Let ``--db`` also follow the command name (``tracker runs --db x.db``)."""
    return click.option(
        "--db",
        expose_value=False,
        callback=_set_db,
        is_eager=True,
        help="Database path or SQLAlchemy URL (overrides the one before the command).",
    )(command)


def format_option(command: Any) -> Any:
    """The ``--format`` option of the read commands (passed as ``fmt``)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people (fits the terminal; $COLUMNS sets the width); csv or json (exact) for pipes.",
    )(command)


def database(ctx: click.Context) -> str:
    """The ``--db`` given after the command, else before it, else ``$TRACKER_DB``, else ``tracker.db``."""
    root = ctx.find_root()
    return (ctx.obj or {}).get("db") or root.params.get("db") or DEFAULT_DB


def existing_url(ctx: click.Context) -> str:
    """The database URL, refusing a missing or non-SQLite file (never created, never upgraded)."""
    from tracker.db.engine import check_readable, resolve_url

    url = resolve_url(database(ctx))
    check_readable(url)
    return url


def open_store(ctx: click.Context) -> Any:
    """A read-only ``tracker.Store`` on the database (refuses an older schema)."""
    from tracker.store import Store

    return Store(database(ctx))


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,024 rows``."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def echo_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, keys: Sequence[str] = (),
               empty: str = "(no rows)") -> None:
    """Print a table; its leading columns named in ``keys`` repeat if it continues below."""
    from tracker.views.output import render

    if not rows:
        click.echo(empty)
        return
    lead = 0
    while lead < len(columns) and columns[lead] in keys:
        lead += 1
    click.echo(render(columns, rows, "table", keys=lead))


def emit_rows(columns: list[str], rows: list[list[Any]], fmt: str, *, keys: Sequence[str] = ()) -> None:
    """Print rows as a table, CSV or JSON."""
    from tracker.views.output import render

    if fmt == "table":
        echo_table(columns, rows, keys=keys)
    else:
        click.echo(render(columns, rows, fmt))


def emit_frame(store: Any, frame: Any, fmt: str, *, run_id: str | None = None, times: str = "start",
               drop: Sequence[str] = (), keys: Sequence[str] = ("run_id", "name")) -> None:
    """Print a frame: exact rows for csv/json, ``tracker.views.tables.table_view`` rows for a table."""
    from tracker.store.rows import frame_rows

    columns, rows = frame_rows(frame)
    if fmt != "table":
        emit_rows(columns, rows, fmt)
        return
    from tracker.store.runs import phase_labels
    from tracker.views.tables import table_view

    labels = None
    if "phase_seq" in columns:
        ids = [run_id] if run_id else sorted({row[columns.index("run_id")] for row in rows})
        labels = phase_labels(store.engine, ids)
    columns, rows = table_view(columns, rows, labels=labels, run_id=run_id, times=times, drop=drop)
    echo_table(columns, rows, keys=keys)


def constant(frame: Any, column: str) -> bool:
    """True if the frame's ``column`` holds at most one distinct value (a column worth leaving out)."""
    return column in frame and frame[column].nunique(dropna=False) <= 1


def pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict (for ``--param``, VALUE is read as JSON where it is JSON)."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE.", param_hint=f"--{what}")
        if what == "param":
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out
