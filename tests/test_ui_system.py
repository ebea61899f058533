"""The run page's System panel, in the real headless browser, and its JSON answer.

A real fit (a slow callback, samples every 0.05 s) and a run recorded with
``system_metrics=False``, served by uvicorn; the page draws the panel's
charts once it is scrolled to, from ``/api/runs/ID/system``, and says so
when a run has no samples. A report holds the same answer and draws it
offline.
"""

import json
import threading

import keras
import pytest
from conftest import guide_data, guide_model
from playwright.sync_api import expect
from ui_support import get, open_page

from tracker import Store, TrackingCallback
from tracker.ui.app import create_app
from tracker.ui.report import write_report
from tracker.ui.server import running_server

TIMEOUT_MS = 15_000


class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        threading.Event().wait(0.15)  # timed samples come in between


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("system") / "runs.db")
    x, y = guide_data(n=64)
    sampled = TrackingCallback(path, run_name="sampled", system_interval=0.05)
    guide_model().fit(x, y, batch_size=16, epochs=4, validation_split=0.25, callbacks=[Slow(), sampled], verbose=0)
    quiet = TrackingCallback(path, run_name="quiet", system_metrics=False)
    guide_model().fit(x, y, batch_size=16, epochs=2, callbacks=[quiet], verbose=0)
    return path, sampled.run_id, quiet.run_id


@pytest.fixture(scope="module")
def site(runs):
    with running_server(create_app(runs[0])) as url:
        yield url


@pytest.fixture
def page(browser):
    with open_page(browser, timeout_ms=TIMEOUT_MS) as page:
        yield page


def counts(page, metric):
    return json.loads(page.locator(f'#system-panel .chart[data-metric="{metric}"]').get_attribute("data-counts"))


def test_the_api_answers_the_samples_of_store_system_as_columns(site, runs):
    path, sampled, quiet = runs
    frame = Store(path).system(sampled)
    status, kind, body = get(f"{site}/api/runs/{sampled}/system")
    assert status == 200 and kind.startswith("application/json")
    assert body["rss"] == list(frame["rss"]) and body["elapsed"] == list(frame["elapsed"])
    assert body["epoch"] == [None if e is None or e != e else int(e) for e in frame["epoch"].astype(object).where(
        frame["epoch"].notna(), None)]
    assert body["gpus"] == {} and len(body["trigger"]) == len(frame) > 4
    status, _, empty = get(f"{site}/api/runs/{quiet}/system")
    assert status == 200 and empty["elapsed"] == [] and empty["gpus"] == {}
    status, _, missing = get(f"{site}/api/runs/{'0' * 32}/system")
    assert status == 404 and "No run has the id" in missing["error"]


def test_the_run_page_draws_cpu_and_memory_once_the_panel_is_scrolled_to(page, site, runs, tmp_path):
    path, sampled, _ = runs
    frame = Store(path).system(sampled)
    page.goto(f"{site}/runs/{sampled}")
    expect(page.locator(".chart canvas").first).to_be_visible()
    page.locator("#system-panel").scroll_into_view_if_needed()
    expect(page.locator("#system-panel .chart")).to_have_count(2)  # CPU and memory; no GPU here
    cpu = frame["cpu_percent"].notna().sum()
    assert counts(page, "system:cpu") == {"process CPU %": int(cpu)}
    assert counts(page, "system:memory") == {"process RSS": len(frame), "machine memory used": len(frame)}
    expect(page.locator("#system-note")).to_contain_text(f"{len(frame)} samples")
    expect(page.locator("#system-note")).to_contain_text("no GPU was seen")
    assert sum(url.endswith(f"/api/runs/{sampled}/system") for url in page.requests) == 1
    page.locator("#system-panel").screenshot(path=str(tmp_path / "system-panel.png"))
    assert (tmp_path / "system-panel.png").stat().st_size > 10_000
    assert page.errors == []


def test_a_run_without_samples_says_so(page, site, runs):
    page.goto(f"{site}/runs/{runs[2]}")
    page.locator("#system-panel").scroll_into_view_if_needed()
    expect(page.locator("#system-note")).to_contain_text("No system metrics were recorded for this run")
    expect(page.locator("#system-panel .chart")).to_have_count(0)
    assert page.errors == []


def test_a_report_draws_the_panel_offline(browser, runs, tmp_path):
    path, sampled, _ = runs
    out = write_report(path, [sampled], tmp_path / "report.html")
    context = browser.new_context(offline=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(out.as_uri())
    page.locator("#system-panel").scroll_into_view_if_needed()
    expect(page.locator("#system-panel .chart")).to_have_count(2)
    assert counts(page, "system:memory")["process RSS"] == len(Store(path).system(sampled))
    assert errors == []
    context.close()
