"""Tracebacks that remained (issue 17, point 17): one sentence on stderr, exit status 1.

Real processes where it matters: ``tracker ui`` on a port in use, ``db
copy`` interrupted by a real SIGINT while it copies into the real
PostgreSQL server.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model, sql

import tracker
from tracker import Store, TrackingCallback
from tracker.cli import main
from tracker.errors import DatabaseError, InvalidArgumentError, UnsupportedDatabaseError

REPO = Path(__file__).resolve().parent.parent
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"


def tracker_cli(*args, timeout=120):
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def one_sentence(done, *fragments):
    """Exit status 1, one line on stderr holding ``fragments``, no traceback."""
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("errors") / "runs.db")
    assert CliRunner().invoke(main, ["--db", db, "db", "upgrade"]).exit_code == 0
    return db


def test_tracker_ui_on_a_port_in_use_is_one_sentence(empty_db):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        one_sentence(tracker_cli("--db", empty_db, "ui", "--port", str(taken.getsockname()[1])),
                     "in use", "--port")
    finally:
        taken.close()


def test_tracker_ui_on_a_host_that_does_not_resolve_is_one_sentence(empty_db):
    one_sentence(tracker_cli("--db", empty_db, "ui", "--host", "999.1.1.1", "--port", "0"), "999.1.1.1")


def test_report_into_a_missing_folder_is_one_sentence(tmp_path):
    db = str(tmp_path / "runs.db")
    x, y = guide_data(n=16)
    cb = TrackingCallback(db, run_name="r")
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    missing = tmp_path / "no" / "such" / "folder"
    one_sentence(tracker_cli("--db", db, "report", "r", "--out", str(missing / "r.html")), "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("suffix", ["csv", "png", "html"])
def test_a_file_that_cannot_be_written_is_one_sentence(suffix, tmp_path):
    from tracker.ui.report import write_report
    from tracker.views.export import export
    from tracker.views.plots import plot_runs

    db = str(tmp_path / "runs.db")
    x, y = guide_data(n=16)
    cb = TrackingCallback(db, run_name="r")
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    folder = tmp_path / f"out.{suffix}"
    folder.mkdir()  # the path is a folder: the write itself fails (root ignores permissions)
    write = {"csv": lambda: export(Store(db).runs(), folder), "png": lambda: plot_runs(Store(db), ["r"], folder),
             "html": lambda: write_report(db, ["r"], folder)}[suffix]
    with pytest.raises(InvalidArgumentError, match="^Cannot write .*out.* a directory.$"):
        write()
    assert list(folder.iterdir()) == []
    # Through the CLI: /proc takes no new files, whoever writes.
    args = {"csv": ["export", "runs"], "png": ["plot", "r"], "html": ["report", "r"]}[suffix]
    one_sentence(tracker_cli("--db", db, *args, "--out", f"/proc/tracker-test.{suffix}"), "Cannot write")


@pytest.mark.parametrize("command", [["db", "current"], ["db", "check"]])
def test_db_current_and_check_on_an_unreachable_server_or_a_fake_file_are_one_sentence(command, tmp_path):
    one_sentence(tracker_cli("--db", UNREACHABLE, *command), "Cannot use", "127.0.0.1:1")
    fake = tmp_path / "fake.db"
    fake.write_bytes(b"SQLite format 3\x00" + b"not really" * 100)
    one_sentence(tracker_cli("--db", str(fake), *command), "is not a SQLite database")


UNSUPPORTED = ["mysql://user@host/db", "oracle://user@host/db", "postgress://postgres@127.0.0.1/db"]
EVERY_COMMAND = [
    ["runs"], ["show", "latest"], ["epochs", "latest"], ["batches", "latest"], ["lr", "latest"],
    ["early-stops"], ["restores"], ["compare", "a", "b"], ["watch", "latest"],
    ["export", "runs", "--out", "{tmp}/r.csv"], ["plot", "latest", "--out", "{tmp}/p.png"],
    ["ui", "--port", "0"], ["report", "latest", "--out", "{tmp}/r.html"], ["demo", "--epochs", "1"],
    ["db", "upgrade"], ["db", "current"], ["db", "check"], ["db", "grant"],
]


@pytest.mark.parametrize("url", UNSUPPORTED)
def test_a_database_the_tracker_does_not_support_is_one_sentence_for_every_command(url, tmp_path, empty_db):
    commands = [["--db", url, *(a.format(tmp=tmp_path) for a in args)] for args in EVERY_COMMAND]
    commands += [["db", "copy", "--from", url, "--to", str(tmp_path / "x.db")],
                 ["db", "copy", "--from", empty_db, "--to", url]]
    for args in commands:
        done = CliRunner().invoke(main, args)
        assert done.exit_code == 1 and isinstance(done.exception, SystemExit), (args, done.output)
        lines = done.output.strip().splitlines()
        assert len(lines) == 1 and "SQLite file or a PostgreSQL database" in lines[0], (args, done.output)
        if url.startswith("postgress"):
            assert "did you mean postgresql?" in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing trained


@pytest.mark.parametrize("url", UNSUPPORTED)
def test_tracking_callback_and_autolog_refuse_an_unsupported_database_when_built(url):
    for make in (lambda: TrackingCallback(url, run_name="x"), lambda: tracker.autolog(url)):
        with pytest.raises(UnsupportedDatabaseError, match="SQLite file or a PostgreSQL database") as raised:
            make()  # no TrackingWarning either (the suite turns one into an error)
        assert isinstance(raised.value, ValueError) and isinstance(raised.value, DatabaseError)


RUNS = 4
BLOCKED = 2  # the index of the run whose copy waits on a lock the test holds


def test_db_copy_interrupted_by_ctrl_c_says_how_many_runs_it_copied_and_resumes(tmp_path, pg_server, request):
    source = str(tmp_path / "source.db")
    x, y = guide_data(n=32)
    for k in range(RUNS):
        cb = TrackingCallback(source, run_name=f"run-{k}")
        guide_model(seed=k).fit(x, y, batch_size=8, epochs=3, validation_split=0.25, callbacks=[cb], verbose=0)
    ids = Store(source).runs()["run_id"].tolist()  # in the order db copy copies them (by start)
    destination = pg_server.new()
    request.addfinalizer(lambda: pg_server.drop(destination))
    from sqlalchemy import create_engine, text

    # Another session inserts the blocked run's id and holds its transaction open: the copy of that
    # run waits on the row lock (runs before it are committed), so the SIGINT lands mid-copy.
    blocker = create_engine(destination).connect()
    held = blocker.begin()
    blocker.execute(text("INSERT INTO runs (id, name, status, started_at) VALUES (:id, 'blocker', 'finished', now())"),
                    {"id": ids[BLOCKED]})
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "db", "copy", "--from", source, "--to", destination],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            waiting = sql(destination, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND wait_event_type = 'Lock'")[0][0]
            if waiting:
                break
            time.sleep(0.05)
        assert proc.poll() is None and waiting, proc.stderr.read() if proc.poll() is not None else "never waited"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        held.rollback()
        blocker.close()
    assert proc.returncode == 1, (proc.returncode, err)
    assert "Traceback" not in err and "Aborted!" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{BLOCKED} of {RUNS} runs copied" in lines[0] and "rerun" in lines[0], err
    copied = sorted(r[0] for r in sql(destination, "SELECT id FROM runs"))
    assert copied == sorted(ids[:BLOCKED])  # exactly the runs it said, each whole
    again = tracker_cli("db", "copy", "--from", source, "--to", destination)
    assert again.returncode == 0, again.stderr
    assert f"{RUNS - BLOCKED} copied" in again.stdout and f"{BLOCKED} already there" in again.stdout
    assert Store(destination).runs()["run_id"].tolist() == ids
