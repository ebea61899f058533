"""``tracker gc``: trashed runs removed for good with every row they own, and the space given back.

Real runs fill every table of a run (``rich_run`` of the team server tests:
a failed fit resumed with superseded epochs, LR changes, an early stop that
restores, text batch values, an evaluate). On SQLite the file must shrink;
on PostgreSQL the rows go with plain deletes. The run left in view keeps
every row, bit for bit.
"""

import sqlite3

import pytest
from click.testing import CliRunner
from conftest import bits, guide_data, guide_model
from test_server_roles import OF_RUN, SHARED, counts, rich_run

from tracker import RunManager, Store, TrackingCallback
from tracker.cli import main
from tracker.db.engine import checkpoint_wal, get_engine, resolve_url
from tracker.db.purge import owned_tables
from tracker.db.tables import Base


def big_run(db, name, n=1024, batch_size=4):
    """A run with thousands of batch rows: enough pages for the file to shrink visibly."""
    x, y = guide_data(n=n)
    cb = TrackingCallback(db, run_name=name)
    guide_model().fit(x, y, batch_size=batch_size, epochs=3, validation_split=0.2, callbacks=[cb], verbose=0)
    cb.close()
    return cb.run_id


def cli(db, *args):
    return CliRunner().invoke(main, ["--db", db, *args])


def test_every_table_of_a_run_is_purged_and_only_the_dictionaries_are_kept():
    purged = {table.name for table, _ in owned_tables()}
    assert purged == set(OF_RUN) == set(Base.metadata.tables) - SHARED


def test_gc_removes_every_row_of_the_trashed_runs_on_both_databases(db):
    gone = rich_run(db)
    keep = big_run(db, "kept", n=64)
    kept_counts, kept_epochs = counts(db, keep), Store(db).epochs(keep, attempts=True)
    assert all(counts(db, gone).values()), counts(db, gone)  # every table holds rows of the run

    assert cli(db, "gc").output.strip() == "The trash is empty: nothing to collect."
    RunManager(db).delete("job")
    result = cli(db, "gc")
    assert result.exit_code == 0, result.output
    assert "Removed 1 run for good" in result.output
    if "://" in db:
        assert "the server reuses the space" in result.output
    assert counts(db, gone) == dict.fromkeys(OF_RUN, 0)
    assert counts(db, keep) == kept_counts
    after = Store(db).epochs(keep, attempts=True)
    assert after.drop(columns=[]).equals(kept_epochs)
    assert [bits(v) for v in after["loss"]] == [bits(v) for v in kept_epochs["loss"]]
    assert Store(db).runs(deleted=True).empty and list(Store(db).runs()["run_id"]) == [keep]
    assert cli(db, "gc").output.strip() == "The trash is empty: nothing to collect."


def test_gc_gives_the_space_back_and_the_sqlite_file_shrinks(tmp_path):
    db = str(tmp_path / "runs.db")
    keep = big_run(db, "kept", n=128)
    checkpoint_wal(get_engine(resolve_url(db)))
    kept_only = (tmp_path / "runs.db").stat().st_size
    gone = [big_run(db, f"big-{i}", batch_size=1) for i in range(2)]
    before_loss, kept_counts = Store(db).epochs(keep)["loss"].tolist(), counts(db, keep)
    checkpoint_wal(get_engine(resolve_url(db)))
    size = (tmp_path / "runs.db").stat().st_size
    assert size > kept_only + 200_000, (kept_only, size)  # the two runs hold hundreds of KiB

    RunManager(db).delete(gone)
    checkpoint_wal(get_engine(resolve_url(db)))
    assert (tmp_path / "runs.db").stat().st_size == size  # the trash still holds them
    listed = cli(db, "gc")
    assert "would be removed for good; add --yes" in listed.output and listed.exit_code == 1
    assert all(r in listed.output for r in gone)
    result = cli(db, "gc", "--yes")
    assert result.exit_code == 0 and "Removed 2 runs for good" in result.output, result.output

    after = (tmp_path / "runs.db").stat().st_size
    wal = tmp_path / "runs.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert after <= kept_only * 1.05, (kept_only, size, after)  # back to the size of the kept run alone
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA freelist_count").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM batches").fetchone()[0] == kept_counts["batches"]
    assert counts(db, keep) == kept_counts
    assert [bits(v) for v in Store(db).epochs(keep)["loss"]] == [bits(v) for v in before_loss]


def test_gc_of_chosen_ids_refuses_a_run_that_is_not_in_the_trash(tmp_path):
    db = str(tmp_path / "runs.db")
    run_id = big_run(db, "in-view", n=32)
    with pytest.raises(ValueError, match="not a run in the trash"):
        RunManager(db).gc([run_id])
    assert list(Store(db).runs()["run_id"]) == [run_id]
