"""The database file alone holds every ended run: a copy of just that file has it.

SQLite in WAL mode keeps new records in ``FILE-wal`` until a checkpoint
copies them into the file. Copying or mailing only the ``.db`` file is the
natural thing to do with "one SQLite file", so the tracker checkpoints when a
run's outermost phase ends and when its writer closes, and readers (``Store``,
``tracker ui``) never keep a snapshot open that would stop the checkpoint.

Ground truth: Keras' ``History`` and plain ``sqlite3`` reading a copy of the
main file only (no ``-wal``) in another folder.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import keras
import pytest
from conftest import guide_data, guide_model

from tracker import Store, TrackingCallback
from tracker.cli import main

# A reader in another process, as ``tracker ui`` is with a browser on it:
# through ``tracker.Store``, it polls the runs and their epochs (a dashboard
# polls every second or so; this one faster) until its stdin closes.
POLLER = textwrap.dedent(
    """
    import sys, threading, time
    from tracker import Store
    store = Store(sys.argv[1])
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    polls = 0
    while not stop.is_set():
        for run_id in store.runs()["run_id"]:
            store.epochs(run_id)
        polls += 1
        if polls == 1:
            print("polling", flush=True)
        stop.wait(0.02)
    print(polls, flush=True)
    """
)


def copy_of_file_alone(path, folder):
    """Copy only the main database file (never its -wal or -shm) into ``folder``."""
    folder.mkdir()
    target = folder / "copy.db"
    shutil.copyfile(path, target)
    return str(target)


def epoch_logs_in(path, run_id):
    """``{epoch: {key: value}}`` of a run's fit, read with plain sqlite3 (float values only)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT e.epoch, k.name, v.value FROM epochs e JOIN phases p ON p.id = e.phase_id "
            "JOIN epoch_values v ON v.epoch_id = e.id JOIN keys k ON k.id = v.key_id "
            "WHERE p.run_id = ? AND p.kind = 'fit'",
            (run_id,),
        ).fetchall()
    finally:
        conn.close()
    out: dict[int, dict[str, float]] = {}
    for epoch, name, value in rows:
        out.setdefault(epoch, {})[name] = value
    return out


def phases_in(path, run_id):
    """``[(kind, status)]`` of a run's calls (validation passes left out), read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT kind, status FROM phases WHERE run_id = ? AND kind != 'validation' ORDER BY seq", (run_id,)
        ).fetchall()
    finally:
        conn.close()


class StoreReader(keras.callbacks.Callback):
    """Reads the database through ``tracker.Store`` at every epoch end (a reader in this process)."""

    def __init__(self, store):
        super().__init__()
        self.store = store
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(len(self.store.runs()))


@pytest.mark.parametrize("reader", ["polling process", "store in this process"])
def test_a_copy_of_the_database_file_alone_holds_the_ended_fit(tmp_path, reader):
    path = str(tmp_path / "runs.db")
    x, y = guide_data(96)
    model = guide_model()
    cb = TrackingCallback(path, run_name="copied")  # creates the file
    callbacks = [cb]
    poller = None
    if reader == "polling process":
        poller = subprocess.Popen([sys.executable, "-c", POLLER, path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert poller.stdout.readline().strip() == "polling"
    else:
        store_reader = StoreReader(Store(path))
        callbacks.append(store_reader)
    try:
        history = model.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0, callbacks=callbacks)
        copy = copy_of_file_alone(path, tmp_path / "mailed")
        model.evaluate(x, y, batch_size=32, verbose=0, callbacks=[cb])
        copy_after_evaluate = copy_of_file_alone(path, tmp_path / "mailed-again")
    finally:
        if poller is not None:
            out, _ = poller.communicate("", timeout=60)
            assert int(out.strip()) >= 1
    if reader == "store in this process":
        assert store_reader.seen == [1, 1, 1]

    stored = epoch_logs_in(copy, cb.run_id)
    assert sorted(stored) == list(range(3))
    for epoch in range(3):
        truth = {key: values[epoch] for key, values in history.history.items()}
        assert stored[epoch] == truth
    assert phases_in(copy, cb.run_id) == [("fit", "finished")]
    assert phases_in(copy_after_evaluate, cb.run_id) == [("fit", "finished"), ("evaluate", "finished")]
    batches = sqlite3.connect(copy).execute("SELECT count(*) FROM batches").fetchone()[0]
    assert batches == 3 * math.ceil(72 / 16) + 3 * math.ceil(24 / 16)  # train steps, validation steps


def test_tracker_demo_leaves_every_run_in_the_database_file(tmp_path):
    from click.testing import CliRunner

    path = str(tmp_path / "tracker.db")
    result = CliRunner().invoke(main, ["--db", path, "demo", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    copy = copy_of_file_alone(path, tmp_path / "mailed")

    def everything(db):
        conn = sqlite3.connect(db)
        try:
            return {
                "runs": conn.execute("SELECT id, name, status, epoch_count FROM runs ORDER BY name").fetchall(),
                "phases": conn.execute("SELECT run_id, seq, kind, status FROM phases ORDER BY run_id, seq").fetchall(),
                "epochs": conn.execute("SELECT count(*) FROM epoch_values").fetchone(),
                "batches": conn.execute("SELECT count(*) FROM batches").fetchone(),
            }
        finally:
            conn.close()

    # The original, read with its log if any, is the truth the lone file must hold.
    original, copied = everything(path), everything(copy)
    assert [(name, status) for _, name, status, _ in copied["runs"]] == [
        ("demo-early-stopping", "finished"), ("demo-lr-schedule", "finished")
    ]
    assert copied == original


def test_a_copy_of_the_file_alone_holds_what_db_copy_and_db_upgrade_wrote(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from tracker.db.migrate import head_revision

    x, y = guide_data(64)
    source = str(tmp_path / "source.db")
    cb = TrackingCallback(source, run_name="moved")
    history = guide_model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb])
    copied_to = str(tmp_path / "destination.db")
    result = CliRunner().invoke(main, ["db", "copy", "--from", source, "--to", copied_to])
    assert result.exit_code == 0, result.output
    mailed = copy_of_file_alone(copied_to, tmp_path / "mailed")
    stored = epoch_logs_in(mailed, cb.run_id)
    assert stored == {e: {k: v[e] for k, v in history.history.items()} for e in range(2)}

    old = tmp_path / "old.db"
    old.write_bytes((Path(__file__).parent / "data" / "rev0005.db").read_bytes())
    result = CliRunner().invoke(main, ["--db", str(old), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{old} upgraded from schema revision 0005 to {head_revision()} (head).\n"
    upgraded = copy_of_file_alone(str(old), tmp_path / "mailed-upgraded")
    conn = sqlite3.connect(upgraded)
    try:
        assert conn.execute("SELECT version_num FROM tracker_schema_version").fetchall() == [(head_revision(),)]
    finally:
        conn.close()
