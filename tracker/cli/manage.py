"""The run management commands: ``rename``, ``tag``, ``note``, ``delete``, ``undelete`` and ``gc``.

Each goes through ``tracker.RunManager`` (``tracker.manage``), which opens
the database for writing. A delete or a gc of more than one run first shows
what would go and needs ``--yes``. Mistakes are one sentence and exit status
1 (the main group turns TrackerError into that). ``tracker runs --deleted``
(``tracker.cli.read``) lists the trash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from tracker.cli.base import database, db_option, echo_table, plural
from tracker.errors import InvalidArgumentError

__all__ = ["COMMANDS"]

#: The commands of this family, in the order ``tracker --help`` lists them.
COMMANDS: list[click.Command] = []


def manage_command(name: str | None = None, **kwargs: Any) -> Any:
    def decorate(function: Any) -> Any:
        command = click.command(name, **kwargs)(db_option(click.pass_context(function)))
        COMMANDS.append(command)
        return command

    return decorate


def _manager(ctx: click.Context) -> Any:
    from tracker.manage import RunManager

    return RunManager(database(ctx))


def _called(row: Any) -> str:
    from tracker.views.terminal import printable

    return f"{printable(row.name)!r} ({row.id})" if row.name else row.id


def _show(rows: Sequence[Any], *, deleted: bool = False) -> None:
    columns = ["run_id", "name", "status", "started_at"] + (["deleted_at"] if deleted else [])
    echo_table(columns, [[r.id, r.name, r.status, r.started_at] + ([r.deleted_at] if deleted else []) for r in rows],
               keys=("run_id",))


def _tag_pairs(items: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"{item!r} is not KEY=VALUE; give each tag as KEY=VALUE (VALUE may be empty).")
        tags[key] = value
    return tags


@manage_command()
@click.argument("run")
@click.argument("new_name")
def rename(ctx: click.Context, run: str, new_name: str) -> None:
    """Give RUN the name NEW_NAME (its id stays; the old name no longer finds it)."""
    from tracker.views.terminal import printable

    row = _manager(ctx).rename(run, new_name)
    click.echo(f"Renamed {_called(row)} to {printable(new_name)!r}.")


@manage_command()
@click.argument("run")
@click.argument("tags", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--remove", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
def tag(ctx: click.Context, run: str, tags: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Set tags of RUN (KEY=VALUE replaces KEY's value), or remove them with --remove KEY."""
    from tracker.views.terminal import printable

    now = _manager(ctx).tag(run, _tag_pairs(tags), remove=list(remove))
    shown = ", ".join(f"{printable(k)}={printable(v)}" for k, v in now.items()) or "none"
    click.echo(f"Tags of {printable(run)!r} now: {shown}.")


@manage_command()
@click.argument("run")
@click.argument("text")
@click.option("--append", is_flag=True, help="Add TEXT to the note on a new line instead of replacing it.")
def note(ctx: click.Context, run: str, text: str, append: bool) -> None:
    """Write a note on RUN (replacing its note; empty TEXT clears it), or --append a line to it."""
    from tracker.views.terminal import printable

    now = _manager(ctx).note(run, text, append=append)
    lines = [] if now is None else [printable(line, limit=None) for line in now.split("\n")]
    click.echo("Cleared the note." if now is None else "Note of {!r} now:\n  {}".format(printable(run), "\n  ".join(lines)))


@manage_command()
@click.argument("runs", nargs=-1)
@click.option("--status", multiple=True, help="Select runs with this status: finished, failed, interrupted, crashed "
              "(or pruned where tuners record it; repeatable).")
@click.option("--older-than", metavar="AGE", help="Select runs started more than AGE ago: 30d, 12h, 90m, 2w.")
@click.option("--experiment", metavar="NAME", help="Select the runs of this experiment.")
@click.option("--yes", is_flag=True, help="Delete more than one run (without it, they are only listed).")
def delete(ctx: click.Context, runs: tuple[str, ...], status: tuple[str, ...], older_than: str | None,
           experiment: str | None, yes: bool) -> None:
    """Move RUNS (or the runs the options select) to the trash.

    A deleted run leaves every listing and aggregate; 'tracker undelete RUN'
    brings it back and 'tracker gc' removes it for good. A run still training
    (its process alive) is never deleted. More than one run needs --yes.
    """
    manager = _manager(ctx)
    found = manager.find(list(runs), status=list(status) or None, older_than=older_than, experiment=experiment)
    if not found:
        click.echo("No runs match; nothing was deleted.")
        return
    if len(found) > 1 and not yes:
        _show(found)
        raise InvalidArgumentError(f"These {len(found)} runs would go to the trash; add --yes to delete them.")
    moved = manager.delete([r.id for r in found])
    _show(moved)
    click.echo(f"Moved {plural(len(moved), 'run')} to the trash; 'tracker undelete RUN' brings one back, "
               "'tracker gc' removes them for good.")


@manage_command()
@click.argument("runs", nargs=-1, required=True)
def undelete(ctx: click.Context, runs: tuple[str, ...]) -> None:
    """Bring RUNS back from the trash (a name is its newest deleted run)."""
    back = _manager(ctx).undelete(list(runs))
    click.echo(f"Brought back {plural(len(back), 'run')} from the trash: " + ", ".join(_called(r) for r in back))


@manage_command()
@click.option("--yes", is_flag=True, help="Remove more than one run (without it, they are only listed).")
def gc(ctx: click.Context, yes: bool) -> None:
    """Remove the runs in the trash for good, with every row they own, and give the space back.

    On SQLite the file is compacted (VACUUM) and shrinks; on PostgreSQL the
    rows are deleted and the server's autovacuum reuses the space. Only the
    database's owner may do this on a server. More than one run needs --yes.
    """
    manager = _manager(ctx)
    trashed = manager.trash()
    if not trashed:
        click.echo("The trash is empty: nothing to collect.")
        return
    if len(trashed) > 1 and not yes:
        _show(trashed, deleted=True)
        raise InvalidArgumentError(f"These {len(trashed)} runs would be removed for good; add --yes to remove them.")
    done = manager.gc([r.id for r in trashed])
    rows = sum(done.rows.values())
    if done.bytes_before is not None and done.bytes_after is not None:
        space = f"the file went from {_size(done.bytes_before)} to {_size(done.bytes_after)}"
    else:
        space = "the server reuses the space (autovacuum)"
    click.echo(f"Removed {plural(len(done.runs), 'run')} for good ({plural(rows, 'row')}); {space}.")


def _size(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n < 10 * 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MiB"
