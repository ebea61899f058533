"""An epoch written early, then amended: the write behind durable epochs at a save.

When a callback saves a file in ``on_epoch_end`` (``BackupAndRestore``'s
backup, a ``ModelCheckpoint``), the recorder writes that epoch before the file
is written, so a process killed right after the save never has a file that
claims an epoch its record lacks. Callbacks listed after the saver may still
change the epoch's logs (``ReduceLROnPlateau`` adds ``learning_rate``):
``AmendEpoch`` then replaces the epoch's values with the final ones and
rebuilds the run's summary. Applied by ``tracker.db.writes.apply``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from tracker.db.base import table_of
from tracker.db.metrics import rebuild_run_summary
from tracker.db.refs import PhaseRef
from tracker.db.tables import Epoch, EpochValue
from tracker.db.values import encode, value_rows

__all__ = ["AmendEpoch", "APPLY", "unchanged"]

_EPOCHS, _EPOCH_VALUES = table_of(Epoch), table_of(EpochValue)


@dataclass(slots=True)
class AmendEpoch:
    """Replace the logged values of an epoch already written with ``logs`` (its final logs)."""

    run_id: str
    phase: PhaseRef
    epoch: int
    logs: dict[str, Any]


def unchanged(early: dict[str, Any], final: dict[str, Any]) -> bool:
    """True if the logs written early are the final ones, bit for bit (NaN equal to NaN)."""
    return early.keys() == final.keys() and all(encode(early[k]) == encode(final[k]) for k in early)


def _amend_epoch(conn: Connection, keys: Any, op: AmendEpoch) -> None:
    epoch_id: int = conn.execute(
        select(_EPOCHS.c.id).where(_EPOCHS.c.phase_id == op.phase.id, _EPOCHS.c.epoch == op.epoch)
    ).scalar_one()
    conn.execute(delete(_EPOCH_VALUES).where(_EPOCH_VALUES.c.epoch_id == epoch_id))
    rows = value_rows(conn, keys, op.logs, epoch_id=epoch_id)
    if rows:
        conn.execute(insert(_EPOCH_VALUES), rows)
    rebuild_run_summary(conn, op.run_id)


APPLY: dict[type, Callable[[Connection, Any, Any], None]] = {AmendEpoch: _amend_epoch}
