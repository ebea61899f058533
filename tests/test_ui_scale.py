"""The dashboard at scale in Chromium: 10,000 runs, a run with 10,000 keys, 20 runs compared, chart tools.

One database per module, written in bulk (benchmarks/bulk_runs.py: 10,000
runs of 3 epochs, a run with 10,000 logs keys, a run of one epoch) and
served by a real uvicorn server. Behaviour only, no timings (the figures are
in docs/dashboard-scale.md, from benchmarks/ui_scale.py).
"""

import json
import sys
import urllib.parse
from pathlib import Path

import pytest
from playwright.sync_api import expect
from ui_support import get, open_page, recorded_runs

from tracker import Store
from tracker.ui.app import create_app
from tracker.ui.report import write_report
from tracker.ui.server import running_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bulk_runs import bulk_runs, wide_run  # noqa: E402

RUNS = 10_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("scale") / "big.db")
    ids = bulk_runs(path, RUNS, epochs=3, keys=("loss", "val_loss"))
    wide = wide_run(path, 10_000, epochs=3)
    one = wide_run(path, 2, epochs=1, name="one-epoch", seed=5)
    return path, ids, wide, one


@pytest.fixture(scope="module")
def site(big):
    with running_server(create_app(big[0])) as url:
        yield url


@pytest.fixture
def page(browser):
    with open_page(browser, timeout_ms=20_000, downloads=True) as page:
        yield page


def table(site, **query):
    status, _, answer = get(site + "/api/table?" + urllib.parse.urlencode(query))
    assert status == 200, answer
    return answer


def test_api_table_pages_sorts_and_filters_10000_runs_on_the_server(site, big):
    store = Store(big[0])
    first = table(site, sort="best", order="asc", limit=100)
    assert first["total"] == RUNS + 2 and len(first["runs"]) == 100 and first["metric"] == "val_loss"
    expected = store.runs(sort="best:val_loss", limit=100)
    assert [r["run_id"] for r in first["runs"]] == list(expected["run_id"])
    last = table(site, sort="best", order="asc", offset=RUNS, limit=100)
    assert [r["run_id"] for r in last["runs"]] == list(store.runs(sort="best:val_loss")["run_id"][-2:])
    where = "best.val_loss < 1.5 and params.lr >= 1e-3 and tags.sweep = lr"
    chosen = table(site, where=where, limit=1000)
    assert chosen["total"] == len(store.runs(where=where)) > 0
    assert "monitor of the early stoppers" in chosen["metric_reason"]
    assert table(site, since=first["version"])["unchanged"] is True  # nothing running, nothing changed
    status, _, error = get(site + "/api/table?" + urllib.parse.urlencode({"where": "best.val_loss <"}))
    assert status == 400 and error["error"].startswith("Cannot read the filter at character 16")


def test_runs_table_pages_sorts_and_filters_10000_runs_and_keeps_unchanged_rows(page, site, big):
    page.goto(site + "/")
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(100)
    expect(page.locator("#count")).to_have_text(f"runs 1–100 of {RUNS + 2:,}")
    expect(page.locator("#runs th.param").first).to_contain_text("param")
    expect(page.locator('#runs th[data-key="started_at"]')).to_contain_text("UTC")
    assert page.locator('#runs td[data-key="started_at"]').first.inner_text().endswith("Z")
    best = page.locator('#runs th[data-key="best"]')
    assert "val_loss" in best.inner_text().replace("\u200b", "") and "monitor of the early stoppers" in best.get_attribute("title")
    page.click("#page-next")
    expect(page.locator("#count")).to_have_text(f"runs 101–200 of {RUNS + 2:,}")
    best.click()  # best val_loss, smallest first, on the server
    store = Store(big[0])
    top = store.runs(sort="best:val_loss", limit=1)["run_id"][0]
    expect(rows.first).to_have_attribute("data-run-id", top)
    page.fill("#filter", "params.optimizer = sgd and status = crashed")
    expected = len(store.runs(where="params.optimizer = sgd and status = crashed"))
    expect(page.locator("#count")).to_have_text(f"runs 1–{min(100, expected)} of {expected:,}")
    page.evaluate("document.querySelector('#runs tbody tr').__kept = true")
    with page.expect_request(lambda r: "since=" in r.url, timeout=15_000):
        pass  # the poll asks with the version it shows
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length > 0")
    assert page.evaluate("document.querySelector('#runs tbody tr').__kept") is True  # unchanged rows are not redrawn
    assert page.errors == []


def test_a_run_with_10000_keys_draws_charts_lazily_with_a_search_and_sections(page, site, big):
    page.goto(f"{site}/runs/{big[2]}")
    expect(page.locator("#key-count")).to_have_text("10,000 keys")
    expect(page.locator('.slot[data-state="drawn"]').first).to_be_visible()
    expect(page.locator('details.key-section[data-prefix="inner/"] summary')).to_contain_text("on 4,999 charts")
    drawn = page.locator('.slot[data-state="drawn"]').count()
    assert 0 < drawn < 30  # only the charts near the window
    curves = [u for u in page.requests if "/curves" in u]
    assert curves and all(u.count("key=") <= 300 for u in curves)
    expect(page.locator('.chart[data-metric="loss"]')).to_have_attribute("data-counts", '{"loss":3,"val_loss":3}')
    page.fill("#key-search", "block_0007/metric_3")
    expect(page.locator(".slot")).to_have_count(1)
    expect(page.locator('.chart[data-metric="inner/block_0007/metric_3"]')).to_be_visible()
    expect(page.locator("#lr-note")).to_contain_text("throughout; no change was recorded")
    expect(page.locator("#lr-panel .chart")).to_have_count(0)
    expect(page.locator(".params-empty")).to_contain_text("No params were given")
    assert page.errors == []


