"""Every database read of the dashboard, shaped for its JSON API.

The dashboard reads through the public ``tracker.Store`` where the Store
answers the question in time, and through SQLAlchemy Core selects with
bound parameters where it does not yet: those reads are marked ``Not in
Store yet`` below, and the runs table's bulk reads live in
``tracker.ui.listing``, which only this module calls. The database is
opened read-only (``tracker.migrate.open_readonly``): it is never created,
upgraded or written.

The Store's frame column names all sit in the constants below, so that a
rename in the Store is a change here only. In the JSON API ``phase`` is the
phase kind (``fit``, ``validation``, ``evaluate``, ``predict``) and
``phase_seq`` its sequence number within the run.
"""

from __future__ import annotations

import json
import re
from operator import itemgetter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, literal, select

from tracker.database import describe, resolve_url
from tracker.errors import UnknownRunError
from tracker.liveness import HEARTBEAT_TIMEOUT
from tracker.migrate import open_readonly
from tracker.run_filters import RUN_STATUSES
from tracker.schema import Batch, BatchValue, Phase, PhaseKind, PhaseValue, Run, RunMetric
from tracker.store import Store
from tracker.ui.downsample import downsample
from tracker.ui.jsonable import frame_records, jsonable
from tracker.ui.listing import RunListing
from tracker.values import decode

__all__ = ["Dashboard", "RUN_ID", "EPOCH_META", "BadRequest"]

#: A run id as the API accepts it: 32 lowercase hex digits.
RUN_ID = re.compile(r"[0-9a-f]{32}")

# Store column names (today's Store: ``phase`` is the phase's sequence number).
STORE_EPOCH_SEQ = "phase"  # Store.epochs: the fit's sequence number
STORE_PHASES_SEQ, STORE_PHASES_KIND = "seq", "kind"  # Store.run(...)["phases"]
STORE_DECISION_SEQ = "phase"  # Store.lr_changes / lr_series / early_stops / restores
STORE_EPOCH_META = ("started_at", "ended_at", "redone")

#: Members of an epoch object that are not logs keys. A logs key with one of
#: these names is given as ``log:NAME`` instead.
EPOCH_META = ("phase", "phase_seq", "epoch", "started_at", "ended_at", "redone")

#: Batch phases the API serves.
BATCH_PHASES = {"fit": PhaseKind.FIT, "validation": PhaseKind.VALIDATION, "evaluate": PhaseKind.EVALUATE}


class BadRequest(ValueError):
    """A query parameter of an API request is not valid; the message says which and why."""


