"""Bulk reads: a select's rows as the driver's plain tuples, for 10,000 runs or 100,000 batches.

SQLAlchemy wraps every fetched row in a ``Row``; for the runs overview and
the batch curves that wrapping is about a third of the read. ``driver_rows``
compiles the select with SQLAlchemy (dialect, bound parameters, expanded IN
lists) and fetches from the connection's DBAPI cursor. Select plain columns
(``table()``/``column()``, as ``tracker.store.filters`` does): no result type
processing runs. Imports neither pandas, Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select

from tracker.db.types import valid_text

__all__ = ["driver_rows"]


def driver_rows(conn: Connection, stmt: Select[Any]) -> list[tuple[Any, ...]]:
    """Run ``stmt`` inside ``conn``'s transaction and return the driver's tuples, in the select's column order."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    # Text as stored (lone surrogates escaped, as the column types write them): bound values bypass the types here.
    params = {k: valid_text(v) if type(v) is str else v for k, v in compiled.construct_params().items()}
    args: Any = tuple(params[name] for name in compiled.positiontup or []) if compiled.positional else params
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        return list(cursor.fetchall())
    finally:
        cursor.close()
