"""The filter language (tracker.store.where): Store.runs(where=), Store.overview(where=), tracker runs --where.

Runs are written in bulk (benchmarks/bulk_runs.py) and their params, tags and
names are then set by the test itself, so what each filter must select is
worked out here in Python from the test's own values, on SQLite and on
PostgreSQL.
"""

import json
import math
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import sql

from tracker import Store
from tracker.cli import main as cli
from tracker.store.where import WhereError, parse
from tracker.store.where_sql import compile_where

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bulk_runs import bulk_runs  # noqa: E402

NAMES = ["a_1", "a%2", "A_3", "b*4", "naïve-5", "x'; DROP TABLE runs; --", "日本-7", "lr[8]", "r-9", "r-10"]
PARAMS = [  # per run: lr, opt, flag, big, note (None: the run lacks it)
    (1e-3, "adam", True, 10**20, "plain"),
    (0.01, "sgd", False, 5, "a\x00b"),
    (1e-4, "Adam", None, 2.5, "日本語"),
    (3e-3, "adam", True, None, "it's \"quoted\""),
    (float("nan"), "rmsprop", False, -1, "back\\slash"),
    (float("inf"), "sgd", True, 0, "%_%"),
    (1, "adamw", None, 7, "\ud800 lone"),
    (None, None, None, None, None),
    (None, None, None, None, None),
    (None, None, None, None, None),  # the tenth run is left running by a dead process: crashed
]


@pytest.fixture
def runs(db):
    ids = bulk_runs(db, len(NAMES), epochs=3, keys=("loss", "val_loss", "val_accuracy"), seed=3)
    sql(db, "DELETE FROM params")
    sql(db, "DELETE FROM tags")
    from tracker.db.types import JSONText
    for rid, name, values in zip(ids, NAMES, PARAMS):
        sql(db, "UPDATE runs SET name = :n WHERE id = :i", {"n": name, "i": rid})
        for key, value in zip(("lr", "opt", "flag", "big", "note"), values):
            if value is not None:
                sql(db, "INSERT INTO params (run_id, key, value) VALUES (:r, :k, :v)",
                    {"r": rid, "k": key, "v": JSONText().process_bind_param(value, None)})
        sql(db, "INSERT INTO tags (run_id, key, value) VALUES (:r, 'sweep', :v)", {"r": rid, "v": "lr" if len(name) % 2 else "bs"})
    return dict(zip(NAMES, ids)), Store(db)


def chosen(store, where):
    return sorted(store.runs(where=where)["name"])


def expect(test):
    return sorted(n for n, p in zip(NAMES, PARAMS) if test(dict(zip(("lr", "opt", "flag", "big", "note"), p))))


def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


@pytest.mark.parametrize("where, test", [
    ("params.lr >= 1e-3", lambda p: num(p["lr"]) and p["lr"] >= 1e-3),
    ("params.lr < 0.005", lambda p: num(p["lr"]) and p["lr"] < 0.005),
    ("params.lr = 1", lambda p: num(p["lr"]) and p["lr"] == 1),
    ("params.lr = 0.001", lambda p: num(p["lr"]) and p["lr"] == 0.001),
    ("params.big > 100000000000000000000", lambda p: False),
    ("params.big >= 100000000000000000000", lambda p: p["big"] == 10**20),
    ("params.opt = adam", lambda p: p["opt"] == "adam"),
    ('params.opt != "adam"', lambda p: isinstance(p["opt"], str) and p["opt"] != "adam"),
    ('params.opt ~ "adam*"', lambda p: isinstance(p["opt"], str) and p["opt"].startswith("adam")),
    ('params.opt > "r"', lambda p: isinstance(p["opt"], str) and p["opt"] > "r"),
    ("params.flag = true", lambda p: p["flag"] is True),
    ("not params.flag = true", lambda p: p["flag"] is not True),
    ('params.note = "日本語"', lambda p: p["note"] == "日本語"),
    ("params.note = 'it''s'", None),
    ('params.note = "it\'s \\"quoted\\""', lambda p: p["note"] == 'it\'s "quoted"'),
    ('params.note ~ "%_%"', lambda p: p["note"] == "%_%"),
    # A text with a backslash; one with a NUL or a lone surrogate is matched by its JSON text (\u0000), so it has one too
    ('params.note ~ "*\\\\*"', lambda p: isinstance(p["note"], str) and any(c in p["note"] for c in "\\\ud800\x00")),
    ('params.note ~ "a\\\\u0000b"', lambda p: p["note"] == "a\x00b"),  # NUL: by its JSON text on both databases
    ("params.lr ~ \"0.00*\"", lambda p: num(p["lr"]) and json.dumps(p["lr"]).startswith("0.00")),
    ("params.opt = adam or params.opt = sgd and params.flag = false", lambda p: p["opt"] == "adam" or (p["opt"] == "sgd" and p["flag"] is False)),
    ("(params.opt = adam or params.opt = sgd) and params.flag = false", lambda p: p["opt"] in ("adam", "sgd") and p["flag"] is False),
])
def test_params_compare_numbers_numerically_and_text_exactly(runs, where, test):
    _, store = runs
    if test is None:  # '' is not an escape inside single quotes: the text ends, then a stray quote
        with pytest.raises(WhereError, match="Cannot read the filter at character"):
            store.runs(where=where)
        return
    assert chosen(store, where) == expect(test)


