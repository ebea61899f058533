"""The write path: an ordered, buffered log of typed record operations.

The recorder queues the operations of ``tracker.db.writes`` (and one
``BatchRecord`` per batch); nothing touches the disk on the per-batch path.
``flush()`` writes everything pending, in order, in one short ``BEGIN
IMMEDIATE`` transaction. A background thread flushes every ``flush_every``
batches or ``flush_interval`` seconds, and at the next batch after a phase
begins or an epoch ends (``wake_soon``: while the step computes). Only the end
of the outermost phase flushes on the training thread, so that ``fit`` and the
others return with everything written; on SQLite it then checkpoints the WAL,
so that the file alone holds the run. A failed flush keeps the operations
and retries at the next (never stopping training, unless ``strict``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Engine

from tracker.db.engine import checkpoint_wal, describe, resolve_url, sqlite_path
from tracker.db.values import utcnow
from tracker.db.writes import (
    BatchRecord,
    InsertPhase,
    KeyCache,
    Op,
    apply,
    touch_heartbeat,
    write_batches,
)
from tracker.errors import TrackingWarning, TrackingWriteError
from tracker.record.write_failures import failure_message, retryable

__all__ = ["Writer", "writers_of"]

logger = logging.getLogger(__name__)


_live_writers: weakref.WeakSet[Writer] = weakref.WeakSet()

@atexit.register
def _flush_at_exit() -> None:
    for writer in list(_live_writers):
        try:
            writer.close()
        except Exception:  # pragma: no cover - best effort at exit
            logger.exception("tracker: final flush failed")


def writers_of(run_ids: Iterable[str]) -> list[Writer]:
    """The live writers of this process that write one of ``run_ids``."""
    return [writer for writer in list(_live_writers) if writer.run_id in set(run_ids)]


class Writer:
    """Buffers record operations and writes them in order.

    Args:
        db: A file path or an SQLAlchemy URL. Opened (and migrated) lazily at
            the first flush, and again at later flushes if that failed.
        run_id: The run whose heartbeat every flush writes.
        on_reset: Called when the database file was deleted under the run;
            returns the operations that rebuild the run's open rows.
        flush_every: Wake the background flusher after this many batches.
        flush_interval: The background flusher also writes every this many
            seconds while a phase is open.
        strict: Raise TrackingWriteError instead of warning when a write fails.
        heartbeat_interval: While the background flusher runs, write the
            run's ``heartbeat_at`` at least this often (seconds), even when
            nothing else is pending. A flush also writes it, at most once a second.
        max_pending: While writes fail, keep at most this many queued
            operations in memory; batch records beyond it are counted in
            ``dropped_batches`` and not kept (epochs and phases always are).
    """

    def __init__(
        self,
        db: str,
        *,
        run_id: str,
        on_reset: Callable[[], list[Op]] | None = None,
        flush_every: int = 128,
        flush_interval: float = 2.0,
        strict: bool = False,
        max_pending: int = 200_000,
        heartbeat_interval: float = 15.0,
    ) -> None:
        self.db = db
        self.run_id = run_id
        self.hook_wait = 0.25
        self.background_wait = 2.0
        self.on_reset = on_reset
        self._keys = KeyCache()
        # Counters of operations queued and done (written or refused), so the
        # training thread can wait, bounded, for a background flush (servers).
        self._queued_total = 0
        self._done_total = 0
        self._done = threading.Condition()
        self._identity: tuple[int, int] | None = None
        self.heartbeat_interval = heartbeat_interval
        self._last_heartbeat = 0.0
        self.max_pending = max_pending
        self.dropped_batches = 0
        self.url = resolve_url(db)
        self._server = sqlite_path(self.url) is None and not self.url.startswith("sqlite")
        self.flush_every = flush_every
        self.flush_interval = flush_interval
        self.strict = strict
        self._engine: Engine | None = None
        self._ops: deque[Any] = deque()
        self._wake_at = flush_every  # wake the flusher when this many records are queued
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._pending_error: BaseException | None = None
        self.dropped_ops = 0
        #: CPU seconds the background flusher has used (time.thread_time), for benchmarks.
        self.thread_cpu = 0.0
        self._healthy = True  # the last flush succeeded (or none failed yet)
        self._unsaved = False  # something was committed since the last checkpoint
        _live_writers.add(self)

    # -- the callback's side -------------------------------------------------

    def submit(self, op: Op) -> None:
        """Queue an operation that runs inside the next flush's transaction."""
        self._ops.append(op)
        self._queued_total += 1

    def add_batch(self, record: BatchRecord) -> None:
        """Queue one batch record (the per-batch path: an append and a counter).

        When the queue is full: if the database is writable and only slower
        than the feed, write now on this thread (back-pressure, nothing lost);
        if writes are failing, drop the record and count it (memory stays
        bounded; the count is reported at the end of the run).
        """
        if len(self._ops) >= self.max_pending:
            if self._healthy:
                self.flush(wait=self.background_wait)
            if len(self._ops) >= self.max_pending:
                self.dropped_batches += 1
                return
        self._ops.append(record)
        self._queued_total += 1
        if self._queued_total >= self._wake_at:
            self._wake_at = self._queued_total + self.flush_every
            self._wake.set()

    def wake(self) -> None:
        """Ask the background flusher to write now."""
        self._wake.set()

    def wake_soon(self) -> None:
        """Ask the background flusher to write at the next batch record (or within ``flush_interval``).

        For the training thread's Python-bound moments (train begin, epoch
        end): the flusher then runs while the next step computes, instead of
        competing with the hooks for the interpreter.
        """
        self._wake_at = min(self._wake_at, self._queued_total + 1)

    @property
    def pending(self) -> int:
        """Operations queued and not yet written."""
        return len(self._ops)

    def open(self) -> Engine:
        """Open (and migrate) the database now; raise DatabaseError on failure."""
        if self._engine is None:
            from tracker.db.migrate import open_database

            self._engine, self.url = open_database(self.db)
            self._identity = self._file_identity()
            self._keys = KeyCache()
        return self._engine

    # -- flushing ------------------------------------------------------------

    def _file_identity(self) -> tuple[int, int] | None:
        path = sqlite_path(self.url)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return (-1, -1)
        return (st.st_dev, st.st_ino)

    def _check_file(self) -> None:
        """Notice a database file deleted (or replaced) under a running job."""
        if self._engine is None or self._identity is None:
            return
        identity = self._file_identity()
        if identity == self._identity:
            return
        where = describe(self.url)
        message = (
            f"tracker: {where} was deleted or replaced during the run; writing the rest of this run "
            "into a new file at the same path (what was written before is gone with the old file)."
        )
        logger.warning(message)
        if self.strict:
            raise TrackingWriteError(message)
        warnings.warn(message, TrackingWarning, stacklevel=4)
        self._engine.dispose()
        self._engine = None
        self._identity = None
        if self.on_reset is not None:
            rebuilt = self.on_reset()
            self._ops.extendleft(reversed(rebuilt))
            self._queued_total += len(rebuilt)

    def flush(self, *, wait: float | None = None) -> bool:
        """Write every queued operation in order. Return True if all were written.

        Args:
            wait: Seconds to wait for another writer's lock before giving up
                (the records stay queued for the next flush). Default: short
                (``hook_wait``, 0.25 s) on the training thread, longer
                (``background_wait``, 2 s) in the background flusher, so a
                locked database never stalls training.

        Raises:
            TrackingWriteError: in strict mode, when the write fails.
        """
        self.raise_pending()
        if wait is None:
            wait = self.background_wait if threading.current_thread() is self._thread else self.hook_wait
        # Another flush in progress (the background one) must not stall the
        # training thread: the records stay queued and the flusher is woken.
        on_training_thread = threading.current_thread() is not self._thread
        if on_training_thread and self._server and self._thread is not None and self._thread.is_alive():
            return self._flush_in_background(wait)
        if not self._flush_lock.acquire(timeout=min(wait, 0.05) if on_training_thread and wait < 1 else wait):
            self._wake.set()
            return False
        try:
            return self._flush_locked(wait)
        finally:
            self._flush_lock.release()

    def _flush_in_background(self, wait: float) -> bool:
        """A server's round trips can be slow: let the flusher write, and wait at most ``wait``."""
        target = self._queued_total
        with self._done:
            self._wake.set()
            return self._done.wait_for(lambda: self._done_total >= target, timeout=wait)

    def _mark_done(self, count: int) -> None:
        with self._done:
            self._done_total += count
            self._done.notify_all()

    def _flush_locked(self, wait: float) -> bool:
        self._check_file()
        count = len(self._ops)
        now = time.monotonic()
        heartbeat_due = now - self._last_heartbeat >= self.heartbeat_interval
        # A flush writes the heartbeat too, but at most once a second: an
        # UPDATE of the run row in every flush costs more than its batches.
        beat = now - self._last_heartbeat >= min(1.0, self.heartbeat_interval)
        if count == 0 and not (heartbeat_due and self._thread is not None):
            return True
        items = [self._ops.popleft() for _ in range(count)]
        assigned: list[Any] = []
        try:
            engine = self.open()
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                if engine.dialect.name == "sqlite" and raw is not None:
                    # Outside SQLAlchemy's transaction: how long this flush waits for a lock.
                    raw.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    if engine.dialect.name == "postgresql":
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(wait * 1000)}ms'")
                    self._apply(conn, items, assigned)
                    if beat:
                        touch_heartbeat(conn, self.run_id, utcnow())
            self._keys.commit()
            self._unsaved = True
            if beat:
                self._last_heartbeat = now
            self._healthy = True
            self._mark_done(count)
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            self._keys.rollback()
            self._healthy = False
            for phase in assigned:
                phase.id = None
            retry = retryable(exc)
            if retry:
                self._ops.extendleft(reversed(items))
            else:
                self.dropped_ops += len(items)
                self._mark_done(len(items))
            self._report(exc, len(items), retry)
            return False
        return True

    def _apply(self, conn: Connection, items: list[Any], assigned: list[Any]) -> None:
        group: list[BatchRecord] = []
        for item in items:
            if type(item) is BatchRecord:
                group.append(item)
                continue
            if group:
                write_batches(conn, self._keys, group)
                group = []
            apply(conn, self._keys, item)
            if type(item) is InsertPhase:
                assigned.append(item.phase)
        if group:
            write_batches(conn, self._keys, group)

    def _report(self, exc: BaseException, count: int, retry: bool) -> None:
        reason, message = failure_message(exc, count, describe(self.url), retry)
        logger.warning(message)
        if self.strict:
            error = TrackingWriteError(message)
            error.__cause__ = exc
            if threading.current_thread() is self._thread:
                self._pending_error = error
                return
            raise error
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(message, TrackingWarning, stacklevel=4)

    def raise_pending(self) -> None:
        """Raise, on the caller's thread, a strict-mode error from the flusher."""
        error, self._pending_error = self._pending_error, None
        if error is not None:
            raise error

    # -- background flusher --------------------------------------------------

    def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = False
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="tracker-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background flusher and wait for it."""
        thread = self._thread
        if thread is None:
            return
        self._stop = True
        self._wake.set()
        if thread is not threading.current_thread():
            thread.join(timeout=self.background_wait + 1.0)
        self._thread = None

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop:
                return
            started = time.thread_time()
            try:
                self.flush()
            except Exception:  # pragma: no cover - flush reports its own errors
                logger.exception("tracker: background flush failed")
            self.thread_cpu += time.thread_time() - started
            time.sleep(0)

    def unwritten(self) -> str | None:
        """Describe what could not be written so far, or None if nothing."""
        parts = []
        if self._ops:
            parts.append(f"{len(self._ops)} operations are still in memory")
        if self.dropped_batches:
            parts.append(f"{self.dropped_batches} batch records were dropped (memory bound)")
        if self.dropped_ops:
            parts.append(f"{self.dropped_ops} records were refused by the database")
        if not parts:
            return None
        return f"tracker: {'; '.join(parts)} for {describe(self.url)}."

    def checkpoint(self, *, wait: float = 2.0) -> bool:
        """SQLite: copy the records from the write-ahead log into the database file (``checkpoint_wal``).

        Called when a run's outermost phase ends and when the writer closes,
        never per batch or per flush. Returns True if the file now holds
        everything written (also when there is nothing to do).
        """
        if not self._unsaved or self._engine is None:
            return True
        self._unsaved = not checkpoint_wal(self._engine, wait=wait)
        return not self._unsaved

    def close(self) -> bool:
        """Stop the flusher, write what is left and checkpoint. Return True if nothing is left."""
        self.stop()
        written = True
        if self._ops:
            try:
                written = self.flush(wait=10.0)
            except TrackingWriteError:
                written = False
        self.checkpoint()
        return written
