"""Weight fingerprints: the definition of the digest stored in ``epochs.fingerprint``.

A fingerprint is a 128-bit BLAKE2b digest over a list of arrays, each given
by its NumPy dtype string (``<f4``: kind, size and byte order), its shape and
its bytes in C order. The write side (``tracker.record.fingerprint``) hashes
``model.get_weights()``, in the model's variable order; the read side
(``tracker.store.which``) hashes the arrays it reads from a model file, put
in that same order. Both call ``fingerprint_arrays``, so the two agree byte
for byte. Two weight sets get the same fingerprint only if every array has
the same dtype, shape and bytes (up to a 2**-128 chance).

Imports NumPy only: neither Keras nor a backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["fingerprint_arrays", "layout_digest"]


def fingerprint_arrays(arrays: Iterable[Any]) -> str:
    """Return the hex digest (32 characters) of a list of arrays (see the module docstring)."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        a = np.ascontiguousarray(array)
        digest.update(f"{a.dtype.str}{a.shape};".encode())
        try:
            data: Any = memoryview(a).cast("B") if a.flags.c_contiguous else a.tobytes()  # type: ignore[arg-type]
        except (ValueError, TypeError):  # a dtype the buffer protocol does not know (ml_dtypes' bfloat16)
            data = a.tobytes()
        digest.update(data)
    return digest.hexdigest()


def layout_digest(entries: Sequence[Sequence[Any]]) -> str:
    """Return the hex digest (32 characters) of a weights layout: its entries as compact JSON."""
    text = json.dumps([list(e) for e in entries], separators=(",", ":"), ensure_ascii=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
