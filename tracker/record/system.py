"""System metrics: a helper thread samples the process, the machine and the GPUs while a run records.

``SystemSampler`` is started by the run's ``Ledger`` when the run's
outermost call (``fit``, ``evaluate``, ``predict``) begins and stopped when
it ends, returns or raises: the thread takes a last sample (``end``) and is
joined. In between it samples every ``interval`` seconds (``timer``) and
after each epoch's end (``epoch``: the training thread only appends the
epoch's number and wakes it). Each sample is one typed operation
(``tracker.db.system_writes.InsertSystemSample``) queued on the run's
``Writer``, so it is written, buffered and retried like every other record.

What is read: through psutil, the process's CPU use since the previous
sample (100 = one core busy; none when that was under ``MIN_CPU_WINDOW``), its resident memory, and the machine's memory
in use and in all; through NVML (``nvidia-ml-py``, the ``gpu`` extra), each
GPU's utilisation and memory. Without NVML (not installed, no driver, no
GPU) there are no GPU readings and nothing is said.

It never disturbs training: a sampling failure stops the thread, is logged,
and is reported once as a ``TrackingWarning`` on the training thread (at the
next epoch end or the end of the call).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

import psutil

from tracker.db.system_writes import GpuReading, InsertSystemSample
from tracker.db.values import utcnow
from tracker.errors import TrackingWarning
from tracker.status import SampleTrigger

__all__ = ["SystemSampler", "Gpus", "DEFAULT_INTERVAL"]

logger = logging.getLogger(__name__)

#: Seconds between two timed samples, unless ``system_interval`` says otherwise.
DEFAULT_INTERVAL = 10.0
#: The shortest time CPU use is measured over: the kernel counts CPU time in ticks (10 ms), so a
#: shorter window would read 0 % or several hundred. A sample closer to the previous one has no CPU
#: use (NULL), and the next one measures from the earlier reference.
MIN_CPU_WINDOW = 0.1


class Gpus:
    """The GPUs NVML sees (none without NVML); ``read()`` gives one ``GpuReading`` each."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        try:
            import pynvml  # the gpu extra: nvidia-ml-py

            pynvml.nvmlInit()
        except Exception:  # noqa: BLE001 - not installed, no driver, no GPU: no GPU readings, silently
            return
        try:
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:
            pynvml.nvmlShutdown()
            raise
        self._nvml = pynvml

    def read(self) -> list[GpuReading]:
        nvml, out = self._nvml, []
        for index, handle in enumerate(self._handles):
            utilization = _maybe(nvml, lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            memory = _maybe(nvml, lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
            out.append(GpuReading(index, utilization, int(memory.used) if memory is not None else None,
                                  int(memory.total) if memory is not None else None))
        return out

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml, self._handles = None, []
            try:
                import pynvml

                pynvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - best effort
                logger.debug("tracker: nvmlShutdown failed", exc_info=True)


def _cpu_seconds(process: psutil.Process) -> float:
    """The CPU time the process has used, in user and kernel mode (what psutil's ``cpu_percent`` counts)."""
    times = process.cpu_times()
    return float(times.user + times.system)


def _maybe(nvml: Any, read: Callable[[], Any]) -> Any:
    """A reading the device does not support (NVML says so) is None; any other error is raised."""
    try:
        return read()
    except nvml.NVMLError_NotSupported:
        return None


class SystemSampler:
    """Samples system metrics for one run (see the module docstring).

    Args:
        run_id: The run the samples belong to.
        submit: Queues an operation on the run's writer.
        interval: Seconds between timed samples. Default ``DEFAULT_INTERVAL``.

    Attributes:
        thread_cpu: CPU seconds the sampling thread has used (``time.thread_time``), for benchmarks.
        samples: Samples queued so far.
    """

    def __init__(self, run_id: str, submit: Callable[[Any], None], *, interval: float = DEFAULT_INTERVAL) -> None:
        self.run_id = run_id
        self.submit = submit
        self.interval = float(interval)
        self.thread_cpu = 0.0
        self.samples = 0
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._epochs: deque[int] = deque()
        self._stopping = False
        self._phase_seq: int | None = None
        self._process: psutil.Process | None = None
        self._cpu_reference = (0.0, 0.0)  # (the process's CPU seconds, time.monotonic()) measured from
        self._failure: BaseException | None = None
        self._reported = False

    # -- the training thread's side ---------------------------------------------------

    def start(self, phase_seq: int) -> None:
        """Start sampling (the run's outermost call ``phase_seq`` began); a no-op once sampling failed."""
        if self._failure is not None or (self._thread is not None and self._thread.is_alive()):
            return
        try:
            process = psutil.Process()
            self._cpu_reference = (_cpu_seconds(process), time.monotonic())  # the first sample measures from here
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            self.report()
            return
        self._process, self._phase_seq, self._stopping = process, phase_seq, False
        self._epochs.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="tracker-system", daemon=True)
        self._thread.start()

    def epoch_ended(self, epoch: int) -> None:
        """Ask for a sample of the epoch that just ended (taken by the thread, at once)."""
        if self._thread is not None:
            self._epochs.append(epoch)
            self._wake.set()
        self.report()

    def stop(self, *, wait: float = 2.0) -> None:
        """Take a last sample and stop the thread; wait for it at most ``wait`` seconds."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            if thread is not threading.current_thread():
                thread.join(timeout=wait)
            self._thread = None
        self.report()

    def report(self) -> None:
        """Warn once, on the caller's thread, that sampling failed and stopped."""
        failure = self._failure
        if failure is not None and not self._reported:
            self._reported = True
            warnings.warn(
                f"tracker: sampling system metrics failed ({type(failure).__name__}: {failure}); no more "
                "system samples are taken for this run, and training goes on.",
                TrackingWarning,
                stacklevel=4,
            )

    # -- the sampling thread ------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        logger.warning("tracker: sampling system metrics failed", exc_info=exc)
        self._failure = exc

    def _run(self) -> None:
        started = time.thread_time()
        gpus: Gpus | None = None
        try:
            gpus = Gpus()
            due = time.monotonic() + self.interval
            while True:
                self._wake.wait(max(0.0, due - time.monotonic()))
                self._wake.clear()
                while self._epochs:
                    self._sample(SampleTrigger.EPOCH, self._epochs.popleft(), gpus)
                if self._stopping:
                    self._sample(SampleTrigger.END, None, gpus)
                    return
                now = time.monotonic()
                if now >= due:
                    self._sample(SampleTrigger.TIMER, None, gpus)
                    due = max(due + self.interval, now)  # never a burst of catching up
        except Exception as exc:  # noqa: BLE001 - reported on the training thread
            self._fail(exc)
        finally:
            if gpus is not None:
                gpus.close()
            self.thread_cpu += time.thread_time() - started

    def _sample(self, trigger: SampleTrigger, epoch: int | None, gpus: Gpus) -> None:
        process = self._process
        assert process is not None
        with process.oneshot():
            busy, now = _cpu_seconds(process), time.monotonic()
            rss = process.memory_info().rss
        memory = psutil.virtual_memory()
        cpu = None
        used, since = self._cpu_reference
        if now - since >= MIN_CPU_WINDOW:
            cpu = max(0.0, (busy - used) / (now - since) * 100.0)
            self._cpu_reference = (busy, now)
        self.submit(InsertSystemSample(self.run_id, utcnow(), trigger, self._phase_seq, epoch, cpu, int(rss),
                                       int(memory.total - memory.available), int(memory.total), gpus.read()))
        self.samples += 1
