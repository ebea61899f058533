"""An older database gains the checkpoint and lineage tables on upgrade, keeps its runs, and records saves."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import keras
from click.testing import CliRunner
from conftest import guide_data, guide_model

from tracker import Store, TrackingCallback
from tracker.cli import main

DATA = Path(__file__).resolve().parent / "data"


def test_an_upgraded_database_records_checkpoints_and_lineage_and_its_old_runs_have_none(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(DATA / "rev0005.db", path)
    with sqlite3.connect(path) as conn:
        old_runs = [r for (r,) in conn.execute("SELECT id FROM runs")]
    assert CliRunner().invoke(main, ["--db", str(path), "db", "upgrade"]).exit_code == 0
    with sqlite3.connect(path) as conn:
        tables = {r for (r,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {r for (r,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"checkpoints", "fit_starts", "weight_layouts", "epoch_parts"} <= tables
    assert "ix_epochs_fingerprint" in indexes
    store = Store(str(path))
    for run_id in old_runs:
        assert len(store.checkpoints(run_id)) == 0 and store.run(run_id)["started_from"] is None
        assert len(store.lineage(run_id)) == 0
    x, y = guide_data(n=32)
    model = guide_model()
    tracker = TrackingCallback(str(path), run_name="after-upgrade")
    save = keras.callbacks.ModelCheckpoint(str(tmp_path / "w{epoch}.weights.h5"), save_weights_only=True)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[tracker, save])
    saves = Store(str(path)).checkpoints("after-upgrade")
    assert list(saves["epoch"]) == [0, 1] and set(saves["path"]) == {str(tmp_path / f"w{e}.weights.h5") for e in (1, 2)}
    found = CliRunner().invoke(main, ["--db", str(path), "which", str(tmp_path / "w2.weights.h5"), "--format", "csv"])
    assert found.exit_code == 0 and f"{tracker.run_id}," in found.output
