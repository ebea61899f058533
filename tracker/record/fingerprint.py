"""Weight fingerprints: a 128-bit BLAKE2b digest of every weight's bytes.

Two weight sets get the same fingerprint only if every array has the same
dtype, shape and bytes (up to a 2**-128 chance), so comparing fingerprints
tells exactly which epoch's weights a model holds.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracker.db.writes import Pending

__all__ = ["OFF_THREAD_BYTES", "Done", "fingerprint_arrays", "fingerprint_later", "fingerprint_model"]

#: Weights of at least this many bytes are hashed on a helper thread: the
#: training thread only copies them (``get_weights``), and BLAKE2b releases
#: the interpreter while it hashes, so the hash runs beside the next steps.
OFF_THREAD_BYTES = 1 << 20

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the pool's thread is gone: start a new pool there when needed."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


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


@dataclass(frozen=True, slots=True)
class Done:
    """A fingerprint computed at once (small weights)."""

    value: str

    def result(self) -> str:
        return self.value


def fingerprint_later(model: Any) -> Pending:
    """Copy ``model.get_weights()`` now; hash them now if small, else on a helper thread.

    Returns an object whose ``result()`` is the fingerprint (a
    ``concurrent.futures.Future`` for big weights). The copy is taken at the
    call, so later changes to the weights don't reach the fingerprint.
    """
    global _pool
    arrays = model.get_weights()
    if sum(int(getattr(a, "nbytes", 0)) for a in arrays) < OFF_THREAD_BYTES:
        return Done(fingerprint_arrays(arrays))
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-fingerprint")
    return _pool.submit(fingerprint_arrays, arrays)
