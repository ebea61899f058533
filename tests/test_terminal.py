"""Readable in the terminal: tables that fit the width, rounded for people; csv and json exact.

Every read command runs in table mode at widths 80 and 200 against real
fits: a small learning-rate sweep with stops, restores and evaluate calls,
a run that logged a NaN, and a failed run with a long name and error.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model
from rich.cells import cell_len

from tracker import Store, TrackingCallback
from tracker.cli import main
from tracker.cli.base import plural
from tracker.views.export import read_csv
from tracker.views.terminal import Duration, cell_text, format_duration, render_table

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
BROKEN = "a-rather-long-run-name-that-has-to-wrap-in-a-narrow-terminal-window"
ERROR = ("the loss exploded after the warm-up ended and the data loader kept feeding batches of zeros "
         "so this message is much longer than forty characters")


class Odd(keras.callbacks.Callback):
    """Logs ``odd``: 1.5 in epoch 0, NaN in epoch 1, nothing after (a gap)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            logs["odd"] = 1.5
        elif epoch == 1:
            logs["odd"] = float("nan")


class Explode(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError(ERROR)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("terminal") / "sweep.db")
    x, y = guide_data(n=64)
    histories, evaluations = {}, {}
    for lr in (0.01, 0.1, 1.0):
        cb = TrackingCallback(db, run_name=f"lr-{lr:g}", params={"lr": lr, "batch_size": 16}, tags={"sweep": "lr"})
        model = guide_model(learning_rate=lr)
        callbacks = [cb, keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
                     keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)]
        histories[f"lr-{lr:g}"] = model.fit(x, y, batch_size=16, epochs=6, validation_split=0.25,
                                            callbacks=callbacks, verbose=0).history
        evaluations[f"lr-{lr:g}"] = model.evaluate(x, y, batch_size=32, callbacks=[cb], verbose=0, return_dict=True)
    odd = TrackingCallback(db, run_name="nan-logger", params={"lr": 0.1, "batch_size": 16})
    histories["nan-logger"] = guide_model().fit(x, y, batch_size=16, epochs=3, callbacks=[Odd(), odd],
                                                verbose=0).history
    broken = TrackingCallback(db, run_name=BROKEN, params={"lr": 0.1, "batch_size": 32})
    with pytest.raises(RuntimeError):
        guide_model().fit(x, y, batch_size=32, epochs=3, callbacks=[broken, Explode()], verbose=0)
    return SimpleNamespace(db=db, histories=histories, evaluations=evaluations)


def cli(db, *args, width=None):
    env = {"COLUMNS": str(width)} if width else {}
    return CliRunner().invoke(main, ["--db", db, *args], env=env)


READ_COMMANDS = [
    ["runs"], ["runs", "--wide"], ["runs", "--sort", "best:val_loss"], ["runs", "--sort", "final:loss"],
    ["show", "lr-0.1"], ["show", BROKEN], ["show", "nan-logger"],
    ["epochs", "nan-logger"], ["epochs", "lr-0.1"], ["epochs", "lr-0.1", "--tidy"],
    ["batches", "lr-0.1"], ["batches", "lr-0.1", "--phase", "validation"], ["batches", "lr-0.1", "--phase", "evaluate"],
    ["lr", "lr-0.1"], ["lr", "lr-0.1", "--series"], ["early-stops"], ["restores"],
    ["compare", "lr-0.01", "lr-0.1", "lr-1", "nan-logger", BROKEN],
]
FLOAT = re.compile(r"(?<![\w.:-])-?(\d+\.\d+|\d+(?:\.\d+)?e[+-]?\d+)(?![\w.])")


