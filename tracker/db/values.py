"""Turning ``logs`` values into storable columns and back, bit for bit.

A number is kept as its IEEE-754 float64 bit pattern (``bits``, a signed
64-bit integer), which is exact for NaN payloads, ±inf and -0.0, plus a plain
``value`` for SQL (NULL for NaN). Anything else is kept as ``text``; nothing
is dropped. This module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import json
import math
import struct
import warnings
from datetime import datetime, timezone
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tracker.errors import TrackingWarning

__all__ = ["encode", "decode", "decode_bits", "flatten_logs", "value_rows", "utcnow"]

_PACK = struct.Struct("<d")
_UNPACK = struct.Struct("<q")
_MAX_EXACT_INT = 2**53

Encoded = tuple[float | None, int | None, str | None]


def _float_columns(x: float) -> Encoded:
    bits = _UNPACK.unpack(_PACK.pack(x))[0]
    return (None if x != x else x), bits, None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return repr(obj)


def encode(value: Any) -> Encoded:
    """Return ``(value, bits, text)`` columns for one logged value.

    Floats (Python or NumPy) and bools are stored exactly as float64. An int is
    stored as float64 when float64 holds it exactly; otherwise it keeps its
    nearest float (or ±inf) and its exact decimal text. Strings are stored as
    text, arrays as JSON text, None as three NULLs, anything else as ``repr``.
    """
    if type(value) is float:  # the common case: Keras' pythonified scalars
        return _float_columns(value)
    if value is None:
        return None, None, None
    if isinstance(value, (bool, np.bool_)):
        return _float_columns(1.0 if value else 0.0)
    if isinstance(value, (int, np.integer)):
        as_int = int(value)
        if -_MAX_EXACT_INT <= as_int <= _MAX_EXACT_INT:
            return _float_columns(float(as_int))
        try:
            nearest = float(as_int)
        except OverflowError:
            nearest = math.inf if as_int > 0 else -math.inf
        number, bits, _ = _float_columns(nearest)
        return number, bits, str(as_int)
    if isinstance(value, (float, np.floating)):
        # float64 holds every float16/32/64 exactly; longdouble may round.
        return _float_columns(float(value))
    if isinstance(value, str):
        return None, None, value
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return encode(value[()])
        return None, None, json.dumps(value.tolist(), default=_json_default)
    if isinstance(value, bytes):
        return None, None, value.decode("utf-8", errors="backslashreplace")
    return None, None, repr(value)


def decode_bits(bits: int) -> float:
    """Return the float64 whose bit pattern is the signed 64-bit ``bits``."""
    return _PACK.unpack(_UNPACK.pack(bits))[0]


def decode(value: float | None, bits: int | None, text: str | None) -> Any:
    """Return the logged value stored as ``(value, bits, text)``.

    Exact integers beyond float64 come back as ``int``; other numbers as
    ``float`` (bit-exact); other values as their stored text; None as None.
    """
    if text is not None:
        if bits is not None:
            return int(text)
        return text
    if bits is not None:
        return decode_bits(bits)
    return value


def flatten_logs(logs: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Yield ``(key, value)`` pairs, flattening nested mappings as ``a/b``."""
    for key, value in logs.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten_logs(value, prefix=f"{name}/")
        else:
            yield name, value


_collisions: set[str] = set()


def value_rows(logs: Mapping[str, Any] | None, **owner: Any) -> list[dict[str, Any]]:
    """Return one row dict per key of ``logs`` (flattened), with ``owner`` columns added."""
    if not logs:
        return []
    rows: dict[str, dict[str, Any]] = {}
    for key, raw in flatten_logs(logs):
        value, bits, text = encode(raw)
        if key in rows and key not in _collisions:
            _collisions.add(key)
            warnings.warn(
                f"tracker: two logs entries flatten to the key {key!r} (a nested dict and a "
                "'/'-named key); the later one is stored.",
                TrackingWarning,
                stacklevel=2,
            )
        rows[key] = {**owner, "key": key, "value": value, "bits": bits, "text": text}
    return list(rows.values())


def utcnow() -> datetime:
    """Now, as the naive UTC datetime that every timestamp column stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
