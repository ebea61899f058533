"""Storage faults never stop training; concurrent writers lose nothing."""

import contextlib
import os
import sqlite3
import warnings
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from conftest import guide_data, guide_model
from sqlalchemy import event

import tracker
from tracker import Store, TrackingCallback, TrackingWriteError
from tracker.db.migrate import open_database

SCRIPT = Path(__file__).resolve().parent / "scripts" / "train_forever.py"


@contextlib.contextmanager
def tracking_warnings():
    """Record every TrackingWarning (from any thread) as a list of messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
    messages.extend(str(w.message) for w in caught if issubclass(w.category, tracker.TrackingWarning))


def fit(cb, epochs=3, extra=(), n=64):
    x, y = guide_data(n=n)
    return guide_model().fit(x, y, batch_size=16, epochs=epochs, callbacks=[cb, *extra], verbose=0)


def test_a_read_only_database_warns_and_training_completes(tmp_path):
    path = tmp_path / "ro.db"
    open_database(str(path))
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    cb = TrackingCallback(url)
    with tracking_warnings() as messages:
        history = fit(cb)
    assert len(history.history["loss"]) == 3
    assert any("readonly" in m and "keeping" in m for m in messages), messages
    assert "operations are still in memory" in messages[-1]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_strict_mode_turns_a_write_failure_into_an_exception(tmp_path):
    path = tmp_path / "ro.db"
    open_database(str(path))
    cb = TrackingCallback(f"sqlite:///file:{path}?mode=ro&uri=true", strict=True)
    with pytest.raises(TrackingWriteError, match="readonly"):
        fit(cb)


def _limit_pages(engine, pages):
    def limit(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", limit)
    engine.dispose()
    return limit


def test_a_full_disk_keeps_rows_in_memory_and_writes_them_once_there_is_room(tmp_path):
    path = tmp_path / "full.db"
    cb = TrackingCallback(str(path), flush_interval=0.05)
    engine = cb._writer.open()
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")  # the migrations leave free pages; a full disk has none
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    limit = _limit_pages(engine, pages)  # not one more page: the disk is "full"
    with tracking_warnings() as messages:
        history = fit(cb, epochs=3, n=2048)  # 128 batches an epoch: the rows need new pages
    assert any("full" in m for m in messages), messages
    assert len(history.history["loss"]) == 3 and cb.pending > 0
    event.remove(engine, "connect", limit)
    engine.dispose()  # room again
    cb.close()
    assert cb.pending == 0
    store = Store(str(path))
    assert list(store.epochs(cb.run_id)["loss"]) == history.history["loss"]
    assert len(store.batches(cb.run_id)) == 3 * 128 and store.runs()["status"].tolist() == ["finished"]


def test_a_write_lock_held_by_another_process_does_not_stall_training(tmp_path):
    path = tmp_path / "locked.db"
    cb = TrackingCallback(str(path))
    locker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(25)\n"
            "c.execute('COMMIT')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        with tracking_warnings() as messages:
            history = fit(cb, epochs=3)
        assert any("locked" in m for m in messages), messages
        assert locker.poll() is None, "training waited for the other process's lock"
    finally:
        locker.kill()
        locker.wait()
        locker.stdout.close()
    assert len(history.history["loss"]) == 3
    cb.close()  # the lock is gone: everything is written now
    assert cb.pending == 0
    assert list(Store(str(path)).epochs(cb.run_id)["loss"]) == history.history["loss"]


class DeleteTheFile(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def test_a_database_deleted_during_the_run_is_recreated_and_training_completes(tmp_path):
    path = tmp_path / "deleted.db"
    cb = TrackingCallback(str(path))
    with tracking_warnings() as messages:
        history = fit(cb, epochs=4, extra=[DeleteTheFile(path)])
    assert any("deleted or replaced" in m for m in messages), messages
    assert len(history.history["loss"]) == 4
    store = Store(str(path))
    runs = store.runs()
    assert list(runs["run_id"]) == [cb.run_id] and runs.loc[0, "status"] == "finished"
    epochs = store.epochs(cb.run_id)
    # Epoch 0 went with the deleted file. Epoch 1 is written once every
    # callback's on_epoch_end has run, after the file vanished: it is kept.
    assert list(epochs["epoch"]) == [1, 2, 3]
    assert list(epochs["loss"]) == history.history["loss"][1:]


def test_four_processes_write_one_file_at_once_without_errors_or_lost_rows(tmp_path):
    path = tmp_path / "shared.db"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="always")
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), str(path), f"writer-{i}", "--epochs", "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(4)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0 and "DONE" in out, err[-2000:]
        assert "tracker:" not in err and "TrackingWarning" not in err, err[-2000:]
    store = Store(str(path))
    runs = store.runs()
    assert sorted(runs["name"]) == [f"writer-{i}" for i in range(4)]
    assert set(runs["status"]) == {"finished"}
    for run_id in runs["run_id"]:
        assert list(store.epochs(run_id)["epoch"]) == [0, 1, 2, 3]
        assert len(store.batches(run_id)) == 4 * 16
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


class MutateLaterEpochLogs(keras.callbacks.Callback):
    """Test-only: keeps each epoch's logs and changes them after the epoch is over
    (at the next epoch's begin), as a careless user callback might."""

    def __init__(self):
        super().__init__()
        self.kept = None

    def on_epoch_end(self, epoch, logs=None):
        self.kept = logs

    def on_epoch_begin(self, epoch, logs=None):
        if self.kept is not None:
            self.kept["leaked_after_the_epoch"] = 1.0
            self.kept["loss"] = -1.0


def test_epoch_logs_are_copied_when_the_epoch_ends_even_if_the_write_is_delayed(tmp_path):
    """Issue 9: with the write held back by another process's lock, a change to the
    logs dict after the epoch must not leak into the stored epoch."""
    path = tmp_path / "delayed.db"
    cb = TrackingCallback(str(path))
    locker = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, time\n"
         f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE')\n"
         "print('locked', flush=True)\n"
         "time.sleep(25)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        with tracking_warnings():
            history = fit(cb, epochs=3, extra=[MutateLaterEpochLogs()])
        assert cb.pending > 0  # nothing could be written while the lock was held
    finally:
        locker.kill()
        locker.wait()
        locker.stdout.close()
    cb.close()
    stored = Store(str(path)).epochs(cb.run_id)
    assert "leaked_after_the_epoch" not in stored.columns
    assert list(stored["loss"]) == history.history["loss"]
