"""The base of the read side: frames from SQL, exact value decoding, run references.

Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, select

from tracker.db.tables import Run
from tracker.db.types import valid_text
from tracker.errors import DeletedRunError, UnknownRunError

__all__ = ["AnySelect", "PLAIN", "read_frame", "resolve_run", "decode_numbers", "int_columns", "enum_values", "float_column"]

#: In ``decode_numbers``' second array: this row is a plain float.
PLAIN = object()


#: A SELECT of any columns.
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


def read_frame(engine: Engine, stmt: AnySelect) -> pd.DataFrame:
    """Run ``stmt`` into a DataFrame, keeping ``bits`` (and ``*_bits``) exact and ``text``/``key`` as objects.

    (Left to inference, pandas would turn a bits column holding NULLs into
    float64, rounding the 64-bit patterns.)
    """
    with engine.connect() as conn:
        result = conn.execute(stmt)
        names = list(result.keys())
        rows = result.all()
    columns: dict[str, Any] = {}
    for i, name in enumerate(names):
        values = [row[i] for row in rows]
        if name == "bits" or name.endswith("_bits"):
            columns[name] = pd.array(values, dtype="Int64")
        elif name in ("text", "key"):
            columns[name] = pd.Series(values, dtype="object")
        else:
            columns[name] = values
    return pd.DataFrame(columns, columns=names)


def decode_numbers(values: Sequence[Any], bits: Sequence[Any], texts: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Decode stored ``(value, bits, text)`` columns.

    Returns ``(floats, other)``: ``floats`` the bit-exact float64 of every
    number (NaN where the row is not a plain number), ``other`` an object
    array holding, where a row is not a plain float, what it is: an exact big
    ``int``, a ``str``, or None for a logged None; ``PLAIN`` marks plain floats.
    """
    n = len(values)
    floats = np.full(n, np.nan)
    other = np.full(n, PLAIN, dtype=object)
    for i in range(n):
        text, b, v = texts[i], bits[i], values[i]
        if text is not None and text is not pd.NA:
            other[i] = int(text) if (b is not None and b is not pd.NA) else text
        elif b is not None and b is not pd.NA:
            floats[i] = np.int64(b).view(np.float64)
        elif v is not None and not (isinstance(v, float) and v != v):
            floats[i] = float(v)
        else:
            other[i] = None
    return floats, other


def float_column(values: Sequence[Any]) -> Any:
    """A float column where None/``<NA>`` is missing (``<NA>``) and NaN stays a logged NaN.

    ``float64`` when nothing is missing, else pandas' nullable ``Float64``
    (whose ``astype`` would turn NaN into ``<NA>``; this keeps them apart).
    """
    missing = np.array([v is None or v is pd.NA for v in values], dtype=bool)
    data = np.array([np.nan if m else float(v) for v, m in zip(values, missing)], dtype=np.float64)
    if not missing.any():
        return data
    return pd.arrays.FloatingArray(data, missing)


def int_columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Make ``columns`` nullable integers (an absent epoch is <NA>, not a float NaN)."""
    for column in columns:
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def enum_values(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Replace enum members by their string values."""
    for column in columns:
        if column in frame:
            frame[column] = frame[column].map(lambda v: getattr(v, "value", v))
    return frame


def _deleted(conn: Connection, run_id: str) -> DeletedRunError:
    name, when = conn.execute(select(Run.name, Run.deleted_at).where(Run.id == run_id)).one()
    called = f"{name!r} ({run_id})" if name else run_id
    since = f" since {when:%Y-%m-%d %H:%M:%S}Z" if when is not None else ""
    return DeletedRunError(
        f"Run {called} is deleted (in the trash{since}); bring it back with: tracker undelete {run_id}", run_id
    )


def resolve_run(conn: Connection, ref: str, *, among: str = "view") -> str:
    """Return the run id that ``ref`` names (see ``Store.resolve``).

    Args:
        conn: A connection to the database.
        ref: An id, a unique id prefix, a run name or ``latest``.
        among: ``view`` (default): the runs in view; a run in the trash named
            by its id is refused. ``any``: a run in the trash too (``tracker
            show``): a name is its newest run in view, else its newest
            deleted one. ``trash``: a name is its newest deleted run
            (``tracker undelete``); an id names any run.

    Raises:
        DeletedRunError: ``among`` is ``view`` and ``ref`` names a run in the trash.
        UnknownRunError: nothing matches (close names are suggested), or a
            prefix matches several runs.
    """
    if not isinstance(ref, str):
        raise UnknownRunError(f"A run reference must be a string (an id, a name or 'latest'), not {ref!r}.")
    ref = valid_text(ref)  # a name as stored (an undecodable command-line argument holds lone surrogates)
    shown, trashed = Run.deleted_at.is_(None), Run.deleted_at.is_not(None)
    newest = (Run.started_at.desc(), Run.id.desc())
    if ref == "latest":
        found = conn.execute(select(Run.id).where(shown).order_by(*newest).limit(1)).scalar()
        if found is None:
            raise UnknownRunError("There are no runs in this database yet.")
        return found
    is_id = "\x00" not in ref  # ids are hex; PostgreSQL refuses a NUL in a plain text parameter
    if is_id and conn.execute(select(Run.id).where(Run.id == ref)).scalar() is not None:
        return _checked(conn, ref, among)
    for where in ((trashed,) if among == "trash" else (shown, trashed)):
        by_name = conn.execute(select(Run.id).where(Run.name == ref, where).order_by(*newest).limit(1)).scalar()
        if by_name is not None:
            return _checked(conn, by_name, among)
    escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    matches: list[str] = []
    if is_id:
        matches = list(conn.execute(select(Run.id).where(Run.id.like(f"{escaped}%", escape="\\")).limit(6)).scalars())
    if len(matches) == 1:
        return _checked(conn, matches[0], among)
    if matches:
        listed = ", ".join(matches[:5])
        raise UnknownRunError(f"{ref!r} matches several runs ({listed}, ...); give more of the id.")
    names = [n for n in conn.execute(select(Run.name).where(shown).distinct().limit(10_000)).scalars() if n]
    close = difflib.get_close_matches(ref, names, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownRunError(
        f"No run matches {ref!r}; use a run id, a unique id prefix, a run name or 'latest'.{hint}"
    )


def _checked(conn: Connection, run_id: str, among: str) -> str:
    """``run_id``, unless it is in the trash and only runs in view are asked for."""
    if among == "view" and conn.execute(select(Run.deleted_at).where(Run.id == run_id)).scalar() is not None:
        raise _deleted(conn, run_id)
    return run_id
