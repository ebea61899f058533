"""The ``tracker db grant`` and ``tracker db copy`` commands (the team server's tools).

Registered on the ``db`` group of ``tracker.cli``.
"""

from __future__ import annotations

from typing import Any

import click

__all__ = ["register"]


def register(db: click.Group, db_option: Any, db_of: Any) -> None:
    """Add ``grant`` and ``copy`` to the ``db`` group."""

    @db.command()
    @db_option
    @click.option("--reader", default="tracker_reader", show_default=True, help="The read-only role.")
    @click.option("--writer", default="tracker_writer", show_default=True, help="The role TrackingCallback connects as.")
    @click.option("--apply", "apply_now", is_flag=True, help="Run the SQL now (connected as the database's owner).")
    @click.pass_context
    def grant(ctx: click.Context, reader: str, writer: str, apply_now: bool) -> None:
        """Print (or --apply) the SQL for a writer and a reader role on a PostgreSQL tracker database.

        The writer may insert and update rows, the reader may only select;
        neither may change the schema (the owner runs 'tracker db upgrade').
        Roles are created LOGIN without a password: set one with psql's
        \\password, so no password appears here.
        """
        from sqlalchemy.engine import make_url

        from tracker.db.engine import get_engine, resolve_url
        from tracker.db.roles import apply_grants, grant_statements
        from tracker.errors import InvalidArgumentError

        url = resolve_url(db_of(ctx))
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise InvalidArgumentError(
                "Roles exist on a PostgreSQL server; a SQLite file is protected by its file permissions instead."
            )
        statements = grant_statements(parsed.database or "", reader=reader, writer=writer)
        if apply_now:
            apply_grants(get_engine(url), statements)
            click.echo(f"Granted: {writer} (writer) and {reader} (reader) on {parsed.database}.")
            return
        click.echo("\n".join(f"{s};" for s in statements))

    @db.command("copy")
    @click.option("--from", "source", required=True, metavar="PATH_OR_URL", help="The database to copy runs from.")
    @click.option("--to", "destination", required=True, metavar="PATH_OR_URL",
                  help="The database to copy them into (created and migrated if needed).")
    @click.option("--runs", "refs", multiple=True, metavar="RUN", help="Runs to copy (repeatable). Default: all.")
    def copy(source: str, destination: str, refs: tuple[str, ...]) -> None:
        """Copy runs with everything they hold from one database to another, bit for bit.

        Idempotent: a run already at the destination is skipped, or completed
        if it was copied only in part; never duplicated.
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from tracker.db.copy import copy_runs
        from tracker.db.engine import describe
        from tracker.db.migrate import open_database, open_for_reading
        from tracker.store.base import resolve_run

        src_engine, src_url = open_for_reading(source)
        dst_engine, dst_url = open_database(destination)
        with src_engine.connect() as conn:
            if refs:
                ids = list(dict.fromkeys(resolve_run(conn, r) for r in refs))
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

            report = copy_runs(src_engine, dst_engine, ids, progress=step)
        parts = [f"{len(report.copied)} copied", f"{len(report.replaced)} completed", f"{len(report.skipped)} already there"]
        if report.kept:
            parts.append(f"{len(report.kept)} left alone (the destination has more: {', '.join(r[:8] for r in report.kept)})")
        click.echo(f"{describe(src_url)} -> {describe(dst_url)}: {', '.join(parts)} ({report.rows:,} rows).")
