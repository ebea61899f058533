"""Hostile text from the record never drives a terminal or a spreadsheet (issue 17, points 11, 12, 16, 28).

A real fit writes run names, params, tags, logs keys and logs values that
hold terminal escapes (OSC title, OSC 52 clipboard, OSC 8 hyperlinks, CSI),
NUL, tab, newline, bidi overrides, spreadsheet formulas and megabyte
strings, on SQLite and on PostgreSQL. Tables show them escaped and cut;
CSV neutralises formulas (headers too) and quotes line breaks; JSON and
``--keep-formulas`` CSV stay exact.
"""

import csv
import io
import json

import keras
import pytest
from click.testing import CliRunner
from conftest import BACKENDS, guide_data, guide_model
from rich.cells import cell_len

from tracker import Store, TrackingCallback
from tracker.cli import main
from tracker.views.export import read_csv
from tracker.views.output import render
from tracker.views.terminal import TEXT_LIMIT, printable

TITLE = "\x1b]0;pwned\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
LINK = "\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
NAME = f"run{TITLE}\n\t\x00x\u202egnp.exe\x9b31m"
EVIL_KEY = f"loss{CLIPBOARD}"
FORMULA_KEY = "=SUM(A1:A9)"
FORMULA = "\r=1+1"
BIG = 1_000_000
LONG_NAME = "n" * 100_000
RAW = ("\x1b", "\x00", "\x07", "\x9b", "\u202e", "\t")  # none of these may reach the terminal


class Hostile(keras.callbacks.Callback):
    """Adds hostile logs (listed before the tracker, which records what it is given)."""

    def on_train_batch_end(self, batch, logs=None):
        logs[EVIL_KEY] = LINK
        logs["wordy"] = "w" * 5000

    def on_epoch_end(self, epoch, logs=None):
        logs[EVIL_KEY] = f"{LINK}{TITLE}"
        logs[FORMULA_KEY] = FORMULA
        logs["neg"] = -1.5
        logs["blob"] = "b" * BIG


@pytest.fixture(scope="module", params=BACKENDS)
def hostile(request, tmp_path_factory):
    if request.param == "sqlite":
        db = str(tmp_path_factory.mktemp("hostile") / "runs.db")
    else:
        server = request.getfixturevalue("pg_server")
        db = server.new()
        request.addfinalizer(lambda: server.drop(db))
    x, y = guide_data(n=32)
    params = {f"p{LINK}": CLIPBOARD, "big": "p" * BIG, "formula": "@SUM(1)", "neg": -1.5}
    cb = TrackingCallback(db, run_name=NAME, params=params, tags={f"t{TITLE}": LINK, "big": "t" * BIG})
    guide_model().fit(x, y, batch_size=16, epochs=2, callbacks=[Hostile(), cb], verbose=0)
    long = TrackingCallback(db, run_name=LONG_NAME, params={"big": "q"})
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[long], verbose=0)
    return db, cb.run_id, long.run_id


def parse(text):
    """CSV records as a spreadsheet would split them (cells of any length)."""
    limit = csv.field_size_limit(10**9)
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    finally:
        csv.field_size_limit(limit)


def cli(db, *args, width=120):
    return CliRunner().invoke(main, ["--db", db, *args], env={"COLUMNS": str(width)}, color=True)


TABLES = [
    ["runs"], ["runs", "--wide"], ["show", "{id}"], ["epochs", "{id}"], ["epochs", "{id}", "--tidy"],
    ["batches", "{id}"], ["batches", "{id}", "--tidy"], ["lr", "{id}"], ["compare", "{id}", "{long}"],
    ["show", "{long}"], ["watch", "{id}"],
]


