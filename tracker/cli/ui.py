"""The ``tracker ui`` and ``tracker report`` commands: the dashboard and its offline HTML twin.

Nothing of the dashboard (``tracker.ui``) is imported before a command runs,
so the CLI's start-up stays fast. Errors are one sentence and exit status 1
(the main group turns TrackerError into that).
"""

from __future__ import annotations

import click

from tracker.cli.base import database, db_option

__all__ = ["COMMANDS", "ui", "report"]


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address prints a warning.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--allow-host", "allow", multiple=True, metavar="NAME",
              help="Also answer requests for this host name (repeatable): a name the machine is reached by "
                   "that it does not know itself. Other names are refused (a guard against DNS rebinding).")
@click.option("--edit", is_flag=True,
              help="Let the page rename runs, set tags and notes, and move runs to the trash (read-only without it).")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, allow: tuple[str, ...], edit: bool) -> None:
    """Serve the dashboard: runs, curves with the decisions marked, compare, live refresh.

    Opens the database read-only (never created or migrated) and serves
    http://HOST:PORT until Ctrl+C. The JSON API is under /api (see docs/dashboard.md).
    It answers only requests naming its own address, the machine's names or
    an --allow-host name. With --edit, a run's page can rename it, set its
    tags and note and move it to the trash; each change must come from the
    page itself (this server's random token and its own origin).
    """
    from tracker.db.engine import describe, resolve_url
    from tracker.ui.app import create_app
    from tracker.ui.server import allowed_hosts, bind, exposure_warning, serve, url_of
    from tracker.views.terminal import printable

    db = database(ctx)
    warning = exposure_warning(host)
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise click.ClickException(printable(str(exc))) from None
    try:
        names = allowed_hosts(host, sock, allow)
        app = create_app(db, allowed_hosts=names, edit=edit)
    except BaseException:
        sock.close()
        raise
    if warning:
        click.echo(f"{warning} It answers to the hosts {', '.join(names)} and the address a request came "
                   "in on; add others with --allow-host.", err=True)
    shown = printable(describe(resolve_url(db)), limit=None)
    mode = "editing enabled" if edit else "read-only"
    click.echo(f"tracker ui: {shown} ({mode}) at {url_of(sock)}  (Ctrl+C to stop)", err=True)
    try:
        serve(app, sock)
    finally:
        sock.close()


@click.command()
@db_option
@click.argument("runs", nargs=-1)
@click.option("--experiment", default=None, metavar="NAME",
              help="Write the experiment page of NAME (its sweep: parallel coordinates, importance, curves) instead.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@click.pass_context
def report(ctx: click.Context, runs: tuple[str, ...], experiment: str | None, out: str) -> None:
    """Write RUNS' run and compare views, or --experiment NAME's page, to one self-contained HTML file.

    The file opens from disk in a browser with no server and no network.
    """
    from tracker.ui.report import write_report
    from tracker.views.terminal import printable

    if bool(runs) == (experiment is not None):
        raise click.UsageError("Give RUNS or --experiment NAME (one of the two).")
    path = write_report(database(ctx), list(runs), out, experiment=experiment)
    what = f"experiment {printable(experiment, limit=200)}" if experiment is not None else f"{len(set(runs))} run(s)"
    click.echo(f"Wrote {printable(str(path), limit=None)} ({path.stat().st_size / 1024:,.0f} KiB, {what})")


COMMANDS = [ui, report]
