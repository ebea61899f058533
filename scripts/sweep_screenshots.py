"""Screenshots of the experiment page for the docs: docs/ui-experiment.png (also in the README) and
docs/ui-experiment-plots.png.

Runs a real Optuna study under ``tracker.autolog`` (no other tracking code): 40 trials of a small
classifier on scikit-learn's digits (the demo's data, no download), searching the learning rate
(log), the width and the activation, 12 epochs each, with optuna-integration's
``KerasPruningCallback`` and a ``MedianPruner``. Then serves the database with ``tracker.ui``,
brushes the learning-rate axis of the parallel coordinates as a user would (a mouse drag), and
photographs the page with Debian's headless Chromium (through Playwright), as PNGs reduced to 256
colours.

Run:  python scripts/sweep_screenshots.py [--db /tmp/tracker-sweep-shots.db] [--out docs]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
STUDY = "digits-mlp"


def search(db: str) -> None:
    """Run the study into ``db`` (replacing it)."""
    import keras
    import optuna
    from optuna_integration import KerasPruningCallback

    import tracker
    from tracker.callbacks.demo import load_digits_784

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    x, _, x_test, _ = load_digits_784()
    from sklearn.datasets import load_digits

    labels = load_digits().target
    y, y_test = labels[: len(x)], labels[len(x):]
    tracker.autolog(db, log_batches=False)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 0.3, log=True)
        units = trial.suggest_int("units", 8, 256, log=True)
        activation = trial.suggest_categorical("activation", ["relu", "tanh", "sigmoid"])
        keras.utils.set_random_seed(trial.number)
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(units, activation=activation),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(x, y, batch_size=64, epochs=12, validation_data=(x_test, y_test), verbose=0,
                            callbacks=[KerasPruningCallback(trial, "val_loss")])
        return min(history.history["val_loss"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=STUDY, sampler=optuna.samplers.TPESampler(seed=4, n_startup_trials=12),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=8, n_warmup_steps=3))
    study.optimize(objective, n_trials=40)
    tracker.autolog(disable=True)
    states = [t.state.name for t in study.trials]
    print(f"{STUDY}: best trial {study.best_trial.number} ({study.best_value:.4f}); "
          f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned")


def shoot(db: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from tracker.ui.app import create_app
    from tracker.ui.server import running_server

    written = []
    with running_server(create_app(db)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(f"{url}/experiments/{STUDY}")
        page.wait_for_selector("main[data-drawn=true]")
        written.append(_shot(page, out / "ui-experiment-plots.png", "#importance-title"))
        parallel = page.locator('[data-plot="parallel"]')
        axes = {a["name"]: a for a in json.loads(parallel.get_attribute("data-axes"))}
        box = parallel.locator("canvas").bounding_box()
        top, bottom = float(parallel.get_attribute("data-top")), float(parallel.get_attribute("data-bottom"))
        x = box["x"] + axes["lr"]["x"]
        page.mouse.move(x, box["y"] + top + (bottom - top) * 0.25)  # brush the middle of the lr axis
        page.mouse.down()
        page.mouse.move(x, box["y"] + top + (bottom - top) * 0.7, steps=8)
        page.mouse.up()
        page.mouse.move(5, 5)
        written.append(_shot(page, out / "ui-experiment.png", None))
        browser.close()
    return written


def _shot(page: Any, target: Path, anchor: str | None) -> Path:
    """Photograph the page's top (``anchor`` None) or from ``anchor`` down, as a 256-colour PNG."""
    from PIL import Image

    if anchor:
        y = page.evaluate("(s) => document.querySelector(s).getBoundingClientRect().top + window.scrollY", anchor)
        end = page.evaluate("document.documentElement.scrollHeight")
        page.screenshot(path=str(target), full_page=True,
                        clip={"x": 0, "y": y - 8, "width": 1280, "height": min(1150, end - y + 8)})
    else:
        page.screenshot(path=str(target), clip={"x": 0, "y": 0, "width": 1280, "height": 760})
    Image.open(target).convert("RGB").quantize(colors=256).save(target, optimize=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--db", default="/tmp/tracker-sweep-shots.db")
    parser.add_argument("--out", default=str(REPO / "docs"))
    parser.add_argument("--reuse", action="store_true", help="photograph the database as it is (no new search)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        search(args.db)
    for path in shoot(args.db, out):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    sys.exit(main())
