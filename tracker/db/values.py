"""Turning ``logs`` values into storable columns and back, bit for bit.

Epoch and phase values are one row per key (``encode``/``decode``): a number
is a float64 ``value``, plus its IEEE-754 bit pattern ``bits`` (a signed
64-bit integer) only where the float column cannot carry it exactly: NaN
(``value`` is NULL: SQLite stores NaN as NULL) and -0.0 (SQLite stores 0.0).
Anything else is ``text``; nothing is dropped.

Batch values are packed, one row per batch (``pack_batch``/``unpack_floats``):
the float values as little-endian float64 bytes, which are exact by
construction, and the rare non-float values as ``encode`` rows beside them.

This module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import json
import math
import struct
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tracker.db.bits import decode, decode_bits, float_bits
from tracker.errors import TrackingWarning

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from tracker.db.keys import KeyCache

__all__ = [
    "Encoded",
    "PackedBatch",
    "encode",
    "decode",
    "decode_bits",
    "float_bits",
    "flatten_logs",
    "logged_items",
    "float_packer",
    "pack_batch",
    "unpack_floats",
    "utcnow", "value_rows"]

_PACK = struct.Struct("<d")
_UNPACK = struct.Struct("<q")
_MAX_EXACT_INT = 2**53
_NEG_ZERO_BITS = _UNPACK.unpack(_PACK.pack(-0.0))[0]


class Encoded(NamedTuple):
    """One logged value as columns: ``value`` (float64), ``bits`` (where needed), ``text``."""

    value: float | None
    bits: int | None
    text: str | None


def _float(x: float) -> Encoded:
    if x != x:
        return Encoded(None, float_bits(x), None)
    if x == 0.0 and math.copysign(1.0, x) < 0:
        return Encoded(x, _NEG_ZERO_BITS, None)
    return Encoded(x, None, None)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return repr(obj)


def encode(value: Any) -> Encoded:
    """Return the ``(value, bits, text)`` columns of one logged value.

    Floats (Python or NumPy) and bools are stored exactly as float64. An int
    is stored as float64 when float64 holds it exactly; otherwise it keeps its
    nearest float (or ±inf), that float's bits (which mark it as a number)
    and its exact decimal text. Strings are text, arrays JSON text, None three
    NULLs, anything else its ``repr``.
    """
    if type(value) is float:  # the common case: Keras' pythonified scalars
        return _float(value)
    if value is None:
        return Encoded(None, None, None)
    if isinstance(value, (bool, np.bool_)):
        return Encoded(1.0 if value else 0.0, None, None)
    if isinstance(value, (int, np.integer)):
        as_int = int(value)
        if -_MAX_EXACT_INT <= as_int <= _MAX_EXACT_INT:
            return Encoded(float(as_int), None, None)
        try:
            nearest = float(as_int)
        except OverflowError:
            nearest = math.inf if as_int > 0 else -math.inf
        return Encoded(nearest, float_bits(nearest), str(as_int))
    if isinstance(value, (float, np.floating)):
        # float64 holds every float16/32/64 exactly; longdouble may round.
        return _float(float(value))
    if isinstance(value, str):
        return Encoded(None, None, value)
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return encode(value[()])
        return Encoded(None, None, json.dumps(value.tolist(), default=_json_default))
    if isinstance(value, bytes):
        return Encoded(None, None, value.decode("utf-8", errors="backslashreplace"))
    return Encoded(None, None, repr(value))


def flatten_logs(logs: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Yield ``(key, value)`` pairs, flattening nested mappings as ``a/b``."""
    for key, value in logs.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten_logs(value, prefix=f"{name}/")
        else:
            yield name, value


_collisions: set[str] = set()


def logged_items(logs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``logs`` flattened to ``{key: value}``, warning once per clashing key."""
    if not logs:
        return {}
    if all(type(v) is float for v in logs.values()):
        return dict(logs)  # the common case: flat, Keras-pythonified
    out: dict[str, Any] = {}
    for key, value in flatten_logs(logs):
        if key in out and key not in _collisions:
            _collisions.add(key)
            warnings.warn(
                f"tracker: two logs entries flatten to the key {key!r} (a nested dict and a "
                "'/'-named key); the later one is stored.",
                TrackingWarning,
                stacklevel=2,
            )
        out[key] = value
    return out


class PackedBatch(NamedTuple):
    """A batch's logs ready for one ``batches`` row.

    ``keys`` name the floats packed in ``vals`` (little-endian float64, in
    order); ``extras`` are the other values as ``(key, Encoded)``.
    """

    keys: tuple[str, ...]
    vals: bytes
    extras: list[tuple[str, Encoded]]


_EMPTY = PackedBatch((), b"", [])
_ONLY_FLOAT = {float}


_PACKERS: dict[int, struct.Struct] = {}


def float_packer(width: int) -> struct.Struct:
    """The ``Struct`` packing ``width`` float64 values little-endian (cached)."""
    packer = _PACKERS.get(width)
    if packer is None:
        packer = _PACKERS[width] = struct.Struct(f"<{width}d")
    return packer


def pack_batch(logs: Mapping[str, Any] | None) -> PackedBatch:
    """Pack one batch's logs: floats (and exact ints, bools) bit-exact, the rest as extras."""
    if not logs:
        return _EMPTY
    values = tuple(logs.values())
    if set(map(type, values)) == _ONLY_FLOAT:  # the common case: Keras' pythonified floats
        return PackedBatch(tuple(logs), float_packer(len(values)).pack(*values), [])
    keys: list[str] = []
    floats: list[float] = []
    extras: list[tuple[str, Encoded]] = []
    for key, value in logged_items(logs).items():
        if type(value) is not float and isinstance(value, (float, np.floating, bool, np.bool_)):
            value = float(value)
        elif isinstance(value, (int, np.integer)) and -_MAX_EXACT_INT <= int(value) <= _MAX_EXACT_INT:
            value = float(int(value))
        elif isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fb":
            value = float(value[()])
        if type(value) is float:
            keys.append(key)
            floats.append(value)
        else:
            extras.append((key, encode(value)))
    return PackedBatch(tuple(keys), struct.pack(f"<{len(floats)}d", *floats), extras)


def unpack_floats(blobs: list[bytes], width: int) -> np.ndarray:
    """Return packed rows of ``width`` float64 each as an ``(n, width)`` array, bit-exact."""
    if not blobs:
        return np.empty((0, width), dtype="<f8")
    return np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(blobs), width)


def utcnow() -> datetime:
    """Now, as the naive UTC datetime that every timestamp column stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def value_rows(conn: Connection, keys: KeyCache, logs: Mapping[str, Any] | None, **owner: Any) -> list[dict[str, Any]]:
    """The value rows of ``logs`` (flattened, encoded bit-exact), with ``owner``'s columns and each key's id."""
    items = logged_items(logs)
    if not items:
        return []
    ids = keys.key_ids(conn, items)
    rows = []
    for name, raw in items.items():
        value, bits, text = encode(raw)
        rows.append({**owner, "key_id": ids[name], "value": value, "bits": bits, "text": text})
    return rows
