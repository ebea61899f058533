"""The read commands: ``runs``, ``show``, ``epochs``, ``batches``, ``lr``, ``early-stops``, ``restores``, ``compare``,
``system``.

They open the database read-only and never migrate it (an older schema gets
one sentence saying to run ``tracker db upgrade``). They import neither Keras
nor TensorFlow, and ``runs`` not even pandas, so it starts in well under a
second. Tables (``--format table``, the default) are for people and fit the
terminal (``tracker.views.tables``, ``tracker.views.terminal``); ``csv`` and
``json`` are exact and complete.
"""

from __future__ import annotations

import json
from typing import Any

import click

from tracker.cli.base import (
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
from tracker.errors import InvalidArgumentError

__all__ = ["COMMANDS"]

PHASES = ("fit", "validation", "evaluate", "predict")


#: The read commands, in the order ``tracker --help`` lists them; ``tracker.cli`` adds them to the group.
COMMANDS: list[click.Command] = []


def read_command(name: str | None = None, **kwargs: Any) -> Any:
    """A read command: ``--db`` and ``--format`` options, help required."""

    def decorate(function: Any) -> Any:
        command = click.command(name, **kwargs)(db_option(format_option(click.pass_context(function))))
        COMMANDS.append(command)
        return command

    return decorate


@read_command()
@click.option("--status", multiple=True, help="Only runs with this status (repeatable): running, finished, failed, "
              "interrupted, pruned, crashed.")
@click.option("--name", help="Only runs with this name (case-sensitive); * and ? are wildcards.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this tag (repeatable).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Only runs with this param, VALUE as JSON (repeatable).")
@click.option("--sort", help="started_at (default), -started_at, name, best:KEY or final:KEY, optionally :min/:max.")
@click.option("--limit", type=int, help="Show at most this many runs (a positive number).")
@click.option("--metric", help="Epoch key whose best value and epoch to show (default: the sort key, else the "
              "stoppers' monitor, else val_loss, else the first val_* key, else loss).")
@click.option("--experiment", help="Only the runs of this experiment ('tracker experiments' lists them).")
@click.option("--where", metavar="EXPR", help="Only runs this filter selects, e.g. 'best.val_loss < 0.2 and "
              "params.lr >= 1e-3 and tags.sweep = \"lr\"' (fields best.KEY, final.KEY, params.NAME, tags.NAME, "
              "status, name, experiment, started_at, duration; = != < <= > >= ~ glob; and, or, not, parentheses).")
@click.option("--wide", is_flag=True, help="Table: every column (host, pid, model, heartbeat...), ids in full.")
@click.option("--deleted", is_flag=True, help="List the trash: the runs 'tracker delete' moved there, when.")
def runs(ctx: click.Context, fmt: str, status: tuple[str, ...], name: str | None, tags: tuple[str, ...],
         params: tuple[str, ...], sort: str | None, limit: int | None, metric: str | None, experiment: str | None,
         where: str | None, wide: bool, deleted: bool) -> None:
    """List runs and which is best: params that differ, best metric, stops, evaluate results."""
    from tracker.db.migrate import open_for_reading
    from tracker.store.filters import parse_sort
    from tracker.store.liveness import HEARTBEAT_TIMEOUT
    from tracker.store.overview import overview
    from tracker.views.tables import runs_exact, runs_table

    order = parse_sort(sort)
    engine, _ = open_for_reading(database(ctx))
    found = overview(
        engine, status=list(status) or None, name=name, tags=pairs(tags, "tag"), params=pairs(params, "param"),
        sort=sort, limit=limit, metric=metric or (order.key if order.kind == "best" else None),
        experiment=experiment, where=where, deleted=deleted, heartbeat_timeout=HEARTBEAT_TIMEOUT,
    )
    empty = "No runs match." if not deleted else "No deleted runs match (the trash is empty)." if not (
        status or name or tags or params) else "No deleted runs match."
    if not found.rows:
        texts = [(k, v) for k, v in (p.partition("=")[::2] for p in params) if not _is_json(v)]
        if texts:
            empty = "No runs match ({}).".format("; ".join(
                f"--param {k}={v}: {v} is not JSON, so only a run whose {k} is the text {json.dumps(v, ensure_ascii=False)} matches"
                for k, v in texts))
            if fmt != "table":
                click.echo(empty, err=True)
    if fmt != "table":
        emit_rows(*runs_exact(found), fmt)
        return
    columns, rows = runs_table(found, wide=wide, sort_key=order.key, sort_kind=order.kind)
    echo_table(columns, rows, keys=("run_id", "name"), empty=empty)


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


@read_command()
@click.argument("run")
def show(ctx: click.Context, fmt: str, run: str) -> None:
    """Show one run: status, times, versions, the run it started from, params, tags, phases, metrics, evaluate
    results, decisions, checkpoints."""
    if fmt == "csv":
        raise InvalidArgumentError(
            "show prints several tables (run, params, tags, phases, metrics, evaluations, LR changes, early "
            "stops, restores), which one CSV cannot hold; use --format json, or one table per command with "
            "--format csv: epochs, lr, early-stops, restores, compare."
        )
    from tracker.store.rows import to_json
    from tracker.views.output import json_text

    store = open_store(ctx)
    summary = store.run(run)
    if summary["run"].get("deleted_at") is not None:
        run_id = summary["run"]["id"]
        click.echo(f"This run is deleted (in the trash since {summary['run']['deleted_at']:%Y-%m-%d %H:%M:%S}Z); "
                   f"bring it back with: tracker undelete {run_id}", err=fmt == "json")
    if fmt == "json":
        click.echo(json_text(to_json(summary)))
        return
    from tracker.store.runs import phase_labels
    from tracker.views.tables import show_tables

    start = summary["started_from"]
    if start is not None:  # the parent's name and short id, as `tracker lineage` shows it
        parent = store.runs(run_ids=[start["run_id"]])
        name = parent["name"].iloc[0] if len(parent) else None
        summary["run"] = {**summary["run"], "started_from": f"{name} ({start['run_id'][:8]}), epoch {start['epoch']}"}

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
    from tracker.store.rows import frame_rows
    from tracker.reports import compare_runs, run_labels

    store = open_store(ctx)
    frame = compare_runs(store, list(runs))
    columns, rows = frame_rows(frame)
    if fmt != "table":
        emit_rows(columns, rows, fmt)
        return
    from tracker.views.tables import table_view, transpose

    labels = run_labels(store, list(frame["run_id"]))
    headers = [labels[rid] for rid in frame["run_id"]]
    columns, rows = table_view(columns, rows, times="keep")
    echo_table(*transpose(columns, rows, headers, skip=("name",)), keys=("field",))


@read_command()
@click.argument("run")
def system(ctx: click.Context, fmt: str, run: str) -> None:
    """Show the system metrics of RUN over time: process CPU and memory, the machine's memory, each GPU."""
    from tracker.store.rows import frame_rows

    store = open_store(ctx)
    run_id = store.resolve(run)
    columns, rows = frame_rows(store.system(run_id))
    if fmt != "table":
        emit_rows(columns, rows, fmt)
        return
    if not rows:
        click.echo("No system metrics were recorded for this run (it was recorded with system_metrics=False, "
                   "or by a tracker older than system metrics).")
        return
    from tracker.store.runs import phase_labels
    from tracker.views.tables import system_table, table_view

    columns, rows = table_view(*system_table(columns, rows), labels=phase_labels(store.engine, [run_id]),
                               run_id=run_id)
    echo_table(columns, rows, keys=("elapsed",))