@pytest.mark.parametrize("args", TABLES, ids=[" ".join(a) for a in TABLES])
def test_tables_show_control_characters_escaped_and_long_text_cut(hostile, args):
    db, rid, long = hostile
    result = cli(db, *(a.format(id=rid, long=long) for a in args))
    assert result.exit_code == 0, result.output[-2000:]
    out = result.output
    assert [c for c in RAW if c in out] == [], "a control character reached the terminal"
    assert len(out) < 60_000, f"{len(out):,} characters printed"  # not megabytes
    if args[0] != "watch":  # into a pipe, watch writes a log line per epoch, not a table
        assert max(cell_len(line) for line in out.splitlines()) <= 120
    if args[0] in ("runs", "show", "compare", "watch") and "{long}" not in args:
        assert "run\\x1b]0;pwned\\x07\\n\\t\\x00x\\u202egnp.exe\\x9b31m" in out.replace("\n", "")
    if args[0] in ("epochs", "watch"):  # the marker gives the full length (wrapped cells: its number stays whole)
        assert f"({BIG:,}" in out
    if args[0] == "batches":
        assert "(5,000" in out


def test_show_cuts_params_and_tags_and_keeps_the_whole_value_in_json(hostile):
    db, rid, long = hostile
    table = cli(db, "show", rid).output
    assert table.count(f"({BIG:,}") >= 2 and "p\\x1b]8;;http://evil.example/" in table
    exact = json.loads(cli(db, "show", rid, "--format", "json").output)
    assert exact["run"]["name"] == NAME and exact["params"]["big"] == "p" * BIG
    assert exact["tags"][f"t{TITLE}"] == LINK and exact["params"][f"p{LINK}"] == CLIPBOARD
    for args in (["runs"], ["show", rid], ["epochs", rid], ["compare", rid, long]):
        text = cli(db, *args, "--format", "json").output  # exact JSON, with DEL, C1 and bidi as \u escapes
        assert [c for c in ("\x1b", "\x9b", "\u202e", "\x7f") if c in text] == []
        assert "\\u202e" in text or args[0] == "epochs"
    runs = json.loads(cli(db, "runs", "--format", "json").output)
    assert sorted(r["name"] for r in runs) == sorted([NAME, LONG_NAME])
    assert f"… ({len(LONG_NAME):,} characters)" in cli(db, "runs", width=800).output


def test_json_and_csv_keep_every_logged_text_exactly(hostile, tmp_path):
    db, rid, _ = hostile
    rows = json.loads(cli(db, "epochs", rid, "--format", "json").output)
    assert [r[EVIL_KEY] for r in rows] == [f"{LINK}{TITLE}"] * 2 and rows[0]["blob"] == "b" * BIG
    assert [r[FORMULA_KEY] for r in rows] == [FORMULA] * 2
    out = tmp_path / "epochs.csv"
    out.write_bytes(cli(db, "epochs", rid, "--format", "csv").stdout_bytes)  # as written, CRs kept
    records = parse(out.read_bytes().decode("utf-8"))
    assert len(records) == 3 and len({len(r) for r in records}) == 1, "a CR or LF started a new row"
    header = records[0]
    assert f"'{FORMULA_KEY}" in header and FORMULA_KEY not in header  # headers are guarded too
    formula = header.index(f"'{FORMULA_KEY}")
    assert [r[formula] for r in records[1:]] == [f"'{FORMULA}"] * 2
    assert [r[header.index("neg")] for r in records[1:]] == ["-1.5", "-1.5"]  # numbers are never prefixed
    back = read_csv(out)  # cells longer than the csv module's 128 KiB default are read too
    assert back["blob"].tolist() == ["b" * BIG] * 2 and back[f"'{FORMULA_KEY}"].tolist() == [f"'{FORMULA}"] * 2


def test_an_error_that_quotes_a_run_name_is_escaped(hostile):
    db, _, _ = hostile
    result = cli(db, "show", NAME[:-1] + "Q")  # close to the hostile name: suggested back
    assert result.exit_code == 1 and "Did you mean" in result.output
    assert [c for c in RAW if c in result.output] == [] and "\\x1b]0;pwned\\x07" in result.output
    assert len(result.output.strip().splitlines()) == 1


