"""A phase's ``call`` counts the calls the user made, by kind; ``phase_seq`` stays exact (issue 17, point 10).

Ground truth: the list of calls this test makes (fit, evaluate, predict,
fit, evaluate, predict, fit on one model and one tracker) and ``History``
for each fit's epochs. Validation inside each fit makes hidden phases, so
``phase_seq`` of the later calls is far above their call number.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model

from tracker import Store, TrackingCallback
from tracker.cli import main
from tracker.reports import early_stopping_report, lr_report
from tracker.store.runs import phase_labels

#: (method, its expected call number) in the order the calls are made.
CALLS = [("fit", 1), ("evaluate", 1), ("predict", 1), ("fit", 2), ("evaluate", 2), ("predict", 2), ("fit", 3)]


@pytest.fixture
def several_calls(db):
    x, y = guide_data(64)
    model = guide_model()
    tracker = TrackingCallback(db)
    histories = []
    for method, _ in CALLS:
        if method == "fit":
            histories.append(model.fit(x, y, batch_size=32, epochs=2, validation_split=0.25, callbacks=[tracker],
                                       verbose=0).history)
        elif method == "evaluate":
            model.evaluate(x, y, batch_size=32, callbacks=[tracker], verbose=0)
        else:
            model.predict(x, batch_size=32, callbacks=[tracker], verbose=0)
    return db, tracker.run_id, histories


def test_call_counts_the_calls_of_each_kind_and_phase_seq_every_phase(several_calls):
    db, run_id, histories = several_calls
    store = Store(db)
    phases = store.run(run_id)["phases"]
    assert list(zip(phases["phase"], phases["call"])) == CALLS
    seqs = phases["phase_seq"].tolist()
    assert seqs == sorted(seqs) and seqs[0] == 0
    assert seqs[1] == 1 + 2  # the first fit validated 2 epochs: 2 hidden validation phases
    assert list(phases.columns[:3]) == ["phase_seq", "call", "phase"]
    epochs = store.epochs(run_id)
    assert list(epochs.columns[:4]) == ["phase", "phase_seq", "call", "epoch"]
    assert epochs["call"].tolist() == [n for n, h in enumerate(histories, 1) for _ in h["loss"]]
    fit_seqs = phases[phases["phase"] == "fit"]["phase_seq"].tolist()
    assert epochs["phase_seq"].tolist() == [s for s, h in zip(fit_seqs, histories) for _ in h["loss"]]
    validation = store.batches(run_id, "validation")
    assert sorted(set(validation["call"])) == [1, 2, 3]
    for call, seq in enumerate(fit_seqs, 1):  # each validation pass carries its fit's number
        mine = validation[validation["call"] == call]["phase_seq"]
        nxt = fit_seqs[call] if call < len(fit_seqs) else 10**9
        assert ((mine > seq) & (mine < nxt)).all() and len(mine) > 0
    assert store.batches(run_id, "predict")["call"].drop_duplicates().tolist() == [1, 2]
    assert store.evaluations(run_id)["call"].tolist() == [1, 2]
    assert [f["call"] for f in store.configs(run_id)["fits"]] == [1, 2, 3]
    series = store.lr_series(run_id)
    assert series[series["point"] == "phase_begin"]["call"].tolist() == [1, 2, 3]
    assert sorted(set(lr_report(store, [run_id])["call"])) == [1, 2, 3]
    assert "call" in early_stopping_report(store, [run_id]).columns
    labels = phase_labels(store.engine, [run_id])
    for row in phases.itertuples():
        assert labels[(run_id, row.phase_seq)] == f"{row.phase} {row.call}"


def _cli(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_csv_and_json_keep_phase_seq_and_add_call_while_tables_name_the_call(several_calls):
    db, run_id, histories = several_calls
    shown = json.loads(_cli("--db", db, "show", run_id, "--format", "json"))
    assert [(p["phase"], p["call"]) for p in shown["phases"]] == CALLS
    assert all(isinstance(p["phase_seq"], int) for p in shown["phases"])
    header, *rows = list(csv.reader(io.StringIO(_cli("--db", db, "epochs", run_id, "--format", "csv"))))
    assert {"phase_seq", "call"} <= set(header)
    assert [int(r[header.index("call")]) for r in rows] == [n for n, h in enumerate(histories, 1) for _ in h["loss"]]
    table = _cli("--db", db, "show", run_id)
    for label in ("fit 1", "fit 2", "fit 3", "evaluate 2", "predict 1"):
        assert label in table
    epochs_table = _cli("--db", db, "epochs", run_id)
    assert "fit 3" in epochs_table and "call" not in epochs_table.splitlines()[1]


def test_dashboard_api_gives_the_call_beside_phase_seq(several_calls):
    from tracker.ui.data import Dashboard

    db, run_id, histories = several_calls
    board = Dashboard(db)
    detail = board.run(run_id)
    assert [(p["phase"], p["call"]) for p in detail["phases"]] == CALLS
    assert [f["call"] for f in detail["fits"]] == [1, 2, 3]
    epochs = board.epochs(run_id)
    assert [e["call"] for e in epochs] == [n for n, h in enumerate(histories, 1) for _ in h["loss"]]
    assert "log:call" not in epochs[0]
