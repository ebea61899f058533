"""Screenshots of the dashboard for the docs: docs/ui-runs.png, docs/ui-run.png (also in the README), docs/ui-compare.png.

Trains the guide's model on scikit-learn's digits (the demo's data, no download) a few times with
the tracker: an early stop with a restore and ReduceLROnPlateau, a step decay, a slower learning
rate and a hostile run name, each evaluated; plus a job that is killed (crashed) and one still
running while the pages are photographed. Then serves the database with ``tracker.ui`` and photographs
the pages with Debian's headless Chromium (through Playwright), as PNGs reduced to 256 colours.

Run:  python scripts/ui_screenshots.py [--db /tmp/tracker-ui-shots.db] [--out docs]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
LIVE_JOB = REPO / "tests" / "scripts" / "train_live.py"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def train(db: str) -> dict[str, str]:
    """Record four runs into ``db`` (replacing it); return their ids by name."""
    import keras

    from tracker.callbacks.demo import get_model, load_digits_784
    from tracker import TrackingCallback

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    x, y, x_test, y_test = load_digits_784()
    ids = {}

    def run(name, lr, epochs, callbacks, params):
        keras.utils.set_random_seed(0)
        model = get_model()
        model.optimizer.learning_rate = lr
        tracker = TrackingCallback(db, run_name=name, params={"lr": lr, "batch_size": 64, **params}, tags={"data": "digits"})
        model.fit(x, y, batch_size=64, epochs=epochs, validation_split=0.2, callbacks=[tracker, *callbacks], verbose=0)
        model.evaluate(x_test, y_test, callbacks=[tracker], verbose=0)
        ids[name] = tracker.run_id

    run("plateau-early-stop", 0.02, 60, [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-4),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=6, restore_best_weights=True),
    ], {"patience": 6})
    run("step-decay", 0.03, 24, [keras.callbacks.LearningRateScheduler(lambda e, lr: lr / 2 if e in (8, 16) else lr)],
        {"patience": None})
    run("slow-lr", 0.002, 30, [], {"patience": None})
    run("<script>alert('name')</script>", 0.05, 8, [], {"patience": None})
    return ids


def start_jobs(db: str, folder: Path) -> list[subprocess.Popen[str]]:
    """Two jobs of tests/scripts/train_live.py that record an epoch and wait: one is then killed
    (shown crashed), the other stays running while the pages are photographed."""
    jobs = []
    for name in ("crashed", "running"):
        gate = folder / name
        gate.mkdir(parents=True, exist_ok=True)
        jobs.append(subprocess.Popen([sys.executable, str(LIVE_JOB), db, str(gate)], text=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from tracker.ui.data import Dashboard

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # poll until both jobs have recorded their first epoch
        live = [r for r in Dashboard(db).runs() if r["name"] == "live" and r["epochs"] >= 1]
        if len(live) == 2:
            break
        time.sleep(0.2)
    jobs[0].kill()
    jobs[0].wait()
    return jobs


def shoot(db: str, ids: dict[str, str], out: Path) -> list[Path]:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from tracker.ui.app import create_app
    from tracker.ui.server import running_server

    stop, slow, decay = ids["plateau-early-stop"], ids["slow-lr"], ids["step-decay"]
    pages = [
        ("ui-runs.png", "/", None, 600),
        ("ui-run.png", f"/runs/{stop}", ".chart[data-metric='loss'] .marker-restore", 900),
        ("ui-compare.png", f"/compare?run={stop}&run={decay}&run={slow}", None, 900),
    ]
    written = []
    with running_server(create_app(db)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        for name, path, hover, height in pages:
            page.goto(url + path)
            page.locator("#runs tbody tr, .chart canvas").first.wait_for()
            page.wait_for_load_state("networkidle")
            if hover:
                page.locator(hover).hover()
            if name == "ui-runs.png":
                for rid in (stop, slow):
                    page.locator(f'tr[data-run-id="{rid}"] input[type=checkbox]').check()
            target = out / name
            page.screenshot(path=str(target), clip={"x": 0, "y": 0, "width": 1280, "height": height})
            Image.open(target).convert("RGB").quantize(colors=256).save(target, optimize=True)
            written.append(target)
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="/tmp/tracker-ui-shots.db")
    parser.add_argument("--out", default=str(REPO / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ids = train(args.db)
    with tempfile.TemporaryDirectory() as folder:
        jobs = start_jobs(args.db, Path(folder))
        try:
            for path in shoot(args.db, ids, out):
                print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
        finally:
            (Path(folder) / "running" / "stop").touch()
            jobs[1].wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
