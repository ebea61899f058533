"""Every database read of the dashboard, shaped for its JSON API.

The dashboard reads through the public ``tracker.Store`` where the Store
answers the question, and through SQLAlchemy Core selects with bound
parameters where it does not yet (reads over all runs at once, evaluate
results, configs): those are marked ``Not in Store yet`` below. The
database is opened read-only (``tracker.migrate.open_readonly``): it is
never created, upgraded or written.

The Store's frame column names all sit in the constants below, so that a
rename in the Store is a change here only. In the JSON API ``phase`` is the
phase kind (``fit``, ``validation``, ``evaluate``, ``predict``) and
``phase_seq`` its sequence number within the run.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from tracker.database import describe, resolve_url
from tracker.errors import UnknownRunError
from tracker.migrate import open_readonly
from tracker.liveness import effective_status
from tracker.run_filters import PARAMS, RUN_STATUSES, RUNS, TAGS, maximised, runs_statement
from tracker.schema import Param, Phase, PhaseKind, PhaseValue, Restore, Run, RunMetric, StopDecision
from tracker.store import Store
from tracker.ui.downsample import downsample
from tracker.ui.jsonable import frame_records, jsonable
from tracker.values import decode

__all__ = ["Dashboard", "RUN_ID", "EPOCH_META", "BadRequest"]

#: A run id as the API accepts it: 32 lowercase hex digits.
RUN_ID = re.compile(r"[0-9a-f]{32}")

# Store column names (today's Store: ``phase`` is the phase's sequence number).
STORE_EPOCH_SEQ = "phase"  # Store.epochs: the fit's sequence number
STORE_BATCH_SEQ = "phase"  # Store.batches: the phase's sequence number
STORE_BATCH_FIT = "train"  # Store.batches(run, phase=...) for the batches of fit
STORE_PHASES_SEQ, STORE_PHASES_KIND = "seq", "kind"  # Store.run(...)["phases"]
STORE_DECISION_SEQ = "phase"  # Store.lr_changes / lr_series / early_stops / restores
STORE_EPOCH_META = ("started_at", "ended_at", "redone")

#: Members of an epoch object that are not logs keys. A logs key with one of
#: these names is given as ``log:NAME`` instead.
EPOCH_META = ("phase", "phase_seq", "epoch", "started_at", "ended_at", "redone")

#: Batch phases the API serves, and the Store's name for each.
BATCH_PHASES = {"fit": STORE_BATCH_FIT, "validation": "validation", "evaluate": "evaluate"}


class BadRequest(ValueError):
    """A query parameter of an API request is not valid; the message says which and why."""


def _seq(frame: pd.DataFrame, store_column: str, kind: str) -> pd.DataFrame:
    """Rename the Store's sequence column to ``phase_seq`` and add ``phase`` (the kind)."""
    frame = frame.rename(columns={store_column: "phase_seq"})
    if "phase" not in frame.columns:
        frame.insert(0, "phase", kind)
    return frame


def _decoded(value: Any, bits: Any, text: Any) -> Any:
    return decode(value, bits, text)


