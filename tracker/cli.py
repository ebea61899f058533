"""The ``tracker`` command line (also ``python cli.py``).

Read commands import neither Keras nor TensorFlow; only ``demo`` does.
Errors are one sentence on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tracker.database import DEFAULT_DB
from tracker.errors import TrackerError

__all__ = ["main"]

FORMATS = ("table", "csv", "json")


class _Group(click.Group):
    """A click group that turns tracker errors into one clean sentence."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (TrackerError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None


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
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; csv or json (a list of row objects) for pipes.",
    )(command)


def _db(ctx: click.Context) -> str:
    root = ctx.find_root()
    return (ctx.obj or {}).get("db") or root.params.get("db") or DEFAULT_DB


def _store(ctx: click.Context):  # type: ignore[no-untyped-def]
    from tracker.store import Store

    return Store(_db(ctx))


def _json_value(value: Any) -> Any:
    """A cell as JSON: exact floats (shortest repr), non-finite floats as strings."""
    import math

    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _emit(frame: Any, fmt: str) -> None:
    import pandas as pd

    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        rows = [
            {str(k): _json_value(v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]
        click.echo(json.dumps(rows, ensure_ascii=False))
    elif frame.empty:
        click.echo("(no rows)")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 40):
            click.echo(frame.to_string(index=False))


@click.group(cls=_Group)
@click.option(
    "--db",
    envvar="TRACKER_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="Database path or SQLAlchemy URL (env: TRACKER_DB).",
)
@click.version_option(package_name="keras-run-tracker", prog_name="tracker")
@click.pass_context
def main(ctx: click.Context, db: str) -> None:
    """Query Keras training runs recorded by tracker.TrackingCallback."""
    ctx.ensure_object(dict)


@main.command()
@db_option
@format_option
@click.pass_context
def runs(ctx: click.Context, fmt: str) -> None:
    """List the runs, oldest first, with status and times (UTC)."""
    _emit(_store(ctx).runs(), fmt)


@main.command()
@click.argument("run")
@db_option
@format_option
@click.pass_context
def epochs(ctx: click.Context, run: str, fmt: str) -> None:
    """Show one row per epoch of RUN with every logged value.

    RUN is a run id, a unique id prefix, a run name or 'latest'.
    """
    _emit(_store(ctx).epochs(run), fmt)


@main.group(cls=_Group)
def db() -> None:
    """Create, upgrade and inspect the database schema."""


@db.command()
@db_option
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Create the database or upgrade it to the newest schema."""
    from tracker.database import describe
    from tracker.migrate import open_database

    _, url = open_database(_db(ctx))
    from tracker.migrate import head_revision

    click.echo(f"{describe(url)} is at schema revision {head_revision()} (head).")


@db.command()
@db_option
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the database's schema revision and whether it is the newest."""
    from tracker.database import check_readable, describe, get_engine, resolve_url
    from tracker.migrate import current_revision, head_revision

    url = resolve_url(_db(ctx))
    check_readable(url)
    with get_engine(url).connect() as conn:
        revision = current_revision(conn)
    head = head_revision()
    if revision == head:
        state = "head"
    elif revision is None:
        state = "empty; run 'tracker db upgrade'"
    else:
        state = f"older than head {head}; run 'tracker db upgrade'"
    click.echo(f"{describe(url)}: {revision or 'no revision'} ({state})")


@main.command()
@db_option
@click.option("--epochs", "n_epochs", default=15, show_default=True, help="Epochs per run.")
@click.pass_context
def demo(ctx: click.Context, n_epochs: int) -> None:
    """Train the guide's model on scikit-learn's digits with the tracker.

    Runs the guide's early-stopping and learning-rate examples, then prints
    the runs and the path of the database.
    """
    from tracker.database import describe, resolve_url
    from tracker.demo import run_demo

    path = _db(ctx)
    click.echo("Training the guide's model on scikit-learn's digits (784 inputs)...", err=True)
    run_demo(path, epochs=n_epochs)
    _emit(_store(ctx).runs(), "table")
    click.echo(f"\nDatabase: {describe(resolve_url(path))}")
    click.echo("Next: tracker --db " + path + " epochs demo-early-stopping")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