def _seq(frame: pd.DataFrame, store_column: str, kind: str) -> pd.DataFrame:
    """Rename the Store's sequence column to ``phase_seq`` and add ``phase`` (the kind)."""
    frame = frame.rename(columns={store_column: "phase_seq"})
    if "phase" not in frame.columns:
        frame.insert(0, "phase", kind)
    return frame


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

    def __init__(self, db: str, *, heartbeat_timeout: float = HEARTBEAT_TIMEOUT) -> None:
        self.engine, url = open_readonly(db)
        self.store = Store(url, heartbeat_timeout=heartbeat_timeout)
        self.name = describe(resolve_url(db))
        self._listing = RunListing(self.engine, self._last_evaluations, heartbeat_timeout=heartbeat_timeout)
        self._batch_cache: dict[tuple[str, str, int], tuple[tuple[Any, ...], dict[str, Any]]] = {}

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

        The rows read are cached until a writer writes (see
        ``tracker.ui.listing``); liveness (running or crashed) and running
        durations are worked out afresh on every call.

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
        return json.loads(self.runs_json(metric=metric, status=status, name=name, limit=limit, run_ids=run_ids))

    def runs_json(self, *, metric: str | None = None, status: str | None = None, name: str | None = None,
                  limit: int | None = None, run_ids: Sequence[str] | None = None) -> str:
        """Return ``runs(...)`` as JSON text: the ``/api/runs`` answer (see ``tracker.ui.listing``).

        Raises:
            BadRequest: see ``runs``.
        """
        keys = self.metric_keys()
        metric = metric if metric is not None else self.default_metric(keys)
        if metric is not None and metric not in keys:
            raise BadRequest(f"metric {metric[:80]!r} is not a logged epoch key; GET /api/keys lists them.")
        if limit is not None and limit < 1:
            raise BadRequest("limit must be a positive integer.")
        if status is not None and status not in RUN_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(RUN_STATUSES)}, not {status[:40]!r}.")
        return self._listing.json(metric=metric, status=status, name=name, limit=limit,
                                  run_ids=None if run_ids is None else tuple(run_ids))

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
                rows.setdefault((rid, seq), (ended, {}))[1][key] = decode(value, bits, text)
        return [(rid, seq, ended, logs) for (rid, seq), (ended, logs) in rows.items()]

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
        for column in ("initial_epoch", "batch_count", "sample_count"):  # NULL made them floats
            phases[column] = phases[column].astype("Int64")
        results = {seq: logs for _, seq, _, logs in self._evaluation_rows([run_id])}
        phase_rows = frame_records(phases)
        for row in phase_rows:
            if row["status"] == "running" and summary["run"]["status"] == "crashed":
                row["status"] = "crashed"  # its process is gone (tracker.liveness)
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
        tidy = self.store.epochs(run_id, tidy=True)
        meta = [STORE_EPOCH_SEQ, "epoch", *STORE_EPOCH_META]
        rows = tidy[meta].drop_duplicates(subset=meta[:2])
        with self.engine.connect() as conn:
            recorded = conn.execute(select(Run.epoch_count).where(Run.id == run_id)).scalar()
        if len(rows) != recorded:  # an epoch that logged no key, or a resumed run: take the Store's list
            rows = self.store.epochs(run_id)[meta]
        out: dict[tuple[int, int], dict[str, Any]] = {}
        for seq, epoch, started, ended, redone in rows.itertuples(index=False, name=None):
            out[(int(seq), int(epoch))] = {
                "phase": "fit", "phase_seq": int(seq), "epoch": int(epoch),
                "started_at": started, "ended_at": ended, "redone": bool(redone),
            }
        values = tidy[[STORE_EPOCH_SEQ, "epoch", "key", "value"]]
        for seq, epoch, key, value in values.itertuples(index=False, name=None):
            member = f"log:{key}" if key in EPOCH_META else key
            out[(int(seq), int(epoch))][member] = value
        return jsonable(sorted(out.values(), key=lambda e: (e["phase_seq"], e["epoch"])))

    def batches(self, run_id: str, *, phase: str = "fit", points: int = 2000) -> dict[str, Any]:
        """Return the batch curves of one kind of phase, downsampled on the server.

        Members: ``phase``, ``total`` (batches recorded), ``points`` (the
        requested size), ``series``: per numeric logs key ``{"x": [...],
        "y": [...]}``. For fit and validation x is on the epoch axis, where an
        epoch's own value sits at x = epoch: ``epoch - 1 + (batch + 1) /
        steps`` (steps: the phase's largest batch index + 1), so the batches
        of epoch e span (e - 1, e]; for evaluate x is Keras' batch index.
        Each curve keeps its minimum and maximum per bucket
        (``tracker.ui.downsample``). Answers are cached until the run's
        batch count changes.

        Raises:
            UnknownRunError: no run has this id.
            BadRequest: ``phase`` or ``points`` is not valid.
        """
        if phase not in BATCH_PHASES:
            raise BadRequest(f"phase must be one of {', '.join(BATCH_PHASES)}, not {phase[:40]!r}.")
        if not 10 <= points <= 20000:
            raise BadRequest("points must be between 10 and 20000.")
        self.check_run(run_id)
        kind = BATCH_PHASES[phase]
        with self.engine.connect() as conn:  # what changes when batches are added
            token = tuple(conn.execute(
                select(func.count(), func.max(Batch.phase_id), func.max(Batch.seq))
                .where(Batch.phase_id.in_(select(Phase.id).where(Phase.run_id == run_id, Phase.kind == kind)))
            ).one())
        cache_key = (run_id, phase, points)
        hit = self._batch_cache.get(cache_key)
        if hit is not None and hit[0] == token:
            return hit[1]
        total, values = self._batch_arrays(run_id, kind, epoch_axis=phase != "evaluate")
        series = {}
        for key, (x, y) in values.items():
            kx, ky = downsample(x, y, points)
            series[key] = {"x": kx.tolist(), "y": ky.tolist()}
        answer = jsonable({"phase": phase, "total": total, "points": points, "series": series})
        self._batch_cache[cache_key] = (token, answer)
        while len(self._batch_cache) > 8:  # the oldest entry goes
            self._batch_cache.pop(next(iter(self._batch_cache)))
        return answer

    def _batch_arrays(self, run_id: str, kind: PhaseKind, *, epoch_axis: bool) -> tuple[int, dict[str, Any]]:
        """``(batches recorded, {key: (x, exact values)})`` of one phase kind, in order.

        Not in Store yet: ``Store.batches`` pivots through pandas (about 2 s
        for 100,000 rows here). This asks SQL for each numeric key's x and
        bit pattern, per phase (two columns a row, x computed in SQL), and
        decodes them with NumPy.
        """
        series: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        with self.engine.connect() as conn:
            phases = conn.execute(
                select(Phase.id, Phase.epoch).where(Phase.run_id == run_id, Phase.kind == kind).order_by(Phase.seq)
            ).all()
            ids = [pid for pid, _ in phases]
            total = conn.execute(select(func.count()).select_from(Batch).where(Batch.phase_id.in_(ids))).scalar()
            keys = conn.execute(
                select(BatchValue.key).where(BatchValue.phase_id.in_(ids), BatchValue.bits.is_not(None)).distinct()
            ).scalars().all()
            for pid, phase_epoch in phases:
                if epoch_axis:  # the last batch of epoch e at x = e; steps: the phase's largest batch index + 1
                    steps = (conn.execute(select(func.max(Batch.batch)).where(Batch.phase_id == pid)).scalar() or 0) + 1
                    x = func.coalesce(Batch.epoch, phase_epoch or 0) - 1 + (Batch.batch + 1) / literal(float(steps))
                else:
                    x = Batch.batch
                for key in keys:
                    rows = conn.execute(
                        select(x, BatchValue.bits)
                        .join(Batch, and_(Batch.phase_id == BatchValue.phase_id, Batch.seq == BatchValue.batch_seq))
                        .where(BatchValue.phase_id == pid, BatchValue.key == key, BatchValue.bits.is_not(None))
                        .order_by(BatchValue.batch_seq)
                    ).all()
                    xs, ys = series.setdefault(key, ([], []))
                    xs.append(np.fromiter(map(itemgetter(0), rows), np.float64, len(rows)))
                    ys.append(np.fromiter(map(itemgetter(1), rows), np.int64, len(rows)).view(np.float64))
        return total or 0, {key: (np.concatenate(xs), np.concatenate(ys)) for key, (xs, ys) in sorted(series.items())}

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
        rows = frame_records(frame)
        for rid, row in zip(ids, rows):  # params as logged (the report makes them CSV cells: 2 -> 2.0)
            logged = self.store.params(rid)
            for column in row:
                if column.startswith("param:"):
                    row[column] = jsonable(logged.get(column.removeprefix("param:")))
        return {"columns": [str(c) for c in frame.columns], "rows": rows}
