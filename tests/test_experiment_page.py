"""The experiment page in a real browser (issue 19, point 6): Debian's headless Chromium through Playwright.

The database holds a real Optuna study of tiny Keras fits (six trials, two
pruned by a deterministic pruner) and two runs grouped under a hostile
experiment name. What each plot drew is read from its data-* attributes and
checked against the study (``study.trials``) and ``Store.sweep``.
"""

import json
from urllib.parse import quote

import keras
import numpy as np
import optuna
import pytest
from conftest import guide_data, guide_model
from optuna_integration import KerasPruningCallback
from playwright.sync_api import expect
from ui_support import open_page

import tracker
from tracker.ui.app import create_app
from tracker.ui.report import write_report
from tracker.ui.server import running_server

optuna.logging.set_verbosity(optuna.logging.WARNING)
HOSTILE = "<img src=x onerror=\"window.__pwned=1\"> & ~ é/x?y#z"
TIMEOUT_MS = 15_000


class PruneTrials(optuna.pruners.BasePruner):
    def __init__(self, numbers):
        self.numbers = set(numbers)

    def prune(self, study, trial):
        return trial.number in self.numbers and trial.last_step is not None and trial.last_step >= 1


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("experiment") / "runs.db")
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 8)).astype("float32"), rng.random((64, 1)).astype("float32")
    tracker.autolog(db, log_batches=False)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-3, 0.5, log=True)
        units = trial.suggest_int("units", 2, 8)
        act = trial.suggest_categorical("act", ["relu", "tanh"])
        keras.utils.set_random_seed(trial.number)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(units, activation=act), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
        history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0,
                            callbacks=[KerasPruningCallback(trial, "val_loss")])
        return history.history["val_loss"][-1]

    study = optuna.create_study(study_name="study", pruner=PruneTrials({1, 4}), sampler=optuna.samplers.RandomSampler(8))
    try:
        study.optimize(objective, n_trials=6)
    finally:
        tracker.autolog(disable=True)
    gx, gy = guide_data(n=32)
    for lr in (0.01, 0.1):
        guide_model(learning_rate=lr).fit(gx, gy, epochs=1, validation_split=0.25, verbose=0, callbacks=[
            tracker.TrackingCallback(db, run_name=f"lr-{lr}", params={"lr": lr}, experiment=HOSTILE, log_batches=False)])
    return db, study


@pytest.fixture(scope="module")
def site(built):
    with running_server(create_app(built[0])) as url:
        yield url


@pytest.fixture
def page(browser):
    with open_page(browser, timeout_ms=TIMEOUT_MS) as page:
        yield page


def drawn(page):
    expect(page.locator("main")).to_have_attribute("data-drawn", "true")


def shown_trials(page):
    return [page.locator("#trials tbody tr").nth(i).get_attribute("data-trial")
            for i in range(page.locator("#trials tbody tr").count())]


def test_the_page_draws_every_trial_and_brushing_an_axis_filters_the_table(page, site, built):
    db, study = built
    info = tracker.Store(db).sweep("study")
    page.goto(site + "/experiments/study")
    drawn(page)
    expect(page.locator("#experiment-name")).to_have_text("study")
    assert shown_trials(page) == [t.trial for t in info.trials]
    parallel = page.locator('[data-plot="parallel"]')
    axes = json.loads(parallel.get_attribute("data-axes"))
    lrs = [t.params["lr"] for t in study.trials]
    assert [a["name"] for a in axes] == ["act", "lr", "units", "value"]
    assert [a["scale"] for a in axes] == ["category", "log" if max(lrs) > 10 * min(lrs) else "linear", "linear", "linear"]
    assert parallel.get_attribute("data-lines") == "6" and parallel.get_attribute("data-selected") == "6"

    box = parallel.locator("canvas").bounding_box()
    lr_x = box["x"] + axes[1]["x"]
    top, bottom = float(parallel.get_attribute("data-top")), float(parallel.get_attribute("data-bottom"))
    page.mouse.move(lr_x, box["y"] + top + 2)
    page.mouse.down()
    page.mouse.move(lr_x, box["y"] + (top + bottom) / 2, steps=6)
    page.mouse.up()
    low, high = json.loads(parallel.get_attribute("data-brushes"))["lr"]
    kept = [t.trial for t in info.trials if low <= t.params["lr"] <= high]
    assert 0 < len(kept) < 6, (low, high, lrs)  # the upper half of a log axis over these six values
    expect(page.locator("#trials tbody tr")).to_have_count(len(kept))
    assert shown_trials(page) == kept and parallel.get_attribute("data-selected") == str(len(kept))
    expect(page.locator("#trial-count")).to_have_text(f"{len(kept)} of 6 trials")
    page.mouse.click(lr_x, box["y"] + bottom - 3)  # a click on the axis clears its brush
    expect(page.locator("#trials tbody tr")).to_have_count(6)
    assert json.loads(parallel.get_attribute("data-brushes")) == {}
    assert page.errors == []


