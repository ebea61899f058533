"""The ``tracker`` command line (also ``python cli.py``): the group, and every command added to it.

One module per command family, each below this one:

* ``tracker.cli.read``: the read commands (``runs``, ``show``, ``epochs``, ...);
* ``tracker.cli.models``: ``checkpoints``, ``which`` and ``lineage`` (saves, model files, lineage);
* ``tracker.cli.sweeps``: ``experiments`` and ``sweep``;
* ``tracker.cli.manage``: run management (``rename``, ``tag``, ``note``, ``delete``,
  ``undelete``, ``gc``);
* ``tracker.cli.tools``: ``export``, ``plot``, ``watch`` and ``demo``;
* ``tracker.cli.db``: ``db upgrade|current|check|grant|copy``;
* ``tracker.cli.ui``: ``ui`` (the dashboard) and ``report`` (an offline HTML file);
* ``tracker.cli.base``: what they share (the error-handling group class, ``--db``
  and ``--format``, table output).

Errors and closed pipes: see ``tracker.cli.base.Group``. Importing this
imports neither Keras, pandas nor the dashboard: each command imports what
it needs when it runs.
"""

from __future__ import annotations

import click

from tracker.cli import db as db_commands
from tracker.cli import manage, models, read, sweeps, tools, ui
from tracker.cli.base import Group
from tracker.db.engine import DEFAULT_DB

__all__ = ["main"]


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


for _family in (read, models, manage, sweeps, tools, db_commands, ui):
    for _command in _family.COMMANDS:
        main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