CELLS = ["=1+1", "+1", "-x", "@SUM(1)", "\t=2", "\r=3", "\n=4", "\uff1d5", "plain", "a\rb", "a\nb", 'q"x']


def test_csv_neutralises_every_leading_formula_character_and_quotes_line_breaks():
    text = render([*CELLS, "num"], [[*CELLS, -1.5], [*CELLS, 2]], "csv")
    records = parse(text)
    assert len(records) == 3 and all(len(r) == len(CELLS) + 1 for r in records)
    for record in records:
        for cell, original in zip(record, CELLS):
            dangerous = original[0] in "=+-@\t\r\n\uff1d"
            assert cell == (f"'{original}" if dangerous else original)
    assert [r[-1] for r in records] == ["num", "-1.5", "2"]
    raw = render(CELLS, [CELLS], "csv", neutralise_formulas=False)
    assert parse(raw) == [CELLS, CELLS]


def test_export_runs_neutralises_formulas_by_default_and_keeps_them_only_when_asked(db, tmp_path):
    x, y = guide_data(n=16)
    name = "=HYPERLINK(\"http://evil.example\",\"x\")\r\n=1+1"
    cb = TrackingCallback(db, run_name=name, params={"cmd": "@SUM(1)", "lr": -1.5}, tags={"t": "+1"})
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    plain = TrackingCallback(db, run_name="plain", params={"cmd": "sum", "lr": 0.5})  # params differ: shown
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[plain], verbose=0)
    guarded, kept = tmp_path / "guarded.csv", tmp_path / "kept.csv"
    assert CliRunner().invoke(main, ["--db", db, "export", "runs", "--out", str(guarded)]).exit_code == 0
    records = parse(guarded.read_bytes().decode("utf-8"))
    assert len(records) == 3, "the name's line break started a new row"
    row = dict(zip(records[0], records[1]))
    assert row["name"] == f"'{name}" and row["param:cmd"] == "'@SUM(1)" and row["param:lr"] == "-1.5"
    done = CliRunner().invoke(main, ["--db", db, "export", "runs", "--out", str(kept), "--keep-formulas"])
    assert done.exit_code == 0
    back = read_csv(kept)  # exact round trip
    assert back["name"].tolist() == [name, "plain"] and back["param:cmd"].tolist() == ["@SUM(1)", "sum"]
    assert back["param:lr"].tolist() == [-1.5, 0.5] and back["run_id"].tolist() == [cb.run_id, plain.run_id]


def test_export_history_guards_the_run_names_in_its_header(db, tmp_path):
    x, y = guide_data(n=16)
    cb = TrackingCallback(db, run_name="=cmd|' /C calc'!A0")
    guide_model().fit(x, y, batch_size=16, epochs=2, callbacks=[cb], verbose=0)
    out = tmp_path / "history.csv"
    assert CliRunner().invoke(main, ["--db", db, "export", "history", "--out", str(out)]).exit_code == 0
    header = parse(out.read_bytes().decode("utf-8"))[0]
    run_columns = [h for h in header if "cmd" in h]
    assert run_columns and all(h.startswith("'=cmd") for h in run_columns), header
    assert Store(db).runs()["name"].tolist() == ["=cmd|' /C calc'!A0"]


def test_printable_escapes_c0_del_c1_bidi_and_cuts_with_the_full_length():
    assert printable("a\x1b[2Jb\x7f\x85\u2066\u202a\udcff") == "a\\x1b[2Jb\\x7f\\x85\\u2066\\u202a\\udcff"
    assert printable("ünïcødé 名前 🚀") == "ünïcødé 名前 🚀"
    cut = printable("\x1b" * (TEXT_LIMIT + 1))
    assert cut == "\\x1b" * TEXT_LIMIT + f"… ({TEXT_LIMIT + 1:,} characters)"