def significant_digits(token):
    mantissa = token.lstrip("-").split("e")[0]
    return len(mantissa.replace(".", "").lstrip("0"))


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("args", READ_COMMANDS, ids=[" ".join(a) for a in READ_COMMANDS])
def test_every_read_command_fits_the_width_with_rounded_floats(sweep, args, width):
    result = cli(sweep.db, *args, width=width)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) >= 3
    too_wide = [line for line in lines if cell_len(line) > width]
    assert too_wide == [], f"{len(too_wide)} lines wider than {width}"
    floats = [m.group(0) for m in FLOAT.finditer(result.output)]
    assert [f for f in floats if significant_digits(f) > 6] == []
    assert not re.search(r"(?<![\w.])\d+\.0(?![\w.])", result.output), "an int printed as a float"
    assert not re.search(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d", result.output), "a time with microseconds"


def test_runs_by_default_answers_which_run_is_best(sweep):
    store = Store(sweep.db)
    result = cli(sweep.db, "runs", width=300)
    header, rule, *rows = result.output.splitlines()
    for column in ("run_id", "name", "status", "started_at", "duration", "epochs", "param:lr", "param:batch_size",
                   "best:val_loss", "best_epoch", "stopped_epoch", "restored_epoch", "eval:loss",
                   "eval:mean_absolute_error"):
        assert column in header.split(), column
    for hidden in ("pid", "host", "heartbeat_at", "phases", "ended_at"):
        assert hidden not in header.split()
    by_name = {row.split()[1]: row for row in rows}
    for name, history in sweep.histories.items():
        if "val_loss" not in history:
            continue
        run_id = store.resolve(name)
        cells = by_name[name].split()
        assert cells[0] == run_id[:8]
        best = min(history["val_loss"])
        assert cell_text(best) in cells and str(history["val_loss"].index(best)) in cells
        assert cell_text(sweep.evaluations[name]["loss"]) in cells
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", cells[3]) and re.fullmatch(r"\d\d:\d\d:\d\dZ", cells[4])
    assert any(BROKEN in row and "failed" in row for row in rows)


def test_runs_wide_shows_everything_and_full_ids(sweep):
    store = Store(sweep.db)
    output = cli(sweep.db, "runs", "--wide", width=400).output
    for column in ("ended_at", "phases", "model_name", "param_count", "host", "pid", "heartbeat_at"):
        assert column in output.splitlines()[0].split()
    assert all(rid in output for rid in store.runs()["run_id"])


def test_csv_and_json_stay_exact_nan_apart_from_missing(sweep, tmp_path):
    history = sweep.histories["nan-logger"]
    rows = json.loads(cli(sweep.db, "epochs", "nan-logger", "--format", "json").output)
    assert [r["odd"] for r in rows] == [1.5, "NaN", None]
    assert [r["loss"] for r in rows] == history["loss"]  # every digit
    assert all(r["started_at"].endswith("+00:00") for r in rows)
    out = tmp_path / "epochs.csv"
    out.write_text(cli(sweep.db, "epochs", "nan-logger", "--format", "csv").output)
    back = read_csv(out)
    assert back["odd"][0] == 1.5 and back["odd"][1] != back["odd"][1] and back["odd"].isna()[2]
    assert list(back["loss"]) == history["loss"] and str(back["epoch"].dtype) == "Int64"
    runs = {r["name"]: r for r in json.loads(cli(sweep.db, "runs", "--format", "json").output)}
    assert runs["lr-0.1"]["eval:loss"] == sweep.evaluations["lr-0.1"]["loss"]
    assert runs["lr-0.1"]["best"] == min(sweep.histories["lr-0.1"]["val_loss"])
    assert isinstance(runs["lr-0.1"]["epochs"], int) and isinstance(runs["lr-0.1"]["pid"], int)
    assert runs["nan-logger"]["restored_epoch"] is None


def test_show_has_evaluate_results_and_the_whole_error(sweep):
    shown = cli(sweep.db, "show", "lr-0.1", width=100).output
    assert "evaluations:" in shown and cell_text(sweep.evaluations["lr-0.1"]["mean_absolute_error"]) in shown
    broken = cli(sweep.db, "show", BROKEN, width=60).output
    flat = " ".join(broken.split())
    assert ERROR in flat and BROKEN in broken.replace("\n", "").replace(" ", "")
    assert max(cell_len(line) for line in broken.splitlines()) <= 60
    summary = json.loads(cli(sweep.db, "show", "lr-0.1", "--format", "json").output)
    assert summary["evaluations"][0]["loss"] == sweep.evaluations["lr-0.1"]["loss"]
    assert summary["run"]["started_at"].endswith("+00:00")


def test_show_as_csv_is_refused_in_one_sentence(sweep):
    result = cli(sweep.db, "show", "lr-0.1", "--format", "csv")
    assert result.exit_code == 1 and "--format json" in result.output and "Traceback" not in result.output


def test_compare_has_evaluate_columns(sweep):
    rows = json.loads(cli(sweep.db, "compare", "lr-0.1", "nan-logger", "--format", "json").output)
    assert rows[0]["eval:loss"] == sweep.evaluations["lr-0.1"]["loss"] and rows[1]["eval:loss"] is None
    table = cli(sweep.db, "compare", "lr-0.1", "nan-logger", width=100).output
    assert re.search(r"^eval:loss +\S+", table, re.MULTILINE)


def test_early_stops_name_the_run(sweep):
    header = cli(sweep.db, "early-stops", "--format", "csv").output.splitlines()[0].split(",")
    assert header[:2] == ["run_id", "name"]
    assert "lr-0.1" in cli(sweep.db, "early-stops", width=100).output


def test_unknown_sort_key_names_the_known_keys(sweep):
    result = cli(sweep.db, "runs", "--sort", "best:val_los")
    assert result.exit_code == 1
    assert "val_loss, val_mean_absolute_error" in result.output and "Did you mean 'val_loss'?" in result.output


def test_unknown_run_suggests_close_names(sweep):
    result = cli(sweep.db, "show", "lr-0.2")
    assert result.exit_code == 1 and "Did you mean 'lr-0.1'" in result.output


def test_a_closed_pipe_ends_quietly_with_status_0(sweep):
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "--db", sweep.db, "batches", "lr-0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader has gone (like `| head`) before the first write
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.decode()) == (0, "")


