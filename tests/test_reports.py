"""Reports, queries and export on real recorded runs: truth from the fits themselves."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import BACKENDS, WeightCopies, bits, fresh_db, guide_data, guide_model, sql

from tracker import Store, TrackingCallback, UnknownRunError
from tracker.callbacks import CustomLearningRateScheduler, EarlyStoppingAtMinLoss, lr_schedule
from tracker.cli import main
from tracker.views.export import export, read_csv
from tracker.reports import REPORTS, compare_runs, early_stopping_report, history_report, lr_report


@pytest.fixture(scope="module", params=BACKENDS)
def recorded(request, tmp_path_factory):
    """Three real runs: guide stopper that restores, validation run, LR schedule (SQLite, PostgreSQL)."""
    path = fresh_db(request, tmp_path_factory.mktemp("reports"), request.param)
    x, y = guide_data(n=64)
    truth = {}

    copies, stopper = WeightCopies(), EarlyStoppingAtMinLoss(patience=0)
    model = guide_model()
    cb = TrackingCallback(path, run_name="stopped", params={"lr": 0.1, "patience": 0}, tags={"exp": "a"})
    history = model.fit(x, y, batch_size=16, epochs=8, callbacks=[copies, cb, stopper], verbose=0)
    final = model.get_weights()
    truth["stopped"] = {
        "run_id": cb.run_id,
        "history": history.history,
        "restored_epoch": copies.epoch_of(final),
        "stopper": stopper,
    }

    cb = TrackingCallback(path, run_name="validated", params={"lr": 0.05, "patience": 0}, tags={"exp": "b"})
    history = guide_model(learning_rate=0.05).fit(x, y, batch_size=16, epochs=3, validation_split=0.25, callbacks=[cb], verbose=0)
    truth["validated"] = {"run_id": cb.run_id, "history": history.history}

    cb = TrackingCallback(path, run_name="scheduled", params={"lr": 0.1, "patience": 0}, tags={"exp": "a"})
    history = guide_model().fit(
        x, y, batch_size=16, epochs=5, callbacks=[cb, CustomLearningRateScheduler(lr_schedule)], verbose=0
    )
    truth["scheduled"] = {"run_id": cb.run_id, "history": history.history}
    return path, truth


def test_restore_report_names_the_epoch_the_model_really_ended_with(recorded):
    path, truth = recorded
    t = truth["stopped"]
    report = early_stopping_report(Store(path), ["stopped"])
    assert len(report) == 1
    row = report.iloc[0]
    assert row["restored_epoch"] == t["restored_epoch"] == t["stopper"].best_epoch
    assert (row["stopper"], bool(row["stopped"]), row["stopped_epoch"]) == ("EarlyStoppingAtMinLoss", True, t["stopper"].stopped_epoch)
    loss = t["history"]["loss"]
    assert row["value_at_restored"] == loss[t["restored_epoch"]] and row["value_at_last"] == loss[-1]
    assert row["recovered"] == loss[-1] - loss[t["restored_epoch"]] > 0


def test_compare_shows_differing_params_and_best_and_final_of_each_metric(recorded):
    path, truth = recorded
    frame = compare_runs(Store(path), ["stopped", "validated"]).set_index("name")
    assert "param:lr" in frame and "param:patience" not in frame  # patience is the same in both
    assert frame.loc["stopped", "param:lr"] == 0.1 and frame.loc["validated", "param:lr"] == 0.05
    for name in ("stopped", "validated"):
        loss = truth[name]["history"]["loss"]
        assert frame.loc[name, "best:loss"] == min(loss)
        assert frame.loc[name, "best_epoch:loss"] == loss.index(min(loss))
        assert frame.loc[name, "final:loss"] == loss[-1]
        assert frame.loc[name, "epochs"] == len(loss)
    assert frame.loc["stopped", "restored_epoch"] == truth["stopped"]["restored_epoch"]
    assert pd.isna(frame.loc["validated", "restored_epoch"])
    assert frame.loc["validated", "best:val_loss"] == min(truth["validated"]["history"]["val_loss"])


def test_history_aligns_runs_by_epoch(recorded):
    path, truth = recorded
    frame = history_report(Store(path), ["stopped", "validated"], metrics=["loss"])
    assert list(frame["epoch"]) == list(range(len(truth["stopped"]["history"]["loss"])))
    assert list(frame["stopped:loss"]) == truth["stopped"]["history"]["loss"]
    validated = truth["validated"]["history"]["loss"]
    assert list(frame["validated:loss"][: len(validated)]) == validated
    assert frame["validated:loss"][len(validated):].isna().all()


def test_lr_report_marks_the_epochs_where_the_rate_changed(recorded):
    path, _ = recorded
    frame = lr_report(Store(path), ["scheduled"])
    assert list(frame["epoch"]) == [0, 1, 2, 3, 4]
    assert list(frame["changed"]) == [False, False, False, True, False]
    assert frame.loc[3, "source"] == "CustomLearningRateScheduler" and frame.loc[3, "lr"] == float(np.float32(0.05))


@pytest.mark.parametrize("report", sorted(REPORTS))
def test_every_report_round_trips_through_csv(recorded, tmp_path, report):
    path, _ = recorded
    store = Store(path)
    frame = REPORTS[report](store, None)
    assert len(frame) > 0
    out = tmp_path / f"{report}.csv"
    result = CliRunner().invoke(main, ["--db", path, "export", report, "--out", str(out)])
    assert result.exit_code == 0, result.output
    back = read_csv(out)
    expected = frame.copy()
    for column in expected:
        if pd.api.types.is_datetime64_any_dtype(expected[column]):  # stored times are UTC, written with the zone
            expected[column] = expected[column].map(lambda v: v.tz_localize("UTC").isoformat() if not pd.isna(v) else None)
    assert list(back.columns) == list(expected.columns)
    for column in expected:  # cell by cell: a logged NaN stays NaN, a missing cell stays missing
        assert [_cell(v) for v in back[column]] == [_cell(v) for v in expected[column]], column
    # and the Python function writes the very same file
    assert export(frame, tmp_path / "again.csv").read_text() == out.read_text()


def test_the_runs_export_is_the_runs_csv_and_reads_back_exactly(recorded, tmp_path):
    """``export runs`` writes what ``runs --format csv`` prints: every overview and listing column, exact."""
    from tracker.store.overview import overview
    from tracker.views.tables import runs_exact

    path, truth = recorded
    out = tmp_path / "runs.csv"
    result = CliRunner().invoke(main, ["--db", path, "export", "runs", "--out", str(out)])
    assert result.exit_code == 0 and "Wrote 3 rows of the runs report" in result.output, result.output
    printed = CliRunner().invoke(main, ["--db", path, "runs", "--format", "csv"]).output
    assert out.read_text() == printed
    store = Store(path)
    columns, rows = runs_exact(overview(store.engine, heartbeat_timeout=store.heartbeat_timeout))
    back = read_csv(out)
    assert list(back.columns) == columns
    for i, column in enumerate(columns):
        assert [_cell(v) for v in back[column]] == [_cell(row[i]) for row in rows], column
    assert {"param:lr", "best", "best_epoch", "host", "pid", "heartbeat_at"} <= set(columns)
    best = dict(zip(back["name"], back["best"]))
    assert set(back["metric"]) == {"loss"}  # the stopper's monitor
    assert best["validated"] == min(truth["validated"]["history"]["loss"])  # exact


def _cell(value):
    """A comparable form of a cell: missing, NaN, a number (by its bits) or text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "<missing>"
    if isinstance(value, (float, np.floating)):
        return "NaN" if value != value else ("float", bits(float(value)))
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return ("float", bits(float(value)))
    return str(value)


