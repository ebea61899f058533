"""Measure the sweep views on a 1,000-trial experiment, against the issue's goals.

  a. ``tracker sweep EXPERIMENT`` as a user runs it (a new process: start-up, reading, ranking, the
     importance, the table), wall time; goal <= 1 s;
  b. the experiment page's API answers through a real uvicorn server, ``GET /api/sweep`` and
     ``GET /api/sweep/curves`` (30,000 epoch values), each; goal <= 300 ms each;
  c. the experiment page drawn in Chromium (Playwright, Debian's /usr/bin/chromium): from navigation
     to every plot and the table drawn (``main[data-drawn=true]``), with both answers fetched;
     goal <= 2 s;
  and, for reference only, ``tracker sweep --fanova`` (Optuna's fANOVA, asked for) and
  ``tracker report --experiment``.

The database (``benchmarks/sweep_data.py``) is written straight through ``tracker.db`` writes, as
the integrations write a study: 1,000 trials, three params, 30 epochs each, a quarter pruned, a
few failed. Each figure is the median of --repeat runs after one warm-up (min in brackets). The
load average is printed, because this machine is shared.

Run:  python benchmarks/sweep.py [--repeat 7] [--trials 1000]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_data import EXPERIMENT, ensure  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TRACKER = str(Path(sys.executable).parent / "tracker")


def timed(fn: Any, repeat: int) -> tuple[float, float]:
    """(median, min) in ms of ``repeat`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times)


def command(*args: str) -> None:
    done = subprocess.run([TRACKER, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    if done.returncode != 0:
        raise RuntimeError(f"tracker {' '.join(args)} failed: {done.stderr[-500:]}")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    db = ensure(args.trials)
    print(f"database {db}; load average before: {load()} ({os.cpu_count()} cores)")
    results = []
    cli = timed(lambda: command("--db", db, "sweep", EXPERIMENT), args.repeat)
    results.append((f"a. tracker sweep, {args.trials:,} trials (a new process)", cli, 1000))
    fanova = timed(lambda: command("--db", db, "sweep", EXPERIMENT, "--fanova"), 1)
    out = f"/tmp/tracker-sweep-{args.trials}.html"
    report = timed(lambda: command("--db", db, "report", "--experiment", EXPERIMENT, "--out", out), 1)

    from playwright.sync_api import sync_playwright

    from tracker.ui.app import create_app
    from tracker.ui.server import running_server

    query = f"?experiment={EXPERIMENT}"
    with running_server(create_app(db)) as url:
        sizes = {p: len(fetch(url + p + query)) for p in ("/api/sweep", "/api/sweep/curves")}
        for path, size in sizes.items():
            answer = timed(lambda: fetch(url + path + query), args.repeat)
            results.append((f"b. GET {path} ({size / 2**20:.2f} MiB)", answer, 300))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def draw() -> None:
                page.goto("about:blank")
                page.goto(f"{url}/experiments/{EXPERIMENT}")
                page.wait_for_selector("main[data-drawn=true]", timeout=60_000)

            drawn = timed(draw, args.repeat)
            lines = page.locator('[data-plot="parallel"]').get_attribute("data-lines")
            curves = page.locator('[data-plot="curves"]').get_attribute("data-curves")
            browser.close()
        results.append((f"c. the experiment page drawn in Chromium ({lines} lines, {curves} curves)", drawn, 2000))
    print(f"load average after: {load()}")
    print(f"timings: median of {args.repeat} after one warm-up (min in brackets)")
    for label, (median, low), goal in results:
        print(f"  {label}: {median:.0f} ms (min {low:.0f}) (goal <= {goal} ms)")
    print(f"  for reference: tracker sweep --fanova {fanova[0] / 1e3:.1f} s; "
          f"tracker report --experiment {report[0] / 1e3:.1f} s ({os.path.getsize(out) / 2**20:.1f} MiB)")
    for label, (median, _), goal in results:
        print(f"{'GOAL MET' if median <= goal else 'GOAL MISSED'}: {label} {median:.0f} ms (goal <= {goal} ms)")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
