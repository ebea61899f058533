"""Which runs a filter, a sort, a reference or a resume picks: one rule on SQLite and PostgreSQL.

Run names match case-sensitively, with ``*`` and ``?`` as the only wildcards;
a best sort takes its direction from the key; a run reference is an id, an id
prefix, a name or ``latest``, never a fragment from the middle of an id; a
resume continues the newest unfinished run of the name.
"""

import json

import keras
import pytest
from click.testing import CliRunner
from conftest import BACKENDS, fresh_db, guide_data, guide_model

from tracker import InvalidArgumentError, Store, TrackingCallback, UnknownRunError
from tracker.cli import main

NAMES = ["lr_1", "lr-1", "lr%2", "lrx2", "Big", "big", "a[1]"]
#: Injected as each epoch's val_accuracy: run "acc-a" peaks higher, run "acc-b" dips lower.
ACCURACY = {"acc-a": [0.6, 0.9], "acc-b": [0.5, 0.8]}


class SetLogs(keras.callbacks.Callback):
    """Listed before the tracker: puts a value into each epoch's logs."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def fit(db, name, epochs=1, extra=(), **kwargs):
    x, y = guide_data(n=32)
    cb = TrackingCallback(db, run_name=name, **kwargs)
    history = guide_model().fit(x, y, batch_size=16, epochs=epochs, callbacks=[*extra, cb], verbose=0)
    cb.close()
    return cb.run_id, history


@pytest.fixture(scope="module", params=BACKENDS)
def named(request, tmp_path_factory):
    db = fresh_db(request, tmp_path_factory.mktemp("names"), request.param)
    ids = {name: fit(db, name)[0] for name in NAMES}
    histories = {}
    for name, values in ACCURACY.items():
        ids[name], histories[name] = fit(db, name, epochs=2, extra=[SetLogs("val_accuracy", values)])
    return db, ids, histories


def listed(db, *args):
    result = CliRunner().invoke(main, ["--db", db, "runs", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return sorted(r["name"] for r in json.loads(result.output))


@pytest.mark.parametrize("pattern, expected", [
    ("lr_*", ["lr_1"]),
    ("lr%*", ["lr%2"]),
    ("lr?1", ["lr-1", "lr_1"]),
    ("b*", ["big"]),
    ("B?g", ["Big"]),
    ("a[1*", ["a[1]"]),
    ("*[1]", ["a[1]"]),
])
def test_name_patterns_match_case_sensitively_and_only_star_and_question_mark_are_wildcards(named, pattern, expected):
    db, _, _ = named
    assert sorted(Store(db).runs(name=pattern)["name"]) == expected
    assert listed(db, "--name", pattern) == expected


def test_an_exact_name_is_case_sensitive_too(named):
    db, ids, _ = named
    assert list(Store(db).runs(name="big")["run_id"]) == [ids["big"]]
    assert listed(db, "--name", "BIG") == []


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_a_limit_below_one_is_one_sentence_and_exit_status_1(named, limit):
    db, _, _ = named
    result = CliRunner().invoke(main, ["--db", db, "runs", "--limit", limit])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == (f"Error: The limit must be a positive number of runs, not {limit}; "
                                      "leave it out to list every run.")
    with pytest.raises(InvalidArgumentError, match="positive number of runs"):
        Store(db).runs(limit=int(limit))
    assert len(Store(db).runs(limit=2)) == 2


def test_a_param_value_that_is_not_json_is_named_when_nothing_matches(named):
    db, _, _ = named
    result = CliRunner().invoke(main, ["--db", db, "runs", "--param", "lr=.001"])
    assert result.exit_code == 0
    assert result.output.strip() == ('No runs match (--param lr=.001: .001 is not JSON, so only a run whose lr '
                                     'is the text ".001" matches).')
    as_json = CliRunner().invoke(main, ["--db", db, "runs", "--param", "lr=.001", "--format", "json"])
    assert json.loads(as_json.stdout) == [] and ".001 is not JSON" in as_json.stderr
    plain = CliRunner().invoke(main, ["--db", db, "runs", "--param", "lr=0.001"])
    assert plain.output.strip() == "No runs match."


def test_best_of_an_accuracy_is_its_maximum_and_the_most_accurate_run_comes_first(named):
    db, ids, histories = named
    runs = Store(db).runs(sort="best:val_accuracy")
    best = {name: max(h.history["val_accuracy"]) for name, h in histories.items()}
    first = max(best, key=best.get)
    assert first == "acc-a"  # the lower dip is acc-b's: sorting by the minimum would put it first
    assert list(runs["run_id"][:2]) == [ids["acc-a"], ids["acc-b"]]
    assert list(runs["val_accuracy"][:2]) == [best["acc-a"], best["acc-b"]]
    assert list(runs["val_accuracy_epoch"][:2]) == [1, 1]
    shown = CliRunner().invoke(main, ["--db", db, "runs", "--sort", "best:val_accuracy", "--format", "json"])
    rows = json.loads(shown.output)
    assert [r["name"] for r in rows[:2]] == ["acc-a", "acc-b"]
    assert [r["best"] for r in rows[:2]] == [best["acc-a"], best["acc-b"]]


def test_a_fragment_from_the_middle_of_a_run_id_is_an_unknown_run(named):
    db, ids, _ = named
    run_id = ids["big"]
    fragment = run_id[8:20]
    assert not any(i.startswith(fragment) for i in ids.values())
    with pytest.raises(UnknownRunError, match="No run matches"):
        Store(db).resolve(fragment)
    result = CliRunner().invoke(main, ["--db", db, "show", fragment])
    assert result.exit_code == 1 and "No run matches" in result.output
    assert Store(db).resolve(run_id[:12]) == run_id


class FailAtEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("preempted")


def test_resume_continues_the_newest_of_two_unfinished_runs_of_the_name(db):
    x, y = guide_data(n=32)
    made = []
    for _ in range(2):
        cb = TrackingCallback(db, run_name="job")
        with pytest.raises(RuntimeError, match="preempted"):
            guide_model().fit(x, y, batch_size=16, epochs=2, callbacks=[FailAtEnd(), cb], verbose=0)
        cb.close()
        made.append(cb.run_id)
    fit(db, "other")  # a newer run of another name is not a candidate
    assert list(Store(db).runs(name="job")["status"]) == ["failed", "failed"]
    resumed = TrackingCallback(db, run_name="job", resume=True)
    assert resumed.run_id == made[1]
    resumed.close()