@pytest.mark.parametrize("db", sorted(DATA.glob("rev*.db")), ids=lambda p: p.name)
def test_read_commands_leave_an_older_database_unchanged(tmp_path, db):
    path = tmp_path / db.name
    shutil.copy(db, path)
    before = path.read_bytes()
    for args in (["runs"], ["show", "latest"], ["epochs", "latest"], ["early-stops"], ["compare", "latest"],
                 ["watch", "latest"], ["plot", "latest", "--out", str(tmp_path / "p.png")]):
        result = cli(str(path), *args)
        assert result.exit_code == 1 and "db upgrade" in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1
    assert "older than head" in cli(str(path), "db", "current").output
    assert "run 'tracker db upgrade'" in cli(str(path), "db", "check").output
    assert path.read_bytes() == before
    assert not (tmp_path / "p.png").exists()


def test_plural_and_durations():
    assert [plural(n, "row") for n in (0, 1, 2, 1024)] == ["0 rows", "1 row", "2 rows", "1,024 rows"]
    assert [format_duration(s) for s in (0.84, 12.34, 245, 7380, 180000)] == ["0.84s", "12.3s", "4m05s", "2h03m", "2d02h"]
    assert cell_text(Duration(61)) == "1m01s" and cell_text(3) == "3" and cell_text(0.1 + 0.2) == "0.3"
    assert cell_text(float("nan")) == "NaN" and cell_text(None) == "" and cell_text(True) == "yes"


def test_wide_characters_count_as_two_cells():
    text = render_table(["name", "loss"], [["学習率-スイープ🎉 with a long tail of words", 0.5]], width=24)
    assert max(cell_len(line) for line in text.splitlines()) <= 24
    assert "学習率-スイープ🎉" in text and "0.5" in text


def test_a_table_too_wide_continues_below_repeating_its_keys():
    columns = ["run_id", "name", *(f"metric_{i}" for i in range(12))]
    rows = [["abcdef12", "first", *(i / 7 for i in range(12))], ["0123abcd", "second", *(i * 3.5 for i in range(12))]]
    text = render_table(columns, rows, width=80, keys=2)
    blocks = text.split("\n\n")
    assert len(blocks) >= 2
    for block in blocks:  # each block: headers (some wrapped at _), a rule, the rows with their keys
        lines = block.splitlines()
        rule = next(i for i, line in enumerate(lines) if line.startswith("─"))
        assert lines[rule - 1].startswith("run_id    name") and lines[rule + 2].startswith("0123abcd  second")
    assert max(cell_len(line) for line in text.splitlines()) <= 80
    assert text.count("0.714286") == 1 and text.count("38.5") == 1  # every cell once
