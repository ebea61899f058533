"""The experiment commands: ``experiments`` (one row per experiment, with its best run) and ``sweep``.

``tracker runs --experiment NAME`` (in ``tracker.cli.read``) lists the runs of
one. They open the database read-only, and import neither Keras, a tuning
tool nor pandas.
"""

from __future__ import annotations

from typing import Any

import click

from tracker.cli.base import database, db_option, echo_table, emit_rows, format_option

__all__ = ["COMMANDS"]

#: The experiment commands, in the order ``tracker --help`` lists them; ``tracker.cli`` adds them to the group.
COMMANDS: list[click.Command] = []


def _command(name: str | None = None, **kwargs: Any) -> Any:
    def decorate(function: Any) -> Any:
        command = click.command(name, **kwargs)(db_option(format_option(click.pass_context(function))))
        COMMANDS.append(command)
        return command

    return decorate


@_command()
def experiments(ctx: click.Context, fmt: str) -> None:
    """List experiments: their runs by status and their best run (by the tool's own ranking)."""
    from tracker.db.migrate import open_for_reading
    from tracker.store.experiments import EXPERIMENT_COLUMNS, STATUS_COLUMNS, experiments_rows
    from tracker.store.liveness import HEARTBEAT_TIMEOUT
    from tracker.views.tables import iso_utc, table_view

    engine, _ = open_for_reading(database(ctx))
    rows = experiments_rows(engine, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    columns = list(EXPERIMENT_COLUMNS)
    if fmt != "table":
        timed = [columns.index("started_at"), columns.index("ended_at")]
        for row in rows:
            for i in timed:
                row[i] = iso_utc(row[i])
        emit_rows(columns, rows, fmt)
        return
    at = {c: i for i, c in enumerate(columns)}
    for row in rows:  # what ranked the best run, beside its value: "score 0.118" or "val_loss 0.12"
        if row[at["metric"]] is not None and row[at["best"]] is not None:
            row[at["best"]] = f"{row[at['metric']]} {row[at['best']]:.6g}"
    unused = [s for s in STATUS_COLUMNS if not any(row[at[s]] for row in rows)]
    columns[at["best_run"]] = "run_id"  # cut to a unique prefix, like every run id in a table
    shown, shown_rows = table_view(columns, rows, drop=["direction", "metric", *unused])
    echo_table(shown, shown_rows, keys=("experiment",), empty="No experiments: no run was given one.")


@_command()
@click.argument("experiment")
@click.option("--metric", default=None, metavar="KEY",
              help="Epoch key whose best value and epoch each trial shows (and that ranks runs no tool ranked). "
                   "Default: the tool's objective if logged, else the stoppers' monitor, val_loss, ...")
@click.option("--importance", is_flag=True,
              help="With --format csv or json: print the params' importance instead of the trials "
                   "(the table shows both).")
@click.option("--fanova", is_flag=True,
              help="Also compute Optuna's fANOVA importance (needs optuna and scikit-learn; seconds on 1,000 trials).")
def sweep(ctx: click.Context, fmt: str, experiment: str, metric: str | None, importance: bool, fanova: bool) -> None:
    """Show EXPERIMENT's trials, best first as the tool ranks them, and how much each param matters.

    KerasTuner: by the oracle's score (the mean over executions of each one's
    best objective value) in the objective's direction; Optuna: by the trial's
    value in the study's direction; other runs: by the best epoch value of
    --metric. Below the table, per param: its rank correlation with that value
    (spearman), the share of its variance the param explains (anova, ε²) and,
    with --fanova, Optuna's fANOVA importance.
    """
    from tracker.db.migrate import open_for_reading
    from tracker.store.importance import importance_info
    from tracker.store.liveness import HEARTBEAT_TIMEOUT
    from tracker.store.sweeps import sweep_info
    from tracker.views.sweeps import importance_rows, importance_title, sweep_rows, sweep_table, sweep_title

    engine, _ = open_for_reading(database(ctx))
    info = sweep_info(engine, experiment, metric=metric, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    imp = importance_info(info, fanova=fanova) if (importance or fanova or fmt == "table") else None
    if fmt != "table":
        columns, rows = importance_rows(imp) if importance and imp is not None else sweep_rows(info)
        emit_rows(columns, rows, fmt)
        return
    click.echo(sweep_title(info))
    columns, rows = sweep_table(info)
    echo_table(columns, rows, keys=("trial",), empty="No trials: the experiment has no runs.")
    if imp is not None and imp.params:
        click.echo()
        click.echo(importance_title(imp))
        if imp.trials:
            columns, rows = importance_rows(imp)
            echo_table(columns, rows, keys=("param",))
