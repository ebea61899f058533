"""The command line: every command works, has help, is documented, fails cleanly."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model

from tracker import TrackingCallback
from tracker.cli import main
from tracker.db.migrate import VERSION_TABLE, head_revision

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A database with one finished run of the guide's model."""
    path = str(tmp_path_factory.mktemp("cli") / "runs.db")
    x, y = guide_data()
    cb = TrackingCallback(path, run_name="cli-run")
    guide_model().fit(x, y, batch_size=32, epochs=3, validation_split=0.25, callbacks=[cb], verbose=0)
    return path, cb.run_id


def run_cli(*args, env=None):
    result = CliRunner().invoke(main, list(args), env=env)
    return result


def all_commands(group=main, prefix=()):
    for name, command in group.commands.items():
        path = prefix + (name,)
        yield path, command
        if isinstance(command, click.Group):
            yield from all_commands(command, path)


def test_every_command_has_help_text_and_a_readme_entry():
    readme = (REPO / "README.md").read_text()
    commands = list(all_commands())
    assert {" ".join(p) for p, _ in commands} >= {"runs", "epochs", "db", "db upgrade", "db current", "demo"}
    for path, command in commands:
        name = " ".join(path)
        assert command.help and command.help.strip(), f"{name} has no help text"
        result = run_cli(*path, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output
        assert f"tracker {name}" in readme or f"`{name}`" in readme, f"README does not document {name}"


def test_runs_lists_the_run(recorded):
    path, run_id = recorded
    result = run_cli("--db", path, "runs")
    assert result.exit_code == 0, result.output
    assert run_id[:8] in result.output and "cli-run" in result.output and "finished" in result.output
    assert run_id in run_cli("--db", path, "runs", "--wide").output


@pytest.mark.parametrize("placement", ["before", "after"])
def test_db_option_goes_before_or_after_the_command(recorded, placement):
    path, run_id = recorded
    args = ["--db", path, "runs"] if placement == "before" else ["runs", "--db", path]
    result = run_cli(*args, env={"TRACKER_DB": "/nonexistent/elsewhere.db"})
    assert result.exit_code == 0 and run_id[:8] in result.output


def test_tracker_db_environment_variable_is_the_default(recorded):
    path, run_id = recorded
    result = run_cli("runs", env={"TRACKER_DB": path})
    assert result.exit_code == 0 and run_id[:8] in result.output


@pytest.mark.parametrize("ref", ["full", "prefix", "name", "latest"])
def test_epochs_accepts_every_kind_of_run_reference(recorded, ref):
    path, run_id = recorded
    arg = {"full": run_id, "prefix": run_id[:6], "name": "cli-run", "latest": "latest"}[ref]
    result = run_cli("--db", path, "epochs", arg, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert {"loss", "val_loss", "mean_absolute_error", "val_mean_absolute_error"} <= set(rows[0])


def test_csv_output_is_parseable(recorded):
    import io

    import pandas as pd

    path, run_id = recorded
    result = run_cli("--db", path, "epochs", run_id, "--format", "csv")
    frame = pd.read_csv(io.StringIO(result.output))
    assert list(frame["epoch"]) == [0, 1, 2]


def test_db_upgrade_and_current(tmp_path):
    path = str(tmp_path / "fresh.db")
    missing = run_cli("--db", path, "db", "current")
    assert missing.exit_code != 0 and "No tracker database" in missing.output
    upgraded = run_cli("--db", path, "db", "upgrade")
    head = head_revision()
    # A path with no file (a typo, say) gets a new database, and the command says so.
    assert upgraded.exit_code == 0 and upgraded.output == \
        f"Created {path}: a new, empty database at schema revision {head} (head); no file was there.\n"
    current = run_cli("--db", path, "db", "current")
    assert current.exit_code == 0 and "(head)" in current.output
    again = run_cli("--db", path, "db", "upgrade")
    assert again.exit_code == 0 and again.output == f"{path} is at schema revision {head} (head).\n"


def _not_sqlite(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    return str(path)


def _fake_header(tmp_path):
    """A file that starts like SQLite ("SQLite format 3\\0") and is garbage after it."""
    path = tmp_path / "fake.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    return str(path)


def _newer(tmp_path):
    path = str(tmp_path / "newer.db")
    run_cli("--db", path, "db", "upgrade")
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'zzzz'")
    return path


@pytest.mark.parametrize(
    "make, args, fragment",
    [
        (lambda t: str(t / "missing.db"), ["runs"], "No tracker database at"),
        (_not_sqlite, ["runs"], "is not a SQLite database"),
        (_fake_header, ["runs"], "is not a SQLite database"),
        (_fake_header, ["db", "current"], "is not a SQLite database"),
        (_fake_header, ["db", "check"], "is not a SQLite database"),
        (_newer, ["runs"], "newer than this tracker knows"),
        (None, ["epochs", "no-such-run"], "No run matches 'no-such-run'"),
    ],
)
def test_bad_input_gets_one_sentence_and_a_non_zero_exit(tmp_path, recorded, make, args, fragment):
    path = make(tmp_path) if make else recorded[0]
    result = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), "--db", path, *args], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_read_commands_import_neither_tensorflow_nor_keras(recorded):
    path, _ = recorded
    code = (
        "import sys\n"
        "from tracker.cli import main\n"
        f"main(['--db', {path!r}, 'runs'], standalone_mode=False)\n"
        f"main(['--db', {path!r}, 'epochs', 'latest'], standalone_mode=False)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout


def test_installed_command_is_the_same_cli_as_python_cli_py(recorded):
    path, _ = recorded
    script = Path(sys.executable).parent / "tracker"
    via_script = subprocess.run([str(script), "--db", path, "runs"], capture_output=True, text=True, check=True)
    via_file = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), "--db", path, "runs"], capture_output=True, text=True, check=True
    )
    assert via_script.stdout == via_file.stdout and "cli-run" in via_file.stdout


def test_demo_trains_on_offline_digits_and_prints_the_runs(tmp_path):
    path = str(tmp_path / "demo.db")
    result = run_cli("--db", path, "demo", "--epochs", "3")
    assert result.exit_code == 0, result.output
    assert "demo-early-stopping" in result.output and "demo-lr-schedule" in result.output
    assert f"Database: {Path(path).resolve()}" in result.output
    with sqlite3.connect(path) as conn:
        statuses = conn.execute("SELECT name, status FROM runs ORDER BY started_at").fetchall()
        kinds = conn.execute(
            "SELECT kind FROM phases JOIN runs ON runs.id = phases.run_id "
            "WHERE runs.name = 'demo-early-stopping' AND kind != 'validation' ORDER BY seq"
        ).fetchall()
    assert statuses == [("demo-early-stopping", "finished"), ("demo-lr-schedule", "finished")]
    assert kinds == [("fit",), ("evaluate",), ("predict",)]