def test_one_epoch_reads_1_epoch(page, site, big):
    page.goto(f"{site}/runs/{big[3]}")
    expect(page.locator("#epoch-count")).to_have_text("1 epoch")


def test_compare_of_20_runs_fits_the_window_with_a_diff_table(page, site, big):
    ids = big[1][:20]
    page.goto(site + "/compare?" + "&".join(f"run={i}" for i in ids))
    chart = page.locator('.chart[data-metric="loss"]')
    expect(chart).to_be_visible()
    assert len(json.loads(chart.get_attribute("data-counts"))) == 40
    assert chart.locator(".u-legend").count() == 0 and chart.locator(".readout").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    table = page.locator("#compare-table")
    expect(table.locator('tr[data-field="duration_s"] th')).to_have_text("duration")
    assert table.locator('tr[data-field^="best:learning_rate"]').count() == 0
    best_row = table.locator('tr[data-field="best:val_loss"]')
    expect(best_row.locator("td.best-value")).to_have_count(1)
    values = Store(big[0]).overview(run_ids=ids)
    low = values.loc[values["best"].idxmin(), "run_id"]
    assert best_row.locator("td").nth(ids.index(low)).get_attribute("class").endswith("best-value")
    assert table.locator("tr.same").count() > 0 and table.locator("tr.same").first.is_hidden()  # equal rows hidden
    assert page.errors == []


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return recorded_runs(tmp_path_factory)


def test_chart_tools_smooth_switch_axes_zoom_expand_and_download(page, recorded):
    store = Store(recorded.path)
    with running_server(create_app(recorded.path)) as url:
        page.goto(f"{url}/runs/{recorded.baseline}")
        chart = page.locator('.chart[data-metric="loss"]')
        expect(chart).to_be_visible()
        assert chart.locator(".marker-lr").count() == 0 and chart.locator(".marker-lr-tick").count() == 1  # faint ticks
        expect(page.locator("#lr-panel .marker-lr")).to_have_count(1)
        with page.expect_download() as download:
            chart.locator(".tool-csv").click()
        lines = Path(download.value.path()).read_text().splitlines()
        epochs = store.epochs(recorded.baseline)
        assert lines[0] == "epoch,loss,val_loss" and len(lines) == len(epochs) + 1
        assert [float(x) for x in lines[1].split(",")[1:]] == [epochs["loss"][0], epochs["val_loss"][0]]  # exact
        with page.expect_download() as download:
            chart.locator(".tool-png").click()
        assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page.locator("#smoothing").fill("0.6")
        expect(page.locator("#smoothing-value")).to_have_text("0.60")
        expect(chart.locator(".u-legend")).to_contain_text("loss (raw)")
        page.select_option("#x-axis", "step")
        expect(page.locator('.chart[data-metric="loss"]')).to_have_attribute("data-axis", "step")
        page.select_option("#x-axis", "elapsed")
        expect(page.locator('.chart[data-metric="loss"]')).to_have_attribute("data-axis", "elapsed")
        chart = page.locator('.chart[data-metric="loss"]')
        box = chart.locator(".u-over").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + 40)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40, steps=5)
        page.mouse.up()
        expect(chart).to_have_attribute("data-zoomed", "true")
        chart.locator(".tool-reset").click()
        expect(chart).not_to_have_attribute("data-zoomed", "true")
        chart.locator(".tool-expand").click()
        expect(chart).to_have_class("chart expanded")
        assert chart.bounding_box()["width"] > 1000
        page.keyboard.press("Escape")
        expect(chart).to_have_class("chart")
        page.goto(f"{url}/runs/{recorded.odd}")
        expect(page.locator("#lr-note")).to_contain_text("throughout")
    assert page.errors == []


def test_the_report_compares_a_subset_of_its_runs_offline(browser, recorded, tmp_path):
    out = write_report(recorded.path, [recorded.baseline, recorded.odd, recorded.hostile], tmp_path / "report.html")
    context = browser.new_context(offline=True, accept_downloads=True)
    page = context.new_page()
    errors, requests = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.as_uri() + f"#/compare?run={recorded.baseline}&run={recorded.odd}")
    expect(page.locator('.chart[data-metric="loss"]')).to_be_visible()
    assert set(json.loads(page.locator('.chart[data-metric="loss"]').get_attribute("data-counts"))) == {
        "baseline · loss", "baseline · val_loss", "odd-values · loss", "odd-values · val_loss"}
    expect(page.locator("#compare-table thead th")).to_have_count(3)
    page.goto(out.as_uri() + "#/")
    expect(page.locator("#runs tbody tr")).to_have_count(3)
    page.fill("#filter", "odd")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    page.goto(out.as_uri() + f"#/runs/{recorded.baseline}")
    with page.expect_download() as download:
        page.locator('.chart[data-metric="loss"] .tool-csv').click()
    assert Path(download.value.path()).read_text().startswith("epoch,loss,val_loss")
    assert all(u.startswith(("file:", "data:", "blob:")) for u in requests) and errors == []
    context.close()
