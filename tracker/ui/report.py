"""``tracker report``: one self-contained HTML file with the run and compare views, or an experiment's page.

The report holds the very answers the JSON API gives for its runs (runs
list, run detail, epoch curves, downsampled batches, system metrics, compare rows) or for its
experiment (``/api/sweep``, ``/api/sweep/curves``, the experiment's runs, and
the best trial's run), the dashboard's scripts and styles, and the vendored
uPlot, all inline. It opens from disk
with no server and no network; its Content Security Policy forbids every
connection.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tracker.errors import InvalidArgumentError
from tracker.store.filters import maximised
from tracker.ui.data import Dashboard
from tracker.ui.page import report_page
from tracker.ui.system import system_answer

__all__ = ["report_html", "experiment_report_html", "write_report", "form_value", "BATCH_POINTS"]

#: Points per batch curve in a report (as the dashboard asks for them).
BATCH_POINTS = 2000


def _query(pairs: list[tuple[str, str]]) -> str:
    # The scripts build their paths with URLSearchParams: ids and these values need no escaping.
    return "?" + "&".join(f"{k}={v}" for k, v in pairs)


def form_value(text: str) -> str:
    """``text`` encoded as the page's ``URLSearchParams`` encodes a query value (WHATWG's
    application/x-www-form-urlencoded: UTF-8, a space as ``+``, all but ``*-._`` and letters and digits
    percent-encoded), so that a report's keys are the paths the scripts ask for."""
    return quote(text, safe="* ", encoding="utf-8").replace(" ", "+").replace("~", "%7E")


def _listing(data: Dashboard, listed: list[dict[str, Any]], reason: str) -> dict[str, Any]:
    """The answers of the report's runs page: ``/api/keys``, ``/api/runs`` and the table's metric."""
    metric = next((r["metric"] for r in listed if r.get("metric")), None)
    return {
        "/api/keys": {"keys": data.metric_keys(), "database": data.name},
        "/api/runs": listed,
        "table": {"metric": metric, "maximised": bool(metric and maximised(metric)), "metric_reason": reason},
    }


def _run_pages(data: Dashboard, responses: dict[str, Any], ids: Sequence[str]) -> None:
    """Add the answers of each run's page."""
    for rid in ids:
        responses[f"/api/runs/{rid}"] = data.run(rid)
        responses[f"/api/runs/{rid}/keys"] = {"keys": data.keys(rid)}
        responses[f"/api/runs/{rid}/curves"] = data.curves(rid)
        batches = _query([("phase", "fit"), ("points", str(BATCH_POINTS))])
        responses[f"/api/runs/{rid}/batches{batches}"] = data.batches(rid, phase="fit", points=BATCH_POINTS)
        responses[f"/api/runs/{rid}/system"] = system_answer(data.store, rid)


def experiment_report_html(db: str, experiment: str) -> str:
    """Return the HTML of a report on the experiment ``experiment``: its page, as the dashboard draws it.

    The report also lists the experiment's runs and holds the run page of
    its best trial (its best run).

    Raises:
        UnknownExperimentError: no experiment has the name (close names are suggested).
        DatabaseError: the database cannot be read.
    """
    from tracker.ui.experiment import curves_answer, sweep_answer

    data = Dashboard(db)
    info = data.store.sweep(experiment)  # raises for an unknown name, with the close ones
    query = "?experiment=" + form_value(experiment)
    listed = json.loads(data.runs_json(experiment=experiment))
    responses = _listing(data, listed, "as the tracker chose it for the runs of this experiment (the early "
                                       "stoppers' monitor, else val_loss)")
    responses["/api/sweep" + query] = json.loads(sweep_answer(data.store, experiment))
    responses["/api/sweep/curves" + query] = json.loads(curves_answer(data.store, experiment))
    _run_pages(data, responses, [t.best_run for t in info.trials if t.rank == 1])
    responses["start"] = "/experiments/" + quote(experiment, safe="!*'()~")
    return report_page(responses)


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
    listed = json.loads(data.runs_json(run_ids=ids))
    responses = _listing(data, listed, "as the tracker chose it for the runs of this report (the early stoppers' "
                                       "monitor, else val_loss)")
    _run_pages(data, responses, ids)
    compare = _query([("run", rid) for rid in ids])
    if len(ids) > 1:
        # Every run's compare row: the pages take the rows of any subset (static/reportdata.js).
        responses["/api/compare"] = data.compare(ids) if len(ids) <= 20 else _compare_rows(data, ids)
    responses["start"] = f"/runs/{ids[0]}" if len(ids) == 1 else f"/compare{compare}" if len(ids) <= 20 else "/"
    return report_page(responses)


def _compare_rows(data: Dashboard, ids: list[str]) -> dict[str, Any]:
    """The compare answer of more than 20 runs, 20 at a time, on the columns of all of them."""
    parts = [data.compare(ids[i:i + 20]) for i in range(0, len(ids), 20)]
    columns = list(dict.fromkeys(c for p in parts for c in p["columns"]))
    return {"columns": columns, "rows": [{c: row.get(c) for c in columns} for p in parts for row in p["rows"]]}


def write_report(db: str, runs: Sequence[str], out: str | os.PathLike[str], *, experiment: str | None = None) -> Path:
    """Write ``report_html(db, runs)`` (or, with ``experiment``, ``experiment_report_html(db, experiment)``)
    to ``out`` and return its path.

    Raises:
        ValueError, UnknownRunError, DatabaseError: see ``report_html``.
        UnknownExperimentError: see ``experiment_report_html``.
        InvalidArgumentError: the folder of ``out`` does not exist, or the
            file cannot be written (one sentence).
    """
    path = Path(out)
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    html = experiment_report_html(db, experiment) if experiment is not None else report_html(db, runs)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise InvalidArgumentError(f"Cannot write {path}: {exc.strerror}.") from None
    return path