def test_export_to_json_is_a_list_of_row_objects_with_exact_floats(recorded, tmp_path):
    path, truth = recorded
    out = export(history_report(Store(path), ["stopped"]), tmp_path / "h.json")
    rows = json.loads(out.read_text())
    assert [r["stopped:loss"] for r in rows] == truth["stopped"]["history"]["loss"]


def test_csv_export_neutralises_formula_injection_unless_told_not_to(tmp_path):
    frame = pd.DataFrame({"name": ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "plain"], "value": [1.0, -2.0, 3.0, 4.0, 5.0]})
    safe = pd.read_csv(export(frame, tmp_path / "safe.csv"))
    assert list(safe["name"]) == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "plain"]
    assert list(safe["value"]) == [1.0, -2.0, 3.0, 4.0, 5.0]  # numbers are not text cells
    raw = pd.read_csv(export(frame, tmp_path / "raw.csv", neutralise_formulas=False))
    assert list(raw["name"])[0] == "=HYPERLINK(\"http://x\")"


def test_runs_sorted_by_best_and_final_metric(recorded):
    path, truth = recorded
    store = Store(path)
    best = {n: min(t["history"]["loss"]) for n, t in truth.items()}
    ranked = store.runs(sort="best:loss")
    assert list(ranked["name"]) == sorted(best, key=best.get)
    assert list(ranked["loss"]) == sorted(best.values())
    final = {n: t["history"]["mean_absolute_error"][-1] for n, t in truth.items()}
    ranked = store.runs(sort="final:mean_absolute_error:max")
    assert list(ranked["name"]) == sorted(final, key=final.get, reverse=True)
    only_val = store.runs(sort="best:val_loss")
    assert list(only_val["name"])[0] == "validated" and only_val["val_loss"][1:].isna().all()


