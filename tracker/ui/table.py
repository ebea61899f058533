"""The runs table at scale: ``/api/table``, one page of runs, filtered and sorted on the server.

One light query lists every run the filters select (its id, the status
columns that liveness needs, and the value it is sorted by); the runs are
sorted and a page is cut in Python; only that page is read in full, by
``tracker.store.overview`` with its run ids. So a page of 100 out of 10,000
runs costs the listing of 10,000 light rows plus the overview of 100. The
params shown are those whose values differ among all the runs selected (one
grouped query), so the columns stay the same from page to page.

``version`` is a token of the database's runs (counts and latest times): a
page asked for with ``since`` equal to it, while no run is stored as
running, is answered ``{"unchanged": true}`` without reading anything more.
No SQL text is built here; values are bound. Imports neither Keras nor
TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, and_, func, select

from tracker.store.bulk import driver_rows
from tracker.store.filters import KEYS, PARAMS, RUN_METRICS, RUNS, check_experiment, maximised, runs_statement
from tracker.store.liveness import apply_liveness
from tracker.store.names import asked_key, logged_key
from tracker.store.overview import choose_metric, overview
from tracker.store.where_sql import check_names, compile_where, keep_decided
from tracker.ui.listing import encode, run_objects

__all__ = ["runs_page", "SORTS", "version_token"]

#: Columns the table sorts by, besides ``param:NAME``.
SORTS = ("started_at", "name", "status", "duration", "epochs", "best", "stopped_epoch", "restored_epoch",
         "experiment")
Run = RUNS.c


def version_token(conn: Any, heartbeat_timeout: float) -> tuple[str, bool]:
    """A token that changes when any run is added, ends, beats or logs an epoch; and whether any run is running.

    A run stored as running whose process is gone (crashed, ``tracker.store.liveness``) does not count as running.
    """
    row = conn.execute(select(
        func.count(), func.max(Run.started_at), func.max(Run.ended_at), func.max(Run.heartbeat_at),
        func.sum(Run.epoch_count), func.sum(Run.phase_count),
        func.sum(func.length(Run.status)),  # a status change changes the sum of their lengths (mostly)
    )).one()
    columns = ["status", "host", "pid", "started_at", "heartbeat_at"]
    stored = [list(r) for r in conn.execute(select(Run.status, Run.host, Run.pid, Run.started_at, Run.heartbeat_at)
                                            .where(Run.status == "running"))]
    alive = apply_liveness(columns, stored, ["running"], timeout=heartbeat_timeout)
    text = json.dumps([str(v) for v in row] + [len(alive)], ensure_ascii=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16], bool(alive)


def _sort_column(sort: str, key_id: int | None, metric: str | None) -> Any:
    """The scalar subquery (or None) giving each run's value for ``sort``."""
    from sqlalchemy import column, table

    if sort == "best":
        if key_id is None:
            return None
        m = RUN_METRICS.c
        col = m.best_max if maximised(metric) else m.best_min
        return select(col).where(m.run_id == Run.id, m.key_id == key_id).scalar_subquery()
    if sort.startswith("param:"):
        p = PARAMS.c
        return select(p.value).where(p.run_id == Run.id, p.key == sort.removeprefix("param:")).scalar_subquery()
    if sort in ("stopped_epoch", "restored_epoch"):
        phases = table("phases", column("id"), column("run_id"), column("seq"))
        name, epoch_col = ("stop_decisions", "stopped_epoch") if sort == "stopped_epoch" else ("restores", "restored_epoch")
        decisions = table(name, column("id"), column("phase_id"), column(epoch_col), column("stopped"))
        q = (select(decisions.c[epoch_col]).select_from(decisions.join(phases, phases.c.id == decisions.c.phase_id))
             .where(phases.c.run_id == Run.id))
        if sort == "stopped_epoch":
            q = q.where(decisions.c.stopped.is_(True))
        return q.order_by(phases.c.seq.desc(), decisions.c.id.desc()).limit(1).scalar_subquery()
    return None


