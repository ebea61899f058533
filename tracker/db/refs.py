"""What a queued write operation refers to before it is written: a phase row, a pending digest.

Shared by the operation modules (``tracker.db.writes``,
``tracker.db.checkpoint_writes``). Imports nothing of the tracker.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["PhaseRef", "Pending", "resolved"]


class PhaseRef(Protocol):
    """A phase as an operation refers to it; ``id`` is None until its row is written."""

    id: int | None


class Pending(Protocol):
    """A value still being computed elsewhere (a ``concurrent.futures.Future``)."""

    def result(self) -> str: ...


def resolved(value: str | Pending | None) -> str | None:
    """The digest itself: ``value``, or its ``result()`` (waiting for the helper thread that hashes it)."""
    return value if value is None or isinstance(value, str) else value.result()