@pytest.mark.parametrize(
    "kwargs, names",
    [
        ({"tags": {"exp": "a"}}, ["stopped", "scheduled"]),
        ({"params": {"lr": 0.05}}, ["validated"]),
        ({"params": {"lr": 0.1}, "tags": {"exp": "a"}}, ["stopped", "scheduled"]),
        ({"name": "s*"}, ["stopped", "scheduled"]),
        ({"name": "?alidated"}, ["validated"]),
        ({"status": "finished"}, ["stopped", "validated", "scheduled"]),
        ({"status": ["failed"]}, []),
        ({"name": "x' OR '1'='1"}, []),
        ({"tags": {"exp' OR 1=1 --": "a"}}, []),
        ({"params": {"lr": "0.1); DROP TABLE runs; --"}}, []),
        ({"name": "%"}, []),
    ],
)
def test_runs_filters_use_bound_parameters(recorded, kwargs, names):
    path, _ = recorded
    assert list(Store(path).runs(**kwargs)["name"]) == names
    assert sql(path, "SELECT count(*) FROM runs")[0][0] == 3


def test_unknown_sort_or_status_is_one_sentence(recorded):
    path, _ = recorded
    with pytest.raises(ValueError, match="Unknown sort 'bestloss'"):
        Store(path).runs(sort="bestloss")
    with pytest.raises(ValueError, match="Unknown status 'done'"):
        Store(path).runs(status="done")


def test_run_summary_and_tidy_frames(recorded):
    path, truth = recorded
    store = Store(path)
    summary = store.run("stopped")
    assert summary["run"]["id"] == truth["stopped"]["run_id"] and summary["params"] == {"lr": 0.1, "patience": 0}
    assert summary["tags"] == {"exp": "a"} and list(summary["phases"]["phase"]) == ["fit"]
    assert len(summary["restores"]) == 1 and len(summary["early_stops"]) == 1
    tidy = store.epochs("validated", tidy=True)
    assert set(tidy["key"]) == set(truth["validated"]["history"])
    loss = tidy[tidy["key"] == "val_loss"].sort_values("epoch")
    assert list(loss["value"]) == truth["validated"]["history"]["val_loss"]
    tidy_batches = store.batches("validated", tidy=True)
    assert set(tidy_batches["key"]) == {"loss", "mean_absolute_error"}
    with pytest.raises(UnknownRunError):
        store.run("nope")


@pytest.mark.parametrize(
    "args, expect",
    [
        (["runs", "--sort", "best:loss", "--format", "json"], "stopped"),
        (["runs", "--tag", "exp=b"], "validated"),
        (["runs", "--param", "lr=0.05", "--format", "csv"], "validated"),
        (["show", "stopped"], "EarlyStoppingAtMinLoss"),
        (["show", "stopped", "--format", "json"], '"restored_epoch"'),
        (["batches", "validated", "--phase", "validation"], "mean_absolute_error"),
        (["lr", "scheduled"], "CustomLearningRateScheduler"),
        (["lr", "scheduled", "--series", "--format", "csv"], "phase_begin"),
        (["early-stops", "stopped", "--format", "csv"], "EarlyStoppingAtMinLoss"),
        (["restores"], "EarlyStoppingAtMinLoss"),
        (["compare", "stopped", "validated"], "param:lr"),
        (["db", "check"], "ok"),
    ],
)
def test_cli_read_commands(recorded, args, expect):
    path, _ = recorded
    result = CliRunner().invoke(main, ["--db", path, *args])
    assert result.exit_code == 0, result.output
    assert expect in result.output


def test_plot_command_writes_a_png(recorded, tmp_path):
    path, _ = recorded
    out = tmp_path / "curves.png"
    result = CliRunner().invoke(main, ["--db", path, "plot", "stopped", "scheduled", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_command_imports_neither_pandas_numpy_keras_nor_the_orm(recorded):
    import subprocess

    path, _ = recorded
    code = (
        "import sys\n"
        "from tracker.cli import main\n"
        f"main(['--db', {path!r}, 'runs', '--sort', 'best:loss'], standalone_mode=False)\n"
        "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'numpy', 'tensorflow', 'keras', 'alembic')\n"
        "                      or m.startswith('sqlalchemy.orm') or m == 'tracker.db.tables'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout
