"""Odd logs, odd names and bad files: training never crashes, everything round-trips."""

import sqlite3
import struct
import threading

import keras
import numpy as np
import pytest
from conftest import guide_data, guide_model, sql
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tracker
from tracker import NotADatabaseError, SchemaTooNewError, Store, TrackingCallback
from tracker.db.migrate import VERSION_TABLE, open_database
from tracker.store.names import shown_key


def bits(x):
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


class Inject(keras.callbacks.Callback):
    """Replaces the logs the tracker sees with generated ones (listed before it)."""

    def __init__(self, epoch_logs, batch_logs):
        super().__init__()
        self.epoch_logs, self.batch_logs = epoch_logs, batch_logs

    def on_train_batch_end(self, batch, logs=None):
        logs.clear()
        logs.update(self.batch_logs)

    def on_epoch_end(self, epoch, logs=None):
        logs.clear()
        logs.update(self.epoch_logs)


scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.floats(width=32).map(np.float32),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(np.int64),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda i: struct.unpack("<d", struct.pack("<q", i))[0]),
)
keys = st.text(max_size=12).filter(lambda k: "/" not in k)
logs_strategy = st.dictionaries(
    keys,
    st.one_of(
        scalars,
        st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=4).map(np.array),
        st.dictionaries(keys.filter(bool), st.floats(allow_nan=False), max_size=3),
    ),
    max_size=15,
)


def expected(value):
    """What Store gives back for a logged value."""
    if isinstance(value, (bool, np.bool_)):
        return ("float", 1.0 if value else 0.0)
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return ("int", v) if abs(v) > 2**53 else ("float", float(v))
    if isinstance(value, (float, np.floating)):
        return ("float", float(value))
    if value is None:
        return ("none", None)
    if isinstance(value, np.ndarray):
        return ("text", None)
    return ("text", value)


def flatten(logs, prefix=""):
    for key, value in logs.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz") / "fuzz.db")


# Each example is a real fit (about 0.3 s), so no shrinking: a failure prints the raw example.
@settings(
    max_examples=15,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(epoch_logs=logs_strategy, batch_logs=logs_strategy)
def test_fuzzed_logs_never_crash_training_and_numbers_round_trip_exactly(fuzz_db, epoch_logs, batch_logs):
    x, y = guide_data(n=16)
    cb = TrackingCallback(fuzz_db, log_batches=True)
    history = guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[Inject(epoch_logs, batch_logs), cb], verbose=0)
    assert len(history.history["loss"] if "loss" in history.history else [1]) == 1
    store = Store(fuzz_db)
    for frame, logs in ((store.epochs(cb.run_id), epoch_logs), (store.batches(cb.run_id), batch_logs)):
        assert len(frame) == 1
        for key, value in flatten(logs):
            kind, want = expected(value)
            got = frame[shown_key(key)].iloc[0]  # column-wise: a row Series would upcast NaN to NA
            if kind == "float":
                assert bits(got) == bits(want), (key, value, got)
            elif kind == "int":
                assert got == want and type(got) is int
            elif kind == "none":
                assert got is None, (key, got)
            elif want is not None:
                assert got == want


def test_thousands_of_keys(tmp_path):
    many = {f"metric_{i}": float(i) / 7 for i in range(3000)}
    db = str(tmp_path / "wide.db")
    cb = TrackingCallback(db)
    x, y = guide_data(n=16)
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[Inject(many, many), cb], verbose=0)
    row = Store(db).epochs(cb.run_id).iloc[0]
    assert all(bits(row[k]) == bits(v) for k, v in many.items())
    assert len(Store(db).batches(cb.run_id).columns) == 3000 + 7  # phase, phase_seq, call, epoch, batch, step, elapsed


STRANGE = [
    "",
    "ünïcødé 名前 🚀",
    "x" * 10_000,
    "'; DROP TABLE runs; --",
    "Robert'); DELETE FROM params WHERE ('1'='1",
    "%_*?\\",
    "line\nbreak\ttab\x00nul",
]


@pytest.mark.parametrize("text", STRANGE)
def test_names_tags_and_params_are_stored_and_returned_exactly(db, text):
    """On both databases (PostgreSQL text cannot hold NUL: the tracker keeps it anyway), through every read path."""
    params = {text: text, "nested": {"k": [text, 1.5, None]}, "big": 2**70}
    cb = TrackingCallback(db, run_name=text, params=params, tags={text: text, "other": text})
    x, y = guide_data(n=16)
    model = guide_model()
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    store = Store(db)
    assert store.runs()["name"].tolist() == [text]
    assert store.params(cb.run_id) == {k: params[k] for k in sorted(params)}
    assert store.tags(cb.run_id) == {text: text, "other": text}
    assert list(store.runs(name=text)["run_id"]) == ([cb.run_id] if "*" not in text and "?" not in text else list(store.runs(name=text)["run_id"]))
    assert list(store.runs(tags={text: text})["run_id"]) == [cb.run_id]
    assert list(store.runs(params={text: text})["run_id"]) == [cb.run_id]
    # The overview (tracker runs, the dashboard) reads plain driver rows: the same strings come back.
    other = TrackingCallback(db, run_name="other", params={text: "different"})
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[other], verbose=0)
    table = store.overview(sort="name")
    assert sorted(table["name"].tolist()) == sorted([text, "other"])
    assert f"param:{text}" in table.columns
    assert set(table[f"param:{text}"]) == {text, "different"}
    from tracker.ui.data import Dashboard

    listed = {r["name"]: r for r in Dashboard(db).runs()}
    assert set(listed) == {text, "other"} and listed[text]["params"][text] == text
    assert sql(db, "SELECT count(*) FROM runs") == [(2,)]


def test_batch_hooks_called_from_many_threads_lose_nothing(tmp_path):
    """What Keras does with async_safe callbacks on the JAX and torch backends."""
    db = str(tmp_path / "threads.db")
    model = guide_model()
    cb = TrackingCallback(db, flush_every=50)
    cb.set_model(model)
    cb.set_params({"epochs": 1, "steps": 4000, "verbose": 0})
    cb.on_train_begin({})
    cb.on_epoch_begin(0, {})

    def worker(start):
        for b in range(start, start + 500):
            cb.on_train_batch_end(b, {"loss": float(b)})

    threads = [threading.Thread(target=worker, args=(i * 500,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cb.on_epoch_end(0, {"loss": 1.0})
    cb.on_train_end({"loss": 1.0})
    batches = Store(db).batches(cb.run_id)
    assert sorted(batches["batch"]) == list(range(4000))
    assert all(batches["loss"] == batches["batch"].astype(float))


def test_the_callback_gives_one_sentence_for_a_file_that_is_not_sqlite(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database")
    with pytest.warns(tracker.TrackingWarning, match=r"is not a SQLite database"):
        cb = TrackingCallback(str(path))
    with pytest.raises(NotADatabaseError, match="is not a SQLite database"):
        TrackingCallback(str(path), strict=True)
    assert path.read_text() == "not a database"
    del cb


def test_the_callback_refuses_a_database_from_a_newer_tracker(tmp_path):
    path = tmp_path / "newer.db"
    open_database(str(path))
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(SchemaTooNewError, match="newer than this tracker knows"):
        TrackingCallback(str(path), strict=True)
    with pytest.warns(tracker.TrackingWarning, match="newer than this tracker knows"):
        TrackingCallback(str(path))
