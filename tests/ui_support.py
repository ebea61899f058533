"""Shared by the dashboard tests: a database of real tiny fits, a served app, headless Chromium.

The database is built once per test session (``recorded_runs``) by real
Keras fits of the guide's model: a run with an LR change, an early stop and
a restore, a run that logs NaN and inf on some epochs only, and a run whose
name, tag and param are hostile HTML.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import keras
from conftest import guide_data, guide_model

from tracker import TrackingCallback

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_TAG = '<img src=x onerror="window.__pwned=1;alert(2)">'


@dataclass(frozen=True)
class Recorded:
    """The session's database and the ids of its runs."""

    path: str
    baseline: str  # LR change at epoch 2, early stop, restore, evaluate
    odd: str  # logs "odd": absent at epoch 0, NaN at 1, inf at 2, -inf at 3
    hostile: str  # hostile name, tag and param
    evaluated: dict  # what model.evaluate returned for the baseline run


class OddLogs(keras.callbacks.Callback):
    """Adds a key to the epoch logs on some epochs only (list it before the tracker)."""

    VALUES = {1: float("nan"), 2: float("inf"), 3: float("-inf")}

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and epoch in self.VALUES:
            logs["odd"] = self.VALUES[epoch]


def build_database(path: str) -> Recorded:
    """Fit the guide's model three times into ``path`` and return the run ids."""
    x, y = guide_data(n=96)
    model = guide_model()
    base = TrackingCallback(path, run_name="baseline", params={"lr": 0.1, "batch_size": 16}, tags={"exp": "ui"})
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 if epoch < 2 else 0.05)
    model.fit(x, y, batch_size=16, epochs=12, validation_split=0.25, callbacks=[base, scheduler, stopper], verbose=0)
    assert 0 < stopper.stopped_epoch < 11 and stopper.best_epoch < stopper.stopped_epoch, "the setup must stop and restore"
    evaluated = model.evaluate(x, y, batch_size=32, callbacks=[base], verbose=0, return_dict=True)

    model = guide_model(learning_rate=0.05, seed=2)
    odd = TrackingCallback(path, run_name="odd-values", params={"lr": 0.05, "batch_size": 16}, tags={"exp": "ui"})
    model.fit(x, y, batch_size=16, epochs=5, validation_split=0.25, callbacks=[OddLogs(), odd], verbose=0)

    model = guide_model(seed=3)
    hostile = TrackingCallback(path, run_name=HOSTILE_NAME, params={"lr": 0.1, "note": "<b>bold</b>"}, tags={"x": HOSTILE_TAG})
    model.fit(x, y, batch_size=32, epochs=2, callbacks=[hostile], verbose=0)
    return Recorded(path, base.run_id, odd.run_id, hostile.run_id, evaluated)


_built: dict[str, Recorded] = {}


def recorded_runs(tmp_path_factory) -> Recorded:
    """The session's database, built on first use."""
    if "db" not in _built:
        _built["db"] = build_database(str(tmp_path_factory.mktemp("ui") / "runs.db"))
    return _built["db"]


def get(url: str) -> tuple[int, str, object]:
    """GET ``url``: ``(status, content type, parsed JSON or text)``, 4xx/5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, kind, body = response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as exc:
        status, kind, body = exc.code, exc.headers.get("content-type", ""), exc.read()
    text = body.decode("utf-8")
    return status, kind, json.loads(text) if kind.startswith("application/json") else text


def launch(playwright):
    """Debian's headless Chromium, through Playwright."""
    if not Path(CHROMIUM).exists():  # pragma: no cover - .ci/run installs it
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@contextmanager
def open_page(browser, *, height=900, timeout_ms=15_000, downloads=False, dialogs=False):
    """A fresh page, in a context of its own, 1280 px wide, closed on exit.

    It records script errors (``page.errors``) and every request it makes
    (``page.requests``); with ``dialogs``, it dismisses every dialog and
    records its message (``page.dialogs``).
    """
    context = browser.new_context(viewport={"width": 1280, "height": height}, accept_downloads=downloads)
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.errors, page.requests, page.dialogs = [], [], []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("request", lambda request: page.requests.append(request.url))
        if dialogs:
            page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        yield page
    finally:
        context.close()
