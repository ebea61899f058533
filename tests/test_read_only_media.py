"""A database on read-only media is read, and never changed.

A folder SQLite cannot write (a read-only mount, a CD, a folder shared
without write permission) stops it from creating the ``-shm`` index it reads
a WAL database through. The readers (``Store``, the CLI) then open the file
as it is (``immutable=1``) when no write-ahead log holds records, read the
log through an index left beside it, and otherwise say in one sentence what
to do.

The tests run as root, for whom ``chmod`` does not stop writes, so the
read-only folder is a real read-only bind mount of a folder under
``tmp_path``. Ground truth: Keras' ``History``, plain ``sqlite3`` writes, and
the files' bytes before and after.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model

from tracker import Store, TrackingCallback
from tracker.cli import main
from tracker.errors import DatabaseError


@pytest.fixture
def read_only_view(tmp_path):
    """``(folder, view)``: ``view`` shows ``folder`` through a read-only bind mount (unmounted at the end)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only view needs root (the CI runs as root)")
    folder, view = tmp_path / "media", tmp_path / "view"
    folder.mkdir()
    view.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(view)], check=True)
    try:
        probe = view / "probe"
        with pytest.raises(OSError):
            probe.write_bytes(b"")
        yield folder, view
    finally:
        from tracker.db.engine import dispose_engines

        dispose_engines()  # close the files under the mount before unmounting it
        subprocess.run(["umount", str(view)], check=True)


def fingerprint(folder):
    """Every file of ``folder`` with the SHA-256 of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def tracked_fit(path, epochs=3):
    x, y = guide_data(64)
    cb = TrackingCallback(path, run_name="on-media")
    history = guide_model().fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=[cb])
    from tracker.db.engine import dispose_engines

    dispose_engines()  # the writer's connections close, as at the end of its process
    return cb.run_id, history.history


def test_a_database_on_a_read_only_mount_is_read_by_store_and_cli_and_left_byte_for_byte(read_only_view):
    folder, view = read_only_view
    run_id, history = tracked_fit(str(folder / "runs.db"))
    assert sorted(p.name for p in folder.iterdir()) == ["runs.db"]
    before = fingerprint(view)

    epochs = Store(str(view / "runs.db")).epochs(run_id)
    for key, values in history.items():
        assert list(epochs[key]) == values
    result = CliRunner().invoke(main, ["--db", str(view / "runs.db"), "runs", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert run_id in result.output and "finished" in result.output
    result = CliRunner().invoke(main, ["--db", str(view / "runs.db"), "show", run_id[:8]])
    assert result.exit_code == 0, result.output
    assert "on-media" in result.output
    for command in (["db", "current"], ["db", "check"]):
        result = CliRunner().invoke(main, ["--db", str(view / "runs.db"), *command])
        assert result.exit_code == 0, result.output
    assert fingerprint(view) == before


# A writer that dies with a transaction in the write-ahead log (plain sqlite3,
# no tracker): it renames the run and exits without closing, leaving -wal and -shm.
DIES_AFTER_WRITING = textwrap.dedent(
    """
    import os, sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("UPDATE runs SET name = 'renamed in the log'")
    os._exit(0)
    """
)


def test_a_log_left_behind_is_read_through_its_index_and_without_it_refused_in_one_sentence(read_only_view):
    folder, view = read_only_view
    run_id, _ = tracked_fit(str(folder / "runs.db"), epochs=1)
    subprocess.run([sys.executable, "-c", DIES_AFTER_WRITING, str(folder / "runs.db")], check=True)
    assert os.path.getsize(folder / "runs.db-wal") > 0 and (folder / "runs.db-shm").exists()
    before = fingerprint(view)

    runs = Store(str(view / "runs.db")).runs()
    assert list(runs["name"]) == ["renamed in the log"]
    assert fingerprint(view) == before

    from tracker.db.engine import dispose_engines

    dispose_engines()
    os.remove(folder / "runs.db-shm")
    with pytest.raises(DatabaseError, match=r"^Cannot read .*runs\.db-wal without runs\.db-shm.*read-only") as caught:
        Store(str(view / "runs.db"))
    assert "\n" not in str(caught.value)
    result = CliRunner().invoke(main, ["--db", str(view / "runs.db"), "runs"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Cannot read ") and "Traceback" not in result.output
    assert sorted(p.name for p in view.iterdir()) == ["runs.db", "runs.db-wal"]


def test_a_read_only_copy_of_a_database_with_an_emptied_log_is_read(read_only_view, tmp_path):
    # The files a run leaves while a reader stays open: the file, an empty -wal and the -shm.
    folder, view = read_only_view
    run_id, history = tracked_fit(str(tmp_path / "runs.db"), epochs=2)
    reader = Store(str(tmp_path / "runs.db"))
    assert len(reader.runs()) == 1
    for name in os.listdir(tmp_path):
        if name.startswith("runs.db"):
            shutil.copyfile(tmp_path / name, folder / name)
    assert os.path.getsize(folder / "runs.db-wal") == 0
    before = fingerprint(view)
    epochs = Store(str(view / "runs.db")).epochs(run_id)
    assert list(epochs["loss"]) == history["loss"]
    assert fingerprint(view) == before
