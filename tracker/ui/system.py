"""A run's system metrics for the run page's System panel: ``/api/runs/ID/system``.

One array per column of ``Store.system`` (``tracker.store.system``), so the
page draws CPU, memory and GPU charts against the time since the run
started. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

from tracker.store import Store
from tracker.ui.jsonable import jsonable

__all__ = ["system_answer"]


def system_answer(store: Store, run_id: str) -> dict[str, Any]:
    """The run's system samples as columns.

    Members: ``elapsed`` (seconds since the run started), ``trigger``,
    ``phase_seq``, ``call``, ``epoch``, ``cpu_percent``, ``rss``,
    ``memory_used``, ``memory_total`` (bytes), and ``gpus``: per GPU index
    (a string), its ``utilization``, ``memory_used`` and ``memory_total``;
    empty without GPU samples. Every array is empty for a run without
    system samples.

    Raises:
        UnknownRunError: no run has this id.
    """
    frame = store.system(run_id)
    columns = ["elapsed", "trigger", "phase_seq", "call", "epoch", "cpu_percent", "rss", "memory_used", "memory_total"]
    answer: dict[str, Any] = {c: jsonable(frame[c].tolist()) for c in columns}
    gpus: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        if name.startswith("gpu") and "_" in name:
            device, _, field = name[3:].partition("_")
            gpus.setdefault(device, {})[field] = jsonable(frame[name].tolist())
    answer["gpus"] = gpus
    return answer
