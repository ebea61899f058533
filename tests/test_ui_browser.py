"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

The pages are served by a real uvicorn server from a database of real fits
(see ui_support). The live test trains in another process and waits, with a
timeout, for the open page to show the new epoch without a reload.
"""

import json
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from playwright.sync_api import expect
from ui_support import HOSTILE_NAME, HOSTILE_TAG, open_page, recorded_runs

from tracker import Store
from tracker.errors import DatabaseError
from tracker.ui.app import create_app
from tracker.ui.data import Dashboard
from tracker.ui.report import write_report
from tracker.ui.server import running_server

SCRIPTS = Path(__file__).resolve().parent / "scripts"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return recorded_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def site(recorded):
    with running_server(create_app(recorded.path)) as url:
        yield url


@pytest.fixture(scope="module", autouse=True)
def live_job(tmp_path_factory):
    """The training job of the live test, started first so that its TensorFlow import overlaps the other tests."""
    folder = tmp_path_factory.mktemp("live")
    db, gate = folder / "live.db", folder / "gate"
    gate.mkdir()
    job = subprocess.Popen([sys.executable, str(SCRIPTS / "train_live.py"), str(db), str(gate)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield db, gate, job
    (gate / "stop").touch()
    if job.poll() is None:
        job.kill()
    job.wait(timeout=30)


@pytest.fixture
def page(browser):
    """A fresh page that records script errors, dialogs and every request it makes."""
    with open_page(browser, timeout_ms=TIMEOUT_MS, dialogs=True) as page:
        yield page


def counts(page, metric):
    return json.loads(page.locator(f'.chart[data-metric="{metric}"]').get_attribute("data-counts"))


def test_runs_page_lists_every_run(page, site, recorded):
    page.goto(site + "/")
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(3)
    ids = sorted(rows.nth(i).get_attribute("data-run-id") for i in range(3))
    assert ids == sorted([recorded.baseline, recorded.odd, recorded.hostile])
    base = page.locator(f'tr[data-run-id="{recorded.baseline}"]')
    expect(base.locator('td[data-key="stopped_epoch"]')).to_have_text(str(Store(recorded.path).early_stops(recorded.baseline)["stopped_epoch"][0]))
    expect(base.locator(".status")).to_have_text("finished")
    page.fill("#filter", 'name ~ "odd*"')  # the filter language (tracker.store.where)
    expect(rows).to_have_count(1)
    page.fill("#filter", "odd")
    expect(page.locator("#filter-error")).to_contain_text("Cannot read the filter at character 1")
    expect(rows).to_have_count(1)  # the last good answer stays
    assert page.errors == []


def test_run_page_draws_every_epoch_of_each_metric_with_the_lr_and_the_decisions(page, site, recorded):
    store = Store(recorded.path)
    epochs = store.epochs(recorded.baseline)
    page.goto(f"{site}/runs/{recorded.baseline}")
    expect(page.locator(".chart canvas").first).to_be_visible()
    assert counts(page, "loss") == {"loss": len(epochs), "val_loss": len(epochs)}
    assert counts(page, "mean_absolute_error") == {"mean_absolute_error": len(epochs), "val_mean_absolute_error": len(epochs)}
    lr = page.locator("#lr-panel .chart")
    expect(lr).to_have_count(1)
    assert counts(page, "learning_rate") == {"LR optimizer": len(epochs) + 1}
    change = store.lr_changes(recorded.baseline).iloc[0]
    lr_marker = lr.locator(".marker-lr")
    assert "LearningRateScheduler.on_epoch_begin" in lr_marker.get_attribute("data-text")
    assert float(lr_marker.get_attribute("data-x")) == change["epoch"] - 1
    stop = store.early_stops(recorded.baseline).iloc[0]
    stop_marker = page.locator('.chart[data-metric="loss"] .marker-stop')
    assert float(stop_marker.get_attribute("data-x")) == stop["stopped_epoch"]
    text = stop_marker.get_attribute("data-text")
    assert all(part in text for part in ("EarlyStopping", "monitor val_loss", "patience 2", f"wait {stop['wait']}"))
    restore = store.restores(recorded.baseline).iloc[0]
    restore_marker = page.locator('.chart[data-metric="loss"] .marker-restore')
    assert float(restore_marker.get_attribute("data-x")) == restore["restored_epoch"]
    expect(restore_marker.locator(".star")).to_be_visible()
    restore_marker.hover()
    expect(page.locator('.chart[data-metric="loss"] .tip')).to_contain_text(f"Restored the weights of epoch {restore['restored_epoch']}")
    expect(page.locator(".phases")).to_contain_text("evaluate")
    assert page.errors == []


def test_batch_toggle_adds_downsampled_batch_curves(page, site, recorded):
    batches = Store(recorded.path).batches(recorded.baseline, "fit")
    page.goto(f"{site}/runs/{recorded.baseline}")
    expect(page.locator('.chart[data-metric="loss"]')).to_have_count(1)
    page.check("#batch-toggle")
    expect(page.locator('.chart[data-metric="loss"]')).to_have_attribute("data-counts", re.compile("batches"))
    assert counts(page, "loss")["loss (batches)"] == len(batches)
    assert page.errors == []


def test_compare_overlays_two_runs_each_in_one_colour_shared_by_its_lr_line(page, site, recorded):
    page.goto(f"{site}/compare?run={recorded.baseline}&run={recorded.odd}")
    chart = page.locator('.chart[data-metric="loss"]')
    expect(chart).to_have_count(1)
    got = counts(page, "loss")
    store = Store(recorded.path)
    n_base, n_odd = len(store.epochs(recorded.baseline)), len(store.epochs(recorded.odd))
    assert got == {"baseline · loss": n_base, "baseline · val_loss": n_base, "odd-values · loss": n_odd, "odd-values · val_loss": n_odd}
    loss = json.loads(chart.get_attribute("data-colors"))
    lr = json.loads(page.locator('#lr-panel .chart').get_attribute("data-colors"))
    assert loss["baseline · loss"] == lr["baseline · LR"] != loss["odd-values · loss"]
    expect(page.locator('#compare-table tr[data-field="param:lr"] th')).to_have_text("param lr")
    assert page.errors == []


def test_hostile_run_name_tag_and_param_are_shown_as_text_and_run_no_script(page, site, recorded):
    for path in ("/", f"/runs/{recorded.hostile}", f"/compare?run={recorded.hostile}&run={recorded.odd}"):
        page.goto(site + path)
        expect(page.get_by_text(HOSTILE_NAME).first).to_be_visible()
    page.goto(f"{site}/runs/{recorded.hostile}")
    expect(page.locator("#run-name")).to_have_text(HOSTILE_NAME)
    expect(page.locator(".tags")).to_contain_text(HOSTILE_TAG)
    expect(page.locator(".params")).to_contain_text("<b>bold</b>")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main script, main img, main b").count() == 0
    assert page.dialogs == [] and page.errors == []


def test_static_report_opens_from_disk_with_the_network_blocked(browser, recorded, tmp_path):
    out = write_report(recorded.path, [recorded.baseline, recorded.odd], tmp_path / "report.html")
    context = browser.new_context(offline=True)
    blocked = []
    context.route("**/*", lambda route: (blocked.append(route.request.url), route.abort())
                  if not route.request.url.startswith(("file:", "data:")) else route.continue_())
    page = context.new_page()
    errors, requests = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.as_uri())
    expect(page.locator(".chart canvas").first).to_be_visible()
    store = Store(recorded.path)
    assert counts(page, "loss")["baseline · loss"] == len(store.epochs(recorded.baseline))
    page.goto(out.as_uri() + f"#/runs/{recorded.baseline}")
    expect(page.locator(".marker-restore")).to_have_count(3)  # two metric charts and the LR panel
    page.check("#batch-toggle")
    expect(page.locator('.chart[data-metric="loss"]')).to_have_attribute("data-counts", re.compile("batches"))
    assert all(url.startswith(("file:", "data:")) for url in requests) and blocked == []
    assert errors == []
    context.close()


def test_a_run_training_in_another_process_gains_an_epoch_on_screen_without_reload(browser, live_job):
    db, gate, job = live_job
    run_id = _wait_for_first_epoch(db, job)
    with running_server(create_app(str(db))) as url:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        runs = browser.new_page()
        page.goto(f"{url}/runs/{run_id}")
        runs.goto(url + "/")
        expect(page.locator("main")).to_have_attribute("data-live", "true")
        expect(page.locator(".chart[data-metric='loss']")).to_have_attribute("data-counts", '{"loss":1,"val_loss":1}')
        expect(runs.locator(f'tr[data-run-id="{run_id}"] .status')).to_have_text("running")
        page.evaluate("window.__same_page = true")
        (gate / "go0").touch()
        expect(page.locator(".chart[data-metric='loss']")).to_have_attribute(
            "data-counts", '{"loss":2,"val_loss":2}', timeout=10_000)
        shown = datetime.now(timezone.utc).replace(tzinfo=None)
        ended = Store(str(db)).epochs(run_id)["ended_at"].iloc[1].to_pydatetime()  # UTC, when the epoch ended
        expect(runs.locator(f'tr[data-run-id="{run_id}"] td[data-key="epochs"]')).to_have_text("2", timeout=10_000)
        assert page.evaluate("window.__same_page") is True, "the page was reloaded"
        shown_after = (shown - ended).total_seconds()
        assert shown_after < 3.0, f"the new epoch appeared {shown_after:.1f} s after it ended"
        (gate / "stop").touch()  # Keras trains one batch of epoch 2, then ends it: 3 epochs
        assert "DONE" in job.communicate(timeout=60)[0]
        expect(page.locator("main")).to_have_attribute("data-live", "false")
        expect(page.locator(".run-head .status")).to_have_text("finished")
        expect(page.locator(".chart[data-metric='loss']")).to_have_attribute("data-counts", '{"loss":3,"val_loss":3}')
        expect(runs.locator(f'tr[data-run-id="{run_id}"] .status')).to_have_text("finished", timeout=15_000)
        assert page.evaluate("window.__same_page") is True
        page.close()
        runs.close()


def _wait_for_first_epoch(db, job):
    """Poll the database (with a timeout) until the job has recorded its first epoch."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert job.poll() is None, job.communicate()[1]
        if db.exists():
            try:
                runs = Dashboard(str(db)).runs()
            except DatabaseError:  # the job is still creating the schema
                runs = []
            if runs and runs[0]["epochs"] >= 1:
                return runs[0]["run_id"]
        time.sleep(0.1)
    raise AssertionError("the training job recorded no epoch within 90 s")
