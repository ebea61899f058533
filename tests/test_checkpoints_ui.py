"""Checkpoints and lineage in the dashboard: the JSON API, save markers on the curves, links both ways.

A parent run saves ``best.keras`` (best-only, so it skips epochs) and a file
every N batches; a child run starts from ``best.keras``. The pages are served
by a real uvicorn server and read by headless Chromium (see ui_support).
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect
from ui_support import get

from tracker import Store, TrackingCallback
from tracker.ui.app import create_app
from tracker.ui.data import Dashboard
from tracker.ui.report import write_report
from tracker.ui.server import running_server

TIMEOUT_MS = 15_000


def model(seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mean_squared_error")
    return m


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    folder = tmp_path_factory.mktemp("family")
    db = str(folder / "runs.db")
    rng = np.random.default_rng(0)
    x = rng.random((64, 8)).astype("float32")
    y = x.sum(axis=1).astype("float32")
    parent = TrackingCallback(db, run_name="parent")
    best = keras.callbacks.ModelCheckpoint(str(folder / "best.keras"), monitor="val_loss", save_best_only=True)
    often = keras.callbacks.ModelCheckpoint(str(folder / "b{epoch}-{batch}.weights.h5"), save_weights_only=True,
                                            save_freq=2)
    kick = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.5 if e == 2 else 0.01)
    model().fit(x, y, batch_size=16, epochs=4, validation_split=0.25, verbose=0, callbacks=[parent, best, often, kick])
    child = TrackingCallback(db, run_name="child")
    keras.saving.load_model(str(folder / "best.keras")).fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[child])
    return {"db": db, "folder": folder, "parent": parent.run_id, "child": child.run_id}


def test_the_run_api_gives_the_checkpoints_the_start_and_the_lineage(family):
    with running_server(create_app(family["db"])) as url:
        status, _, parent = get(f"{url}/api/runs/{family['parent']}")
        _, _, child = get(f"{url}/api/runs/{family['child']}")
    assert status == 200
    store = Store(family["db"])
    frame = store.checkpoints(family["parent"])
    assert [(c["epoch"], c["batch"], c["saved"], c["reason"], c["path"]) for c in parent["checkpoints"]] == [
        (int(r.epoch), None if pd.isna(r.batch) else int(r.batch), bool(r.saved), r.reason, r.path)
        for r in frame.itertuples(index=False)]
    assert {c["reason"] for c in parent["checkpoints"]} == {"improved", "not_improved", "periodic"}
    assert parent["started_from"] is None
    best_epoch = max(c["epoch"] for c in parent["checkpoints"] if c["reason"] == "improved")
    assert child["started_from"] == {"run_id": family["parent"], "epoch": best_epoch}
    assert [(r["relation"], r["child_id"]) for r in parent["lineage"]] == [("descendant", family["child"])]
    assert [(r["relation"], r["parent_id"]) for r in child["lineage"]] == [("ancestor", family["parent"])]
    assert Dashboard(family["db"]).run(family["child"])["started_from"] == child["started_from"]


def test_saves_are_marked_on_the_monitored_curve_with_the_path_and_the_runs_link_both_ways(family, browser):
    saves = Store(family["db"]).checkpoints(family["parent"])
    saved = saves[saves["saved"]]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with running_server(create_app(family["db"])) as url:
        page.goto(f"{url}/runs/{family['parent']}")
        markers = page.locator('.chart[data-metric="loss"] .marker-save')  # loss / val_loss: val_loss is monitored
        expect(markers).to_have_count(len(saved))
        texts = [markers.nth(i).get_attribute("data-text") for i in range(len(saved))]
        for row in saved.itertuples(index=False):
            assert any(text.startswith(f"Saved {row.path} |") for text in texts), row.path
        improved = saved[saved["reason"] == "improved"]
        stars = page.locator('.chart[data-metric="loss"] .marker-save .star')
        expect(stars).to_have_count(len(improved))  # at the monitored value on the val_loss curve
        first = page.locator(f'.chart[data-metric="loss"] .marker-save[data-x="{int(improved.iloc[0]["epoch"])}"]')
        first.first.hover()
        expect(page.locator('.chart[data-metric="loss"] .tip')).to_contain_text(improved.iloc[0]["path"])
        expect(page.locator("table.checkpoints tbody tr")).to_have_count(len(saves))
        page.locator(f'.lineage a[data-run="{family["child"]}"]').click()
        expect(page.locator("#run-name")).to_have_text("child")
        page.locator(f'.lineage a[data-run="{family["parent"]}"]').click()
        expect(page.locator("#run-name")).to_have_text("parent")
    context.close()
    assert errors == []


def test_a_report_links_only_the_runs_it_holds(family, browser, tmp_path):
    path = write_report(family["db"], ["child"], tmp_path / "child.html")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(path.as_uri())
    expect(page.locator("#run-name")).to_have_text("child")
    expect(page.locator(".lineage")).to_contain_text("parent")
    expect(page.locator(".lineage a")).to_have_count(0)  # the parent is not in this report
    context.close()
