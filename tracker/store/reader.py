"""``Reader``: what every part of ``Store`` shares: the read-only engine and run references.

``Store`` is assembled from readers of one subject each (``Store`` itself:
runs, frames of epochs and batches; ``DecisionReads``: LR, stops and
restores), all on this base. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import os

from tracker.db.engine import DEFAULT_DB
from tracker.db.migrate import open_for_reading
from tracker.store.base import resolve_run
from tracker.store.liveness import HEARTBEAT_TIMEOUT

__all__ = ["Reader"]


class Reader:
    """Opens a database read-only and resolves run references (see ``Store`` for the arguments)."""

    def __init__(
        self,
        db: str | os.PathLike[str] = DEFAULT_DB,
        *,
        upgrade: bool = False,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    ) -> None:
        self.engine, self.url = open_for_reading(os.fspath(db), upgrade_schema=upgrade)
        self.heartbeat_timeout = heartbeat_timeout

    def resolve(self, ref: str, *, deleted: bool = False) -> str:
        """Return the run id that ``ref`` names.

        ``ref`` may be a full run id, ``latest`` (the newest run in view), a
        run name (the newest run in view of that name) or a unique prefix of
        a run id. Runs in the trash (``tracker delete``) are out of view.

        Args:
            ref: The reference.
            deleted: Also name runs in the trash (as ``run`` does): a name
                with no run in view is its newest deleted run. Default False.

        Raises:
            DeletedRunError: ``ref`` names a run in the trash (unless
                ``deleted``); the message says how to undelete it.
            UnknownRunError: nothing matches (close names are suggested), or
                a prefix matches several runs.
        """
        with self.engine.connect() as conn:
            return resolve_run(conn, ref, among="any" if deleted else "view")

    def _maybe(self, run: str | None) -> str | None:
        return None if run is None else self.resolve(run)
