"""The base of the read side: opening a database, running queries, run references.

Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
from sqlalchemy import Select, select

from tracker.db.engine import DEFAULT_DB
from tracker.errors import UnknownRunError
from tracker.store.liveness import HEARTBEAT_TIMEOUT
from tracker.db.migrate import open_database
from tracker.db.tables import Run

__all__ = ["StoreBase"]


class StoreBase:
    """Opening, querying and run references for ``tracker.Store`` (see there)."""

    def __init__(self, db: str | os.PathLike[str] = DEFAULT_DB, *, heartbeat_timeout: float = HEARTBEAT_TIMEOUT) -> None:
        self.engine, self.url = open_database(os.fspath(db), create=False)
        self.heartbeat_timeout = heartbeat_timeout

    def _frame(self, stmt: Select[Any]) -> pd.DataFrame:
        """Run ``stmt`` into a DataFrame, keeping ``bits`` exact and ``text`` as objects.

        (Left to inference, pandas would turn a bits column holding NULLs into
        float64, rounding the 64-bit patterns.)
        """
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            names = list(result.keys())
            rows = result.all()
        columns: dict[str, Any] = {}
        for i, name in enumerate(names):
            values = [row[i] for row in rows]
            if name == "bits":
                columns[name] = pd.array(values, dtype="Int64")
            elif name in ("text", "key"):
                columns[name] = pd.Series(values, dtype="object")
            else:
                columns[name] = values
        return pd.DataFrame(columns, columns=names)

    def resolve(self, ref: str) -> str:
        """Return the run id that ``ref`` names.

        ``ref`` may be a full run id, ``latest``, a run name (the newest run of
        that name) or a unique prefix of a run id.

        Raises:
            UnknownRunError: nothing matches, or a prefix matches several runs.
        """
        with self.engine.connect() as conn:
            if ref == "latest":
                found = conn.execute(
                    select(Run.id).order_by(Run.started_at.desc(), Run.id.desc()).limit(1)
                ).scalar()
                if found is None:
                    raise UnknownRunError("There are no runs in this database yet.")
                return found
            if conn.execute(select(Run.id).where(Run.id == ref)).scalar() is not None:
                return ref
            by_name = conn.execute(
                select(Run.id).where(Run.name == ref).order_by(Run.started_at.desc()).limit(1)
            ).scalar()
            if by_name is not None:
                return by_name
            escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            matches = conn.execute(
                select(Run.id).where(Run.id.like(f"{escaped}%", escape="\\")).limit(6)
            ).scalars().all()
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UnknownRunError(
                f"No run matches {ref!r}; use a run id, a unique id prefix, a run name or 'latest'."
            )
        shown = ", ".join(matches[:5])
        raise UnknownRunError(f"{ref!r} matches several runs ({shown}, ...); give more of the id.")