def _sort_key(sort: str, at: dict[str, int], now: datetime) -> Any:
    """A function giving a row's comparable value (None for a run without one)."""
    if sort == "duration":
        def duration(row: list[Any]) -> Any:
            start, end = _time(row[at["started_at"]]), _time(row[at["ended_at"]])
            if start is None:
                return None
            return ((end or now) - start).total_seconds()
        return duration
    if sort.startswith("param:"):
        def param(row: list[Any]) -> Any:
            text = row[at["sort_value"]]
            if text is None:
                return None
            try:
                value = json.loads(text)
            except ValueError:
                return (2, str(text))
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return (1, value if isinstance(value, str) else json.dumps(value))
            return None if value != value else (0, value)  # NaN: no value to sort by
        return param
    name = "sort_value" if sort in ("best", "stopped_epoch", "restored_epoch") else sort
    index = at[name]

    def plain(row: list[Any]) -> Any:
        value = row[index]
        return None if value is None or value != value else str(value) if name == "started_at" else value
    return plain


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _differing(conn: Any, ids_stmt: Any, total: int) -> list[str]:
    """Params whose value is not the same in every selected run (a run without one differs too)."""
    p = PARAMS.c
    rows = conn.execute(
        select(p.key, func.count(func.distinct(p.value)), func.count())
        .where(p.run_id.in_(ids_stmt)).group_by(p.key)
    ).all()
    return sorted(str(k) for k, distinct, count in rows if distinct > 1 or count < total)


def _monitors(conn: Any, ids: Sequence[str]) -> dict[str, str]:
    """Each run's stoppers' monitor (the last one's), for the runs of a page."""
    from sqlalchemy import column, table

    phases = table("phases", column("id"), column("run_id"), column("seq"))
    stops = table("stop_decisions", column("id"), column("phase_id"), column("monitor"))
    q = (select(phases.c.run_id, stops.c.monitor).select_from(stops.join(phases, phases.c.id == stops.c.phase_id))
         .where(phases.c.run_id.in_(list(ids)), stops.c.monitor.is_not(None)).order_by(phases.c.seq, stops.c.id))
    return {rid: monitor for rid, monitor in conn.execute(q)}


def _reason(conn: Any, ids_stmt: Any, metric: str | None, asked: bool) -> str:
    """Why the best column shows ``metric``, in words for its header."""
    if metric is None:
        return "no run logged an epoch key"
    if asked:
        return f"{metric} as chosen"
    from sqlalchemy import column, table

    phases = table("phases", column("id"), column("run_id"))
    stops = table("stop_decisions", column("phase_id"), column("monitor"))
    counts: Counter[str] = Counter(dict(conn.execute(
        select(stops.c.monitor, func.count(func.distinct(phases.c.run_id)))
        .select_from(stops.join(phases, phases.c.id == stops.c.phase_id))
        .where(phases.c.run_id.in_(ids_stmt), stops.c.monitor.is_not(None)).group_by(stops.c.monitor)).all()))
    if counts.get(logged_key(metric)):
        n = counts[logged_key(metric)]
        others = sum(counts.values()) - n
        return (f"the monitor of the early stoppers of {n} run{'s' if n != 1 else ''}"
                + (f" ({others} other run{'s' if others != 1 else ''} monitored another key)" if others else ""))
    return f"no early stopper monitored a key, so {metric} by default"


