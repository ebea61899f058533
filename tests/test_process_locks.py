"""SQLite's locks are per process: opening and closing the database file with Python's ``open()``
drops every lock the process holds on it. The tracker must never do that while its own writer
has the file open, or another process's closing connection takes the file for its last user
and deletes the write-ahead log under the live writer (its records then reach a deleted file)."""

import os
import sqlite3
import subprocess
import sys

import keras
from conftest import guide_data, guide_model

import tracker
from tracker import TrackingCallback

OTHER_PROCESS_READS = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1])\n"  # read-write, as any tool opens a file; closing it ends its use
    "print(conn.execute('SELECT count(*) FROM epochs').fetchone()[0])\n"
    "conn.close()\n"
)


def other_process_count(db) -> int:
    done = subprocess.run([sys.executable, "-c", OTHER_PROCESS_READS, str(db)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout)


class ReadInTheWritersProcess(keras.callbacks.Callback):
    """At the first epoch end: a Store and a second tracker open the database in this process,
    then another process reads it and closes; the write-ahead log must survive."""

    def __init__(self, db):
        super().__init__()
        self.db = db
        self.files = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            tracker.Store(str(self.db)).runs()
            TrackingCallback(str(self.db), run_name="second").close()
            other_process_count(self.db)
            self.files = sorted(os.listdir(self.db.parent))


def test_reading_in_the_writers_process_never_lets_another_process_delete_the_live_log(tmp_path):
    db = tmp_path / "runs.db"
    x, y = guide_data(n=64)
    meddler = ReadInTheWritersProcess(db)
    model = guide_model()
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0,
                        callbacks=[TrackingCallback(str(db), run_name="locked"), meddler])
    assert "runs.db-wal" in meddler.files and "runs.db-shm" in meddler.files, meddler.files
    # Every epoch is in the file as another process reads it, with the values History holds.
    assert other_process_count(db) == 3
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        losses = [r[0] for r in conn.execute(
            "SELECT v.value FROM epoch_values v JOIN keys k ON k.id = v.key_id JOIN epochs e ON e.id = v.epoch_id "
            "WHERE k.name = 'loss' ORDER BY e.epoch")]
    assert losses == history.history["loss"]