class Dashboard:
    """The dashboard's reads of one tracking database, opened read-only.

    Args:
        db: A file path or an SQLAlchemy URL.
        heartbeat_timeout: Passed to ``tracker.Store`` (seconds without a
            heartbeat after which a run on another host counts as crashed).
            Default 120.

    Raises:
        DatabaseError: the database is missing, not a tracker database, or
            not at the newest schema (one sentence: run ``tracker db upgrade``).
    """

    def __init__(self, db: str, *, heartbeat_timeout: float = 120.0) -> None:
        self.engine, url = open_readonly(db)
        self.store = Store(url, heartbeat_timeout=heartbeat_timeout)
        self.name = describe(resolve_url(db))
        self._runs_cache: tuple[tuple[Any, ...], list[dict[str, Any]]] | None = None

    # -- run ids -------------------------------------------------------------

    def check_run(self, run_id: str) -> str:
        """Return ``run_id`` if it is a full run id in the database.

        Raises:
            UnknownRunError: it is not 32 hex digits, or no run has it.
        """
        if not RUN_ID.fullmatch(run_id):
            raise UnknownRunError(f"{run_id[:40]!r} is not a run id (32 hex digits).")
        try:
            found = self.store.resolve(run_id)
        except UnknownRunError:
            found = None
        if found != run_id:
            raise UnknownRunError(f"No run has the id {run_id}.")
        return run_id

    # -- the runs table ------------------------------------------------------

    def metric_keys(self) -> list[str]:
        """Return every numeric epoch key any run logged, sorted. Not in Store yet."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(RunMetric.key).distinct().order_by(RunMetric.key)).scalars())

    def default_metric(self, keys: Sequence[str]) -> str | None:
        """``val_loss`` if logged, else ``loss``, else the first key (None if no keys)."""
        return next((k for k in ("val_loss", "loss") if k in keys), keys[0] if keys else None)

    def runs(self, *, metric: str | None = None, status: str | None = None, name: str | None = None,
             limit: int | None = None, run_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Return one JSON-ready object per run, newest first.

        Members: ``run_id``, ``name``, ``status`` (running, finished, failed,
        interrupted, crashed), ``started_at``, ``ended_at``, ``duration_s``
        (to now for a running run, to the last heartbeat for a crashed one),
        ``epochs``, ``phases``, ``model_name``, ``param_count``, ``host``,
        ``params`` (only the params whose values differ between the listed
        runs), ``tags``, ``metric`` (the chosen key), ``best``,
        ``best_epoch``, ``final``, ``final_epoch`` (of that key; best is min
        or max by the key's direction), ``evaluate`` (the logs of the run's
        last evaluate call, or None), ``stopped_epoch`` and
        ``restored_epoch`` (None if none).

        The rows read are cached until the ``runs`` table changes (every
        flush of a writer updates a heartbeat); liveness (running or crashed)
        and running durations are worked out afresh on every call.

        Args:
            metric: The key for best/final. Default ``val_loss``, else ``loss``.
            status: Only runs with this status. Default all.
            name: Only runs with this name (``*`` and ``?`` are wildcards).
            limit: At most this many runs (the newest). Default all.
            run_ids: Only these runs (params differ among them). Default all.

        Raises:
            BadRequest: ``metric`` is not a logged key, ``status`` is not a
                status, or ``limit`` is below 1.
        """
        keys = self.metric_keys()
        metric = metric if metric is not None else self.default_metric(keys)
        if metric is not None and metric not in keys:
            raise BadRequest(f"metric {metric[:80]!r} is not a logged epoch key; GET /api/keys lists them.")
        if limit is not None and limit < 1:
            raise BadRequest("limit must be a positive integer.")
        if status is not None and status not in RUN_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(RUN_STATUSES)}, not {status[:40]!r}.")
        ids = None if run_ids is None else tuple(run_ids)
        cache_key = (self._runs_token(), metric, status, name, limit, ids)
        if self._runs_cache is None or self._runs_cache[0] != cache_key:
            listed = self._read_runs(metric=metric, status=status, name=name, limit=limit, run_ids=ids)
            self._runs_cache = (cache_key, listed)
        listed = self._runs_cache[1]
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        out = []
        for item in listed:  # only a run stored as running can be running or crashed now
            if item["status"] == "running":
                item = dict(item)
                item["status"] = effective_status(
                    "running", item["host"], item["pid"], item["started_at"], item["_heartbeat"],
                    timeout=self.store.heartbeat_timeout,
                )
                end = now if item["status"] == "running" else _time(item["_heartbeat"])
                item["duration_s"] = _seconds(_time(item["started_at"]), end)
            if status is None or item["status"] == status:
                out.append(item)
        return [{k: v for k, v in item.items() if k != "_heartbeat"} for item in out]

    def _runs_token(self) -> tuple[Any, ...]:
        """What changes whenever a writer writes: run count, newest start, heartbeat and end."""
        r = RUNS.c
        with self.engine.connect() as conn:
            return tuple(conn.execute(
                select(func.count(), func.max(r.started_at), func.max(r.heartbeat_at), func.max(r.ended_at))
            ).one())

    def _read_runs(self, *, metric: str | None, status: str | None, name: str | None,
                   limit: int | None, run_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """The runs listing, one dict per run, statuses as stored. Not in Store yet: Store.runs
        gives these rows as a DataFrame (too slow to turn into 10,000 objects); this runs the same
        statement (``runs_statement``) without pandas, plus bulk reads of params, tags, metrics,
        evaluate results, stops and restores."""
        stmt, _ = runs_statement(
            status=None if status is None else [status], name=name, sort="-started_at", limit=limit, run_ids=run_ids
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        ids = [r["run_id"] for r in rows]
        subset = None if (limit is None and status is None and name is None and run_ids is None) else ids
        params, tags = self._params_and_tags(subset)
        differing = _differing(params, ids)
        best = self._best(metric, subset) if metric else {}
        evaluate = self._last_evaluations(subset)
        stopped, restored = self._stop_and_restore(subset)
        parsed: dict[str, Any] = {}
        out = []
        for r in rows:
            rid = r["run_id"]
            mine = params.get(rid, {})
            b = best.get(rid, (None, None, None, None))
            started, ended = _iso(r["started_at"]), _iso(r["ended_at"])
            out.append({
                "run_id": rid, "name": r["name"], "status": r["status"], "started_at": started, "ended_at": ended,
                "duration_s": _seconds(_time(started), _time(ended)), "epochs": r["epochs"],
                "phases": r["phases"], "model_name": r["model_name"], "param_count": r["param_count"],
                "host": r["host"], "pid": r["pid"],
                "params": {k: _param(mine.get(k), parsed) for k in differing},
                "tags": tags.get(rid, {}), "metric": metric,
                "best": _num(b[0]), "best_epoch": b[1], "final": _num(b[2]), "final_epoch": b[3],
                "evaluate": evaluate.get(rid), "stopped_epoch": stopped.get(rid),
                "restored_epoch": restored.get(rid), "_heartbeat": _iso(r["heartbeat_at"]),
            })
        return out

    def _params_and_tags(self, ids: list[str] | None) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """Params (as their stored JSON text) and tags of many runs in two selects.
        Not in Store yet (Store.params and Store.tags read one run)."""
        params: dict[str, dict[str, str]] = {}
        tags: dict[str, dict[str, str]] = {}
        p, t = PARAMS.c, TAGS.c
        p_stmt = select(p.run_id, p.key, p.value).order_by(p.run_id, p.key)
        t_stmt = select(t.run_id, t.key, t.value).order_by(t.run_id, t.key)
        if ids is not None:
            p_stmt, t_stmt = p_stmt.where(p.run_id.in_(ids)), t_stmt.where(t.run_id.in_(ids))
        with self.engine.connect() as conn:
            for rid, key, value in conn.execute(p_stmt):
                params.setdefault(rid, {})[key] = value
            for rid, key, value in conn.execute(t_stmt):
                tags.setdefault(rid, {})[key] = value
        return params, tags

    def _best(self, metric: str, ids: list[str] | None) -> dict[str, tuple[Any, Any, Any, Any]]:
        """Best (by the key's direction), its epoch, final and its epoch per run. Not in Store yet."""
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

    def _last_evaluations(self, ids: list[str] | None) -> dict[str, dict[str, Any]]:
        """The logs of each run's last evaluate call. Not in Store yet (Store.evaluations is planned)."""
        latest: dict[str, tuple[int, dict[str, Any]]] = {}
        for rid, seq, _ended, logs in self._evaluation_rows(ids):
            if rid not in latest or seq > latest[rid][0]:
                latest[rid] = (seq, logs)
        return {rid: jsonable(logs) for rid, (_, logs) in latest.items()}

    def _evaluation_rows(self, ids: list[str] | None) -> list[tuple[str, int, Any, dict[str, Any]]]:
        """``(run_id, phase_seq, ended_at, logs)`` per evaluate call, exact values. Not in Store yet."""
        stmt = (
            select(Phase.run_id, Phase.seq, Phase.ended_at, PhaseValue.key, PhaseValue.value, PhaseValue.bits,
                   PhaseValue.text)
            .join(PhaseValue, PhaseValue.phase_id == Phase.id)
            .where(Phase.kind == PhaseKind.EVALUATE)
            .order_by(Phase.run_id, Phase.seq, PhaseValue.key)
        )
        if ids is not None:
            stmt = stmt.where(Phase.run_id.in_(ids))
        rows: dict[tuple[str, int], tuple[Any, dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for rid, seq, ended, key, value, bits, text in conn.execute(stmt):
                rows.setdefault((rid, seq), (ended, {}))[1][key] = _decoded(value, bits, text)
        return [(rid, seq, ended, logs) for (rid, seq), (ended, logs) in rows.items()]

    def _stop_and_restore(self, ids: list[str] | None) -> tuple[dict[str, int], dict[str, int]]:
        """The last stopped epoch and restored epoch per run. Not in Store yet (Store's are per-run frames)."""
        s_stmt = (select(Phase.run_id, StopDecision.stopped_epoch).join(Phase, Phase.id == StopDecision.phase_id)
                  .where(StopDecision.stopped.is_(True)).order_by(Phase.seq, StopDecision.id))
        r_stmt = (select(Phase.run_id, Restore.restored_epoch).join(Phase, Phase.id == Restore.phase_id)
                  .order_by(Phase.seq, Restore.id))
        if ids is not None:
            s_stmt, r_stmt = s_stmt.where(Phase.run_id.in_(ids)), r_stmt.where(Phase.run_id.in_(ids))
        with self.engine.connect() as conn:
            return dict(conn.execute(s_stmt).all()), dict(conn.execute(r_stmt).all())

    # -- one run -------------------------------------------------------------

    def run(self, run_id: str) -> dict[str, Any]:
        """Return everything about one run except its curves, JSON-ready.

        Members: ``run`` (id, name, status, times, host, pid, versions,
        model and parameter counts, error), ``params``, ``tags``, ``phases``
        (one per fit/evaluate/predict call: ``phase``, ``phase_seq``,
        ``status``, times, ``initial_epoch``, counts, ``error``, and for an
        evaluate ``results``, its logs), ``metrics`` (best/final per key),
        ``lr_series`` (phase start and per-epoch points; per-batch points are
        left out), ``lr_changes``, ``early_stops``, ``restores``,
        ``model_config``, ``fits`` (per fit: ``phase_seq``,
        ``optimizer_config``, ``keras_params``).

        Raises:
            UnknownRunError: no run has this id.
        """
        self.check_run(run_id)
        summary = self.store.run(run_id)
        phases = summary["phases"].rename(columns={STORE_PHASES_SEQ: "phase_seq", STORE_PHASES_KIND: "phase"})
        results = {seq: logs for _, seq, _, logs in self._evaluation_rows([run_id])}
        phase_rows = frame_records(phases)
        for row in phase_rows:
            row["results"] = jsonable(results.get(row["phase_seq"])) if row["phase"] == "evaluate" else None
        series = self.store.lr_series(run_id)
        series = series[series["point"] != "batch"]
        model_config, fits = self._configs(run_id)
        return {
            "run": jsonable(summary["run"]),
            "params": jsonable(summary["params"]),
            "tags": jsonable(summary["tags"]),
            "phases": phase_rows,
            "metrics": frame_records(summary["metrics"]),
            "lr_series": frame_records(_seq(series, STORE_DECISION_SEQ, "fit")),
            "lr_changes": frame_records(_seq(summary["lr_changes"], STORE_DECISION_SEQ, "fit")),
            "early_stops": frame_records(_seq(summary["early_stops"], STORE_DECISION_SEQ, "fit")),
            "restores": frame_records(_seq(summary["restores"], STORE_DECISION_SEQ, "fit")),
            "model_config": jsonable(model_config),
            "fits": jsonable(fits),
        }

    def _configs(self, run_id: str) -> tuple[Any, list[dict[str, Any]]]:
        """The model config and each fit's optimizer config and Keras params. Not in Store yet."""
        with self.engine.connect() as conn:
            model_config = conn.execute(select(Run.model_config).where(Run.id == run_id)).scalar()
            fits = [
                {"phase_seq": seq, "optimizer_config": opt, "keras_params": params}
                for seq, opt, params in conn.execute(
                    select(Phase.seq, Phase.optimizer_config, Phase.keras_params)
                    .where(Phase.run_id == run_id, Phase.kind == PhaseKind.FIT).order_by(Phase.seq)
                )
            ]
        return model_config, fits

    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        """Return one object per finished epoch: ``phase`` (``fit``), ``phase_seq``,
        ``epoch``, ``started_at``, ``ended_at``, ``redone``, then one member per
        logs key the epoch logged, bit-exact. A key the epoch did not log is
        absent (a logged NaN is ``"NaN"``, a logged None is null).

        Raises:
            UnknownRunError: no run has this id.
        """
        self.check_run(run_id)
        wide = self.store.epochs(run_id)
        tidy = self.store.epochs(run_id, tidy=True)
        out: dict[tuple[int, int], dict[str, Any]] = {}
        for seq, epoch, started, ended, redone in wide[[STORE_EPOCH_SEQ, "epoch", *STORE_EPOCH_META]].itertuples(
            index=False, name=None
        ):
            out[(int(seq), int(epoch))] = {
                "phase": "fit", "phase_seq": int(seq), "epoch": int(epoch),
                "started_at": started, "ended_at": ended, "redone": bool(redone),
            }
        for seq, epoch, key, value in tidy[[STORE_EPOCH_SEQ, "epoch", "key", "value"]].itertuples(index=False, name=None):
            member = f"log:{key}" if key in EPOCH_META else key
            out[(int(seq), int(epoch))][member] = value
        return jsonable(list(out.values()))

    def batches(self, run_id: str, *, phase: str = "fit", points: int = 2000) -> dict[str, Any]:
        """Return the batch curves of one kind of phase, downsampled on the server.

        Members: ``phase``, ``total`` (batches recorded), ``points`` (the
        requested size), ``series``: per numeric logs key ``{"x": [...],
        "y": [...]}``. For fit and validation x is on the epoch axis, where an
        epoch's own value sits at x = epoch: ``epoch - 1 + (batch + 1) /
        steps`` (steps: the phase's largest batch index + 1), so the batches
        of epoch e span (e - 1, e]; for evaluate x is Keras' batch index. Each curve keeps its minimum and maximum per bucket
        (``tracker.ui.downsample``).

        Raises:
            UnknownRunError: no run has this id.
            BadRequest: ``phase`` or ``points`` is not valid.
        """
        if phase not in BATCH_PHASES:
            raise BadRequest(f"phase must be one of {', '.join(BATCH_PHASES)}, not {phase[:40]!r}.")
        if not 10 <= points <= 20000:
            raise BadRequest("points must be between 10 and 20000.")
        self.check_run(run_id)
        frame = self.store.batches(run_id, BATCH_PHASES[phase])
        series: dict[str, dict[str, Any]] = {}
        if len(frame):
            batch = frame["batch"].to_numpy(dtype=np.float64)
            if phase != "evaluate":  # on the epoch axis: the last batch of epoch e at x = e
                seq = frame[STORE_BATCH_SEQ].to_numpy()
                steps = pd.Series(batch).groupby(seq).transform("max").to_numpy() + 1
                x = frame["epoch"].to_numpy(dtype=np.float64, na_value=np.nan) - 1 + (batch + 1) / steps
            else:
                x = batch
            meta = {STORE_BATCH_SEQ, "epoch", "batch", "elapsed", "step"}
            for key in (c for c in frame.columns if c not in meta):
                if frame[key].dtype != np.float64:
                    continue  # text values: nothing to draw
                kx, ky = downsample(x, frame[key].to_numpy(), points)
                series[key] = {"x": kx.tolist(), "y": ky.tolist()}
        return jsonable({"phase": phase, "total": len(frame), "points": points, "series": series})

    # -- compare -------------------------------------------------------------

    def compare(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """Return ``{"columns": [...], "rows": [...]}``: ``tracker.reports.compare_runs``.

        One row per run: name, status, duration, epochs, stopped and
        restored epochs, LR at start and end, ``param:NAME`` for each param
        that differs, ``best:KEY``/``best_epoch:KEY``/``final:KEY``/
        ``final_epoch:KEY`` per numeric epoch key.

        Raises:
            UnknownRunError: an id names no run.
            BadRequest: no ids, or more than 20.
        """
        from tracker.reports import compare_runs

        if not run_ids or len(run_ids) > 20:
            raise BadRequest("give between 1 and 20 run ids, as run=ID&run=ID.")
        ids = [self.check_run(r) for r in dict.fromkeys(run_ids)]
        frame = compare_runs(self.store, ids)
        return {"columns": [str(c) for c in frame.columns], "rows": frame_records(frame)}


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
