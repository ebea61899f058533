"""The ``tracker ui`` and ``tracker report`` commands, registered on the main CLI.

``tracker.cli`` calls ``register`` once; nothing here is imported before a
command runs except click, so the CLI's start-up stays fast. Errors are one
sentence and exit status 1 (the main group turns TrackerError into that).
"""

from __future__ import annotations

import click

__all__ = ["register", "ui", "report"]


def _database(ctx: click.Context) -> str:
    from tracker.cli_base import database

    return database(ctx)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address prints a warning.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int) -> None:
    """Serve the dashboard: runs, curves with the decisions marked, compare, live refresh.

    Opens the database read-only (never created or migrated) and serves
    http://HOST:PORT until Ctrl+C. The JSON API is under /api (see the README).
    """
    from tracker.ui.app import LOCAL_HOSTS, create_app
    from tracker.ui.server import bind, exposure_warning, serve, url_of

    db = _database(ctx)
    warning = exposure_warning(host)
    app = create_app(db, allowed_hosts=LOCAL_HOSTS if warning is None else ["*"])
    sock = bind(host, port)
    if warning:
        click.echo(warning, err=True)
    from tracker.db.engine import describe, resolve_url

    click.echo(f"tracker ui: {describe(resolve_url(db))} (read-only) at {url_of(sock)}  (Ctrl+C to stop)", err=True)
    try:
        serve(app, sock)
    finally:
        sock.close()


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@click.pass_context
def report(ctx: click.Context, runs: tuple[str, ...], out: str) -> None:
    """Write RUNS' run and compare views to one self-contained HTML file.

    The file opens from disk in a browser with no server and no network.
    """
    from tracker.ui.report import write_report

    path = write_report(_database(ctx), list(runs), out)
    click.echo(f"Wrote {path} ({path.stat().st_size / 1024:,.0f} KiB, {len(set(runs))} run(s))")


def register(group: click.Group) -> None:
    """Add ``ui`` and ``report`` to the ``tracker`` group, with its ``--db`` option."""
    from tracker.cli import db_option

    for command in (ui, report):
        group.add_command(db_option(command))
