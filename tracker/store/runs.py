"""Runs: the listing, one run's summary, its params, tags and best/final metrics.

Plain functions behind ``Store.runs``, ``Store.run``, ``Store.params``,
``Store.tags`` and ``Store.metrics`` (documented there). Imports neither
Keras nor TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from tracker.db.tables import Key, Param, Phase, Run, RunMetric, Tag
from tracker.status import PhaseKind
from tracker.store.base import enum_values, int_columns, read_frame
from tracker.store.filters import check_metric_key, maximised, runs_statement
from tracker.store.liveness import apply_liveness, effective_status

__all__ = [
    "runs_frame", "params_of", "tags_of", "metrics_frame", "metric_keys", "run_summary", "phases_frame", "configs_of",
    "phase_labels",
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
    heartbeat_timeout: float,
) -> pd.DataFrame:
    """One row per run, filtered and sorted (see ``Store.runs``)."""
    stmt, order = runs_statement(
        status=status, name=name, tags=tags, params=params, sort=sort, limit=limit, run_ids=run_ids
    )
    with engine.connect() as conn:
        check_metric_key(conn, order.key, option=f"sort {sort}")
        result = conn.execute(stmt)
        columns = list(result.keys())
        rows = [list(r) for r in result.all()]
    wanted = None if status is None else ([status] if isinstance(status, str) else list(status))
    rows = apply_liveness(columns, rows, wanted, timeout=heartbeat_timeout)
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("started_at", "ended_at", "heartbeat_at"):
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
                "key": r["name"],
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
    """The numeric epoch keys any run logged, sorted (the keys ``best:KEY`` can sort by)."""
    with engine.connect() as conn:
        used = select(RunMetric.key_id).distinct()
        return list(conn.execute(select(Key.name).where(Key.id.in_(used)).order_by(Key.name)).scalars())


def configs_of(engine: Engine, run_id: str) -> dict[str, Any]:
    """The run's model config and each fit's optimizer config and Keras params (see ``Store.configs``)."""
    with engine.connect() as conn:
        model_config = conn.execute(select(Run.model_config).where(Run.id == run_id)).scalar()
        fits = conn.execute(
            select(Phase.seq, Phase.optimizer_config, Phase.keras_params)
            .where(Phase.run_id == run_id, Phase.kind == PhaseKind.FIT)
            .order_by(Phase.seq)
        ).all()
    return {
        "model_config": model_config,
        "fits": [{"phase_seq": seq, "optimizer_config": opt, "keras_params": params} for seq, opt, params in fits],
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
        )
        .where(Phase.run_id == run_id, Phase.kind != PhaseKind.VALIDATION)
        .order_by(Phase.seq),
    )
    enum_values(frame, ["phase", "status"])
    return int_columns(frame, ["initial_epoch", "batch_count", "sample_count"])


def run_summary(engine: Engine, run_id: str, *, heartbeat_timeout: float) -> dict[str, Any]:
    """The run's own columns (``model_config`` left out), with its effective status."""
    with engine.connect() as conn:
        row = conn.execute(select(Run).where(Run.id == run_id)).mappings().one()
    info = {k: getattr(v, "value", v) for k, v in dict(row).items() if k != "model_config"}
    info["status"] = effective_status(
        info["status"], info["host"], info["pid"], info["started_at"], info["heartbeat_at"],
        timeout=heartbeat_timeout,
    )
    return info


def phase_labels(engine: Engine, run_ids: Sequence[str]) -> dict[tuple[str, int], str]:
    """A name for people for each phase of the runs, by ``(run_id, phase_seq)``.

    The kind (``fit``, ``evaluate``, ``predict``) when the run made one call
    of that kind, else the kind and its ordinal (``fit 2``: the run's second
    fit). A validation pass is ``validation``, or ``validation (fit 2)`` when
    the run has several fits.
    """
    labels: dict[tuple[str, int], str] = {}
    ids = list(dict.fromkeys(run_ids))
    for i in range(0, len(ids), 900):
        with engine.connect() as conn:
            found = conn.execute(
                select(Phase.run_id, Phase.id, Phase.seq, Phase.kind, Phase.parent_id)
                .where(Phase.run_id.in_(ids[i : i + 900]))
                .order_by(Phase.run_id, Phase.seq)
            ).all()
        calls: dict[tuple[str, str], list[int]] = {}
        for run_id, _, seq, kind, _ in found:
            if kind != PhaseKind.VALIDATION:
                calls.setdefault((run_id, PhaseKind(kind).value), []).append(seq)
        name_of: dict[int, str] = {}
        for run_id, phase_id, seq, kind, _ in found:
            name = PhaseKind(kind).value
            if name != PhaseKind.VALIDATION.value:
                seqs = calls[(run_id, name)]
                labels[(run_id, seq)] = name_of[phase_id] = name if len(seqs) == 1 else f"{name} {seqs.index(seq) + 1}"
        for run_id, _, seq, kind, parent in found:
            if PhaseKind(kind) == PhaseKind.VALIDATION:
                fits = calls.get((run_id, PhaseKind.FIT.value), [])
                parent_name = name_of.get(parent) if parent is not None else None
                labels[(run_id, seq)] = (
                    "validation" if len(fits) <= 1 or parent_name is None else f"validation ({parent_name})"
                )
    return labels
