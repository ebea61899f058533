"""The runs overview: which run is best, in one table.

One row per listed run with what a person comparing runs wants to see: the
listing columns, the duration, the params that differ between the listed
runs, the best value and epoch of one metric (the stoppers' monitor, else
``val_loss``, else the first ``val_*`` key, else ``loss``), the epoch a
stopper stopped and the epoch whose weights were restored, and the results
of the run's last ``evaluate`` call.

Behind ``Store.overview``, ``tracker runs`` and the dashboard's run list.
Plain rows, no pandas, a fixed handful of queries whatever the number of
runs. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, column, exists, select, table

from tracker.db.bits import decode
from tracker.db.types import unmark
from tracker.store.bulk import driver_rows
from tracker.store.filters import (
    KEYS, PARAMS, RUN_METRICS, check_experiment, check_metric_key, in_view, maximised, runs_statement,
)
from tracker.store.liveness import apply_liveness
from tracker.store.names import asked_key, logged_key, shown_key
from tracker.store.where_sql import DECIDED, check_names, compile_where, keep_decided

__all__ = ["Overview", "overview", "overview_frame", "choose_metric"]

_PHASES = table("phases", column("id"), column("run_id"), column("seq"), column("kind"), column("ended_at"))
_STOPS = table("stop_decisions", column("id"), column("phase_id"), column("stopped"), column("stopped_epoch"),
               column("monitor"))
_RESTORES = table("restores", column("id"), column("phase_id"), column("restored_epoch"))
_PHASE_VALUES = table("phase_values", column("phase_id"), column("key_id"), column("value"), column("bits"),
                      column("text"))
_CHUNK = 900


@dataclass
class Overview:
    """The overview's rows and what its columns mean.

    ``columns``: ``run_id``, ``name``, ``status``, ``started_at``,
    ``ended_at``, ``duration_s`` (None while running), ``epochs``,
    ``phases``, ``experiment`` (its name, or None), then ``param:NAME`` for each param that differs between the
    listed runs, then ``metric`` columns ``best`` and ``best_epoch`` (of the
    key in ``metric``, min or max by its direction), ``stopped_epoch``,
    ``restored_epoch``, then ``eval:KEY`` for each key of the last
    ``evaluate`` results of any listed run.

    ``extra_columns`` and ``extra_rows``: the rest of the run listing (see
    ``Store.runs``), row for row: ``model_name``, ``param_count``, ``host``,
    ``pid``, ``heartbeat_at``, and with a ``best:``/``final:`` sort ``KEY``
    and ``KEY_epoch``.
    """

    columns: list[str]
    rows: list[list[Any]]
    metric: str | None
    differing: list[str] = field(default_factory=list)
    eval_keys: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    extra_rows: list[list[Any]] = field(default_factory=list)


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)] or [[]]


def _where_runs(stmt: Any, col: Any, run_ids: Sequence[str] | None, part: Sequence[str]) -> Any:
    return stmt if run_ids is None else stmt.where(col.in_(list(part)))


def _seconds(started: Any, ended: Any) -> float | None:
    if started is None or ended is None:
        return None
    start = started if isinstance(started, datetime) else datetime.fromisoformat(str(started))
    end = ended if isinstance(ended, datetime) else datetime.fromisoformat(str(ended))
    return (end - start).total_seconds()


def choose_metric(conn: Any, run_ids: Sequence[str] | None, wanted: str | None,
                  deleted: bool = False) -> tuple[str | None, int | None]:
    """The metric to show (its shown name) and its key id: ``wanted``, else the stoppers' most common
    monitor, else a val_ key. ``run_ids`` None: every run in view (``deleted``: in the trash)."""
    listed = in_view(deleted)
    if wanted is not None:  # one key's id, without listing every key of every run
        found = conn.execute(select(KEYS.c.id).where(KEYS.c.name == logged_key(wanted), exists(
            select(RUN_METRICS.c.key_id).where(RUN_METRICS.c.key_id == KEYS.c.id,
                                                RUN_METRICS.c.run_id.in_(listed))))).first()
        return asked_key(wanted), (found[0] if found is not None else None)
    names = {name: key_id for key_id, name in conn.execute(
        select(KEYS.c.id, KEYS.c.name).where(KEYS.c.id.in_(
            select(RUN_METRICS.c.key_id).where(RUN_METRICS.c.run_id.in_(listed)).distinct()))
    )}
    monitors: Counter[str] = Counter()
    for part in _chunks(list(run_ids) if run_ids is not None else []):
        stmt = (
            select(_STOPS.c.monitor)
            .select_from(_STOPS.join(_PHASES, _PHASES.c.id == _STOPS.c.phase_id))
            .where(_STOPS.c.monitor.is_not(None))
        )
        if run_ids is None:
            stmt = stmt.where(_PHASES.c.run_id.in_(listed))
        monitors.update(m for (m,) in conn.execute(_where_runs(stmt, _PHASES.c.run_id, run_ids, part)))
        if run_ids is None:
            break
    for monitor, _ in monitors.most_common():
        if monitor in names:
            return shown_key(monitor), names[monitor]
    candidates = (["val_loss"] + sorted(n for n in names if n.startswith("val_")) + ["loss"])
    for name in candidates:
        if name in names:
            return shown_key(name), names[name]
    return None, None


def overview(
    engine: Engine,
    *,
    status: str | Sequence[str] | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    sort: str | None = None,
    limit: int | None = None,
    run_ids: Sequence[str] | None = None,
    metric: str | None = None,
    experiment: str | None = None,
    deleted: bool = False,
    where: str | None = None,
    heartbeat_timeout: float,
) -> Overview:
    """Build the overview of the runs the filters select (see ``Store.runs`` for them).

    Runs in the trash are left out; ``deleted=True`` lists only them, with ``deleted_at``.
    """
    stmt, order = runs_statement(
        status=status, name=name, tags=tags, params=params, sort=sort, limit=limit, run_ids=run_ids,
        experiment=experiment, deleted=deleted, where=where,
    )
    with engine.connect() as conn:
        check_experiment(conn, experiment)
        if where is not None:
            check_names(conn, compile_where(where))
        check_metric_key(conn, order.key, option=f"sort {sort}", deleted=deleted)
        check_metric_key(conn, metric, option=f"metric {metric}", deleted=deleted)
        listing_columns = list(stmt.selected_columns.keys())
        listed = [list(r) for r in driver_rows(conn, stmt)]
        # Plain driver rows skip the NUL-safe columns' decoding, which PostgreSQL needs.
        pg = conn.dialect.name == "postgresql"
        if pg:
            texts = [i for i, c in enumerate(listing_columns) if c in ("name", "model_name", "experiment")]
            for row in listed:
                for i in texts:
                    row[i] = unmark(row[i])
        wanted = None if status is None else ([status] if isinstance(status, str) else list(status))
        listed = keep_decided(listing_columns, apply_liveness(listing_columns, listed, wanted, timeout=heartbeat_timeout))
        at = {c: i for i, c in enumerate(listing_columns)}
        ids = [row[at["run_id"]] for row in listed]
        # Every run in view listed: then no IN lists at all (rows of other runs are skipped below).
        scope = None if (status is None and name is None and not tags and not params and limit is None
                         and run_ids is None and experiment is None and not deleted
                         and where is None) else ids
        run_params: dict[str, dict[str, str]] = {rid: {} for rid in ids}
        for part in _chunks(list(scope or [])):
            q = select(PARAMS.c.run_id, PARAMS.c.key, PARAMS.c.value)
            for rid, key, value in driver_rows(conn, _where_runs(q, PARAMS.c.run_id, scope, part)):
                if rid in run_params:
                    run_params[rid][unmark(key) if pg else key] = value
            if scope is None:
                break
        metric_name, key_id = choose_metric(conn, scope, metric, deleted)
        best: dict[str, tuple[Any, Any]] = {}
        if key_id is not None:
            high = maximised(metric_name)
            value_col = RUN_METRICS.c.best_max if high else RUN_METRICS.c.best_min
            epoch_col = RUN_METRICS.c.best_max_epoch if high else RUN_METRICS.c.best_min_epoch
            for part in _chunks(list(scope or [])):
                q = select(RUN_METRICS.c.run_id, value_col, epoch_col).where(RUN_METRICS.c.key_id == key_id)
                for rid, value, epoch in driver_rows(conn, _where_runs(q, RUN_METRICS.c.run_id, scope, part)):
                    # A summary row exists only for a number: NULL best means every value was NaN.
                    best[rid] = (value if value is not None else float("nan"), epoch)
                if scope is None:
                    break
        stopped: dict[str, Any] = {}
        restored: dict[str, Any] = {}
        evals: dict[str, tuple[int, dict[int, Any]]] = {}
        key_names: dict[int, str] = {}
        for part in _chunks(list(scope or [])):
            q = (
                select(_PHASES.c.run_id, _STOPS.c.stopped_epoch)
                .select_from(_STOPS.join(_PHASES, _PHASES.c.id == _STOPS.c.phase_id))
                .where(_STOPS.c.stopped.is_(True))
                .order_by(_PHASES.c.seq, _STOPS.c.id)
            )
            stopped.update(driver_rows(conn, _where_runs(q, _PHASES.c.run_id, scope, part)))
            q = (
                select(_PHASES.c.run_id, _RESTORES.c.restored_epoch)
                .select_from(_RESTORES.join(_PHASES, _PHASES.c.id == _RESTORES.c.phase_id))
                .order_by(_PHASES.c.seq, _RESTORES.c.id)
            )
            restored.update(driver_rows(conn, _where_runs(q, _PHASES.c.run_id, scope, part)))
            q = (
                select(_PHASES.c.run_id, _PHASES.c.seq, _PHASE_VALUES.c.key_id, _PHASE_VALUES.c.value,
                       _PHASE_VALUES.c.bits, _PHASE_VALUES.c.text)
                .select_from(_PHASE_VALUES.join(_PHASES, _PHASES.c.id == _PHASE_VALUES.c.phase_id))
                .where(_PHASES.c.kind == "evaluate")
            )  # in any order: the loop keeps each run's highest seq
            for rid, seq, kid, value, bits, text in driver_rows(conn, _where_runs(q, _PHASES.c.run_id, scope, part)):
                last = evals.get(rid)
                if last is None or seq > last[0]:
                    evals[rid] = last = (seq, {})
                if seq == last[0]:
                    last[1][kid] = decode(value, bits, unmark(text) if pg else text)
            if scope is None:
                break
        used = {k for _, values in evals.values() for k in values}
        if used:
            key_names = dict(conn.execute(select(KEYS.c.id, KEYS.c.name).where(KEYS.c.id.in_(sorted(used)))).all())
    keys = sorted({k for p in run_params.values() for k in p})
    differing = [k for k in keys if len({p.get(k) for p in run_params.values()}) > 1]
    eval_ids = sorted(key_names, key=lambda k: shown_key(key_names[k]))
    eval_keys = [shown_key(key_names[k]) for k in eval_ids]
    columns = ["run_id", "name", "status", "started_at", "ended_at", "duration_s", "epochs", "phases", "experiment"]
    columns += [f"param:{k}" for k in differing]
    columns += ["metric", "best", "best_epoch", "stopped_epoch", "restored_epoch"]
    columns += [f"eval:{k}" for k in eval_keys]
    rows = []
    i_id, i_name, i_status, i_start, i_end, i_epochs, i_phases, i_experiment = (
        at[c] for c in ("run_id", "name", "status", "started_at", "ended_at", "epochs", "phases", "experiment")
    )
    no_evals: tuple[int, dict[int, Any]] = (0, {})
    for row in listed:  # 10,000 runs: plain indexes, no dict per row
        rid, started, ended = row[i_id], row[i_start], row[i_end]
        out = [rid, row[i_name], row[i_status], started, ended, _seconds(started, ended), row[i_epochs],
               row[i_phases], row[i_experiment]]
        if differing:
            mine = run_params[rid]
            out += [_param(mine.get(k)) for k in differing]
        found = best.get(rid)
        out += [metric_name, *found] if found is not None else [None, None, None]
        out += [stopped.get(rid), restored.get(rid)]
        if eval_ids:
            logged = evals.get(rid, no_evals)[1]
            out += [logged.get(k) for k in eval_ids]
        rows.append(out)
    extra = [c for c in listing_columns if c not in columns and c not in DECIDED]
    extra_rows = [[row[at[c]] for c in extra] for row in listed]
    return Overview(columns, rows, metric_name, differing, eval_keys, extra, extra_rows)


@lru_cache(maxsize=4096)  # a sweep repeats a few values across thousands of runs
def _param(text: Any) -> Any:
    """A param's stored JSON text as a value (scalars as they are, the rest as JSON text)."""
    if text is None:
        return None
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, ensure_ascii=False)


def overview_frame(found: Overview) -> Any:
    """The overview's rows as a DataFrame: times as datetimes, missing numbers as ``<NA>``.

    For ``Store.overview``; pandas is imported here, so ``tracker runs`` never imports it.
    """
    import pandas as pd

    from tracker.store.base import float_column

    data: dict[str, Any] = {}
    for i, name in enumerate(found.columns):
        cells = [row[i] for row in found.rows]
        if name in ("started_at", "ended_at"):
            data[name] = pd.to_datetime(pd.Series(cells, dtype=object), format="ISO8601")
        elif name in ("epochs", "phases", "best_epoch", "stopped_epoch", "restored_epoch"):
            data[name] = pd.array(cells, dtype="Int64")
        elif name in ("duration_s", "best") or (name.startswith("eval:") and all(
                c is None or isinstance(c, float) for c in cells)):
            data[name] = float_column(cells)
        else:
            data[name] = pd.Series(cells, dtype="object")
    return pd.DataFrame(data, columns=found.columns)
