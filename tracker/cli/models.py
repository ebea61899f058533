"""The model-file commands: ``checkpoints``, ``which`` and ``lineage``.

Read commands like those of ``tracker.cli.read`` (read-only, ``--db`` and
``--format``). ``which`` reads model files with h5py and zipfile: neither
Keras nor TensorFlow is imported. See docs/checkpoints.md.
"""

from __future__ import annotations

from typing import Any

import click

from tracker.cli.base import constant, db_option, emit_frame, format_option, open_store
from tracker.errors import InvalidArgumentError, ModelFileError

__all__ = ["COMMANDS"]

#: The commands of this module, in the order ``tracker --help`` lists them.
COMMANDS: list[click.Command] = []


def _command(name: str | None = None) -> Any:
    def decorate(function: Any) -> Any:
        command = click.command(name)(db_option(format_option(click.pass_context(function))))
        COMMANDS.append(command)
        return command

    return decorate


@_command()
@click.argument("runs", nargs=-1)
def checkpoints(ctx: click.Context, fmt: str, runs: tuple[str, ...]) -> None:
    """Show every save (all runs, or RUNS): path, epoch, kind, why, and the epochs a best-only checkpoint skipped."""
    import pandas as pd

    store = open_store(ctx)
    ids = [store.resolve(r) for r in runs]
    frame = pd.concat([store.checkpoints(r) for r in ids], ignore_index=True) if ids else store.checkpoints()
    drop = ["fingerprint", "saved_at", "hook"] + (["run_id", "name"] if len(ids) == 1 else []) + (
        ["phase"] if constant(frame, "phase_seq") else [])
    if not len(frame) and fmt == "table":
        click.echo("No checkpoints were recorded" + (" for this run." if len(ids) == 1 else "."))
        return
    emit_frame(store, frame, fmt, run_id=ids[0] if len(ids) == 1 else None, drop=drop if fmt == "table" else (),
               keys=("run_id", "name", "phase", "epoch"))


@_command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
def which(ctx: click.Context, fmt: str, files: tuple[str, ...]) -> None:
    """Name the run and epoch whose weights each model FILE holds (.keras, .weights.h5 or .h5; renamed copies too)."""
    import pandas as pd

    store = open_store(ctx)
    frames, problems = [], []
    for path in files:
        try:
            found = store.which(path)
        except ModelFileError as exc:
            if len(files) == 1:
                raise
            problems.append(str(exc))
            continue
        if not len(found):
            problems.append(f"No recorded epoch of this database ended with the weights in {path}.")
            continue
        frames.append(found)
    if frames:
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        # The table: the monitored value is in its own column already; columns with nothing to say left out.
        drop = ["value"] + ["phase"] * constant(frame, "phase_seq") + [c for c in ("file", "batch", "saved_as") if (
            (c == "file" and len(files) == 1) or (c != "file" and frame[c].isna().all()))]
        emit_frame(store, frame, fmt, drop=drop if fmt == "table" else (), keys=("file", "run_id", "name"))
    if problems:
        if len(problems) == 1 and not frames:
            raise InvalidArgumentError(problems[0])
        for problem in problems:
            click.echo(f"Error: {problem}", err=True)
        ctx.exit(1)


@_command()
@click.argument("run")
def lineage(ctx: click.Context, fmt: str, run: str) -> None:
    """Show the runs RUN started from (ancestors) and those started from it (descendants), by weight fingerprints."""
    store = open_store(ctx)
    run_id = store.resolve(run)
    frame = store.lineage(run_id)
    if not len(frame) and fmt == "table":
        click.echo("No recorded run is an ancestor or a descendant of this run (it started from weights no other "
                   "run recorded, and no run started from its weights).")
        return
    if fmt != "table":
        emit_frame(store, frame, fmt)
        return
    from tracker.views.tables import short_ids

    short = short_ids([*frame["parent_id"], *frame["child_id"]])
    for column in ("parent_id", "child_id"):
        frame[column] = [short.get(i, i) for i in frame[column]]
    drop = ["parent_status", "child_status"] + (["batch"] if frame["batch"].isna().all() else []) + (
        ["layers"] if frame["layers"].isna().all() else [])
    emit_frame(store, frame, fmt, drop=drop, keys=("relation",))
