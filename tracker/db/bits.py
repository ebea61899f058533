"""Float64 bit patterns and decoding a stored value, without NumPy.

Split from ``tracker.db.values`` so that the read side's fast path
(``tracker runs``, ``tracker.store.overview``) decodes values without
importing NumPy (about 0.25 s of start-up). ``tracker.db.values`` re-exports
these names.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["float_bits", "decode_bits", "decode"]

_PACK = struct.Struct("<d")
_UNPACK = struct.Struct("<q")


def float_bits(x: float) -> int:
    """Return the IEEE-754 bit pattern of a float64 as a signed 64-bit integer."""
    return _UNPACK.unpack(_PACK.pack(x))[0]


def decode_bits(bits: int) -> float:
    """Return the float64 whose bit pattern is the signed 64-bit ``bits``."""
    return _PACK.unpack(_UNPACK.pack(bits))[0]


def decode(value: float | None, bits: int | None, text: str | None) -> Any:
    """Return the logged value stored as ``(value, bits, text)``.

    Exact integers beyond float64 come back as ``int``; other numbers as a
    bit-exact ``float``; other values as their stored text; None as None.
    """
    if text is not None:
        return int(text) if bits is not None else text
    if bits is not None:
        return decode_bits(bits)
    return None if value is None else float(value)
