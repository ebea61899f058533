"""The ``tracker`` commands that write files or follow a run.

``export`` (a report to CSV or JSON), ``plot`` (PNG, SVG or PDF), ``watch``
(a live view of a running run) and ``demo``. Added to the ``tracker`` group
by ``tracker.cli``.
"""

from __future__ import annotations

import click

from tracker.cli.base import database, db_option, echo_table, open_store, plural
from tracker.views.terminal import printable

__all__ = ["COMMANDS", "export", "plot", "watch", "demo"]


@click.command()
@db_option
@click.argument("report", type=click.Choice(["compare", "early-stopping", "history", "lr", "runs"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write (.csv or .json).")
@click.option("--runs", "run_refs", multiple=True, help="Runs to include (repeatable). Default: all runs.")
@click.option("--keep-formulas", is_flag=True, help="Write formula-like text cells and headers (starting with = + - @, tab, CR or LF) "
              "as they are, without the leading ' (the file then reads back exactly).")
@click.pass_context
def export(ctx: click.Context, report: str, out: str, run_refs: tuple[str, ...], keep_formulas: bool) -> None:
    """Export REPORT (compare, early-stopping, history, lr, runs) to a CSV or JSON file."""
    from tracker.views.export import export as write
    from tracker.views.export import export_rows
    from tracker.reports import REPORTS

    store = open_store(ctx)
    if report == "runs":
        from tracker.store.overview import overview
        from tracker.views.tables import runs_exact

        run_ids = [store.resolve(r) for r in run_refs] or None
        columns, rows = runs_exact(overview(store.engine, run_ids=run_ids, heartbeat_timeout=store.heartbeat_timeout))
        path = export_rows(columns, rows, out, neutralise_formulas=not keep_formulas)
        count = len(rows)
    else:
        frame = REPORTS[report](store, list(run_refs) or None)
        path = write(frame, out, neutralise_formulas=not keep_formulas)
        count = len(frame)
    click.echo(f"Wrote {plural(count, 'row')} of the {report} report to {printable(str(path), limit=None)}")


@click.command()
@db_option
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="File to write: .png, .svg or .pdf (the suffix decides the format).")
@click.option("--metric", "metrics", multiple=True,
              help="Epoch key to plot (repeatable); KEY and val_KEY share a panel. Default: one run: loss, "
                   "val_loss and one metric; several runs: val_loss (loss too if a run has no val_loss).")
@click.option("--title", help="Plot title.")
@click.pass_context
def plot(ctx: click.Context, runs: tuple[str, ...], out: str, metrics: tuple[str, ...], title: str | None) -> None:
    """Plot RUNS: one panel per metric, the LR in a panel below, stops and restores marked."""
    from tracker.views.plots import plot_runs

    path = plot_runs(open_store(ctx), list(runs), out, metrics=list(metrics) or None, title=title)
    click.echo(f"Wrote {printable(str(path), limit=None)}")


@click.command()
@db_option
@click.argument("run", default="latest")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between two reads of the database.")
@click.pass_context
def watch(ctx: click.Context, run: str, interval: float) -> None:
    """Follow RUN (default: latest) live until it ends: epochs, LR, stoppers.

    Refreshes in place in a terminal (also over SSH); into a pipe or file it
    writes a line per new epoch. Exit status 0 when the run finished or was
    pruned (a tuning tool stopped its trial: a decision, like an early stop),
    1 when it failed, was interrupted or crashed.
    """
    from tracker.views.watch import watch_run

    try:
        status = watch_run(open_store(ctx), run, interval=interval)
    except KeyboardInterrupt:  # the user stopped watching; the run goes on
        ctx.exit(130)
    ctx.exit(0 if status in ("finished", "pruned") else 1)


@click.command()
@db_option
@click.option("--epochs", "n_epochs", default=15, show_default=True, help="Epochs per run.")
@click.pass_context
def demo(ctx: click.Context, n_epochs: int) -> None:
    """Train the guide's model on scikit-learn's digits with the tracker.

    Runs the guide's early-stopping and learning-rate examples, then prints
    the runs and the path of the database.
    """
    from tracker.callbacks.demo import run_demo
    from tracker.db.engine import describe, resolve_url

    path = database(ctx)
    resolve_url(path)  # a database the tracker cannot use is refused before any training
    click.echo("Training the guide's model on scikit-learn's digits (784 inputs)...", err=True)
    run_demo(path, epochs=n_epochs)
    from tracker.store.overview import overview
    from tracker.views.tables import runs_table

    store = open_store(ctx)
    echo_table(*runs_table(overview(store.engine, heartbeat_timeout=store.heartbeat_timeout)), keys=("run_id", "name"))
    shown = printable(describe(resolve_url(path)), limit=None)  # a password in the URL masked
    click.echo(f"\nDatabase: {shown}")
    click.echo(f"Next: tracker --db {shown} show demo-early-stopping")


COMMANDS = [export, plot, watch, demo]
