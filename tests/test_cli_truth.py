"""The command line on a database of real, awkward fits: never a traceback, NaN kept apart from missing.

The database holds:

* ``nan-stop``: TerminateOnNaN stops in batch 0 (a stop with no monitor);
* ``es-restore``: EarlyStopping(monitor="val_loss", restore_best_weights=True)
  stops and restores, beside a LearningRateScheduler; evaluate and predict
  join the run;
* ``nan-values``: a metric that is NaN in every epoch, a logged key that is
  NaN in epoch 1 only, and validation every second epoch
  (``validation_freq=2``), so ``val_*`` keys are absent from epochs 0 and 2.

With pandas 3, a stop without a monitor beside one with a monitor turns the
missing monitor into a float NaN, which crashed ``restores`` and ``export
early-stopping``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import truth_helpers as th
from tracker import TrackingCallback

FORMATS = ("table", "csv", "json")


def nan_metric(y_true, y_pred):
    """A metric that is always NaN."""
    return keras.ops.mean(y_pred) * float("nan")


class FlakyKey(keras.callbacks.Callback):
    """Logs ``flaky``: NaN in epoch 1, 0.5 otherwise."""

    def on_epoch_end(self, epoch, logs=None):
        logs["flaky"] = math.nan if epoch == 1 else 0.5


@pytest.fixture(scope="module")
def awkward_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli-truth") / "runs.db")
    x, y = th.make_data(64, features=16)
    runs = {}

    y_nan = y.copy()
    y_nan[5] = np.nan
    cb = TrackingCallback(path, run_name="nan-stop")
    th.make_model(learning_rate=0.01, features=16).fit(
        x, y_nan, batch_size=16, epochs=3, shuffle=False, callbacks=[cb, keras.callbacks.TerminateOnNaN()], verbose=0
    )
    runs["nan-stop"] = cb.run_id

    cb = TrackingCallback(path, run_name="es-restore")
    model = th.make_model(learning_rate=0.01, features=16)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    kick = keras.callbacks.LearningRateScheduler(lambda e, lr: 5.0 if e == 3 else 0.01)
    model.fit(x, y, batch_size=16, epochs=8, validation_split=0.25, callbacks=[kick, cb, stopper], verbose=0)
    assert stopper.stopped_epoch > 0, "the setup must stop early"
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    model.predict(x, batch_size=16, callbacks=[cb], verbose=0)
    runs["es-restore"] = cb.run_id

    cb = TrackingCallback(path, run_name="nan-values")
    model = th.make_model(learning_rate=0.01, features=16, metrics=("mean_absolute_error", nan_metric))
    history = model.fit(
        x, y, batch_size=16, epochs=4, validation_split=0.25, validation_freq=2, callbacks=[FlakyKey(), cb], verbose=0
    )
    runs["nan-values"] = cb.run_id
    return path, runs, history.history


def _read_commands(runs: dict[str, str]) -> list[list[str]]:
    a, b, c = runs["nan-stop"], runs["es-restore"], runs["nan-values"]
    commands = [["runs"], ["runs", "--sort", "best:val_loss"], ["early-stops"], ["restores"], ["compare", a, b, c]]
    commands += [["early-stops", r] for r in (a, b, c)] + [["restores", r] for r in (a, b, c)]
    for r in (a, b, c):
        commands += [["show", r], ["epochs", r], ["epochs", r, "--tidy"], ["lr", r], ["lr", r, "--series"]]
        for phase in ("fit", "validation", "evaluate", "predict"):
            commands += [["batches", r, "--phase", phase], ["batches", r, "--phase", phase, "--tidy"]]
    return commands


def test_every_read_command_in_every_format_exits_cleanly(awkward_db):
    path, runs, _ = awkward_db
    failures = []
    for command in _read_commands(runs):
        for fmt in FORMATS:
            result = th.cli(path, *command, "--format", fmt)
            if command[0] == "show" and fmt == "csv":
                # One CSV cannot hold show's tables: refused in one sentence, never a traceback.
                if result.exit_code != 1 or "--format json" not in result.output or "Traceback" in result.output:
                    failures.append(f"tracker show --format csv: not refused cleanly: {result.output!r}")
                continue
            if result.exit_code != 0 or result.exception is not None or "Traceback" in result.output:
                failures.append(f"tracker {' '.join(command)} --format {fmt}: exit {result.exit_code}, {result.exception!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("suffix", ["csv", "json"])
@pytest.mark.parametrize("report", ["compare", "early-stopping", "history", "lr", "runs"])
def test_every_export_report_writes_its_file(awkward_db, tmp_path, report, suffix):
    path, runs, _ = awkward_db
    failures = []
    for selection in ([], ["--runs", runs["nan-stop"], "--runs", runs["es-restore"]]):
        out = tmp_path / f"{report}-{len(selection)}.{suffix}"
        result = th.cli(path, "export", report, "--out", str(out), *selection)
        if result.exit_code != 0 or result.exception is not None or not out.exists():
            failures.append(f"tracker export {report} {' '.join(selection)}: exit {result.exit_code}, {result.exception!r}")
    assert not failures, "\n".join(failures)


def test_plot_of_every_run_writes_a_png(awkward_db, tmp_path):
    path, runs, _ = awkward_db
    out = tmp_path / "curves.png"
    result = th.cli(path, "plot", *runs.values(), "--out", str(out))
    assert result.exit_code == 0 and result.exception is None, f"{result.output} {result.exception!r}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "command", [["restores"], ["early-stops"], ["export", "early-stopping", "--out", "{tmp}/es.json"]], ids=" ".join
)
def test_the_installed_command_prints_no_traceback(awkward_db, tmp_path, command):
    """The real ``python -m tracker.cli`` process: stderr must hold no traceback."""
    path, _, _ = awkward_db
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--db", path, *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]


# -- NaN is not missing -------------------------------------------------------------------------


def test_a_logged_nan_leaves_the_cli_as_nan_in_json_and_a_missing_value_as_null(awkward_db):
    path, runs, history = awkward_db
    rows = th.cli_json(path, "epochs", runs["nan-values"])
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert [r["nan_metric"] for r in rows] == ["NaN"] * 4
    assert [r["flaky"] for r in rows] == [0.5, "NaN", 0.5, 0.5]
    assert [r["val_loss"] for r in rows][0::2] == [None, None], "no validation in epochs 0 and 2"
    assert [r["val_loss"] for r in rows][1::2] == history["val_loss"], "validation in epochs 1 and 3"
    assert [r["val_nan_metric"] for r in rows] == [None, "NaN", None, "NaN"]


def test_a_logged_nan_leaves_the_cli_as_nan_in_tidy_json(awkward_db):
    path, runs, _ = awkward_db
    rows = th.cli_json(path, "epochs", runs["nan-values"], "--tidy")
    values = {(r["epoch"], r["key"]): r["value"] for r in rows}
    assert [values[(e, "flaky")] for e in range(4)] == [0.5, "NaN", 0.5, 0.5]
    assert (0, "val_loss") not in values and values[(1, "val_nan_metric")] == "NaN"


def test_a_logged_nan_leaves_the_cli_as_nan_in_csv_and_a_missing_value_empty(awkward_db):
    path, runs, _ = awkward_db
    result = th.cli(path, "epochs", runs["nan-values"], "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["nan_metric"] for r in rows] == ["NaN"] * 4
    assert [r["flaky"] for r in rows] == ["0.5", "NaN", "0.5", "0.5"]
    assert [r["val_nan_metric"] for r in rows] == ["", "NaN", "", "NaN"]
    assert [r["val_loss"] for r in rows][0::2] == ["", ""]


def test_batch_nan_leaves_the_cli_as_nan_in_json(awkward_db):
    path, runs, _ = awkward_db
    rows = th.cli_json(path, "batches", runs["nan-values"])
    assert rows and all(r["nan_metric"] == "NaN" for r in rows)
    stop_rows = th.cli_json(path, "batches", runs["nan-stop"])
    assert [r["loss"] for r in stop_rows] == ["NaN"], "TerminateOnNaN stopped after the NaN batch 0"
