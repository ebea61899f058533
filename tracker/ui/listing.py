"""The runs table: bulk reads over all runs, cached until a writer writes.

Part of ``tracker.ui.data`` (which validates the arguments and is the only
caller): ``Store.runs`` gives these rows as a DataFrame, too slow to turn
into 10,000 JSON objects in time, so this runs the same statement
(``tracker.run_filters.runs_statement``) without pandas, plus one select
each for params, tags, the chosen metric, stops and restores over all the
listed runs. None of these reads is in the Store yet. Imports neither Keras
nor TensorFlow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, func, select

from tracker.liveness import effective_status
from tracker.run_filters import PARAMS, RUNS, TAGS, maximised, runs_statement
from tracker.schema import Phase, Restore, RunMetric, StopDecision
from tracker.ui.jsonable import jsonable

__all__ = ["RunListing"]

Evaluations = Callable[[list[str] | None], dict[str, dict[str, Any]]]


class RunListing:
    """The ``/api/runs`` answer, with its rows cached.

    The cache holds the rows read for the last arguments, keyed by what
    changes whenever a writer writes (run count, newest start, heartbeat and
    end: every flush updates the heartbeat). Each run's JSON is kept too, so
    a call that finds the cache valid encodes again only the runs stored as
    running, whose liveness (running or crashed) and duration are worked out
    afresh.

    Args:
        engine: The read-only engine.
        evaluations: ``run ids or None -> {run_id: logs of its last evaluate}``.
        heartbeat_timeout: See ``tracker.Store``.
    """

    def __init__(self, engine: Engine, evaluations: Evaluations, *, heartbeat_timeout: float) -> None:
        self.engine = engine
        self.evaluations = evaluations
        self.heartbeat_timeout = heartbeat_timeout
        # (key, run dicts as stored, heartbeats, JSON of each run that is not running)
        self._cache: tuple[tuple[Any, ...], list[dict[str, Any]], dict[str, Any], dict[str, str]] | None = None

    def json(self, *, metric: str | None, status: str | None, name: str | None, limit: int | None,
             run_ids: tuple[str, ...] | None) -> str:
        """Return the runs as a JSON array (see ``Dashboard.runs`` for the members)."""
        key = (self._token(), metric, status, name, limit, run_ids)
        cached = self._cache
        if cached is None or cached[0] != key:
            items, heartbeats = self._read(metric=metric, status=status, name=name, limit=limit, run_ids=run_ids)
            cached = self._cache = (key, items, heartbeats, {})
        _, items, heartbeats, encoded = cached
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        parts = []
        for item in items:
            rid = item["run_id"]
            if item["status"] == "running":  # only these can be running or crashed now
                item = dict(item)
                item["status"] = effective_status(
                    "running", item["host"], item["pid"], item["started_at"], heartbeats[rid],
                    timeout=self.heartbeat_timeout,
                )
                end = now if item["status"] == "running" else _time(heartbeats[rid])
                item["duration_s"] = _seconds(_time(item["started_at"]), end)
                if status is None or item["status"] == status:
                    parts.append(_json(item))
                continue
            if status is not None and item["status"] != status:
                continue  # a stored crashed run, fetched along with the running ones
            if rid not in encoded:
                encoded[rid] = _json(item)
            parts.append(encoded[rid])
        return "[" + ",".join(parts) + "]"

    def _token(self) -> tuple[Any, ...]:
        r = RUNS.c
        with self.engine.connect() as conn:
            return tuple(conn.execute(
                select(func.count(), func.max(r.started_at), func.max(r.heartbeat_at), func.max(r.ended_at))
            ).one())

    def _read(self, *, metric: str | None, status: str | None, name: str | None, limit: int | None,
              run_ids: Sequence[str] | None) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
        """One dict per run (statuses as stored) and each run's heartbeat."""
        stmt, _ = runs_statement(
            status=None if status is None else [status], name=name, sort="-started_at", limit=limit, run_ids=run_ids
        )
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            at = {name: i for i, name in enumerate(result.keys())}
            rows = result.all()
        ids = [r[at["run_id"]] for r in rows]
        subset = None if (limit is None and status is None and name is None and run_ids is None) else ids
        params, tags = self._params_and_tags(subset)
        differing = _differing(params, ids)
        best = self._best(metric, subset) if metric else {}
        evaluate = self.evaluations(subset)
        stopped, restored = self._stop_and_restore(subset)
        parsed: dict[str, Any] = {}
        out: list[dict[str, Any]] = []
        heartbeats: dict[str, str | None] = {}
        columns = ("run_id", "name", "status", "started_at", "ended_at", "epochs", "phases", "model_name",
                   "param_count", "host", "pid", "heartbeat_at")
        none: tuple[Any, ...] = (None, None, None, None)
        no_params: dict[str, str] = {}
        for rid, name_, status_, started, ended, epochs, phases, model, count, host, pid, beat in (
            [r[at[c]] for c in columns] for r in rows
        ):
            mine = params.get(rid, no_params)
            b = best.get(rid, none)
            started, ended = _iso(started), _iso(ended)
            out.append({
                "run_id": rid, "name": name_, "status": status_, "started_at": started, "ended_at": ended,
                "duration_s": _seconds(_time(started), _time(ended)), "epochs": epochs, "phases": phases,
                "model_name": model, "param_count": count, "host": host, "pid": pid,
                "params": {k: _param(mine.get(k), parsed) for k in differing},
                "tags": tags.get(rid, {}), "metric": metric,
                "best": _num(b[0]), "best_epoch": b[1], "final": _num(b[2]), "final_epoch": b[3],
                "evaluate": evaluate.get(rid), "stopped_epoch": stopped.get(rid),
                "restored_epoch": restored.get(rid),
            })
            heartbeats[rid] = _iso(beat)
        return out, heartbeats

    def _params_and_tags(self, ids: list[str] | None) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """Params (as their stored JSON text) and tags of many runs, in two selects."""
        params: dict[str, dict[str, str]] = {}
        tags: dict[str, dict[str, str]] = {}
        p, t = PARAMS.c, TAGS.c
        p_stmt = select(p.run_id, p.key, p.value).order_by(p.run_id, p.key)
        t_stmt = select(t.run_id, t.key, t.value).order_by(t.run_id, t.key)
        if ids is not None:
            p_stmt, t_stmt = p_stmt.where(p.run_id.in_(ids)), t_stmt.where(t.run_id.in_(ids))
        with self.engine.connect() as conn:
            for rid, key, value in conn.execute(p_stmt).all():
                params.setdefault(rid, {})[key] = value
            for rid, key, value in conn.execute(t_stmt).all():
                tags.setdefault(rid, {})[key] = value
        return params, tags

    def _best(self, metric: str, ids: list[str] | None) -> dict[str, tuple[Any, Any, Any, Any]]:
        """Best (by the key's direction), its epoch, final and its epoch per run."""
        m = RunMetric
        stmt = select(m.run_id, m.best_min, m.best_min_epoch, m.best_max, m.best_max_epoch, m.final, m.final_epoch)
        stmt = stmt.where(m.key == metric)
        if ids is not None:
            stmt = stmt.where(m.run_id.in_(ids))
        high = maximised(metric)
        with self.engine.connect() as conn:
            return {
                r[0]: ((r[3], r[4]) if high else (r[1], r[2])) + (r[5], r[6])
                for r in conn.execute(stmt)
            }

    def _stop_and_restore(self, ids: list[str] | None) -> tuple[dict[str, int], dict[str, int]]:
        """The last stopped epoch and the last restored epoch per run."""
        s_stmt = (select(Phase.run_id, StopDecision.stopped_epoch).join(Phase, Phase.id == StopDecision.phase_id)
                  .where(StopDecision.stopped.is_(True)).order_by(Phase.seq, StopDecision.id))
        r_stmt = (select(Phase.run_id, Restore.restored_epoch).join(Phase, Phase.id == Restore.phase_id)
                  .order_by(Phase.seq, Restore.id))
        if ids is not None:
            s_stmt, r_stmt = s_stmt.where(Phase.run_id.in_(ids)), r_stmt.where(Phase.run_id.in_(ids))
        with self.engine.connect() as conn:
            return dict(conn.execute(s_stmt).all()), dict(conn.execute(r_stmt).all())


def _differing(params: dict[str, dict[str, str]], ids: list[str]) -> list[str]:
    """The param keys whose stored JSON text (or absence) is not the same in every run of ``ids``."""
    values: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for rid in ids:
        for key, text in params.get(rid, {}).items():
            values.setdefault(key, set()).add(text)
            counts[key] = counts.get(key, 0) + 1
    return sorted(k for k in values if len(values[k]) > 1 or counts[k] < len(ids))


def _param(text: str | None, parsed: dict[str, Any]) -> Any:
    """A param's stored JSON text as a JSON-safe value (each distinct text parsed once)."""
    if text is None:
        return None
    if text not in parsed:
        try:
            parsed[text] = jsonable(json.loads(text))
        except ValueError:
            parsed[text] = text  # a number stored under numeric affinity by an older file
    return parsed[text]


def _num(value: Any) -> Any:
    """A float from SQL as JSON: ±inf as a string (SQL gives NULL for NaN)."""
    return value if not isinstance(value, float) or math.isfinite(value) else jsonable(value)


def _iso(value: Any) -> str | None:
    """A stored time as ISO 8601 text (SQLite gives ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace(" ", "T", 1)
    return value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))
_json = _ENCODER.encode  # one encoder for all: json.dumps with options builds one per call
