"""The experiment page's JSON answers: one experiment's trials, importance, plots and curves.

Each answer draws the infos of ``tracker.store.sweeps``,
``tracker.store.importance`` and ``tracker.store.sweep_plots`` as JSON
(NamedTuples as objects, NaN and ±inf as strings); nothing is computed
here. ``/api/sweep`` (the table, the importance, the axes, the best-so-far
points) and ``/api/sweep/curves`` (every trial's curve of the metric) are
two answers so that each stays small and fast on 1,000 trials. Imports
neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

import orjson

from tracker.errors import InvalidArgumentError, UnknownExperimentError
from tracker.store.importance import importance_info
from tracker.store.store import Store
from tracker.store.sweep_plots import axes_info, curves_info, progress_info
from tracker.store.sweeps import SweepInfo
from tracker.ui.jsonable import dumps, jsonable

__all__ = ["sweep_answer", "curves_answer", "UnknownExperiment"]


class UnknownExperiment(LookupError):
    """No experiment has the name asked (answered 404); the message names the close ones."""


def _info(store: Store, experiment: str | None, metric: str | None) -> SweepInfo:
    if not experiment:
        raise InvalidArgumentError("Give the experiment: ?experiment=NAME (GET /api/experiments lists them).")
    try:
        return store.sweep(experiment, metric=metric)
    except UnknownExperimentError as exc:
        raise UnknownExperiment(str(exc)) from None


def _record(value: Any) -> Any:
    return jsonable(value._asdict())


def sweep_answer(store: Store, experiment: str | None, *, metric: str | None = None, fanova: bool = False) -> bytes:
    """Return ``/api/sweep``'s answer as UTF-8 JSON.

    Members: ``experiment``, ``tool``, ``objective``, ``direction``,
    ``metric``, ``ranked_by``, ``param_names`` (``SweepInfo``); ``trials``
    (one ``SweepTrial`` object per trial, best first); ``importance``
    (``ImportanceInfo``, its ``params`` as objects); ``axes`` (``Axis``
    objects, the params then the value); ``progress`` (``ProgressPoint``
    objects in the tool's order).

    Raises:
        UnknownExperiment: no experiment has the name.
        InvalidArgumentError: no name, ``metric`` is not a logged epoch key,
            or ``fanova`` is asked without optuna and scikit-learn.
    """
    info = _info(store, experiment, metric)
    importance = importance_info(info, fanova=fanova)
    answer = {
        **{k: v for k, v in info._asdict().items() if k != "trials"},
        "trials": [_record(t) for t in info.trials],
        "importance": {**jsonable({k: v for k, v in importance._asdict().items() if k != "params"}),
                       "params": [_record(p) for p in importance.params]},
        "axes": [_record(a) for a in axes_info(info)],
        "progress": [_record(p) for p in progress_info(info)],
    }
    return _encode(answer)


def curves_answer(store: Store, experiment: str | None, *, metric: str | None = None) -> bytes:
    """Return ``/api/sweep/curves``' answer as UTF-8 JSON: ``experiment``, ``metric``, ``log`` and ``curves``
    (one ``TrialCurve`` object per trial, best first: ``trial``, ``run_id``, ``rank``, ``status``,
    ``epochs``, ``values``).

    Raises:
        UnknownExperiment, InvalidArgumentError: see ``sweep_answer``.
    """
    info = _info(store, experiment, metric)
    curves = curves_info(store.engine, info)
    return _encode({"experiment": curves.experiment, "metric": curves.metric, "log": curves.log,
                    "curves": [_record(c) for c in curves.curves]})


def _encode(answer: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(answer)
    except (orjson.JSONEncodeError, TypeError):  # pragma: no cover - a value orjson does not know
        return dumps(jsonable(answer))
