"""The trials of an experiment, ranked as the tool ranks them: the data of every sweep view.

``sweep_info`` computes it once, as a ``SweepInfo`` (small typed tuples, as
Optuna's ``_get_<plot>_info`` functions do); ``tracker sweep``, the JSON API,
the dashboard's experiment page and the HTML report only draw it, and the
tests assert on it. Imports neither Keras nor TensorFlow.

Ranking (``rank``, 1 = best):

* a tool's experiment with an objective direction (KerasTuner, a
  single-objective Optuna study): by the tool's own ``score`` of each trial
  (KerasTuner: the oracle's ``trial.score``, the mean over executions of each
  one's best objective value; Optuna: the trial's value), in the direction,
  among the trials the tool ranks (``RANKED_STATES``); ties keep the trials'
  order. ``ranked_by`` is ``score``;
* any other experiment (runs a user grouped, a multi-objective study): each
  run is a trial, ranked by the best epoch value of ``metric`` (min or max
  by the key, as ``best:KEY`` sorts), among the runs that logged it.
  ``ranked_by`` is the metric.

Trials that are not ranked (failed, pruned, running, no value) follow the
ranked ones in the tool's order (trial number, then start).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, select

from tracker.db.bits import decode
from tracker.db.sweep_tables import Experiment, Trial
from tracker.db.tables import Param, Run, RunMetric
from tracker.store.filters import check_experiment, maximised
from tracker.store.liveness import HEARTBEAT_TIMEOUT, effective_status
from tracker.store.names import logged_key, shown_key

__all__ = ["RANKED_STATES", "SweepTrial", "SweepInfo", "sweep_info"]

#: The trial states each tool ranks (others are never the best trial).
RANKED_STATES = {"keras_tuner": ("COMPLETED",), "optuna": ("COMPLETE",), "ray_tune": ("TERMINATED",)}
#: A trial's status from its runs': the first of these any run has, else ``finished``.
_WORST_FIRST = ("failed", "crashed", "interrupted", "running", "pruned")


class SweepTrial(NamedTuple):
    """One trial of an experiment (a run, for runs not in a tool's trial).

    ``trial``: the tool's trial id (else the run id); ``number``: its place
    in the tool's order; ``name``: the name of ``best_run``; ``runs``: its run
    ids by execution; ``best_run``: the run that stands for it (its best
    ``metric``, else its first); ``status``: from its runs' (a failed run
    makes it ``failed``, then ``crashed``, ``interrupted``, ``running``,
    ``pruned``, else ``finished``); ``state`` and ``score``: the tool's status
    and score as it reported them (bit-exact; a list for several
    objectives); ``objective``: the value ranked (``score``, else
    ``metric_best``); ``rank``: 1 for the best, None when not ranked;
    ``params``: the trial's params (its first run's); ``metric_best`` and
    ``best_epoch``: the best epoch value of ``metric`` in ``best_run`` and
    that epoch; ``epochs``: the epochs its runs trained; ``duration_s``: from
    its first start to its last end (None while running); ``continues``: the
    trial it continued from (Hyperband); ``started_at``: its first start.
    """

    trial: str
    number: int | None
    name: str | None
    runs: tuple[str, ...]
    best_run: str
    status: str
    state: str | None
    score: Any
    objective: float | None
    rank: int | None
    params: dict[str, Any]
    metric_best: float | None
    best_epoch: int | None
    epochs: int
    duration_s: float | None
    continues: str | None
    started_at: datetime | None


class SweepInfo(NamedTuple):
    """An experiment's trials, best first (see the module docstring).

    ``objective`` and ``direction``: the experiment's (the tool's), where
    known; ``metric``: the epoch key of ``metric_best`` (the one asked, else
    the objective if it is a logged key, else the stoppers' monitor,
    ``val_loss``, a ``val_*`` key, ``loss``); ``ranked_by``: ``score`` or the
    metric; ``param_names``: the params that vary or were searched, sorted
    (KerasTuner's ``tuner/...`` schedule values are left out: they are in
    each trial's ``params``).
    """

    experiment: str
    tool: str | None
    objective: str | None
    direction: str | None
    metric: str | None
    ranked_by: str | None
    param_names: list[str]
    trials: list[SweepTrial]


def _time(value: Any) -> datetime | None:
    return value if value is None or isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _score(value: Any, bits: Any, text: Any) -> Any:
    found = decode(value, bits, text)
    if isinstance(found, str) and found.startswith("["):
        return json.loads(found)
    return found


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def sweep_info(engine: Engine, experiment: str, *, metric: str | None = None,
               heartbeat_timeout: float = HEARTBEAT_TIMEOUT) -> SweepInfo:
    """The trials of ``experiment``, ranked (see the module docstring).

    Raises:
        UnknownExperimentError: no experiment has the name (close names are suggested).
        InvalidArgumentError: ``metric`` is not a logged epoch key.
    """
    from tracker.store.filters import check_metric_key
    from tracker.store.overview import choose_metric

    with engine.connect() as conn:
        check_experiment(conn, experiment)
        check_metric_key(conn, metric, option=f"metric {metric}")
        exp = conn.execute(select(Experiment).where(Experiment.name == experiment)).mappings().one()
        runs = conn.execute(
            select(Run.id, Run.name, Run.status, Run.host, Run.pid, Run.started_at, Run.ended_at, Run.heartbeat_at,
                   Run.epoch_count, Trial.trial, Trial.number, Trial.execution, Trial.continues, Trial.state,
                   Trial.score, Trial.score_bits, Trial.score_text)
            .outerjoin(Trial, Trial.run_id == Run.id).where(Run.experiment_id == exp["id"], Run.deleted_at.is_(None))
            .order_by(Run.started_at, Run.id)
        ).all()
        ids = [r.id for r in runs]
        params: dict[str, dict[str, Any]] = {i: {} for i in ids}
        for part in _chunks(ids):
            for run_id, key, value in conn.execute(select(Param.run_id, Param.key, Param.value)
                                                   .where(Param.run_id.in_(part))):
                params[str(run_id)][str(key)] = value
        objective = exp["objective"]
        wanted = metric if metric is not None else objective
        chosen, key_id = choose_metric(conn, ids, wanted)
        if metric is None and key_id is None and objective is not None:
            chosen, key_id = choose_metric(conn, ids, None)  # the objective is not a logged key
        bests: dict[str, tuple[float | None, int | None]] = {}
        if key_id is not None:
            high = maximised(logged_key(chosen)) if chosen else False
            value_col = RunMetric.best_max if high else RunMetric.best_min
            epoch_col = RunMetric.best_max_epoch if high else RunMetric.best_min_epoch
            for part in _chunks(ids):
                for run_id, value, epoch in conn.execute(select(RunMetric.run_id, value_col, epoch_col)
                                                         .where(RunMetric.key_id == key_id, RunMetric.run_id.in_(part))):
                    bests[run_id] = (value, epoch)
    high = maximised(logged_key(chosen)) if chosen else False
    tool, direction = exp["tool"], exp["direction"]
    by_score = tool is not None and direction in ("min", "max")
    groups: dict[str, list[Any]] = {}
    for r in runs:
        groups.setdefault(r.trial if (by_score and r.trial is not None) else r.id, []).append(r)
    trials = []
    for key, members in groups.items():
        members.sort(key=lambda r: (r.execution or 0, str(r.started_at)))
        statuses = [effective_status(getattr(r.status, "value", r.status), r.host, r.pid, r.started_at, r.heartbeat_at,
                                     timeout=heartbeat_timeout) for r in members]
        status = next((s for s in _WORST_FIRST if s in statuses), "finished")
        decided = [r for r in members if r.state is not None]
        last = max(decided, key=lambda r: str(r.started_at)) if decided else members[0]
        score = _score(last.score, last.score_bits, last.score_text)
        with_metric = [r for r in members if bests.get(r.id, (None, None))[0] is not None]
        best_run = (max if high else min)(with_metric, key=lambda r: float(bests[r.id][0] or 0.0)) \
            if with_metric else members[0]
        metric_best, best_epoch = bests.get(best_run.id, (None, None))
        starts = [_time(r.started_at) for r in members]
        ends = [_time(r.ended_at) for r in members]
        duration = None if None in ends or "running" in statuses else \
            (max(e for e in ends if e) - min(s for s in starts if s)).total_seconds()
        first = members[0]
        ranked_state = last.state in RANKED_STATES.get(tool, (last.state,)) if last.state else False
        value = (_number(score) if ranked_state else None) if by_score else metric_best
        trials.append(SweepTrial(
            trial=key, number=first.number, name=best_run.name, runs=tuple(r.id for r in members), best_run=best_run.id,
            status=status, state=last.state, score=score,
            objective=None if value is None or math.isnan(value) else value, rank=None,
            params=dict(params[first.id]),
            metric_best=metric_best, best_epoch=best_epoch, epochs=sum(r.epoch_count or 0 for r in members),
            duration_s=duration, continues=first.continues, started_at=min((s for s in starts if s), default=None),
        ))
    descending = direction == "max" if by_score else high
    order = sorted(range(len(trials)), key=lambda i: (trials[i].number is None, trials[i].number or 0,
                                                      str(trials[i].started_at)))
    sign = -1.0 if descending else 1.0
    ranked = sorted((i for i in order if trials[i].objective is not None),
                    key=lambda i: sign * float(trials[i].objective or 0.0))
    out = [trials[i]._replace(rank=n) for n, i in enumerate(ranked, 1)]
    out += [trials[i] for i in order if trials[i].objective is None]
    names = sorted({k for t in out for k in t.params if not k.startswith("tuner/")})
    varying = [k for k in names if tool is not None or len({json.dumps(t.params.get(k)) for t in out}) > 1]
    return SweepInfo(experiment, tool, objective, direction, shown_key(chosen) if chosen else None,
                     "score" if by_score else (shown_key(chosen) if chosen else None), varying, out)


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + 900] for i in range(0, len(ids), 900)]