def test_the_scatters_progress_and_curves_draw_what_the_study_holds(page, site, built):
    db, study = built
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert [t.number for t in pruned] == [1, 4]
    page.goto(site + "/experiments/study")
    drawn(page)
    scatters = page.locator('[data-plot="scatter"]')
    expect(scatters).to_have_count(3)
    for i, name in enumerate(["act", "lr", "units"]):
        assert scatters.nth(i).get_attribute("data-param") == name
        assert scatters.nth(i).get_attribute("data-points") == str(len(complete))
    lrs = [t.params["lr"] for t in study.trials]
    assert scatters.nth(1).get_attribute("data-scale-x") == ("log" if max(lrs) > 10 * min(lrs) else "linear")
    assert scatters.nth(0).get_attribute("data-scale-x") == "category"
    progress = page.locator('[data-plot="progress"]')
    assert progress.get_attribute("data-points") == str(len(complete))
    assert float(progress.get_attribute("data-best")) == study.best_value
    curves = page.locator('[data-plot="curves"]')
    assert curves.get_attribute("data-curves") == "6" and curves.get_attribute("data-pruned-marks") == "2"
    assert curves.get_attribute("data-best") == str(study.best_trial.number)
    values = [t.value for t in complete]
    assert page.locator(f'#trials tr[data-trial="{study.best_trial.number}"] td[data-key="value"]').get_attribute(
        "title") == repr(min(values))
    expect(page.locator("#importance tbody tr")).to_have_count(3)
    page.locator("#fanova").click()
    expect(page.locator('#importance td[data-key="fanova"]')).to_have_count(3)
    assert page.errors == []


def test_the_runs_list_and_a_runs_page_link_to_the_experiment(page, site, built):
    db, study = built
    page.goto(site + "/")
    expect(page.locator("#experiment-link")).to_be_hidden()
    page.locator("#experiment-filter").select_option("study")
    page.locator("#experiment-link").click()
    drawn(page)
    assert page.url == site + "/experiments/study"
    run_id = tracker.Store(db).sweep("study").trials[0].best_run
    page.goto(f"{site}/runs/{run_id}")
    expect(page.locator("#run-experiment")).to_contain_text(f"experiment study, trial {study.best_trial.number}")
    page.locator("#run-experiment a").click()
    drawn(page)
    assert page.errors == []


def test_a_hostile_experiment_name_is_text_on_the_page_and_in_the_report(browser, page, site, built, tmp_path):
    db, _ = built
    page.goto(site + "/experiments/" + quote(HOSTILE, safe=""))
    drawn(page)
    expect(page.locator("#experiment-name")).to_have_text(HOSTILE)
    expect(page.locator("#trials tbody tr")).to_have_count(2)
    out = write_report(db, [], tmp_path / "hostile.html", experiment=HOSTILE)
    report = browser.new_page()
    errors = []
    report.on("pageerror", lambda exc: errors.append(str(exc)))
    report.goto(out.as_uri())
    expect(report.locator("main")).to_have_attribute("data-drawn", "true", timeout=TIMEOUT_MS)
    expect(report.locator("#experiment-name")).to_have_text(HOSTILE)
    for shown in (page, report):
        assert shown.evaluate("window.__pwned") is None and shown.locator("main img, main script").count() == 0
    assert page.errors == [] and errors == []
    report.close()


def test_the_report_opens_from_disk_with_the_network_blocked_and_draws_the_same_page(browser, site, built, tmp_path):
    db, study = built
    out = write_report(db, [], tmp_path / "study.html", experiment="study")
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    requests = []
    context.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
                  else route.continue_())
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.as_uri())
    expect(page.locator("main")).to_have_attribute("data-drawn", "true", timeout=TIMEOUT_MS)
    assert shown_trials(page) == [t.trial for t in tracker.Store(db).sweep("study").trials]
    assert page.locator('[data-plot="curves"]').get_attribute("data-pruned-marks") == "2"
    expect(page.locator("#fanova")).to_be_hidden()
    best = page.locator(f'#trials tr[data-trial="{study.best_trial.number}"] a.run-link')
    best.click()  # the report holds the best trial's run page
    expect(page.locator("#run-name")).to_have_text(f"trial-{study.best_trial.number}")
    other = next(t.number for t in study.trials if t.number != study.best_trial.number)
    page.go_back()
    drawn(page)
    assert page.locator(f'#trials tr[data-trial="{other}"] td[data-key="name"] a').count() == 0  # not in the report
    assert all(url.startswith(("file:", "data:")) for url in requests) and errors == []
    context.close()
