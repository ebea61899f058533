"""A logs key named like a column of the tracker's is shown as ``log:NAME``, everywhere (issue 17, point 5).

Ground truth: ``History`` for the epoch logs, a spy callback for the batch
logs, and the dict ``evaluate(return_dict=True)`` returns. Every frame keeps
its own columns (``df["epoch"]`` is Keras' epoch index), every logged value
is found under its shown name, bit for bit, and a key literally named
``log:epoch`` does not collide with the shown name of ``epoch``.
"""

from __future__ import annotations

import csv
import io
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import bits, guide_data, guide_model

from tracker import Store, TrackingCallback
from tracker.cli import main
from tracker.reports import compare_runs, history_report
from tracker.store.series import META_COLUMNS

#: Logs keys named like the tracker's columns, and one named like a shown name.
CLASHING = ("epoch", "step", "phase", "phase_seq", "call", "batch", "run_id", "elapsed", "started_at", "ended_at",
            "redone", "status", "key", "value", "log:epoch")


def shown_key(name: str) -> str:
    """The name every CLASHING key must be read under."""
    assert name in CLASHING
    return "log:" + name


def _value(name: str, at: int) -> float:
    """A distinct value per key and epoch/batch, never equal to a column's own value."""
    return -1000.25 - 10.0 * CLASHING.index(name) - at


class AddsClashingKeys(keras.callbacks.Callback):
    """Adds every CLASHING key to the batch, epoch and evaluate-end logs (listed before the tracker)."""

    def on_train_batch_end(self, batch, logs=None):
        for name in CLASHING:
            logs[name] = _value(name, batch)

    def on_epoch_end(self, epoch, logs=None):
        for name in CLASHING:
            logs[name] = _value(name, epoch)

    def on_test_end(self, logs=None):
        for name in ("status", "run_id", "phase_seq", "log:epoch"):
            logs[name] = _value(name, 7)


