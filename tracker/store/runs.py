"""Runs: the listing, one run's summary, its params, tags and best/final metrics.

Plain functions behind ``Store.runs``, ``Store.run``, ``Store.params``,
``Store.tags`` and ``Store.metrics`` (documented there). Imports neither
Keras nor TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from tracker.db.tables import Key, Param, Phase, Run, RunMetric, Tag
from tracker.status import PhaseKind
from tracker.store.base import enum_values, int_columns, read_frame
from tracker.store.experiments import trial_of
from tracker.store.filters import check_experiment, check_metric_key, in_view, maximised, runs_statement
from tracker.store.liveness import apply_liveness, effective_status
from tracker.store.names import shown_key
from tracker.store.where_sql import DECIDED, check_names, compile_where, keep_decided

__all__ = [
    "runs_frame", "params_of", "tags_of", "metrics_frame", "metric_keys", "run_summary", "phases_frame", "configs_of",
    "phase_labels", "call_numbers", "add_call",
]


def runs_frame(
    engine: Engine,
    *,
    status: str | Sequence[str] | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    sort: str | None = None,
    limit: int | None = None,
    run_ids: Sequence[str] | None = None,
    experiment: str | None = None,
    deleted: bool = False,
    where: str | None = None,
    heartbeat_timeout: float,
) -> pd.DataFrame:
    """One row per run, filtered and sorted (see ``Store.runs``)."""
    stmt, order = runs_statement(
        status=status, name=name, tags=tags, params=params, sort=sort, limit=limit, run_ids=run_ids,
        experiment=experiment, deleted=deleted, where=where,
    )
    with engine.connect() as conn:
        check_experiment(conn, experiment)
        if where is not None:
            check_names(conn, compile_where(where))
        check_metric_key(conn, order.key, option=f"sort {sort}", deleted=deleted)
        result = conn.execute(stmt)
        columns = list(result.keys())
        rows = [list(r) for r in result.all()]
    wanted = None if status is None else ([status] if isinstance(status, str) else list(status))
    rows = keep_decided(columns, apply_liveness(columns, rows, wanted, timeout=heartbeat_timeout))
    frame = pd.DataFrame(rows, columns=columns).drop(columns=list(DECIDED), errors="ignore")
    for column in ("started_at", "ended_at", "heartbeat_at", "deleted_at"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    int_columns(frame, ["param_count", "pid"])
    if order.key is not None:
        frame[f"{order.key}_epoch"] = frame[f"{order.key}_epoch"].astype("Int64")
        frame[order.key] = frame[order.key].astype("float64")
    return frame


def params_of(engine: Engine, run_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(
            conn.execute(select(Param.key, Param.value).where(Param.run_id == run_id).order_by(Param.key)).all()
        )


def tags_of(engine: Engine, run_id: str) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(Tag.key, Tag.value).where(Tag.run_id == run_id).order_by(Tag.key)).all()
    return {key: value or "" for key, value in rows}


def metrics_frame(engine: Engine, run_id: str) -> pd.DataFrame:
    """Best and final value of every numeric epoch key of a run (see ``Store.metrics``)."""
    with engine.connect() as conn:
        found = conn.execute(
            select(
                Key.name, RunMetric.best_min, RunMetric.best_min_epoch, RunMetric.best_max, RunMetric.best_max_epoch,
                RunMetric.final, RunMetric.final_epoch, RunMetric.epochs,
            )
            .join(Key, Key.id == RunMetric.key_id)
            .where(RunMetric.run_id == run_id)
            .order_by(Key.name)
        ).mappings().all()
    rows = []
    for r in found:
        high = maximised(r["name"])
        rows.append(
            {
                "key": shown_key(r["name"]),
                "best": r["best_max"] if high else r["best_min"],
                "best_epoch": r["best_max_epoch"] if high else r["best_min_epoch"],
                "final": r["final"],
                "final_epoch": r["final_epoch"],
                "epochs": r["epochs"],
            }
        )
    out = pd.DataFrame(rows, columns=["key", "best", "best_epoch", "final", "final_epoch", "epochs"])
    int_columns(out, ["best_epoch", "final_epoch", "epochs"])
    for column in ("best", "final"):
        out[column] = out[column].astype("float64")
    return out


def metric_keys(engine: Engine) -> list[str]:
    """The numeric epoch keys any run in view logged, by their shown names, sorted (the keys ``best:KEY`` can sort by)."""
    with engine.connect() as conn:
        used = select(RunMetric.key_id).where(RunMetric.run_id.in_(in_view())).distinct()
        names = conn.execute(select(Key.name).where(Key.id.in_(used))).scalars()
        return sorted(shown_key(n) for n in names)


def configs_of(engine: Engine, run_id: str) -> dict[str, Any]:
    """The run's model config and each fit's optimizer config and Keras params (see ``Store.configs``)."""
    with engine.connect() as conn:
        model_config = conn.execute(select(Run.model_config).where(Run.id == run_id)).scalar()
        fits: list[Any] = list(conn.execute(
            select(Phase.seq, Phase.optimizer_config, Phase.keras_params)
            .where(Phase.run_id == run_id, Phase.kind == PhaseKind.FIT)
            .order_by(Phase.seq)
        ).all())
    calls = call_numbers(engine, [run_id])
    return {
        "model_config": model_config,
        "fits": [{"phase_seq": seq, "call": calls.get((run_id, seq)), "optimizer_config": opt, "keras_params": params}
                 for seq, opt, params in fits],
    }


def phases_frame(engine: Engine, run_id: str) -> pd.DataFrame:
    """The run's fit, evaluate and predict calls (validation passes excluded)."""
    frame = read_frame(
        engine,
        select(
            Phase.seq.label("phase_seq"),
            Phase.kind.label("phase"),
            Phase.status,
            Phase.started_at,
            Phase.ended_at,
            Phase.initial_epoch,
            Phase.batch_count,
            Phase.sample_count,
            Phase.error,
            Phase.final_weights,
        )
        .where(Phase.run_id == run_id, Phase.kind != PhaseKind.VALIDATION)
        .order_by(Phase.seq),
    )
    enum_values(frame, ["phase", "status", "final_weights"])
    add_call(frame, call_numbers(engine, [run_id]), run_id)
    return int_columns(frame, ["initial_epoch", "batch_count", "sample_count"])


