"""Crashes, preemption and resume: real processes killed with SIGKILL."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import BACKENDS, bits, fresh_db, sql

from tracker import Store
from tracker.store.liveness import effective_status

SCRIPT = Path(__file__).resolve().parent / "scripts" / "train_forever.py"


def start(db, name, *extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(db), name, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def count(db, table):
    if "://" in str(db):
        return sql(db, f"SELECT count(*) FROM {table}")[0][0]
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created yet


def wait_for(db, table, at_least, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the job ended early: {proc.stderr.read()[-2000:]}")
        n = count(db, table)
        if n >= at_least:
            return n
        time.sleep(0.05)
    raise AssertionError(f"{table} never reached {at_least} rows")


# Kill points: after N epochs, or after N batches in the middle of an epoch.
KILL_POINTS = [("epochs", 1), ("batches", 40), ("epochs", 3), ("batches", 150), ("epochs", 5)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_at_five_points_leaves_crashed_runs_with_nothing_flushed_lost(request, tmp_path, backend):
    jobs = []
    for i, (table, n) in enumerate(KILL_POINTS):
        db = fresh_db(request, tmp_path, backend, name=f"kill{i}.db")
        jobs.append((db, table, n, start(db, f"killed-{i}")))
    seen = []
    for db, table, n, proc in jobs:
        wait_for(db, table, n, proc)
        before = {t: count(db, t) for t in ("epochs", "batches", "epoch_values")}
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        seen.append((db, before))
    for db, before in seen:
        store = Store(str(db))
        runs = store.runs()
        assert list(runs["status"]) == ["crashed"], runs
        after = {t: count(db, t) for t in before}
        assert all(after[t] >= before[t] for t in before), (before, after)  # nothing flushed was lost
        if backend == "sqlite":
            with sqlite3.connect(db) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert len(store.epochs("latest")) == after["epochs"]
        assert store.run("latest")["run"]["status"] == "crashed"
        assert list(store.runs(status="crashed")["run_id"]) == list(runs["run_id"])
        assert store.runs(status="running").empty


def test_a_preempted_job_resumed_with_backup_and_restore_continues_the_same_run(db, tmp_path):
    backup = tmp_path / "backup"
    first = start(db, "preempted", "--backup", str(backup), "--epochs", "8")
    wait_for(db, "epochs", 4, first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    before = Store(str(db)).epochs("preempted", attempts=True)
    assert Store(str(db)).runs()["status"].tolist() == ["crashed"]

    second = start(db, "preempted", "--backup", str(backup), "--epochs", "8", "--resume")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0 and "DONE" in out, err[-2000:]

    store = Store(str(db))
    runs = store.runs()
    assert len(runs) == 1 and runs.loc[0, "status"] == "finished" and runs.loc[0, "phases"] == 2
    epochs = store.epochs("preempted")
    assert list(epochs["epoch"]) == list(range(8))  # each epoch once
    initial = dict(sql(db, "SELECT seq, initial_epoch FROM phases WHERE kind = 'fit'"))
    resumed_seq = max(initial)
    backup_point = initial[resumed_seq]
    assert initial[0] == 0 and 0 < backup_point <= len(before)
    # The epochs the first job finished after the backup point were re-done by the second.
    first_attempts = set(before["epoch"])
    redone = set(epochs[epochs["redone"]]["epoch"])
    assert redone == {e for e in first_attempts if e >= backup_point}
    assert list(epochs["phase_seq"]) == [0] * backup_point + [resumed_seq] * (8 - backup_point)
    every = store.epochs("preempted", attempts=True)
    assert set(every[every["superseded"]]["epoch"]) == redone
    assert len(every) == 8 + len(redone)
    shown = store.run("preempted")["phases"]
    assert list(shown["initial_epoch"]) == [0, backup_point]
    from tracker.reports import compare_runs

    assert compare_runs(store, ["preempted"]).loc[0, "resumed_at_epoch"] == backup_point


def test_resume_true_without_an_unfinished_run_starts_a_new_one(db):
    from conftest import guide_data, guide_model

    from tracker import TrackingCallback

    x, y = guide_data(n=32)
    first = TrackingCallback(db, run_name="job")
    guide_model().fit(x, y, epochs=1, callbacks=[first], verbose=0)
    again = TrackingCallback(db, run_name="job", resume=True)  # the first one finished
    assert again.run_id != first.run_id
    with pytest.raises(ValueError, match="resume=True needs a run_name"):
        TrackingCallback(db, resume=True)
    from tracker import UnknownRunError

    with pytest.raises(UnknownRunError, match="Cannot resume run 'nope'"):
        TrackingCallback(db, resume="nope")


def test_heartbeat_decides_for_runs_on_other_hosts():
    now = datetime.now(timezone.utc)
    old, fresh = now - timedelta(minutes=10), now - timedelta(seconds=5)
    assert effective_status("running", "elsewhere", 123, old, old) == "crashed"
    assert effective_status("running", "elsewhere", 123, old, fresh) == "running"
    assert effective_status("running", "elsewhere", 123, old, fresh, timeout=1) == "crashed"
    assert effective_status("finished", "elsewhere", 123, old, old) == "finished"
    import socket

    here = socket.gethostname()
    assert effective_status("running", here, os.getpid(), now, old) == "running"  # this very process
    # A pid that started after the run did is a reused pid: the run's process is gone.
    long_ago = now - timedelta(days=30)  # before this test process started, however long the suite runs
    assert effective_status("running", here, os.getpid(), long_ago, long_ago) == "crashed"


def test_a_zombie_process_counts_as_dead_so_its_run_shows_crashed(tmp_path):
    """Issue 9: a process that exited but was not reaped (a zombie) still has a pid;
    its run must read as crashed, not running."""
    import socket

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until it has exited, without reaping it
        with open(f"/proc/{child.pid}/stat", encoding="ascii") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    try:
        started = datetime.now(timezone.utc)  # after the child started: not a reused pid
        assert effective_status("running", socket.gethostname(), child.pid, started, started) == "crashed"
        os.kill(child.pid, 0)  # the pid still exists: only its state tells it is dead
    finally:
        child.wait()


class _BigWeights:
    """Test-only: a stand-in with over 1 MiB of weights (what matters here is the helper thread, not Keras)."""

    def get_weights(self):
        return [np.ones((600, 600), "float32")]


def _child_fingerprint(queue):
    from tracker.record.fingerprint import fingerprint_later

    queue.put(fingerprint_later(_BigWeights()).result())


def test_a_forked_child_hashes_big_weights_too():
    """After a fork the helper thread is gone; the child must not wait forever for it."""
    import multiprocessing

    from tracker.record.fingerprint import fingerprint_arrays, fingerprint_later

    expected = fingerprint_arrays(_BigWeights().get_weights())
    assert fingerprint_later(_BigWeights()).result() == expected  # the parent's pool thread now exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_fingerprint, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=30) == expected
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()


def seen_by_nobody(db, pid):
    """As the user nobody sees them: the statuses of the runs, what ``os.kill(pid, 0)`` did, and the
    status of a run that started long before ``pid`` did (so ``pid`` is a reused one).

    A forked child of this process drops to nobody (the interpreter lives under /root, which nobody
    may not read, so nothing is imported after the drop: the parent reads the same way first).
    """
    import json

    from tracker.db.engine import dispose_engines

    Store(str(db)).runs()  # imports everything the child needs
    dispose_engines()  # no pooled connection is shared with the child
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.close(read)
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                os.kill(pid, 0)
                signal_result = "delivered"
            except PermissionError:
                signal_result = "refused"
            except ProcessLookupError:
                signal_result = "no such process"
            from tracker.db.engine import host_name

            long_ago = datetime.now(timezone.utc) - timedelta(days=30)  # a run older than the process: reused pid
            reused = effective_status("running", host_name(), pid, long_ago, long_ago)
            out = json.dumps([list(Store(str(db)).runs()["status"]), signal_result, reused])
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            out = json.dumps(repr(exc))
        os.write(write, out.encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as fh:
        out = fh.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return tuple(json.loads(out))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_live_job_of_another_user_counts_as_running_not_crashed(request, backend):
    """A reader may not signal another user's process (os.kill raises PermissionError): the job is
    alive all the same. The reader is nobody; the job is this test's own (root's) process."""
    if os.geteuid() != 0:
        pytest.fail("this test reads as the user nobody, which needs root", pytrace=False)
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="trk-live-", dir="/tmp")  # tmp_path is private to root
    os.chmod(folder, 0o777)
    request.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    db = fresh_db(request, Path(folder), backend)
    job = start(db, "alive")
    try:
        wait_for(db, "epochs", 1, job)
        for name in os.listdir(folder):
            os.chmod(os.path.join(folder, name), 0o666)
        assert seen_by_nobody(db, job.pid) == (["running"], "refused", "crashed")
    finally:
        job.kill()
        job.wait(timeout=30)
        job.stdout.close()
        job.stderr.close()
    assert seen_by_nobody(db, job.pid) == (["crashed"], "no such process", "crashed")


@pytest.mark.parametrize("order", ["backup first", "tracker first"])
def test_a_job_killed_right_after_its_backup_has_every_epoch_the_backup_claims(db, tmp_path, order):
    """The worst moment: SIGKILL in on_epoch_end just after BackupAndRestore wrote the epoch's backup.
    The record must hold that epoch (it was written before the backup), and the resumed job each
    epoch once."""
    import json

    backup = tmp_path / "backup"
    extra = ["--tracker-last"] if order == "tracker first" else []
    first = start(db, "claimed", "--backup", str(backup), "--epochs", "5", "--die-at", "2", *extra)
    first.communicate(timeout=300)
    assert first.returncode == -signal.SIGKILL
    claimed = json.loads((backup / "training_metadata.json").read_text())["epoch"]  # Keras: epochs done
    assert claimed == 3
    assert list(Store(str(db)).epochs("claimed")["epoch"]) == list(range(claimed))

    second = start(db, "claimed", "--backup", str(backup), "--epochs", "5", "--resume", *extra)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0 and "DONE" in out, err[-2000:]
    epochs = Store(str(db)).epochs("claimed")
    assert list(epochs["epoch"]) == list(range(5)) and not epochs["redone"].any()


def test_an_epoch_written_at_a_backup_gets_the_keys_callbacks_after_the_backup_add(db, tmp_path):
    """ReduceLROnPlateau, listed after BackupAndRestore, adds learning_rate to the epoch logs after the
    epoch was written for the backup: the record is amended to what History holds."""
    from conftest import guide_data, guide_model

    from tracker import TrackingCallback

    x, y = guide_data(n=64)
    model = guide_model()
    callbacks = [keras.callbacks.BackupAndRestore(str(tmp_path / "backup")), TrackingCallback(db, run_name="amended"),
                 keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5)]
    history = model.fit(x, y, batch_size=16, epochs=3, callbacks=callbacks, verbose=0)
    store = Store(str(db))
    frame = store.epochs("amended")
    assert "learning_rate" in history.history
    for key, values in history.history.items():
        assert [bits(v) for v in frame[key]] == [bits(v) for v in values], key
    metrics = store.metrics("amended").set_index("key")
    assert metrics.loc["learning_rate", "final"] == history.history["learning_rate"][-1]