@pytest.mark.parametrize("where, names", [
    ('name = "a_1"', ["a_1"]),
    ('name ~ "a_*"', ["a_1"]),  # _ is itself, case-sensitive
    ('name ~ "a%*"', ["a%2"]),
    ("name ~ 'b\\*4'", []),  # no escapes in globs: the backslash is itself
    ('name ~ "b*4"', ["b*4"]),
    ('name ~ "lr[8]"', ["lr[8]"]),  # [ is itself
    ('name = "x\'; DROP TABLE runs; --"', ["x'; DROP TABLE runs; --"]),
    ('name ~ "日本*"', ["日本-7"]),
    ('name ~ "na?ve-5"', ["naïve-5"]),
    ('name > "b" and name < "x"', ["b*4", "lr[8]", "naïve-5", "r-9", "r-10"]),
    ("tags.sweep = lr", [n for n in NAMES if len(n) % 2]),
])
def test_names_and_tags_match_as_the_name_filter_does_with_hostile_text(runs, where, names):
    _, store = runs
    assert chosen(store, where) == sorted(names)
    assert sql(store.url, "SELECT count(*) FROM runs")[0][0] == len(NAMES)  # nothing was dropped


def test_metrics_status_time_and_duration_fields(runs):
    ids, store = runs
    frame = store.overview()
    best = dict(zip(frame["name"], frame["best"]))  # val_loss: the stoppers' monitor
    assert frame["metric"].iloc[0] == "val_loss"
    assert chosen(store, "best.val_loss < 1") == sorted(n for n, v in best.items() if v < 1)
    metrics = {n: store.metrics(ids[n]).set_index("key") for n in NAMES}
    assert chosen(store, "final.loss >= 0.5") == sorted(n for n in NAMES if metrics[n].loc["loss", "final"] >= 0.5)
    # val_accuracy is maximised: best is the largest value
    assert chosen(store, "best.val_accuracy > 0.8") == sorted(n for n in NAMES if metrics[n].loc["val_accuracy", "best"] > 0.8)
    listing = store.runs().set_index("name")
    crashed = sorted(listing.index[listing["status"] == "crashed"])
    assert crashed and chosen(store, "status = crashed") == crashed  # stored running, its process gone
    assert chosen(store, "status = running") == []
    assert chosen(store, "not status = crashed and status ~ \"*ed\"") == sorted(
        n for n in NAMES if listing.loc[n, "status"] != "crashed" and listing.loc[n, "status"].endswith("ed"))
    seconds = (listing["ended_at"] - listing["started_at"]).dt.total_seconds()
    assert chosen(store, "duration > 30") == sorted(seconds.index[seconds > 30])
    first = listing["started_at"].min()
    assert chosen(store, f"started_at <= {first.isoformat()}Z") == [listing["started_at"].idxmin()]
    assert chosen(store, "started_at > -7d") == []  # 2026-01-01 is long before the test... or after
    assert len(store.overview(where="best.val_loss < 1")) == len([v for v in best.values() if v < 1])


@pytest.mark.parametrize("where, message", [
    ("best.val_los < 1", "no run logged the key 'val_los'; did you mean best.val_loss?"),
    ("params.lrr = 1", "no run has the param 'lrr'; did you mean params.lr?"),
    ("best.val_loss <", "at character 16"),
    ("best.val_loss < abc", "expected a number after best.KEY <"),
    ("status = dead", "expected a status"),
    ("lr = 1", "expected a field"),
    ("(status = finished", "expected ')'"),
    ("name = 'x' or \x00", "NUL character at character 15"),
    ("params.lr = 1; DROP TABLE runs", "expected 'and', 'or' or the end of the filter, found 'DROP'"),
    ('name = "unclosed', "an unclosed quote"),
    ("duration > soon", "a duration in seconds"),
    ("started_at > yesterday", "a time: an ISO date or time"),
    ("(" * 60 + "status = finished" + ")" * 60, "fewer nested parentheses"),
    ("", "The filter is empty"),
])
def test_a_filter_that_cannot_be_read_gets_one_sentence_pointing_at_it(runs, where, message):
    _, store = runs
    with pytest.raises(WhereError) as error:
        store.runs(where=where)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_values_reach_the_database_as_bound_parameters_only():
    hostile = "x'); DELETE FROM runs; --"
    compiled = compile_where(f'name = "{hostile}" or params.opt ~ "{hostile}*" or tags.t > "{hostile}" or best.loss < 0.123456')
    from sqlalchemy import select

    from tracker.store.filters import RUNS

    for dialect in ("sqlite", "postgresql"):
        from sqlalchemy.dialects import postgresql, sqlite
        text = str(select(RUNS.c.id).where(compiled.clause).compile(
            dialect=sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()))
        assert "DELETE" not in text and "0.123456" not in text and "x')" not in text


def test_tracker_runs_where_lists_the_runs_and_refuses_a_bad_filter_in_one_sentence(runs):
    _, store = runs
    result = CliRunner().invoke(cli, ["runs", "--db", store.url, "--where", "params.opt = adam", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert sorted(r["name"] for r in json.loads(result.output)) == expect(lambda p: p["opt"] == "adam")
    result = CliRunner().invoke(cli, ["runs", "--db", store.url, "--where", "params.opt === adam"])
    assert result.exit_code == 1
    assert "Cannot read the filter at character 14" in result.output and "Traceback" not in result.output


def test_the_parser_reads_precedence_not_and_or():
    tree = parse("not status = failed and name = a or name = b")
    assert type(tree).__name__ == "Or" and type(tree.items[0]).__name__ == "And"
    assert type(tree.items[0].items[0]).__name__ == "Not"
