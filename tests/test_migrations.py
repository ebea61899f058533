"""The schema comes only from the Alembic revisions, and they match the models."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from tracker import NotADatabaseError, SchemaTooNewError, Store
from tracker.db.migrate import HEAD_REVISION, VERSION_TABLE, alembic_config, head_revision, open_database
from tracker.db.tables import Base

REPO = Path(__file__).resolve().parent.parent


def schema_of(path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())


def test_there_is_a_single_head_revision_and_the_fast_path_knows_it():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [head_revision()] == [HEAD_REVISION]


def test_models_and_migrations_agree(tmp_path):
    engine, _ = open_database(str(tmp_path / "m.db"))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_opening_creates_exactly_the_migrated_schema_and_nothing_from_the_models(tmp_path):
    path = tmp_path / "m.db"
    open_database(str(path))
    tables = {name for name, sql in schema_of(path).items() if sql.startswith("CREATE TABLE")}
    assert tables == set(Base.metadata.tables) | {VERSION_TABLE}
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(head_revision(),)]


@pytest.mark.parametrize("how", ["x-arg", "env"])
def test_alembic_upgrade_head_from_the_repo_root_gives_the_same_schema(tmp_path, how):
    target = tmp_path / "cli.db"
    env = dict(os.environ)
    args = [sys.executable, "-m", "alembic", "upgrade", "head"]
    if how == "x-arg":
        args[3:3] = ["-x", f"db={target}"]
        env.pop("TRACKER_DB", None)
    else:
        env["TRACKER_DB"] = str(target)
    subprocess.run(args, cwd=REPO, env=env, check=True, capture_output=True)
    reference = tmp_path / "ref.db"
    open_database(str(reference))
    assert schema_of(target) == schema_of(reference)


def test_a_database_from_a_newer_revision_is_refused_in_one_sentence(tmp_path):
    path = tmp_path / "new.db"
    open_database(str(path))
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff_from_the_future'")
    with pytest.raises(SchemaTooNewError) as excinfo:
        Store(str(path))
    message = str(excinfo.value)
    assert "ffff_from_the_future" in message and "upgrade the tracker" in message
    assert message.count(".") <= 2 and "\n" not in message


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(NotADatabaseError, match="is not a SQLite database"):
        open_database(str(path))
    assert path.read_text() == "these are my notes, not a database\n"


def test_another_applications_sqlite_database_is_not_touched(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(NotADatabaseError, match="another application"):
        open_database(str(path))
    assert set(schema_of(path)) == {"customers"}


def test_an_empty_file_is_upgraded(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    open_database(str(path))
    assert "runs" in schema_of(path)


def test_sqlalchemy_url_is_accepted(tmp_path):
    path = tmp_path / "url.db"
    engine, url = open_database(f"sqlite:///{path}")
    assert url == f"sqlite:///{path}" and "runs" in schema_of(path)
    create_engine(url).dispose()


DATA = Path(__file__).resolve().parent / "data"
REV0001_TABLES = [
    "runs", "params", "tags", "phases", "epochs", "batches", "epoch_values", "batch_values", "phase_values",
]


def rows_of(path, table, columns="*"):
    with sqlite3.connect(path) as conn:
        return sorted(map(tuple, conn.execute(f"SELECT {columns} FROM {table}").fetchall()), key=repr)


def test_a_database_written_at_revision_0001_upgrades_with_every_row_kept(tmp_path):
    """tests/data/rev0001.db was written by the real tracker at revision 0001
    (a fit with validation and a NaN metric, an evaluate and a predict)."""
    import shutil

    path = tmp_path / "old.db"
    shutil.copy(DATA / "rev0001.db", path)
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone() == ("0001",)
        columns = {t: ", ".join(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in REV0001_TABLES}
    before = {t: rows_of(path, t) for t in REV0001_TABLES}
    assert len(before["batch_values"]) > 0 and len(before["epochs"]) == 3

    store = Store(str(path))  # opening upgrades

    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone() == (head_revision(),)
    for table in REV0001_TABLES:
        assert rows_of(path, table, columns[table]) == before[table], table
    assert rows_of(path, "epochs", "fingerprint") == [(None,)] * 3
    # 0003 backfilled the counters and the per-key summary from the old rows.
    assert rows_of(path, "runs", "phase_count, epoch_count") == [(3, 3)]
    summary = {r[0]: r[1:] for r in rows_of(path, "run_metrics", "key, best_min, best_min_epoch, final, final_epoch, epochs")}
    loss = store.epochs("written-at-0001")["loss"].tolist()
    assert summary["loss"] == (min(loss), loss.index(min(loss)), loss[-1], 2, 3)
    assert summary["nan_metric"] == (None, None, None, 2, 3)
    epochs = store.epochs("written-at-0001")
    assert list(epochs["epoch"]) == [0, 1, 2]
    assert epochs["nan_metric"].isna().all() and epochs["val_loss"].notna().all()


@pytest.mark.parametrize("fixture", sorted(p.name for p in DATA.glob("rev*.db")))
def test_every_committed_older_database_upgrades_with_every_row_kept(tmp_path, fixture):
    """tests/data/revNNNN.db were written by the real tracker at each earlier revision."""
    import shutil

    path = tmp_path / fixture
    shutil.copy(DATA / fixture, path)
    with sqlite3.connect(path) as conn:
        old_revision = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()[0]
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            if r[0] != VERSION_TABLE
        ]
        columns = {t: ", ".join(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}
    assert fixture == f"rev{old_revision}.db" and old_revision != HEAD_REVISION
    before = {t: rows_of(path, t) for t in tables}
    assert sum(len(rows) for rows in before.values()) > 50

    store = Store(str(path))

    for table in tables:
        assert rows_of(path, table, columns[table]) == before[table], table
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone() == (HEAD_REVISION,)
    for run_id in store.runs()["run_id"]:
        epochs = store.epochs(run_id)
        assert store.runs().set_index("run_id").loc[run_id, "epochs"] == len(epochs)
        metrics = store.metrics(run_id).set_index("key")
        if len(epochs):
            assert metrics.loc["loss", "final"] == epochs["loss"].iloc[-1]
