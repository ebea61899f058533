"""Store: run references and frames, on real recorded runs."""

import keras
import pytest
from conftest import BACKENDS, fresh_db, guide_data, guide_model

from tracker import DatabaseNotFoundError, Store, TrackingCallback, UnknownRunError


@pytest.fixture(scope="module", params=BACKENDS)
def two_runs(request, tmp_path_factory):
    path = fresh_db(request, tmp_path_factory.mktemp("store"), request.param)
    x, y = guide_data(n=64)
    ids = []
    for _ in range(2):
        cb = TrackingCallback(path, run_name="same-name")
        guide_model().fit(x, y, batch_size=32, epochs=1, callbacks=[cb], verbose=0)
        ids.append(cb.run_id)
    return path, ids


def test_runs_has_the_documented_columns(two_runs):
    path, ids = two_runs
    runs = Store(path).runs()
    assert list(runs["run_id"]) == ids
    assert {"run_id", "name", "status", "started_at", "ended_at", "phases", "epochs"} <= set(runs.columns)
    assert list(runs["epochs"]) == [1, 1]


def test_a_name_means_the_newest_run_of_that_name(two_runs):
    path, ids = two_runs
    assert Store(path).resolve("same-name") == ids[1]
    assert Store(path).resolve("latest") == ids[1]


def test_unique_prefix_resolves_and_unknown_reference_is_one_sentence(two_runs):
    path, ids = two_runs
    store = Store(path)
    assert store.resolve(ids[0][:10]) == ids[0]
    with pytest.raises(UnknownRunError, match="No run matches 'zz'"):
        store.resolve("zz")


def test_ambiguous_prefix_lists_what_matched(two_runs):
    path, ids = two_runs
    store = Store(path)
    common = ""
    for a, b in zip(*ids):
        if a != b:
            break
        common += a
    if len(common) == 0:
        with pytest.raises(UnknownRunError, match="matches several runs"):
            store.resolve("")
    else:
        with pytest.raises(UnknownRunError, match="matches several runs"):
            store.resolve(common)


def test_store_never_creates_a_missing_file(tmp_path):
    path = tmp_path / "typo.db"
    with pytest.raises(DatabaseNotFoundError, match="No tracker database at"):
        Store(str(path))
    assert not path.exists()


def test_batches_rejects_an_unknown_phase_name(two_runs):
    path, ids = two_runs
    with pytest.raises(ValueError, match="phase must be fit, validation, evaluate or predict"):
        Store(path).batches(ids[0], phase="training")


def test_the_light_table_clauses_of_run_filters_match_the_models():
    from tracker.store.filters import PARAMS, RUN_METRICS, RUN_STATUSES, RUNS, TAGS
    from tracker.db.tables import Base, Status

    for clause in (RUNS, PARAMS, TAGS, RUN_METRICS):
        model_columns = set(Base.metadata.tables[clause.name].columns.keys())
        assert set(clause.columns.keys()) <= model_columns, clause.name
    assert set(RUN_STATUSES) == {s.value for s in Status}


@pytest.mark.parametrize("key", ["loss", "mean_absolute_error", "val_loss"])
def test_metrics_best_is_the_minimum_and_its_earliest_epoch_for_a_minimised_key(db, key):
    """Issue 9: ``best_epoch`` of a minimised key comes from History, not from the max."""
    path = db
    x, y = guide_data(n=64)
    cb = TrackingCallback(path)
    history = guide_model().fit(x, y, batch_size=16, epochs=6, validation_split=0.25, callbacks=[cb], verbose=0)
    values = history.history[key]
    assert min(values) != max(values)
    row = Store(path).metrics(cb.run_id).set_index("key").loc[key]
    assert row["best"] == min(values) and row["best_epoch"] == values.index(min(values))
    assert row["final"] == values[-1] and row["final_epoch"] == len(values) - 1 and row["epochs"] == len(values)


def test_metrics_best_is_the_maximum_for_a_maximised_key(db):
    path = db
    x, y = guide_data(n=64)
    cb = TrackingCallback(path)
    model = guide_model(metrics=("mean_absolute_error", keras.metrics.MeanMetricWrapper(lambda t, p: -abs(t - p), name="neg_accuracy")))
    history = model.fit(x, y, batch_size=16, epochs=6, callbacks=[cb], verbose=0)
    values = history.history["neg_accuracy"]
    row = Store(path).metrics(cb.run_id).set_index("key").loc["neg_accuracy"]
    assert row["best"] == max(values) and row["best_epoch"] == values.index(max(values))


def test_a_path_holding_uri_characters_opens_read_only_as_that_file(tmp_path):
    # SQLite only: a file path. "#" ends the path of a SQLite URI unless quoted, "?" starts its query,
    # "%" starts an escape; the read-only opening must still name exactly this file.
    folder = tmp_path / "we ird#dir?x=1"
    folder.mkdir()
    weird = folder / "r u#n&s%41.db"
    x, y = guide_data(n=32)
    ids = []
    for _ in range(2):
        cb = TrackingCallback(str(weird), run_name="weird")
        guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
        ids.append(cb.run_id)
    assert list(Store(str(weird)).runs()["run_id"]) == ids
    made = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert made <= {weird.name, weird.name + "-wal", weird.name + "-shm"}, "no other file was opened or created"


def test_reading_many_database_files_one_after_another_keeps_open_files_bounded(tmp_path):
    """``for f in files: Store(f).runs()`` over 80 files: the open files stay few (not 3 per file read)."""
    import os
    import shutil
    import sqlite3

    from tracker.db.engine import MAX_ENGINES

    first = tmp_path / "db-0.db"
    x, y = guide_data(n=32)
    cb = TrackingCallback(str(first), run_name="seed")
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    with sqlite3.connect(first) as conn:  # everything into the main file, so that a copy holds it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    paths = [first] + [shutil.copy(first, tmp_path / f"db-{i}.db") for i in range(1, 80)]

    def open_files():
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    for path in paths:
        assert Store(str(path)).runs()["name"].tolist() == ["seed"]
    # Each SQLite connection holds the file, its WAL and its shared memory: 240 files for 80 databases
    # if every engine kept its connection; at most the most recent engines' connections are kept.
    assert MAX_ENGINES <= 20 and open_files() - before <= 3 * 20, open_files() - before
    assert Store(str(first)).runs()["name"].tolist() == ["seed"]  # an evicted database opens again
