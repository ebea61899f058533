"""The dashboard at scale, measured in Chromium: the runs table at 1,000 and 10,000 runs, a run with 1,000 and 10,000 keys.

Goals (issue 21): the first rows of the runs table drawn within 1 s; a sort and a filter redrawn within
300 ms on 10,000 runs; the page of a run with 10,000 logs keys drawn within 2 s.

The databases are written in bulk (``benchmarks/bulk_runs.py``: runs of 10 epochs of four keys, params,
a tag, early stops and restores; runs with many keys in ``inner/block_J/metric_M`` families with their
``val_`` twins), served by a real uvicorn server, and opened by Debian's headless Chromium through
Playwright. Each figure is the median of --repeat page loads or clicks (min in brackets), measured in
the page from the navigation (or the click) until the rows or the first charts are on screen (seen by a
MutationObserver installed before the page's scripts, so Playwright's own latency is left out):

  a. first rows: navigation start until the runs table shows its rows;
  b. sort: a click on the ``best`` header until the rows are redrawn in the new order;
  c. filter: typing a filter and Enter until the rows are redrawn;
  d. a run with N keys: navigation start until its first charts are drawn (the rest are drawn as they
     scroll into view).

Run:  python benchmarks/ui_scale.py [--repeat 5]
It always exits 0: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bulk_runs import bulk_runs, wide_run  # noqa: E402

from tracker.ui.app import create_app  # noqa: E402
from tracker.ui.server import running_server  # noqa: E402

FOLDER = "/tmp/tracker-ui-scale"
FILTER = "best.val_loss < 0.4 and params.lr >= 1e-3"


def database(runs: int, keys: int) -> tuple[str, str]:
    """A database of ``runs`` runs and one run with ``keys`` keys (made once, then reused)."""
    os.makedirs(FOLDER, exist_ok=True)
    path = f"{FOLDER}/runs-{runs}-keys-{keys}.db"
    marker = path + ".done"
    if not os.path.exists(marker):
        for p in (path, path + "-wal", path + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        t = time.perf_counter()
        bulk_runs(path, runs, epochs=10)
        wide = wide_run(path, keys, epochs=20)
        Path(marker).write_text(wide)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    return path, Path(marker).read_text()


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms (min {min(values):.0f})"


#: Installed before each page's own scripts: the time (since navigation start) at which the first rows,
#: and the first drawn chart, appear in the document. Read in the page, so the figures leave out how
#: long Playwright takes to notice (a poll and a round trip: 100-300 ms on a loaded machine).
SEEN = """new MutationObserver((changes, observer) => {
  if (window.__rows === undefined && document.querySelector('#runs tbody tr')) window.__rows = performance.now();
  if (window.__chart === undefined && document.querySelector('.slot[data-state="drawn"] canvas')) {
    window.__chart = performance.now();
  }
}).observe(document, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-state']});"""


def measure(browser, url: str, wide: str, repeat: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"first rows": [], "sort": [], "filter": [], "keys": []}
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(SEEN)
        page.goto(url + "/")
        page.locator("#runs tbody tr").first.wait_for()
        out["first rows"].append(page.evaluate("window.__rows"))
        first = page.locator("#runs tbody tr").first.get_attribute("data-run-id")
        t = page.evaluate("""(first) => new Promise((done) => {
            const t0 = performance.now();
            new MutationObserver((m, o) => {
              const row = document.querySelector('#runs tbody tr');
              if (row && row.dataset.runId !== first) { o.disconnect(); done(performance.now() - t0); }
            }).observe(document.querySelector('#runs'), {childList: true, subtree: true});
            document.querySelector('#runs th[data-key="best"]').click();
        })""", first)
        out["sort"].append(t)
        total = page.locator("#count").inner_text()
        t = page.evaluate("""([text, before]) => new Promise((done) => {
            const box = document.querySelector('#filter'), count = document.querySelector('#count');
            const t0 = performance.now();
            new MutationObserver((m, o) => { if (count.textContent !== before) { o.disconnect(); done(performance.now() - t0); } })
              .observe(count, {childList: true, characterData: true, subtree: true});
            box.value = text;
            box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));
        })""", [FILTER, total])
        out["filter"].append(t)
        page.goto(f"{url}/runs/{wide}")
        page.locator('.slot[data-state="drawn"] canvas').first.wait_for()
        out["keys"].append(page.evaluate("window.__chart"))
        page.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from ui_support import launch

    results = {}
    for runs, keys in ((1_000, 1_000), (10_000, 10_000)):
        path, wide = database(runs, keys)
        with running_server(create_app(path)) as url, sync_playwright() as p:
            browser = launch(p)
            results[(runs, keys)] = measure(browser, url, wide, args.repeat)
            browser.close()
    print(f"load average {', '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} cores); "
          f"median of {args.repeat} (min)")
    print(f"{'':34} {'1,000 runs / keys':>22} {'10,000 runs / keys':>22}   goal")
    rows = [("a. runs table: first rows", "first rows", 1000), ("b. sort by best (server)", "sort", 300),
            ("c. filter (server)", "filter", 300), ("d. run with N keys: first charts", "keys", 2000)]
    small, large = results[(1_000, 1_000)], results[(10_000, 10_000)]
    for label, key, goal in rows:
        print(f"{label:34} {median(small[key]):>22} {median(large[key]):>22}   <= {goal} ms "
              f"{'met' if statistics.median(large[key]) <= goal else 'MISSED'}")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a measurement: report, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
    sys.exit(0)
