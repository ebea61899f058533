"""The writes of system metrics: one typed operation per sample, and the function that applies it.

Queued by the recorder's sampler (``tracker.record.system``) on the run's
``Writer`` like every other operation (``tracker.db.writes.apply``
dispatches it here), so a sample taken while the database is unreachable is
kept and written at a later flush. Imports neither Keras nor pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert

from tracker.db.base import table_of
from tracker.db.system_tables import SystemSample
from tracker.status import SampleTrigger

__all__ = ["GpuReading", "InsertSystemSample", "APPLY"]

_SAMPLES = table_of(SystemSample)


class GpuReading(NamedTuple):
    """One GPU at one sample (NVML's index, utilisation in percent, memory in bytes)."""

    device: int
    utilization: float | None
    memory_used: int | None
    memory_total: int | None


@dataclass(slots=True)
class InsertSystemSample:
    """One sample: the process and its host, and each GPU (see ``tracker.db.system_tables.SystemSample``)."""

    run_id: str
    sampled_at: datetime
    trigger: SampleTrigger
    phase_seq: int | None
    epoch: int | None
    cpu_percent: float | None
    rss: int | None
    memory_used: int | None
    memory_total: int | None
    gpus: list[GpuReading] = field(default_factory=list)


def _insert_system_sample(conn: Connection, keys: Any, op: InsertSystemSample) -> None:
    shared = {"run_id": op.run_id, "sampled_at": op.sampled_at, "trigger": op.trigger, "phase_seq": op.phase_seq,
              "epoch": op.epoch}
    rows = [{**shared, "device": None, "cpu_percent": op.cpu_percent, "rss": op.rss, "memory_used": op.memory_used,
             "memory_total": op.memory_total, "gpu_utilization": None}]
    rows += [{**shared, "device": g.device, "cpu_percent": None, "rss": None, "memory_used": g.memory_used,
              "memory_total": g.memory_total, "gpu_utilization": g.utilization} for g in op.gpus]
    conn.execute(insert(_SAMPLES), rows)


#: How ``tracker.db.writes.apply`` applies the operation of this module (``keys``, its key cache, is unused).
APPLY: dict[type, Callable[[Connection, Any, Any], None]] = {InsertSystemSample: _insert_system_sample}