def run_summary(engine: Engine, run_id: str, *, heartbeat_timeout: float) -> dict[str, Any]:
    """The run's own columns (``model_config`` left out), with its effective status."""
    with engine.connect() as conn:
        row = conn.execute(select(Run).where(Run.id == run_id)).mappings().one()
    info = {k: getattr(v, "value", v) for k, v in dict(row).items() if k not in ("model_config", "experiment_id")}
    info.update(trial_of(engine, run_id))
    info["status"] = effective_status(
        info["status"], info["host"], info["pid"], info["started_at"], info["heartbeat_at"],
        timeout=heartbeat_timeout,
    )
    return info


def _phases_of(engine: Engine, run_ids: Sequence[str] | None) -> list[Any]:
    """``(run_id, id, seq, kind, parent_id)`` of the phases of the runs (every run for None), in order."""
    stmt = select(Phase.run_id, Phase.id, Phase.seq, Phase.kind, Phase.parent_id)
    if run_ids is None:
        with engine.connect() as conn:
            return list(conn.execute(stmt.order_by(Phase.run_id, Phase.seq)).all())
    found: list[Any] = []
    ids = list(dict.fromkeys(run_ids))
    for i in range(0, len(ids), 900):
        with engine.connect() as conn:
            found.extend(conn.execute(stmt.where(Phase.run_id.in_(ids[i : i + 900]))
                                      .order_by(Phase.run_id, Phase.seq)).all())
    return found


