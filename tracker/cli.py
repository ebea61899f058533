"""The ``tracker`` command line (also ``python cli.py``).

Read commands import neither Keras nor TensorFlow; only ``demo`` does.
``runs`` does not even import pandas, so it starts in well under a second.
Errors are one sentence on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tracker.db.engine import DEFAULT_DB
from tracker.errors import TrackerError

__all__ = ["main"]

FORMATS = ("table", "csv", "json")
PHASES = ("fit", "validation", "evaluate", "predict")


class _Group(click.Group):
    """A click group that turns the user's mistakes (``TrackerError``) into one clean sentence.

    Anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrackerError as exc:
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


def read_command(name: str | None = None, **kwargs: Any) -> Any:
    """A read command: ``--db`` and ``--format`` options, help required."""

    def decorate(function: Any) -> Any:
        return main.command(name, **kwargs)(db_option(format_option(click.pass_context(function))))

    return decorate


def _db(ctx: click.Context) -> str:
    root = ctx.find_root()
    return (ctx.obj or {}).get("db") or root.params.get("db") or DEFAULT_DB


def database_of(ctx: click.Context) -> str:
    """The database a command runs on: its own ``--db``, else the group's, else ``$TRACKER_DB``, else the default."""
    return _db(ctx)


def _existing_url(ctx: click.Context) -> str:
    """The database URL, refusing a missing or non-SQLite file (never created, never upgraded)."""
    from tracker.db.engine import check_readable, resolve_url

    url = resolve_url(_db(ctx))
    check_readable(url)
    return url


def _store(ctx: click.Context) -> Any:
    from tracker.store import Store

    return Store(_db(ctx))


def _emit_rows(columns: list[str], rows: list[list[Any]], fmt: str) -> None:
    from tracker.formatting import render

    click.echo(render(columns, rows, fmt))


def _emit(frame: Any, fmt: str) -> None:
    from tracker.formatting import frame_rows

    _emit_rows(*frame_rows(frame), fmt)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
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
    """Query Keras training runs recorded by tracker.TrackingCallback.

    RUN is a run id, a unique id prefix, a run name (its newest run) or 'latest'.
    """
    ctx.ensure_object(dict)


@read_command()
@click.option("--status", multiple=True, help="Only runs with this status (repeatable).")
@click.option("--name", help="Only runs with this name; * and ? are wildcards.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this tag (repeatable).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Only runs with this param, VALUE as JSON (repeatable).")
@click.option("--sort", help="started_at (default), -started_at, name, best:KEY or final:KEY, optionally :min/:max.")
@click.option("--limit", type=int, help="Show at most this many runs.")
def runs(ctx: click.Context, fmt: str, status: tuple[str, ...], name: str | None, tags: tuple[str, ...],
         params: tuple[str, ...], sort: str | None, limit: int | None) -> None:
    """List runs, filtered and sorted (best:val_loss sorts by the best val_loss)."""
    from tracker.db.migrate import open_for_reading
    from tracker.store.filters import runs_statement

    stmt, _ = runs_statement(
        status=list(status) or None,
        name=name,
        tags=_pairs(tags, "tag"),
        params=_pairs(params, "param"),
        sort=sort,
        limit=limit,
    )
    from tracker.store.liveness import apply_liveness

    engine, _ = open_for_reading(_db(ctx))
    with engine.connect() as conn:
        result = conn.execute(stmt)
        columns = list(result.keys())
        rows = [list(row) for row in result.all()]
    _emit_rows(columns, apply_liveness(columns, rows, list(status) or None), fmt)


@read_command()
@click.argument("run")
def show(ctx: click.Context, fmt: str, run: str) -> None:
    """Show one run: status, times, versions, params, tags, phases, metrics, decisions."""
    from tracker.formatting import json_value

    summary = _store(ctx).run(run)
    if fmt == "json":
        out = {k: (v.to_dict(orient="records") if hasattr(v, "to_dict") else v) for k, v in summary.items()}
        click.echo(json.dumps(out, default=json_value, ensure_ascii=False))
        return
    if fmt == "csv":
        _emit_rows(["field", "value"], [[k, v] for k, v in summary["run"].items()], "csv")
        return
    _emit_rows(["field", "value"], [[k, v] for k, v in summary["run"].items()], "table")
    for section in ("params", "tags"):
        if summary[section]:
            click.echo(f"\n{section}:")
            _emit_rows(["key", "value"], [[k, v] for k, v in summary[section].items()], "table")
    for section in ("phases", "metrics", "lr_changes", "early_stops", "restores"):
        frame = summary[section]
        if len(frame):
            click.echo(f"\n{section.replace('_', ' ')}:")
            _emit(frame.drop(columns=[c for c in ("run_id",) if c in frame]), "table")


@read_command()
@click.argument("run")
@click.option("--tidy", is_flag=True, help="One row per epoch and key instead of one column per key.")
def epochs(ctx: click.Context, fmt: str, run: str, tidy: bool) -> None:
    """Show one row per epoch of RUN with every logged value."""
    _emit(_store(ctx).epochs(run, tidy=tidy), fmt)


@read_command()
@click.argument("run")
@click.option("--phase", type=click.Choice(PHASES), default="fit", show_default=True, help="Which batches.")
@click.option("--tidy", is_flag=True, help="One row per batch and key instead of one column per key.")
def batches(ctx: click.Context, fmt: str, run: str, phase: str, tidy: bool) -> None:
    """Show the recorded batches of RUN (Keras' running means, under Keras' batch index)."""
    _emit(_store(ctx).batches(run, phase, tidy=tidy), fmt)


