"""The ``tracker`` command line (also ``python cli.py``): the group and the read commands.

Read commands open the database read-only and never migrate it (an older
schema gets one sentence saying to run ``tracker db upgrade``). They import
neither Keras nor TensorFlow, and ``runs`` not even pandas, so it starts in
well under a second. Tables (``--format table``, the default) are for people
and fit the terminal (``tracker.views``, ``tracker.terminal``); ``csv`` and
``json`` are exact and complete. Errors and closed pipes: see
``tracker.cli_base.Group``. ``export``, ``plot``, ``watch``, ``db`` and
``demo`` live in ``tracker.cli_tools``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from tracker.cli_base import (
    Group,
    constant,
    database,
    db_option,
    echo_table,
    emit_frame,
    emit_rows,
    format_option,
    open_store,
    pairs,
)
from tracker.db.engine import DEFAULT_DB
from tracker.errors import InvalidArgumentError

__all__ = ["main"]

PHASES = ("fit", "validation", "evaluate", "predict")


def read_command(name: str | None = None, **kwargs: Any) -> Any:
    """A read command: ``--db`` and ``--format`` options, help required."""

    def decorate(function: Any) -> Any:
        return main.command(name, **kwargs)(db_option(format_option(click.pass_context(function))))

    return decorate


@click.group(cls=Group)
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
@click.option("--metric", help="Epoch key whose best value and epoch to show (default: the sort key, else the "
              "stoppers' monitor, else val_loss, else the first val_* key, else loss).")
@click.option("--wide", is_flag=True, help="Table: every column (host, pid, model, heartbeat...), ids in full.")
def runs(ctx: click.Context, fmt: str, status: tuple[str, ...], name: str | None, tags: tuple[str, ...],
         params: tuple[str, ...], sort: str | None, limit: int | None, metric: str | None, wide: bool) -> None:
    """List runs and which is best: params that differ, best metric, stops, evaluate results."""
    from tracker.db.migrate import open_for_reading
    from tracker.store.filters import parse_sort
    from tracker.store.liveness import HEARTBEAT_TIMEOUT
    from tracker.store.overview import overview
    from tracker.views import runs_exact, runs_table

    order = parse_sort(sort)
    engine, _ = open_for_reading(database(ctx))
    found = overview(
        engine, status=list(status) or None, name=name, tags=pairs(tags, "tag"), params=pairs(params, "param"),
        sort=sort, limit=limit, metric=metric or (order.key if order.kind == "best" else None),
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
    )
    if fmt != "table":
        emit_rows(*runs_exact(found), fmt)
        return
    columns, rows = runs_table(found, wide=wide, sort_key=order.key, sort_kind=order.kind)
    echo_table(columns, rows, keys=("run_id", "name"), empty="No runs match.")


@read_command()
@click.argument("run")
def show(ctx: click.Context, fmt: str, run: str) -> None:
    """Show one run: status, times, versions, params, tags, phases, metrics, evaluate results, decisions."""
    if fmt == "csv":
        raise InvalidArgumentError(
            "show prints several tables (run, params, tags, phases, metrics, evaluations, LR changes, early "
            "stops, restores), which one CSV cannot hold; use --format json, or one table per command with "
            "--format csv: epochs, lr, early-stops, restores, compare."
        )
    from tracker.formatting import to_json

    store = open_store(ctx)
    summary = store.run(run)
    if fmt == "json":
        click.echo(json.dumps(to_json(summary), ensure_ascii=False))
        return
    from tracker.store.runs import phase_labels
    from tracker.views import show_tables

    first = True
    for title, columns, rows, keys in show_tables(summary, phase_labels(store.engine, [summary["run"]["id"]])):
        if not first:
            click.echo(f"\n{title}:")
        first = False
        echo_table(columns, rows, keys=keys)


@read_command()
@click.argument("run")
@click.option("--tidy", is_flag=True, help="One row per epoch and key instead of one column per key.")
def epochs(ctx: click.Context, fmt: str, run: str, tidy: bool) -> None:
    """Show one row per epoch of RUN with every logged value."""
    store = open_store(ctx)
    run_id = store.resolve(run)
    frame = store.epochs(run_id, tidy=tidy)
    drop = ["run_id"] + (["phase"] if constant(frame, "phase_seq") else [])
    if "redone" in frame and not frame["redone"].any():
        drop.append("redone")
    emit_frame(store, frame, fmt, run_id=run_id, times="duration", drop=drop, keys=("phase", "epoch"))


@read_command()
@click.argument("run")
@click.option("--phase", type=click.Choice(PHASES), default="fit", show_default=True, help="Which batches.")
@click.option("--tidy", is_flag=True, help="One row per batch and key instead of one column per key.")
def batches(ctx: click.Context, fmt: str, run: str, phase: str, tidy: bool) -> None:
    """Show the recorded batches of RUN (Keras' running means, under Keras' batch index)."""
    store = open_store(ctx)
    run_id = store.resolve(run)
    frame = store.batches(run_id, phase, tidy=tidy)
    drop = ["run_id"] + (["phase"] if constant(frame, "phase_seq") else [])
    emit_frame(store, frame, fmt, run_id=run_id, drop=drop, keys=("phase", "epoch", "batch"))


@read_command()
@click.argument("run")
@click.option("--series", is_flag=True, help="The LR series (phase start, epochs, batches) instead of the per-epoch report.")
def lr(ctx: click.Context, fmt: str, run: str, series: bool) -> None:
    """Show the learning rate of each epoch of RUN, and each change with its source."""
    store = open_store(ctx)
    run_id = store.resolve(run)
    if series:
        frame = store.lr_series(run_id)
    else:
        from tracker.reports import lr_report

        frame = lr_report(store, [run_id])
    drop = ["run_id", "name"] + (["optimizer"] if constant(frame, "optimizer") else [])
    emit_frame(store, frame, fmt, run_id=run_id, drop=drop, keys=("phase", "epoch"))


@read_command("early-stops")
@click.argument("runs", nargs=-1)
def early_stops(ctx: click.Context, fmt: str, runs: tuple[str, ...]) -> None:
    """Show early-stop decisions (all runs, or RUNS): who stopped, when, and why."""
    import pandas as pd

    store = open_store(ctx)
    frames = [store.early_stops(r) for r in runs] if runs else [store.early_stops()]
    emit_frame(store, pd.concat(frames, ignore_index=True), fmt)


@read_command()
@click.argument("runs", nargs=-1)
def restores(ctx: click.Context, fmt: str, runs: tuple[str, ...]) -> None:
    """Show where weights were restored (all runs, or RUNS): the early-stopping report."""
    from tracker.reports import early_stopping_report

    store = open_store(ctx)
    emit_frame(store, early_stopping_report(store, list(runs) or None), fmt)


@read_command()
@click.argument("runs", nargs=-1, required=True)
def compare(ctx: click.Context, fmt: str, runs: tuple[str, ...]) -> None:
    """Compare RUNS: differing params, best and final metrics, evaluate results, stops, restores, LR."""
    from tracker.formatting import frame_rows
    from tracker.reports import compare_runs, run_labels

    store = open_store(ctx)
    frame = compare_runs(store, list(runs))
    columns, rows = frame_rows(frame)
    if fmt != "table":
        emit_rows(columns, rows, fmt)
        return
    from tracker.views import table_view, transpose

    labels = run_labels(store, list(frame["run_id"]))
    headers = [labels[rid] for rid in frame["run_id"]]
    columns, rows = table_view(columns, rows, times="keep")
    echo_table(*transpose(columns, rows, headers, skip=("name",)), keys=("field",))


# The commands that write files, follow a run or manage the database.
from tracker.cli_db import register as _register_team_commands  # noqa: E402
from tracker.cli_tools import db, demo, export, plot, watch  # noqa: E402

for _command in (export, plot, watch, db, demo):
    main.add_command(_command)
_register_team_commands(db, db_option, database)  # db grant, db copy


from tracker.ui.cli import register as _register_dashboard  # noqa: E402  (tracker ui, tracker report)

_register_dashboard(main)


if __name__ == "__main__":  # pragma: no cover
    main()