def runs_page(
    engine: Engine,
    *,
    where: str | None = None,
    status: str | None = None,
    experiment: str | None = None,
    metric: str | None = None,
    sort: str = "started_at",
    descending: bool = True,
    offset: int = 0,
    limit: int = 100,
    since: str | None = None,
    heartbeat_timeout: float,
) -> bytes:
    """Return one page of the runs table as UTF-8 JSON.

    Members: ``total`` (runs selected), ``offset``, ``limit``, ``sort``,
    ``descending``, ``version`` (see the module), ``metric`` and
    ``metric_reason`` (which key the ``best`` column shows and why),
    ``maximised`` (whether larger is better for it), ``params`` (the names of
    the params that differ among the selected runs), ``evaluate`` (keys of
    the page's last evaluate results), ``runs`` (the page: ``Dashboard.runs``
    objects with ``params`` holding the differing params, and ``monitor``:
    the key the run's early stopper monitored, or null). Or ``{"unchanged":
    true, "version": ...}`` (see the module).

    Raises:
        InvalidArgumentError: the filter, status, experiment, metric or sort is not understood (one sentence).
    """
    with engine.connect() as conn:
        version, running = version_token(conn, heartbeat_timeout)
        if since is not None and since == version and not running:
            return encode({"unchanged": True, "version": version})
        check_experiment(conn, experiment)
        if where is not None:
            check_names(conn, compile_where(where))
        stmt, _ = runs_statement(status=status, experiment=experiment, where=where)
        ids_stmt = stmt.with_only_columns(Run.id).order_by(None)
        scoped = where is not None or status is not None or experiment is not None
        metric_name, key_id = choose_metric(conn, None, metric) if not scoped else (None, None)
        if scoped:
            metric_name, key_id = _choose_scoped(conn, ids_stmt, metric)
        sort_col = _sort_column(sort, key_id, metric_name)
        if sort_col is not None:
            stmt = stmt.add_columns(sort_col.label("sort_value"))
        columns = list(stmt.selected_columns.keys())
        rows = [list(r) for r in driver_rows(conn, stmt)]
        wanted = None if status is None else [status]
        rows = keep_decided(columns, apply_liveness(columns, rows, wanted, timeout=heartbeat_timeout))
        at = {c: i for i, c in enumerate(columns)}
        if sort == "best" and key_id is None:
            sort = "started_at"
        value = _sort_key(sort, at, datetime.now(timezone.utc).replace(tzinfo=None))
        present = [r for r in rows if value(r) is not None]
        present.sort(key=lambda r: (value(r), str(r[at["started_at"]]), r[at["run_id"]]), reverse=descending)
        ordered = present + sorted((r for r in rows if value(r) is None), key=lambda r: str(r[at["started_at"]]),
                                   reverse=True)
        page_ids = [r[at["run_id"]] for r in ordered[offset:offset + limit]]
        differing = _differing(conn, ids_stmt, len(rows)) if rows else []
        reason = _reason(conn, ids_stmt if scoped else select(Run.id), metric_name, metric is not None)
        monitors = _monitors(conn, page_ids) if page_ids else {}
        params: dict[str, dict[str, Any]] = {rid: {} for rid in page_ids}
        if page_ids and differing:
            p = PARAMS.c
            for rid, key, text in conn.execute(select(p.run_id, p.key, p.value).where(
                    and_(p.run_id.in_(page_ids), p.key.in_(differing)))):
                params[str(rid)][str(key)] = json.loads(text) if isinstance(text, str) else text
    found = overview(engine, run_ids=page_ids, metric=metric_name, heartbeat_timeout=heartbeat_timeout) if page_ids \
        else None
    objects = run_objects(found) if found is not None else []
    by_id = {o["run_id"]: o for o in objects}
    page = []
    for rid in page_ids:
        item = by_id.get(rid)
        if item is None:  # deleted between the two reads
            continue
        item["params"] = {k: params[rid].get(k) for k in differing}
        item["monitor"] = monitors.get(rid)
        page.append(item)
    return encode({
        "total": len(ordered), "offset": offset, "limit": limit, "sort": sort, "descending": descending,
        "version": version, "metric": metric_name, "metric_reason": reason,
        "maximised": bool(metric_name and maximised(metric_name)), "params": differing,
        "evaluate": found.eval_keys if found is not None else [], "runs": page,
    })


def _choose_scoped(conn: Any, ids_stmt: Any, wanted: str | None) -> tuple[str | None, int | None]:
    """``choose_metric`` over the selected runs, with one subquery rather than lists of ids."""
    if wanted is not None:
        return choose_metric(conn, None, wanted)
    from sqlalchemy import column, table

    phases = table("phases", column("id"), column("run_id"))
    stops = table("stop_decisions", column("phase_id"), column("monitor"))
    names = {name: key_id for key_id, name in conn.execute(
        select(KEYS.c.id, KEYS.c.name).where(KEYS.c.id.in_(select(RUN_METRICS.c.key_id).distinct())))}
    monitors = conn.execute(
        select(stops.c.monitor, func.count()).select_from(stops.join(phases, phases.c.id == stops.c.phase_id))
        .where(phases.c.run_id.in_(ids_stmt), stops.c.monitor.is_not(None))
        .group_by(stops.c.monitor).order_by(func.count().desc())).all()
    for monitor, _ in monitors:
        if monitor in names:
            return asked_key(monitor), names[monitor]
    return choose_metric(conn, [], None)
