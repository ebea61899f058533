"""Editing a run while another process trains it: nothing is lost on either side, and it cannot be deleted.

The job is tests/scripts/train_live.py in a real process: it waits before
each epoch for the test's go-ahead file, so the test orders its edits by the
database's state (epochs written), never by sleeping. Edits run while the
job writes the following epochs; at the end every edit is there, the
writer's end of run did not undo the rename, and the epochs are complete.
"""

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import sql
from sqlalchemy.exc import ProgrammingError

from tracker import EditRefusedError, RunManager, Store
from tracker.cli import main

SCRIPT = Path(__file__).resolve().parent / "scripts" / "train_live.py"


def epoch_counts(db):
    """The runs' epoch counts, read outside the tracker: on SQLite read-only (the file is never created)."""
    if "://" in db:
        return sql(db, "SELECT epoch_count FROM runs")
    if not os.path.exists(db):
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute("SELECT epoch_count FROM runs").fetchall()


def epochs_written(db, proc, at_least, timeout=180):
    """Wait until the job's run has ``at_least`` epochs in the database; return how many it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the job ended early: {proc.stderr.read()[-2000:]}")
        try:
            found = epoch_counts(db)
        except (sqlite3.OperationalError, ProgrammingError):  # the job is still creating the schema
            found = []
        if found and found[0][0] >= at_least:
            return found[0][0]
        time.sleep(0.1)
    raise AssertionError(f"the job never wrote {at_least} epochs")


def test_edits_while_the_run_trains_are_kept_and_its_epochs_are_complete(db, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(db), str(gate)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        epochs_written(db, proc, 1)  # the job now waits before epoch 1
        runs = RunManager(db)
        runs.rename("live", "live-renamed")
        runs.tag("live-renamed", {"stage": "training"})
        runs.note("live-renamed", "started")
        with pytest.raises(EditRefusedError, match=r"still running \(process \d+ on .+ is alive\)"):
            runs.delete("live-renamed")
        refused = CliRunner().invoke(main, ["--db", db, "delete", "live-renamed"])
        assert refused.exit_code == 1 and "is still running" in refused.output
        assert "cannot be deleted" in refused.output.strip().splitlines()[-1]

        for k in range(5):  # let epochs 1-5 train, and edit while the job writes them
            (gate / f"go{k}").touch()
        for i in range(10):
            runs.tag("live-renamed", {f"t{i}": str(i)})
            runs.note("live-renamed", f"line {i}", append=True)
        epochs_written(db, proc, 6)  # the job waits before epoch 6
        (gate / "stop").touch()  # epoch 6 trains one batch and ends the fit: 7 epochs
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    run_id = out.split("DONE ")[1].strip()

    store = Store(db)
    summary = store.run(run_id)
    assert summary["run"]["name"] == "live-renamed" and summary["run"]["status"] == "finished"
    assert summary["tags"] == {"stage": "training", **{f"t{i}": str(i) for i in range(10)}}
    assert summary["run"]["note"] == "\n".join(["started"] + [f"line {i}" for i in range(10)])
    epochs = store.epochs(run_id)
    assert list(epochs["epoch"]) == list(range(7))
    assert store.runs()["epochs"].tolist() == [7]
    loss = store.metrics(run_id).set_index("key").loc["loss"]
    assert loss["epochs"] == 7 and loss["final_epoch"] == 6
    assert sql(db, "SELECT count(*) FROM epoch_values ev JOIN epochs e ON e.id = ev.epoch_id")[0][0] == 7 * len(
        [c for c in epochs.columns if c not in ("phase", "phase_seq", "call", "epoch", "started_at", "ended_at",
                                                "redone")])
    # Now that its process has ended, it may go to the trash.
    assert [r.id for r in RunManager(db).delete("live-renamed")] == [run_id]
