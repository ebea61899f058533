"""``tracker report``: one self-contained HTML file with the run and compare views.

The report holds the very answers the JSON API gives for its runs (runs
list, run detail, epochs, downsampled batches, compare), the dashboard's
scripts and styles, and the vendored uPlot, all inline. It opens from disk
with no server and no network; its Content Security Policy forbids every
connection.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracker.ui.data import Dashboard
from tracker.ui.page import report_page

__all__ = ["report_html", "write_report", "BATCH_POINTS"]

#: Points per batch curve in a report (as the dashboard asks for them).
BATCH_POINTS = 2000


def _query(pairs: list[tuple[str, str]]) -> str:
    # The scripts build their paths with URLSearchParams: ids and these values need no escaping.
    return "?" + "&".join(f"{k}={v}" for k, v in pairs)


def report_html(db: str, runs: Sequence[str]) -> str:
    """Return the HTML of a report on ``runs`` of the database ``db``.

    Args:
        db: A file path or an SQLAlchemy URL (opened read-only).
        runs: Run references: ids, unique id prefixes, names or ``latest``.

    Returns:
        One HTML document. It opens on the run page for one run and on the
        compare page for several; its runs page lists the included runs.

    Raises:
        ValueError: ``runs`` is empty.
        UnknownRunError: a reference names no run.
        DatabaseError: the database cannot be read.
    """
    if not runs:
        raise ValueError("Give at least one run to report on.")
    data = Dashboard(db)
    ids = list(dict.fromkeys(data.store.resolve(ref) for ref in runs))
    responses: dict[str, Any] = {
        "/api/keys": {"keys": data.metric_keys(), "database": data.name},
        "/api/runs": json.loads(data.runs_json(run_ids=ids)),
    }
    for rid in ids:
        responses[f"/api/runs/{rid}"] = data.run(rid)
        responses[f"/api/runs/{rid}/epochs"] = data.epochs(rid)
        batches = _query([("phase", "fit"), ("points", str(BATCH_POINTS))])
        responses[f"/api/runs/{rid}/batches{batches}"] = data.batches(rid, phase="fit", points=BATCH_POINTS)
    compare = _query([("run", rid) for rid in ids])
    if len(ids) > 1:
        responses[f"/api/compare{compare}"] = data.compare(ids)
    responses["start"] = f"/compare{compare}" if len(ids) > 1 else f"/runs/{ids[0]}"
    return report_page(responses)


def write_report(db: str, runs: Sequence[str], out: str | os.PathLike[str]) -> Path:
    """Write ``report_html(db, runs)`` to ``out`` and return its path.

    Raises:
        ValueError, UnknownRunError, DatabaseError: see ``report_html``.
        OSError: the file cannot be written.
    """
    path = Path(out)
    html = report_html(db, runs)
    path.write_text(html, encoding="utf-8")
    return path
