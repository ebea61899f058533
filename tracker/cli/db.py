"""The ``tracker db`` commands: the schema (``upgrade``, ``current``, ``check``) and the team server's tools (``grant``, ``copy``).

``db current`` and ``db check`` open the database read-only, like the read
commands; ``db upgrade`` is the one command that creates or migrates it.
"""

from __future__ import annotations

import click

from tracker.cli.base import Group, database, db_option, existing_url

__all__ = ["COMMANDS", "db"]


@click.group(cls=Group)
def db() -> None:
    """Create, upgrade, inspect and check the database schema."""


@db.command()
@db_option
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Create the database or upgrade it to the newest schema, and say which it did."""
    from tracker.db.engine import describe, get_engine, resolve_url, sqlite_path
    from tracker.db.migrate import head_revision, open_database, read_revision

    given = resolve_url(database(ctx))
    path = sqlite_path(given)
    before = None
    if path is None or path.exists():
        try:
            before = read_revision(get_engine(given, readonly=True), given)
        except Exception:  # noqa: BLE001 - open_database below says what is wrong, in one sentence
            before = None
    created = path is not None and not path.exists()
    _, url = open_database(database(ctx))
    head = head_revision()
    if created:
        click.echo(f"Created {describe(url)}: a new, empty database at schema revision {head} (head); "
                   "no file was there.")
    elif before is not None and before != head:
        click.echo(f"{describe(url)} upgraded from schema revision {before} to {head} (head).")
    else:
        click.echo(f"{describe(url)} is at schema revision {head} (head).")


@db.command()
@db_option
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the database's schema revision and whether it is the newest."""
    from tracker.db.engine import describe, get_engine
    from tracker.db.migrate import head_revision, read_revision

    url = existing_url(ctx)
    revision = read_revision(get_engine(url, readonly=True), url)
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

    url = existing_url(ctx)
    problems = check_schema(get_engine(url, readonly=True), url)
    if problems:
        raise click.ClickException(f"{describe(url)}: " + "; ".join(problems) + ".")
    click.echo(f"{describe(url)}: ok (integrity, schema revision and tables all check out)")


@db.command()
@db_option
@click.option("--reader", default="tracker_reader", show_default=True, help="The read-only role.")
@click.option("--writer", default="tracker_writer", show_default=True, help="The role TrackingCallback connects as.")
@click.option("--apply", "apply_now", is_flag=True, help="Run the SQL now (connected as the database's owner).")
@click.pass_context
def grant(ctx: click.Context, reader: str, writer: str, apply_now: bool) -> None:
    """Print (or --apply) the SQL for a writer and a reader role on a PostgreSQL tracker database.

    The writer may insert runs and change only the runs it created (row-level
    security); the reader may only select, with a statement timeout; neither
    may change the schema, create temporary tables or large objects (the
    owner runs 'tracker db upgrade'). --apply upgrades the database first.
    Also prints the pg_hba.conf lines that keep both roles out of the
    server's other databases. Roles are created LOGIN without a password:
    set one with psql's \\password, so no password appears here.
    """
    from sqlalchemy.engine import make_url

    from tracker.db.engine import resolve_url
    from tracker.db.migrate import open_database
    from tracker.db.roles import apply_grants, grant_gaps, grant_statements, hba_lines
    from tracker.errors import InvalidArgumentError

    url = resolve_url(database(ctx))
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise InvalidArgumentError(
            "Roles exist on a PostgreSQL server; a SQLite file is protected by its file permissions instead."
        )
    statements = grant_statements(parsed.database or "", reader=reader, writer=writer)
    hba = hba_lines(parsed.database or "", reader=reader, writer=writer)
    if apply_now:
        engine, _ = open_database(url)
        apply_grants(engine, statements)
        click.echo(f"Granted: {writer} (writer) and {reader} (reader) on {parsed.database}.")
        for gap in grant_gaps(engine, reader=reader, writer=writer):
            click.echo(f"Note: {gap}")
        click.echo("pg_hba.conf lines (above any broader line, then reload):\n" + "\n".join(hba))
        return
    click.echo("\n".join(f"{s};" for s in statements))
    click.echo("-- pg_hba.conf lines that confine both roles to this database (above any broader line):")
    click.echo("\n".join(f"-- {line}" for line in hba))


@db.command("copy")
@click.option("--from", "source", required=True, metavar="PATH_OR_URL", help="The database to copy runs from.")
@click.option("--to", "destination", required=True, metavar="PATH_OR_URL",
              help="The database to copy them into (created and migrated if needed).")
@click.option("--runs", "refs", multiple=True, metavar="RUN", help="Runs to copy (repeatable). Default: all.")
def copy(source: str, destination: str, refs: tuple[str, ...]) -> None:
    """Copy runs with everything they hold from one database to another, bit for bit.

    Idempotent: a run already at the destination is skipped, or completed
    if it was copied only in part; never duplicated. Interrupted (Ctrl-C),
    it says how many runs were copied; running it again resumes.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from tracker.db.copy import CopyReport, copy_runs
    from tracker.db.engine import describe, resolve_url
    from tracker.db.migrate import open_database, open_for_reading
    from tracker.store.base import resolve_run

    resolve_url(destination)  # a destination the tracker cannot use is refused before anything is read
    src_engine, src_url = open_for_reading(source)
    dst_engine, dst_url = open_database(destination)
    with src_engine.connect() as conn:
        if refs:
            ids = list(dict.fromkeys(resolve_run(conn, r, among="any") for r in refs))  # trashed runs too
        else:
            from sqlalchemy import column, select, table

            runs = table("runs", column("id"), column("started_at"))
            ids = list(conn.execute(select(runs.c.id).order_by(runs.c.started_at, runs.c.id)).scalars())
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rows]:,} rows"), transient=True, console=None) as bar:
        task = bar.add_task("copying runs", total=len(ids), rows=0)
        done: set[str] = set()

        def step(run_id: str, rows: int) -> None:
            if run_id not in done:
                done.add(run_id)
            bar.update(task, completed=len(done), rows=rows)

        report = CopyReport()
        try:
            copy_runs(src_engine, dst_engine, ids, progress=step, report=report)
        except KeyboardInterrupt:
            bar.stop()
            whole = len(report.copied) + len(report.replaced)
            there = f" ({len(report.skipped)} were already there)" if report.skipped else ""
            raise click.ClickException(
                f"Interrupted: {whole} of {len(ids)} runs copied{there}, the run being copied left out; "
                "rerun the same command to copy the rest (it resumes: runs already copied are skipped)."
            ) from None
    parts = [f"{len(report.copied)} copied", f"{len(report.replaced)} completed", f"{len(report.skipped)} already there"]
    if report.kept:
        parts.append(f"{len(report.kept)} left alone (the destination has more: {', '.join(r[:8] for r in report.kept)})")
    click.echo(f"{describe(src_url)} -> {describe(dst_url)}: {', '.join(parts)} ({report.rows:,} rows).")


COMMANDS = [db]
