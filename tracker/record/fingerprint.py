"""Weight fingerprints of a live model: a 128-bit BLAKE2b digest of every weight's bytes.

The digest is defined in ``tracker.db.digest`` (the read side computes the
same one from a model file). Two weight sets get the same fingerprint only if
every array has the same dtype, shape and bytes (up to a 2**-128 chance), so
comparing fingerprints tells exactly which epoch's weights a model holds.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tracker.db.checkpoint_writes import PartsPending
from tracker.db.digest import fingerprint_arrays
from tracker.db.writes import Pending

__all__ = ["OFF_THREAD_BYTES", "Done", "fingerprint_arrays", "fingerprint_later", "fingerprint_model",
           "fingerprint_with_parts"]

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


def fingerprint_model(model: Any) -> str:
    """Return the fingerprint of ``model.get_weights()`` (trainable and not)."""
    return fingerprint_arrays(model.get_weights())


@dataclass(frozen=True, slots=True)
class Done:
    """A fingerprint computed at once (small weights)."""

    value: str

    def result(self) -> str:
        return self.value


def fingerprint_later(model: Any, arrays: list[Any] | None = None) -> Pending:
    """Copy ``model.get_weights()`` (or take ``arrays``, copies already) now; hash them now if small,
    else on a helper thread.

    Returns an object whose ``result()`` is the fingerprint (a
    ``concurrent.futures.Future`` for big weights). The copy is taken at the
    call, so later changes to the weights don't reach the fingerprint.
    """
    global _pool
    if arrays is None:
        arrays = model.get_weights()
    if sum(int(getattr(a, "nbytes", 0)) for a in arrays) < OFF_THREAD_BYTES:
        return Done(fingerprint_arrays(arrays))
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-fingerprint")
    return _pool.submit(fingerprint_arrays, arrays)


def fingerprint_with_parts(model: Any, parts: dict[str, list[int]]) -> tuple[Pending, PartsPending]:
    """``fingerprint_later`` of the model, and from the same copy the fingerprints of its sub-models.

    ``parts`` maps a sub-model's layer path to the positions of its weights
    (``tracker.record.layout.sub_models``). Returns the model's fingerprint
    and a ``PartsPending`` whose ``result()`` is ``{layer path: digest}``.
    """
    arrays = model.get_weights()
    whole = fingerprint_later(model, arrays)

    def hash_parts() -> dict[str, str]:
        return {name: fingerprint_arrays([arrays[i] for i in positions]) for name, positions in parts.items()}

    if isinstance(whole, Done):
        done = hash_parts()
        return whole, PartsPending(lambda: done)
    assert _pool is not None
    later = _pool.submit(hash_parts)
    return whole, PartsPending(later.result)
