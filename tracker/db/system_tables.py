"""The system metrics table: what the process and the machine used while a run recorded.

Written by the recorder's sampler (``tracker.record.system``) through
``tracker.db.system_writes``; read by ``tracker.store.system``. Revision
0012 creates it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Double, ForeignKey, Integer, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from tracker.db.base import Base, enum_column
from tracker.status import SampleTrigger

__all__ = ["SystemSample"]


class SystemSample(Base):
    """One system sample of a run: a row for the process and its host, plus one per GPU.

    A sample's rows share ``sampled_at`` (UTC), ``trigger``, ``phase_seq``
    (the run's outermost call open when it was taken) and ``epoch`` (set for
    an ``epoch`` sample: the epoch that just ended). The process-and-host row
    has ``device`` NULL: ``cpu_percent`` is the process's CPU use since the
    previous sample (user and kernel time over wall time, as psutil measures
    it: 100 is one core fully busy, so it may exceed 100; NULL when less
    than 0.1 s passed, too short to measure), ``rss`` its resident memory, ``memory_used`` and
    ``memory_total`` the machine's memory in use and in all (bytes). A GPU
    row has ``device`` set (NVML's index): ``gpu_utilization`` (percent of
    time a kernel ran, NVML's measure) and ``memory_used``/``memory_total``
    of that device (bytes). A machine without NVML has no GPU rows.
    """

    __tablename__ = "system_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    sampled_at: Mapped[datetime] = mapped_column(DateTime)
    trigger: Mapped[SampleTrigger] = mapped_column(enum_column(SampleTrigger, "sample_trigger"))
    phase_seq: Mapped[int | None] = mapped_column(Integer)
    epoch: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[int | None] = mapped_column(SmallInteger)
    cpu_percent: Mapped[float | None] = mapped_column(Double)
    rss: Mapped[int | None] = mapped_column(BigInteger)
    memory_used: Mapped[int | None] = mapped_column(BigInteger)
    memory_total: Mapped[int | None] = mapped_column(BigInteger)
    gpu_utilization: Mapped[float | None] = mapped_column(Double)
