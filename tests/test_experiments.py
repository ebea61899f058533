"""Experiments: runs a user groups with ``experiment=``, read back by name everywhere (issue 19, point 2).

Real fits into real databases; the best run of an experiment no tool ranks
is the one with the best epoch value of its metric, checked against the
``History`` of each fit.
"""

import copy
import json

import keras
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import bits, guide_data, guide_model
from playwright.sync_api import expect, sync_playwright
from ui_support import get, launch

import tracker
from tracker.cli import main
from tracker.ui.app import create_app
from tracker.ui.server import running_server


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    tracker.autolog(disable=True)


class Fails(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("stopped by a bug")


def grouped(db):
    """Two runs in ``lr-search`` (two learning rates), one failed run in it, one autologged into ``auto``, one in none."""
    x, y = guide_data(n=64)
    histories = {}
    for name, lr in (("slow", 0.001), ("fast", 0.05)):
        cb = tracker.TrackingCallback(db, run_name=name, params={"lr": lr}, experiment="lr-search", log_batches=False)
        histories[name] = guide_model(learning_rate=lr).fit(x, y, epochs=2, validation_split=0.25, verbose=0,
                                                            callbacks=[cb]).history
    with pytest.raises(RuntimeError):
        guide_model().fit(x, y, epochs=2, verbose=0, callbacks=[
            Fails(), tracker.TrackingCallback(db, run_name="broken", experiment="lr-search", log_batches=False)])
    tracker.autolog(db, experiment="auto", log_batches=False)
    guide_model().fit(x, y, epochs=1, verbose=0)
    tracker.autolog(disable=True)
    guide_model().fit(x, y, epochs=1, verbose=0, callbacks=[tracker.TrackingCallback(db, run_name="alone")])
    return histories


def test_runs_given_an_experiment_belong_to_it_and_every_listing_filters_by_it(db):
    histories = grouped(db)
    store = tracker.Store(db)
    assert sorted(store.runs(experiment="lr-search")["name"]) == ["broken", "fast", "slow"]
    assert len(store.overview(experiment="auto")) == 1
    every = store.runs().set_index("name")
    assert pd.isna(every.loc["alone", "experiment"]) and every.loc["fast", "experiment"] == "lr-search"
    assert store.run("fast")["run"]["experiment"] == "lr-search" and "experiment" not in store.run("alone")["run"]

    rows = store.experiments().set_index("experiment")
    assert list(rows.index) == ["auto", "lr-search"]
    search = rows.loc["lr-search"]
    assert (search["runs"], search["finished"], search["failed"], search["trials"]) == (3, 2, 1, 0)
    assert search["tool"] is None and search["metric"] == "val_loss"
    best = min(histories, key=lambda n: min(histories[n]["val_loss"]))
    assert search["best_name"] == best and bits(search["best"]) == bits(min(histories[best]["val_loss"]))
    assert search["best_run"] == store.resolve(best) and search["started_at"] <= search["ended_at"]
    sweep = store.sweep("lr-search")
    assert sweep.ranked_by == "val_loss" and [t.name for t in sweep.trials][:1] == [best]
    assert sweep.param_names == ["lr"] and [t.rank for t in sweep.trials] == [1, 2, None]

    runner = CliRunner()
    listed = runner.invoke(main, ["--db", db, "runs", "--experiment", "lr-search", "--format", "json"])
    assert sorted(r["name"] for r in json.loads(listed.output)) == ["broken", "fast", "slow"]
    table = runner.invoke(main, ["--db", db, "experiments"])
    assert table.exit_code == 0 and "lr-search" in table.output and "auto" in table.output
    assert f"val_loss {min(histories[best]['val_loss']):.6g}" in table.output


def test_an_unknown_experiment_is_one_sentence_naming_close_ones(tmp_path):
    db = str(tmp_path / "runs.db")
    grouped(db)
    with pytest.raises(tracker.UnknownExperimentError, match=r"Did you mean 'lr-search'\?$"):
        tracker.Store(db).runs(experiment="lr-serch")
    result = CliRunner().invoke(main, ["--db", db, "runs", "--experiment", "nothing-like-it"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output == "Error: No experiment is named 'nothing-like-it'; 'tracker experiments' lists them.\n"
    with running_server(create_app(db)) as url:
        status, _, body = get(url + "/api/runs?experiment=lr-serch")
        assert status == 400 and "Did you mean 'lr-search'?" in body["error"]
        status, _, body = get(url + "/api/runs?experiment=lr-search")
        assert status == 200 and sorted(r["name"] for r in body) == ["broken", "fast", "slow"]
        assert {r["experiment"] for r in body} == {"lr-search"}
        status, _, body = get(url + "/api/experiments")
        assert status == 200 and [(e["experiment"], e["runs"], e["failed"]) for e in body["experiments"]] == [
            ("auto", 1, 0), ("lr-search", 3, 1)]


def test_an_experiment_must_be_a_non_empty_name():
    for bad in ("", "  ", 3):
        with pytest.raises(ValueError, match="experiment must be a non-empty string"):
            tracker.TrackingCallback("unused.db", experiment=bad)
        with pytest.raises(ValueError, match="experiment must be a non-empty string"):
            tracker.autolog("unused.db", experiment=bad)


def test_a_deep_copy_records_a_run_of_its_own_never_the_originals(tmp_path):
    db = str(tmp_path / "runs.db")
    x, y = guide_data(n=64)
    original = tracker.TrackingCallback(db, run_name="original", params={"lr": 0.1}, experiment="copies")
    model = guide_model()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[original])
    twin = copy.deepcopy(original)  # after the original recorded a run: the copy takes neither it nor the model
    assert twin.run_id != original.run_id and twin._writer is not original._writer and twin.model is None
    guide_model().fit(x, y, epochs=2, verbose=0, callbacks=[twin])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[original])  # the original goes on with its own run
    store = tracker.Store(db)
    runs = store.runs(experiment="copies").set_index("run_id")
    assert sorted(runs.index) == sorted([original.run_id, twin.run_id])
    assert (runs.loc[original.run_id, "epochs"], runs.loc[twin.run_id, "phases"]) == (2, 1)
    assert store.params(twin.run_id) == {"lr": 0.1} and runs.loc[twin.run_id, "name"] == "original"
    assert (original._writer.run_id, twin._writer.run_id) == (original.run_id, twin.run_id)  # each writes its own


def test_the_dashboards_run_list_filters_by_experiment(tmp_path):
    db = str(tmp_path / "runs.db")
    grouped(db)
    with running_server(create_app(db)) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        rows = page.locator("#runs tbody tr")
        expect(rows).to_have_count(5)
        choice = page.locator("#experiment-filter")
        expect(choice).to_be_visible()
        assert choice.locator("option").all_text_contents() == ["any experiment", "auto", "lr-search"]
        choice.select_option("lr-search")
        expect(rows).to_have_count(3)
        page.locator("#status-filter").select_option("failed")
        expect(rows).to_have_count(1)
        expect(rows.first.locator(".status")).to_have_text("failed")
        choice.select_option("")
        page.locator("#status-filter").select_option("")
        expect(rows).to_have_count(5)
        assert errors == []
        browser.close()