def _numbered(found: Sequence[Any]) -> tuple[dict[tuple[str, int], int], dict[tuple[str, str], int]]:
    """Each phase's ``call`` by ``(run_id, seq)``, and how many calls of each kind each run made."""
    calls: dict[tuple[str, int], int] = {}
    counts: dict[tuple[str, str], int] = {}
    by_id: dict[int, int] = {}
    for run_id, phase_id, seq, kind, _ in found:
        name = PhaseKind(kind).value
        if name != PhaseKind.VALIDATION.value:
            counts[(run_id, name)] = counts.get((run_id, name), 0) + 1
            calls[(run_id, seq)] = by_id[phase_id] = counts[(run_id, name)]
    last_fit: dict[str, int] = {}
    for run_id, phase_id, seq, kind, parent in found:  # a validation pass: the number of its fit
        if PhaseKind(kind) == PhaseKind.FIT:
            last_fit[run_id] = by_id[phase_id]
        elif PhaseKind(kind) == PhaseKind.VALIDATION:
            fallback = last_fit.get(run_id, 1)  # no parent recorded: the fit it follows
            calls[(run_id, seq)] = fallback if parent is None else by_id.get(parent, fallback)
    return calls, counts


def call_numbers(engine: Engine, run_ids: Sequence[str] | None) -> dict[tuple[str, int], int]:
    """The ``call`` of each phase of the runs (every run for None), by ``(run_id, phase_seq)``.

    A phase's ``call`` counts the calls of its kind the run made, from 1 in
    the order they were made: the run's first ``fit`` is 1, its first
    ``evaluate`` 1, its second ``fit`` 2, whatever came in between. A
    validation pass (the evaluation inside a fit, one phase per validated
    epoch) has the number of its fit. ``phase_seq`` is different: it
    numbers every phase of the run, validation passes included, from 0.
    """
    return _numbered(_phases_of(engine, run_ids))[0]


def add_call(frame: pd.DataFrame, calls: Mapping[tuple[str, int], int], run_id: str | None = None) -> pd.DataFrame:
    """Insert the ``call`` column (``Int64``) after ``phase_seq``, from ``call_numbers``.

    The run of a row is its ``run_id`` cell, else ``run_id``. Returns ``frame``.
    """
    seqs = pd.Series(frame["phase_seq"], index=frame.index)
    if "run_id" not in frame.columns:  # one run: a vectorised lookup by seq (a million batches in milliseconds)
        found = seqs.map({seq: call for (rid, seq), call in calls.items() if rid == run_id})
    else:
        table = pd.Series(list(calls.values()), index=pd.MultiIndex.from_tuples(list(calls), names=["r", "s"]),
                          dtype="float64") if calls else pd.Series(dtype="float64")
        found = table.reindex(pd.MultiIndex.from_arrays([frame["run_id"], seqs])) if calls else seqs * float("nan")
    cells = pd.array(pd.to_numeric(found, errors="coerce").to_numpy(dtype="float64", na_value=np.nan), dtype="Float64")
    frame.insert(frame.columns.get_loc("phase_seq") + 1, "call", cells.astype("Int64"))
    return frame


def phase_labels(engine: Engine, run_ids: Sequence[str]) -> dict[tuple[str, int], str]:
    """A name for people for each phase of the runs, by ``(run_id, phase_seq)``.

    The kind (``fit``, ``evaluate``, ``predict``) when the run made one call
    of that kind, else the kind and its ``call`` number (``fit 2``: the
    run's second fit, see ``call_numbers``). A validation pass is
    ``validation``, or ``validation (fit 2)`` when the run has several fits.
    """
    found = _phases_of(engine, run_ids)
    calls, counts = _numbered(found)
    labels: dict[tuple[str, int], str] = {}
    for run_id, _, seq, kind, _ in found:
        name = PhaseKind(kind).value
        if name == PhaseKind.VALIDATION.value:
            several = counts.get((run_id, PhaseKind.FIT.value), 0) > 1
            labels[(run_id, seq)] = f"validation (fit {calls[(run_id, seq)]})" if several else "validation"
        else:
            several = counts[(run_id, name)] > 1
            labels[(run_id, seq)] = f"{name} {calls[(run_id, seq)]}" if several else name
    return labels
