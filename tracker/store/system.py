"""A run's system metrics as a frame: one row per sample, one group of columns per GPU.

Reads ``system_samples`` (``tracker.db.system_tables``), written by the
recorder's sampler. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from tracker.db.system_tables import SystemSample
from tracker.db.tables import Phase, Run
from tracker.store.base import int_columns
from tracker.store.runs import add_call, call_numbers

__all__ = ["SYSTEM_COLUMNS", "GPU_FIELDS", "system_frame"]

#: The columns of ``Store.system`` before any GPU's.
SYSTEM_COLUMNS = ["sampled_at", "elapsed", "trigger", "phase", "phase_seq", "call", "epoch", "cpu_percent", "rss",
                  "memory_used", "memory_total"]
#: Each GPU's columns, ``gpu{N}_{field}`` (N: NVML's device index).
GPU_FIELDS = ["utilization", "memory_used", "memory_total"]


def system_frame(engine: Engine, run_id: str) -> pd.DataFrame:
    """One row per system sample of ``run_id``, oldest first (see ``Store.system``)."""
    s = SystemSample
    with engine.connect() as conn:
        started = conn.execute(select(Run.started_at).where(Run.id == run_id)).scalar()
        kinds = dict(conn.execute(select(Phase.seq, Phase.kind).where(Phase.run_id == run_id)).all())
        rows = conn.execute(
            select(s.sampled_at, s.trigger, s.phase_seq, s.epoch, s.device, s.cpu_percent, s.rss, s.memory_used,
                   s.memory_total, s.gpu_utilization)
            .where(s.run_id == run_id).order_by(s.sampled_at, s.id)
        ).all()
    samples: dict[Any, dict[str, Any]] = {}
    devices: set[int] = set()
    for row in rows:
        at, trigger, seq, epoch, device, cpu, rss, used, total, utilization = tuple(row)
        sample = samples.setdefault((at, seq, epoch, getattr(trigger, "value", trigger)), {})
        if device is None:
            sample.update(cpu_percent=cpu, rss=rss, memory_used=used, memory_total=total)
        else:
            devices.add(device)
            sample.update({f"gpu{device}_utilization": utilization, f"gpu{device}_memory_used": used,
                           f"gpu{device}_memory_total": total})
    gpu_columns = [f"gpu{d}_{f}" for d in sorted(devices) for f in GPU_FIELDS]
    records = []
    for (at, seq, epoch, trigger), values in samples.items():
        kind = kinds.get(seq)
        records.append({"sampled_at": at, "elapsed": (at - started).total_seconds() if started is not None else None,
                        "trigger": trigger, "phase": getattr(kind, "value", kind), "phase_seq": seq, "epoch": epoch,
                        **values})
    frame = pd.DataFrame.from_records(records, columns=[c for c in SYSTEM_COLUMNS if c != "call"] + gpu_columns)
    frame["sampled_at"] = pd.to_datetime(frame["sampled_at"])
    frame["elapsed"] = frame["elapsed"].astype("float64")
    for column in ("cpu_percent", *(c for c in gpu_columns if c.endswith("_utilization"))):
        frame[column] = frame[column].astype("Float64")
    add_call(frame, call_numbers(engine, [run_id]), run_id)
    return int_columns(frame, ["phase_seq", "epoch", "rss", "memory_used", "memory_total",
                               *(c for c in gpu_columns if not c.endswith("_utilization"))])
