"""The data of the experiment page's plots: param axes, the best-so-far curve, every trial's curve.

Computed once from a ``SweepInfo`` (``tracker.store.sweeps``), as small
typed tuples (as Optuna's ``_get_<plot>_info`` functions do); the dashboard's
JSON API and the offline report only draw them, and the tests assert on
them. Imports neither Keras nor TensorFlow, nor pandas.

* ``axes_info``: one ``Axis`` per searched param, then one for the value
  ranked (``SweepTrial.objective``): numbers on a log scale where all are
  above 0 and the largest is more than 10 times the smallest, anything else
  (strings, booleans, lists) as ordered categories. The parallel
  coordinates and the scatter plots share them.
* ``progress_info``: the trials in the tool's order (trial number, else
  start), each with its value and the best value so far in the direction.
* ``curves_info``: per trial, the epoch values of the sweep's metric in its
  best run (one per execution: the one that stands for the trial), exact,
  with the trial's status (a pruned trial's curve ends where it was pruned).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Engine, column, false, select, table

from tracker.db.bits import decode
from tracker.status import PhaseKind
from tracker.store.bulk import driver_rows
from tracker.store.filters import maximised
from tracker.store.names import logged_key
from tracker.store.sweeps import SweepInfo

__all__ = ["Axis", "ProgressPoint", "TrialCurve", "CurvesInfo", "axes_info", "progress_info", "curves_info",
           "LOG_SPAN", "VALUE_AXIS"]

#: A number axis is logarithmic when its values are all above 0 and span more than this factor.
LOG_SPAN = 10.0
#: The tables read for the curves, as plain columns (``driver_rows``: no per-row type processing).
_KEYS = table("keys", column("id"), column("name"))
_PHASES = table("phases", column("id"), column("run_id"), column("seq"), column("kind"))
_EPOCHS = table("epochs", column("id"), column("phase_id"), column("epoch"), column("superseded"))
_VALUES = table("epoch_values", column("epoch_id"), column("key_id"), column("value"), column("bits"), column("text"))
#: The name of the value axis (the value ranked) among ``axes_info``' axes.
VALUE_AXIS = "value"


class Axis(NamedTuple):
    """One axis of the parallel coordinates and the scatters.

    ``name``: the param's name (``VALUE_AXIS`` for the value ranked);
    ``kind``: ``number`` or ``category``; ``log``: a log scale (numbers only);
    ``low``/``high``: the smallest and largest number (None for categories
    or no value); ``categories``: a category axis's values in axis order
    (JSON text, sorted), else empty; ``trials``: the trials with a value on
    this axis.
    """

    name: str
    kind: str
    log: bool
    low: float | None
    high: float | None
    categories: list[str]
    trials: int


class ProgressPoint(NamedTuple):
    """One trial in the tool's order: ``order`` (0 for the first), its ``value`` (None if it has none) and
    ``best`` (the best value of the trials up to it, None before the first value)."""

    trial: str
    order: int
    value: float | None
    best: float | None


class TrialCurve(NamedTuple):
    """One trial's curve of the metric: ``run_id`` (its best run), ``rank``, ``status``, and the epochs
    and their exact values (a value that is not a number is None here)."""

    trial: str
    run_id: str
    rank: int | None
    status: str
    epochs: list[int]
    values: list[float | None]


class CurvesInfo(NamedTuple):
    """Every trial's curve of ``metric`` (the sweep's), in the sweep's order (best first); ``log``: the
    values are all above 0 and span more than ``LOG_SPAN``, so they are drawn on a log scale."""

    experiment: str
    metric: str | None
    log: bool
    curves: list[TrialCurve]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> str:
    """A category as JSON text, written as the page's ``JSON.stringify`` writes it (compact, unescaped)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _axis(name: str, values: Sequence[Any]) -> Axis:
    present = [v for v in values if v is not None]
    if present and all(_is_number(v) for v in present):
        low, high = float(min(present)), float(max(present))
        return Axis(name, "number", low > 0 and high > LOG_SPAN * low, low, high, [], len(present))
    categories = sorted({_text(v) for v in present})
    return Axis(name, "category", False, None, None, categories, len(present))


def axes_info(info: SweepInfo) -> list[Axis]:
    """One axis per searched param (``info.param_names``), then the value axis (``VALUE_AXIS``)."""
    axes = [_axis(name, [t.params.get(name) for t in info.trials]) for name in info.param_names]
    values = [t.objective for t in info.trials if t.objective is not None and math.isfinite(t.objective)]
    return [*axes, _axis(VALUE_AXIS, values)]


def _higher_is_better(info: SweepInfo) -> bool:
    if info.ranked_by == "score":
        return info.direction == "max"
    return bool(info.ranked_by) and maximised(logged_key(info.ranked_by or ""))


def progress_info(info: SweepInfo) -> list[ProgressPoint]:
    """The trials in the tool's order (number, then start), with the best value so far."""
    order = sorted(info.trials, key=lambda t: (t.number is None, t.number or 0, str(t.started_at), t.trial))
    high = _higher_is_better(info)
    best: float | None = None
    out = []
    for i, t in enumerate(order):
        value = t.objective if t.objective is not None and math.isfinite(t.objective) else None
        if value is not None and (best is None or (value > best if high else value < best)):
            best = value
        out.append(ProgressPoint(t.trial, i, value, best))
    return out


def curves_info(engine: Engine, info: SweepInfo) -> CurvesInfo:
    """Each trial's epoch values of ``info.metric`` in its best run (fit epochs, redone ones left out)."""
    if info.metric is None or not info.trials:
        return CurvesInfo(info.experiment, info.metric, False, [])
    runs = [t.best_run for t in info.trials]
    found: dict[str, tuple[list[int], list[float | None]]] = {r: ([], []) for r in runs}
    with engine.connect() as conn:
        key_id = conn.execute(select(_KEYS.c.id).where(_KEYS.c.name == logged_key(info.metric))).scalar()
        if key_id is not None:
            for i in range(0, len(runs), 900):
                stmt = (
                    select(_PHASES.c.run_id, _EPOCHS.c.epoch, _VALUES.c.value, _VALUES.c.bits, _VALUES.c.text)
                    .select_from(_VALUES.join(_EPOCHS, _EPOCHS.c.id == _VALUES.c.epoch_id)
                                 .join(_PHASES, _PHASES.c.id == _EPOCHS.c.phase_id))
                    .where(_VALUES.c.key_id == key_id, _PHASES.c.run_id.in_(runs[i : i + 900]),
                           _PHASES.c.kind == PhaseKind.FIT.value, _EPOCHS.c.superseded == false())
                    .order_by(_PHASES.c.run_id, _PHASES.c.seq, _EPOCHS.c.epoch)
                )
                for run_id, epoch, value, bits, text in driver_rows(conn, stmt):
                    epochs, values = found[run_id]
                    epochs.append(epoch)
                    if bits is None and text is None:
                        values.append(None if value is None else float(value))
                    else:
                        decoded = decode(value, bits, text)
                        values.append(float(decoded) if isinstance(decoded, (int, float)) else None)
    curves = [TrialCurve(t.trial, t.best_run, t.rank, t.status, *found[t.best_run]) for t in info.trials]
    finite = [v for c in curves for v in c.values if v is not None and math.isfinite(v)]
    log = bool(finite) and min(finite) > 0 and max(finite) > LOG_SPAN * min(finite)
    return CurvesInfo(info.experiment, info.metric, log, curves)
