"""Weight fingerprints: a 128-bit BLAKE2b digest of every weight's bytes.

Two weight sets get the same fingerprint only if every array has the same
dtype, shape and bytes (up to a 2**-128 chance), so comparing fingerprints
tells exactly which epoch's weights a model holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["fingerprint_arrays", "fingerprint_model"]


def fingerprint_arrays(arrays: Iterable[Any]) -> str:
    """Return the hex digest (32 characters) of a list of arrays."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        a = np.ascontiguousarray(array)
        digest.update(f"{a.dtype.str}{a.shape};".encode())
        digest.update(a.tobytes() if not a.flags.c_contiguous else memoryview(a).cast("B"))  # type: ignore[arg-type]
    return digest.hexdigest()


def fingerprint_model(model: Any) -> str:
    """Return the fingerprint of ``model.get_weights()`` (trainable and not)."""
    return fingerprint_arrays(model.get_weights())
