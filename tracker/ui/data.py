"""Every database read of the dashboard, shaped for its JSON API.

All reads go through ``tracker.Store``, opened read-only (never created,
upgraded or written), and, for the runs table, through
``tracker.store.overview`` (see ``tracker.ui.listing``). No SQL is built
here. In the JSON API, as everywhere in the tracker, ``phase`` is the phase
kind (``fit``, ``validation``, ``evaluate``, ``predict``), ``phase_seq``
its sequence number among all the run's phases (validation passes
included), and ``call`` the number of the call among the run's calls of
that kind (``tracker.store.runs.call_numbers``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tracker.db.engine import display_name
from tracker.errors import DeletedRunError, UnknownExperimentError, UnknownRunError
from tracker.store.filters import RUN_STATUSES
from tracker.store.liveness import HEARTBEAT_TIMEOUT
from tracker.store.names import asked_key
from tracker.store.series import META_COLUMNS, BatchCurves
from tracker.store.store import Store
from tracker.ui.downsample import downsample
from tracker.ui.jsonable import frame_records, jsonable
from tracker.ui.listing import runs_json

__all__ = ["Dashboard", "RUN_ID", "EPOCH_META", "BATCH_PHASES", "BadRequest", "batch_x"]

#: A run id as the API accepts it: 32 lowercase hex digits.
RUN_ID = re.compile(r"[0-9a-f]{32}")

#: Members of an epoch object that are not logs keys (``Store.epochs``' first
#: columns). A logs key with one of these names, as with any reserved name
#: (``tracker.store.names``), is given as ``log:NAME``.
EPOCH_META = ("phase", "phase_seq", "call", "epoch", "started_at", "ended_at", "redone")

#: Phase kinds whose batch curves the API serves.
BATCH_PHASES = ("fit", "validation", "evaluate")


class BadRequest(ValueError):
    """A query parameter of an API request is not valid; the message says which and why."""


def batch_x(curves: BatchCurves) -> np.ndarray:
    """The x of each batch: on the epoch axis for fit and validation, Keras' batch index otherwise.

    On the epoch axis an epoch's own value sits at x = epoch and its batches
    span (epoch - 1, epoch]: ``epoch - 1 + (batch + 1) / steps``, where
    ``steps`` is the phase call's largest batch index + 1.
    """
    if curves.phase not in ("fit", "validation"):
        return curves.batch.astype(np.float64)
    steps = np.ones(len(curves), dtype=np.float64)
    for seq in np.unique(curves.phase_seq):
        mine = curves.phase_seq == seq
        steps[mine] = curves.batch[mine].max() + 1
    return np.maximum(curves.epoch, 0) - 1 + (curves.batch + 1) / steps


def _logged(value: Any) -> bool:
    """False for a cell the row did not log (pandas' NA); a logged None or NaN is logged."""
    return value is not pd.NA


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
        self.store = Store(db, heartbeat_timeout=heartbeat_timeout)
        self.engine = self.store.engine
        self.name = display_name(self.store.url)

    # -- run ids -------------------------------------------------------------

    def check_run(self, run_id: str) -> str:
        """Return ``run_id`` if it is a full run id in the database.

        Raises:
            DeletedRunError: the run is in the trash (the message says how to undelete it).
            UnknownRunError: it is not 32 hex digits, or no run has it.
        """
        if not RUN_ID.fullmatch(run_id):
            raise UnknownRunError(f"{run_id[:40]!r} is not a run id (32 hex digits).")
        try:
            found = self.store.resolve(run_id)
        except DeletedRunError:
            raise
        except UnknownRunError:
            found = None
        if found != run_id:
            raise UnknownRunError(f"No run has the id {run_id}.")
        return run_id

    # -- the runs table ------------------------------------------------------

    def metric_keys(self) -> list[str]:
        """Return every numeric epoch key any run logged, sorted (``Store.metric_keys``)."""
        return self.store.metric_keys()

    def experiments(self) -> list[dict[str, Any]]:
        """Return one JSON-ready object per experiment, by name: ``Store.experiments``' columns
        (times as ISO 8601 UTC, NaN and ±inf as strings)."""
        from tracker.store.experiments import EXPERIMENT_COLUMNS, experiments_rows
        from tracker.views.tables import iso_utc

        rows = experiments_rows(self.engine, heartbeat_timeout=self.store.heartbeat_timeout)
        return [jsonable({c: iso_utc(v) if c.endswith("_at") else v for c, v in zip(EXPERIMENT_COLUMNS, row)})
                for row in rows]

    def runs(self, *, metric: str | None = None, status: str | None = None, name: str | None = None,
             limit: int | None = None, run_ids: Sequence[str] | None = None,
             experiment: str | None = None) -> list[dict[str, Any]]:
        """Return one JSON-ready object per run, newest first: ``runs_json`` as the pages see it.

        Members: ``run_id``, ``name``, ``status`` (running, finished, failed,
        interrupted, pruned, crashed), ``started_at``, ``ended_at``, ``duration_s``
        (null while running), ``epochs``, ``phases``, ``params`` (only the
        params whose values differ between the listed runs; null where a run
        lacks one), ``metric``, ``best`` and ``best_epoch`` (of ``metric``,
        min or max by the key's direction; null for a run that did not log
        it), ``stopped_epoch``, ``restored_epoch``, ``evaluate`` (the results
        of the run's last evaluate call, or null).

        Raises:
            BadRequest: see ``runs_json``.
        """
        return json.loads(self.runs_json(metric=metric, status=status, name=name, limit=limit, run_ids=run_ids,
                                         experiment=experiment))

    def runs_json(self, *, metric: str | None = None, status: str | None = None, name: str | None = None,
                  limit: int | None = None, run_ids: Sequence[str] | None = None,
                  experiment: str | None = None) -> bytes:
        """Return the ``/api/runs`` answer, the objects of ``runs``, as UTF-8 JSON.

        Args:
            metric: The key for ``best``. Default: the stoppers' most common
                monitor, else ``val_loss``, else a ``val_*`` key, else ``loss``.
            status: Only runs with this status. Default all.
            name: Only runs with this name (``*`` and ``?`` are wildcards).
            limit: At most this many runs (the newest). Default all.
            run_ids: Only these runs (params differ among them). Default all.
            experiment: Only the runs of this experiment. Default all.

        Raises:
            BadRequest: ``metric`` is not a logged key, ``status`` is not a
                status, ``limit`` is below 1, or no experiment is named ``experiment``.
        """
        if metric is not None and asked_key(metric) not in self.metric_keys():
            raise BadRequest(f"metric {metric[:80]!r} is not a logged epoch key; GET /api/keys lists them.")
        if limit is not None and limit < 1:
            raise BadRequest("limit must be a positive integer.")
        if status is not None and status not in RUN_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(RUN_STATUSES)}, not {status[:40]!r}.")
        try:
            return runs_json(self.engine, metric=metric, status=status, name=name, limit=limit, run_ids=run_ids,
                             experiment=experiment, heartbeat_timeout=self.store.heartbeat_timeout)
        except UnknownExperimentError as exc:
            raise BadRequest(str(exc)) from None

    def table(self, *, where: str | None = None, status: str | None = None, experiment: str | None = None,
              metric: str | None = None, sort: str = "started_at", descending: bool = True, offset: int = 0,
              limit: int = 100, since: str | None = None) -> bytes:
        """Return one page of the runs table as UTF-8 JSON (``tracker.ui.table.runs_page``).

        Args:
            where: A filter expression (``tracker.store.where``). Default all runs.
            status: Only runs with this status. Default all.
            experiment: Only the runs of this experiment. Default all.
            metric: The key of the ``best`` column. Default as ``runs_json``.
            sort: ``started_at`` (default), ``name``, ``status``, ``duration``,
                ``epochs``, ``best``, ``stopped_epoch``, ``restored_epoch``,
                ``experiment`` or ``param:NAME``.
            descending: Largest first (default True); runs without a value last either way.
            offset: Runs to skip. Default 0.
            limit: Runs in the page, 1 to 1000. Default 100.
            since: The ``version`` of the page shown: while nothing changed
                and no run is running, the answer is ``{"unchanged": true}``.

        Raises:
            BadRequest: any of these is not valid, or the filter cannot be
                read (its one sentence says where).
        """
        from tracker.errors import InvalidArgumentError
        from tracker.ui.table import SORTS, runs_page

        if not (sort in SORTS or (sort.startswith("param:") and len(sort) > 6)):
            raise BadRequest(f"sort must be one of {', '.join(SORTS)} or param:NAME, not {sort[:40]!r}.")
        if not 1 <= limit <= 1000:
            raise BadRequest("limit must be between 1 and 1000.")
        if status is not None and status not in RUN_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(RUN_STATUSES)}, not {status[:40]!r}.")
        if metric is not None and asked_key(metric) not in self.metric_keys():
            raise BadRequest(f"metric {metric[:80]!r} is not a logged epoch key; GET /api/keys lists them.")
        try:
            return runs_page(self.engine, where=where, status=status, experiment=experiment, metric=metric, sort=sort,
                             descending=descending, offset=offset, limit=limit, since=since,
                             heartbeat_timeout=self.store.heartbeat_timeout)
        except InvalidArgumentError as exc:
            raise BadRequest(str(exc)) from None

    # -- one run -------------------------------------------------------------

    def keys(self, run_id: str) -> list[str]:
        """Return the run's numeric epoch keys by shown name, sorted (``tracker.ui.curves.run_keys``).

        Raises:
            UnknownRunError: no run has this id.
        """
        from tracker.ui.curves import run_keys

        return run_keys(self.engine, self.check_run(run_id))

    def curves(self, run_id: str, keys: Sequence[str] | None = None) -> dict[str, Any]:
        """Return the run's epochs as columns with the values of ``keys`` (``tracker.ui.curves.epoch_curves``).

        Raises:
            UnknownRunError: no run has this id.
            BadRequest: more than ``MAX_KEYS`` keys.
        """
        from tracker.ui.curves import MAX_KEYS, epoch_curves

        if keys is not None and len(keys) > MAX_KEYS:
            raise BadRequest(f"ask for at most {MAX_KEYS} keys at once, not {len(keys)}.")
        return epoch_curves(self.engine, self.check_run(run_id), keys)

    def run(self, run_id: str) -> dict[str, Any]:
        """Return everything about one run except its curves, JSON-ready.

        Members: ``run`` (id, name, status, times, host, pid, versions,
        model and parameter counts, error), ``params``, ``tags``, ``phases``
        (one per fit/evaluate/predict call: ``phase``, ``phase_seq``, ``call``,
        ``status``, times, ``initial_epoch``, counts, ``error``,
        ``final_weights``, and for an evaluate ``results``, its logs), ``metrics`` (best/final per key),
        ``lr_series`` (phase start and per-epoch points; per-batch points are
        left out), ``lr_changes``, ``early_stops``, ``restores``,
        ``model_config``, ``fits`` (per fit: ``phase_seq``, ``call``,
        ``optimizer_config``, ``keras_params``), ``checkpoints`` (every save
        and skipped epoch, ``Store.checkpoints`` without the run's id and
        name), ``started_from`` (``{"run_id", "epoch"}`` or null) and
        ``lineage`` (``Store.lineage``: the runs it started from and those
        started from it).

        Raises:
            UnknownRunError: no run has this id.
        """
        self.check_run(run_id)
        summary = self.store.run(run_id)
        results = self._results(summary["evaluations"])
        phases = frame_records(summary["phases"])
        for row in phases:
            if row["status"] == "running" and summary["run"]["status"] == "crashed":
                row["status"] = "crashed"  # its process is gone (tracker.store.liveness)
            row["results"] = results.get(row["phase_seq"]) if row["phase"] == "evaluate" else None
        series = self.store.lr_series(run_id)
        configs = self.store.configs(run_id)
        return {
            "run": jsonable(summary["run"]),
            "params": jsonable(summary["params"]),
            "tags": jsonable(summary["tags"]),
            "phases": phases,
            "metrics": frame_records(summary["metrics"]),
            "lr_series": frame_records(series[series["point"] != "batch"]),
            "lr_changes": frame_records(summary["lr_changes"]),
            "early_stops": frame_records(summary["early_stops"]),
            "restores": frame_records(summary["restores"]),
            "model_config": jsonable(configs["model_config"]),
            "fits": jsonable(configs["fits"]),
            "checkpoints": frame_records(summary["checkpoints"].drop(columns=["run_id", "name"])),
            "started_from": jsonable(summary["started_from"]),
            "lineage": frame_records(self.store.lineage(run_id)),
        }

    @staticmethod
    def _results(evaluations: pd.DataFrame) -> dict[int, dict[str, Any]]:
        """Each evaluate call's logs by ``phase_seq``: the keys it logged, exact."""
        keys = [c for c in evaluations.columns if c not in META_COLUMNS]
        out = {}
        for i, seq in enumerate(evaluations["phase_seq"].tolist()):
            cells = {k: evaluations[k].iloc[i] for k in keys}
            out[int(seq)] = jsonable({k: v for k, v in cells.items() if _logged(v)})
        return out

    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        """Return one object per finished epoch: ``phase`` (``fit``), ``phase_seq``,
        ``call``, ``epoch``, ``started_at``, ``ended_at``, ``redone``, then one
        member per logs key the epoch logged, by its shown name (``log:NAME``
        for a reserved name), bit-exact. A key the epoch did not log is
        absent (a logged NaN is ``"NaN"``, a logged None is null).

        Raises:
            UnknownRunError: no run has this id.
        """
        self.check_run(run_id)
        frame = self.store.epochs(run_id)
        meta = len(EPOCH_META)
        if tuple(frame.columns[:meta]) != EPOCH_META:  # pragma: no cover - Store.epochs' documented columns
            raise RuntimeError(f"Store.epochs columns changed: {list(frame.columns[:meta])}")
        columns = [frame.iloc[:, i].tolist() for i in range(frame.shape[1])]
        keys = [str(k) for k in frame.columns[meta:]]  # shown names: never one of EPOCH_META
        out = []
        for r in range(len(frame)):
            item: dict[str, Any] = {
                "phase": columns[0][r], "phase_seq": int(columns[1][r]), "call": int(columns[2][r]),
                "epoch": int(columns[3][r]), "started_at": columns[4][r], "ended_at": columns[5][r],
                "redone": bool(columns[6][r]),
            }
            for key, cells in zip(keys, columns[meta:]):
                if _logged(cells[r]):
                    item[key] = cells[r]
            out.append(item)
        return jsonable(out)

    def batches(self, run_id: str, *, phase: str = "fit", points: int = 2000) -> dict[str, Any]:
        """Return the batch curves of one kind of phase, downsampled on the server.

        Members: ``phase``, ``total`` (batches recorded), ``points`` (the
        requested size), ``series``: per logs key logged as a number
        ``{"x": [...], "y": [...]}``, x as ``batch_x`` gives it: on the
        epoch axis for fit and validation, Keras' batch index for evaluate.
        Each curve keeps its minimum and maximum per bucket
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
        curves = self.store.batch_curves(run_id, phase)
        x = batch_x(curves)
        series = {}
        for key, (rows, values) in curves.values.items():
            kx, ky = downsample(x[rows], values, points)
            series[key] = {"x": kx.tolist(), "y": jsonable(ky.tolist())}
        return {"phase": phase, "total": len(curves), "points": points, "series": series}

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