@read_command()
@click.argument("run")
@click.option("--series", is_flag=True, help="The LR series (phase start, epochs, batches) instead of the per-epoch report.")
def lr(ctx: click.Context, fmt: str, run: str, series: bool) -> None:
    """Show the learning rate of each epoch of RUN, and each change with its source."""
    store = _store(ctx)
    if series:
        _emit(store.lr_series(run), fmt)
        return
    from tracker.reports import lr_report

    _emit(lr_report(store, [run]), fmt)


@read_command("early-stops")
@click.argument("runs", nargs=-1)
def early_stops(ctx: click.Context, fmt: str, runs: tuple[str, ...]) -> None:
    """Show early-stop decisions (all runs, or RUNS): who stopped, when, and why."""
    import pandas as pd

    store = _store(ctx)
    frames = [store.early_stops(r) for r in runs] if runs else [store.early_stops()]
    _emit(pd.concat(frames, ignore_index=True), fmt)


@read_command()
@click.argument("runs", nargs=-1)
def restores(ctx: click.Context, fmt: str, runs: tuple[str, ...]) -> None:
    """Show where weights were restored (all runs, or RUNS): the early-stopping report."""
    from tracker.reports import early_stopping_report

    _emit(early_stopping_report(_store(ctx), list(runs) or None), fmt)


@read_command()
@click.argument("runs", nargs=-1, required=True)
def compare(ctx: click.Context, fmt: str, runs: tuple[str, ...]) -> None:
    """Compare RUNS: differing params, best and final metrics, stops, restores, LR."""
    from tracker.reports import compare_runs

    frame = compare_runs(_store(ctx), list(runs))
    if fmt == "table":
        frame = frame.set_index("name").T.reset_index().rename(columns={"index": "field"})
    _emit(frame, fmt)


@main.command()
@db_option
@click.argument("report", type=click.Choice(["compare", "early-stopping", "history", "lr", "runs"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write (.csv or .json).")
@click.option("--runs", "run_refs", multiple=True, help="Runs to include (repeatable). Default: all runs.")
@click.option("--keep-formulas", is_flag=True, help="Do not prefix text cells starting with = + - @ with a quote.")
@click.pass_context
def export(ctx: click.Context, report: str, out: str, run_refs: tuple[str, ...], keep_formulas: bool) -> None:
    """Export REPORT (compare, early-stopping, history, lr, runs) to a CSV or JSON file."""
    from tracker.export import export as write
    from tracker.reports import REPORTS

    store = _store(ctx)
    frame = store.runs() if report == "runs" else REPORTS[report](store, list(run_refs) or None)
    path = write(frame, out, neutralise_formulas=not keep_formulas)
    click.echo(f"Wrote {len(frame)} rows of the {report} report to {path}")


@main.command()
@db_option
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--metric", "metrics", multiple=True, help="Epoch key to plot (repeatable). Default: loss, val_loss and one metric.")
@click.option("--title", help="Plot title.")
@click.pass_context
def plot(ctx: click.Context, runs: tuple[str, ...], out: str, metrics: tuple[str, ...], title: str | None) -> None:
    """Plot loss and metric curves of RUNS with the LR, stops and restores, to a PNG."""
    from tracker.plots import plot_runs

    path = plot_runs(_store(ctx), list(runs), out, metrics=list(metrics) or None, title=title)
    click.echo(f"Wrote {path}")


@main.group(cls=_Group)
def db() -> None:
    """Create, upgrade, inspect and check the database schema."""


@db.command()
@db_option
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Create the database or upgrade it to the newest schema."""
    from tracker.db.engine import describe
    from tracker.db.migrate import head_revision, open_database

    _, url = open_database(_db(ctx))
    click.echo(f"{describe(url)} is at schema revision {head_revision()} (head).")


@db.command()
@db_option
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the database's schema revision and whether it is the newest."""
    from tracker.db.engine import describe, get_engine
    from tracker.db.migrate import current_revision, head_revision

    url = _existing_url(ctx)
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


@db.command()
@db_option
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check integrity, the schema revision, and that tables match the models."""
    from tracker.db.engine import describe, get_engine
    from tracker.db.migrate import check_schema

    url = _existing_url(ctx)
    problems = check_schema(get_engine(url), url)
    if problems:
        raise click.ClickException(f"{describe(url)}: " + "; ".join(problems) + ".")
    click.echo(f"{describe(url)}: ok (integrity, schema revision and tables all check out)")


@main.command()
@db_option
@click.option("--epochs", "n_epochs", default=15, show_default=True, help="Epochs per run.")
@click.pass_context
def demo(ctx: click.Context, n_epochs: int) -> None:
    """Train the guide's model on scikit-learn's digits with the tracker.

    Runs the guide's early-stopping and learning-rate examples, then prints
    the runs and the path of the database.
    """
    from tracker.db.engine import describe, resolve_url
    from tracker.demo import run_demo

    path = _db(ctx)
    click.echo("Training the guide's model on scikit-learn's digits (784 inputs)...", err=True)
    run_demo(path, epochs=n_epochs)
    _emit(_store(ctx).runs(), "table")
    click.echo(f"\nDatabase: {describe(resolve_url(path))}")
    click.echo(f"Next: tracker --db {path} show demo-early-stopping")


from tracker.ui.cli import register as _register_dashboard  # noqa: E402  (tracker ui, tracker report)

_register_dashboard(main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