class BatchSpy(keras.callbacks.Callback):
    """What the callbacks after ``AddsClashingKeys`` see: each train batch's logs, and the evaluate-end logs."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.test_end = None

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(dict(logs))

    def on_test_end(self, logs=None):
        self.test_end = dict(logs)


@pytest.fixture
def clashing(db):
    """A run whose epochs, batches and evaluate results log CLASHING keys, with what the callbacks saw."""
    x, y = guide_data(64)
    model = guide_model()
    spy = BatchSpy()
    tracker = TrackingCallback(db, run_name="clash")
    history = model.fit(x, y, batch_size=32, epochs=2, validation_split=0.25,
                        callbacks=[AddsClashingKeys(), spy, tracker], verbose=0)
    model.evaluate(x, y, callbacks=[AddsClashingKeys(), spy, tracker], verbose=0)
    return db, tracker.run_id, history.history, spy.seen, spy.test_end


def test_shown_names_are_one_to_one_and_leave_ordinary_keys_alone():
    from tracker.store.names import RESERVED, logged_key, shown_key

    assert shown_key("val_loss") == "val_loss" and shown_key("inner/a") == "inner/a"
    assert shown_key("epoch") == "log:epoch" and shown_key("log:epoch") == "log:log:epoch"
    names = [*RESERVED, *(f"log:{n}" for n in RESERVED), "log:", "log:x", "x", "logx"]
    shown = [shown_key(n) for n in names]
    assert len(set(shown)) == len(names)
    assert not set(shown) & RESERVED
    assert all(logged_key(s) == n for s, n in zip(shown, names))
    assert set(META_COLUMNS) <= RESERVED


def test_epoch_frames_keep_their_columns_and_give_clashing_keys_as_log_name(clashing):
    db, run_id, history, _, _ = clashing
    store = Store(db)
    frame = store.epochs(run_id)
    assert frame.columns.is_unique, list(frame.columns)
    assert frame["epoch"].tolist() == [0, 1] and frame["phase"].tolist() == ["fit", "fit"]
    for name in CLASHING:
        assert bits(history[name][0]) == bits(_value(name, 0))  # History has what the callback logged
        got = frame[shown_key(name)].tolist()
        assert [bits(v) for v in got] == [bits(v) for v in history[name]], name
    assert "log:log:epoch" in frame.columns and "log:epoch" in frame.columns
    assert [bits(v) for v in frame["val_loss"]] == [bits(v) for v in history["val_loss"]]  # the common case
    tidy = store.epochs(run_id, tidy=True)
    assert set(tidy["key"]) == {shown_key(k) if k in CLASHING else k for k in history}
    picked = tidy[tidy["key"] == "log:epoch"].sort_values("epoch")
    assert picked["epoch"].tolist() == [0, 1]
    assert [bits(v) for v in picked["value"]] == [bits(v) for v in history["epoch"]]


def test_batch_and_evaluation_frames_keep_their_columns(clashing):
    db, run_id, _, seen, results = clashing
    store = Store(db)
    batches = store.batches(run_id)
    assert batches.columns.is_unique, list(batches.columns)
    assert batches["batch"].tolist() == [0, 1, 0, 1] and batches["step"].tolist() == [0, 1, 2, 3]
    for name in CLASHING:
        assert [bits(v) for v in batches[shown_key(name)]] == [bits(s[name]) for s in seen], name
    curves = store.batch_curves(run_id)
    assert curves.batch.tolist() == [0, 1, 0, 1]
    assert [bits(v) for v in curves.values["log:batch"][1]] == [bits(s["batch"]) for s in seen]
    for tidy in (store.batches(run_id, tidy=True),):
        assert set(tidy["key"]) >= {"log:batch", "log:log:epoch", "loss"}
    evaluations = store.evaluations(run_id)
    assert evaluations.columns.is_unique, list(evaluations.columns)
    assert evaluations["status"].tolist() == ["finished"] and evaluations["run_id"].tolist() == [run_id]
    for name in ("status", "run_id", "phase_seq", "log:epoch"):
        assert bits(evaluations[shown_key(name)].iloc[0]) == bits(results[name]), name


def test_summaries_reports_and_sorting_use_the_shown_names(clashing):
    db, run_id, history, _, results = clashing
    store = Store(db)
    metrics = store.metrics(run_id).set_index("key")
    assert "log:epoch" in metrics.index and "epoch" not in metrics.index
    assert bits(metrics.loc["log:epoch", "final"]) == bits(history["epoch"][-1])
    assert "log:epoch" in store.metric_keys() and "log:log:epoch" in store.metric_keys()
    for sort in ("best:log:epoch", "best:epoch"):  # the shown or the logged name
        runs = store.runs(sort=sort)
        assert runs.columns.is_unique, list(runs.columns)
        assert bits(runs["log:epoch"].iloc[0]) == bits(min(history["epoch"]))
        assert runs["epochs"].tolist() == [2]
    runs = store.runs(sort="best:status")
    assert runs["status"].tolist() == ["finished"] and runs.columns.is_unique
    overview = store.overview(metric="epoch")
    assert overview["metric"].tolist() == ["log:epoch"]
    assert bits(overview["eval:log:status"].iloc[0]) == bits(results["status"])
    compared = compare_runs(store, [run_id])
    assert compared.columns.is_unique
    assert bits(compared["best:log:epoch"].iloc[0]) == bits(min(history["epoch"]))
    assert bits(compared["eval:log:run_id"].iloc[0]) == bits(results["run_id"])
    report = history_report(store, [run_id])
    assert report["epoch"].tolist() == [0, 1]
    assert [bits(v) for v in report["clash:log:epoch"]] == [bits(v) for v in history["epoch"]]
    chosen = history_report(store, [run_id], metrics=["epoch"])
    assert list(chosen.columns) == ["epoch", "clash:log:epoch"]


def _cli(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_json_and_csv_keep_the_epoch_index_and_one_header_each(clashing, tmp_path):
    db, run_id, history, seen, _ = clashing
    rows = json.loads(_cli("--db", db, "epochs", run_id, "--format", "json"))
    assert [r["epoch"] for r in rows] == [0, 1]
    assert [bits(r["log:epoch"]) for r in rows] == [bits(v) for v in history["epoch"]]
    assert [bits(r["log:log:epoch"]) for r in rows] == [bits(v) for v in history["log:epoch"]]
    header, *body = list(csv.reader(io.StringIO(_cli("--db", db, "epochs", run_id, "--format", "csv"))))
    assert len(header) == len(set(header)), header
    assert [int(r[header.index("epoch")]) for r in body] == [0, 1]
    assert [float(r[header.index("log:epoch")]) for r in body] == history["epoch"]
    header, *body = list(csv.reader(io.StringIO(_cli("--db", db, "batches", run_id, "--format", "csv"))))
    assert len(header) == len(set(header)), header
    assert [int(r[header.index("batch")]) for r in body] == [0, 1, 0, 1]
    assert [float(r[header.index("log:batch")]) for r in body] == [s["batch"] for s in seen]
    table = _cli("--db", db, "epochs", run_id)
    assert "log:epoch" in table
    _cli("--db", db, "export", "history", "--runs", run_id, "--out", str(tmp_path / "history.csv"))
    header = next(csv.reader(open(tmp_path / "history.csv", newline="")))
    assert "clash:log:epoch" in header and header.count("epoch") == 1


def test_dashboard_api_uses_the_same_names(clashing):
    from tracker.ui.data import Dashboard

    db, run_id, history, seen, results = clashing
    board = Dashboard(db)
    epochs = board.epochs(run_id)
    assert [e["epoch"] for e in epochs] == [0, 1]
    assert [bits(e["log:epoch"]) for e in epochs] == [bits(v) for v in history["epoch"]]
    assert [bits(e["log:log:epoch"]) for e in epochs] == [bits(v) for v in history["log:epoch"]]
    assert "log:epoch" in board.metric_keys()
    assert board.runs(metric="log:epoch")[0]["metric"] == "log:epoch"
    assert board.runs(metric="epoch")[0]["metric"] == "log:epoch"
    series = board.batches(run_id)["series"]
    assert "log:batch" in series and "batch" not in series
    detail = board.run(run_id)
    evaluate = [p for p in detail["phases"] if p["phase"] == "evaluate"][0]
    assert bits(evaluate["results"]["log:status"]) == bits(results["status"])


class NestedLogsModel(keras.Model):
    """``compute_metrics`` (the logs of ``train_step`` and ``test_step`` on every backend) returns a
    nested dict whose inner ``a`` shares its name with a top-level ``a``."""

    TOP_A, INNER_A, INNER_B = 0.1, 1.5, -0.0

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        f = lambda v: keras.ops.convert_to_tensor(v, "float32")  # noqa: E731
        return {"a": f(self.TOP_A), "inner": {"a": f(self.INNER_A), "b": f(self.INNER_B)}}


def _f32(value: float) -> float:
    return float(np.float32(value))


class Spy(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches, self.epochs = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(dict(logs))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(dict(logs))


@pytest.mark.backend
def test_a_nested_logs_dict_keeps_its_parent_beside_a_top_level_key_of_the_same_name(db):
    """Keras flattens ``{"a": .., "inner": {"a": ..}}`` to one bare ``a`` (callbacks see one value);
    the tracker stores ``a`` and ``inner/a`` with their own values, bit for bit."""
    m = NestedLogsModel
    model = m()
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 3), "float32"), np.zeros((8, 1), "float32")
    spy, tracker = Spy(), TrackingCallback(db)
    history = model.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), callbacks=[spy, tracker], verbose=0)
    results = model.evaluate(x, y, callbacks=[tracker], return_dict=True, verbose=0)
    # What Keras gives every callback: bare names, one "a" (the nested one wins in sorted order).
    top, inner = _f32(m.TOP_A), _f32(m.INNER_A)
    assert history.history == {"a": [inner] * 2, "b": [-0.0] * 2, "val_a": [inner] * 2, "val_b": [-0.0] * 2}
    assert spy.batches[0] == {"a": inner, "b": -0.0} and results == {"a": inner, "b": -0.0}
    assert spy.epochs[0] == {"a": inner, "b": -0.0, "val_a": inner, "val_b": -0.0}
    store = Store(db)
    expected = {"a": top, "inner/a": inner, "inner/b": -0.0}
    expected_epoch = {**expected, **{f"val_{k}": v for k, v in expected.items()}}
    epochs = store.epochs(tracker.run_id)
    assert sorted(c for c in epochs.columns if c not in META_COLUMNS) == sorted(expected_epoch)
    for key, value in expected_epoch.items():
        assert [bits(v) for v in epochs[key]] == [bits(value)] * 2, key
    for phase, count in (("fit", 4), ("validation", 4), ("evaluate", 1)):
        batches = store.batches(tracker.run_id, phase)
        assert sorted(c for c in batches.columns if c not in META_COLUMNS) == sorted(expected), phase
        for key, value in expected.items():
            assert [bits(v) for v in batches[key]] == [bits(value)] * count, (phase, key)
    evaluations = store.evaluations(tracker.run_id)
    for key, value in expected.items():
        assert bits(evaluations[key].iloc[0]) == bits(value), key
