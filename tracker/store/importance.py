"""How much each param of a sweep matters: the data of every importance view.

``importance_info`` computes it from a ``SweepInfo`` (``tracker.store.sweeps``),
over the trials that have a value (``SweepTrial.objective``: the tool's score,
else the best epoch value of the metric; failed, pruned and running trials
have none). Per param:

* ``spearman``: Spearman's rank correlation of the param with that value
  (ties get their average rank), for params with ordered values (numbers,
  booleans as 0 and 1). Its sign is the value's: with a ``min`` objective, a
  negative correlation means larger values of the param did better.
* ``anova``: the share of the value's variance the param explains on its own
  (ε², one-way ANOVA's epsilon-squared, which corrects for the number of
  groups, floored at 0). Numbers are cut into at most 10 groups of equal
  counts (never splitting equal values); other values are their own groups.
  It sees non-monotone effects the rank correlation misses. It is a raw
  first-order effect: a param searched together with another it depends on
  shares the credit.
* ``fanova``: only when asked, Optuna's ``FanovaImportanceEvaluator``
  (fANOVA, Hutter et al. 2014: a random forest's variance decomposition,
  seeded), over the observed range of each param. It needs ``optuna`` and
  ``scikit-learn`` (the ``optuna`` and ``test`` extras), and takes seconds
  on 1,000 trials, so it is never computed unless asked.

Pure Python (no NumPy, pandas or a tuner unless fANOVA is asked), so
``tracker sweep`` stays fast. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from tracker.errors import InvalidArgumentError
from tracker.store.sweeps import SweepInfo

__all__ = ["ParamImportance", "ImportanceInfo", "importance_info", "spearman", "epsilon_squared", "MAX_GROUPS"]

#: Numbers are cut into at most this many groups of equal counts for ``anova``.
MAX_GROUPS = 10


class ParamImportance(NamedTuple):
    """One param of a sweep: how much it matters (see the module docstring).

    ``param``: its name; ``kind``: ``number`` (ints, floats, booleans) or
    ``category`` (anything else; a param with both is a category);
    ``trials``: the trials with a value that set it; ``distinct``: its
    distinct values among them; ``spearman``, ``anova``, ``fanova``: None
    where not defined (fewer than 3 trials, a constant param or value, a
    category's rank correlation) or not asked (``fanova``).
    """

    param: str
    kind: str
    trials: int
    distinct: int
    spearman: float | None
    anova: float | None
    fanova: float | None


class ImportanceInfo(NamedTuple):
    """The params of one experiment, most important first.

    ``experiment``; ``value``: what the values are (``score``, the tool's,
    or the metric ranked); ``direction``: ``min`` or ``max``; ``trials``:
    the trials with a value; ``fanova``: True if fANOVA was computed;
    ``params``: by ``fanova`` (if computed), else ``anova``, then the size
    of ``spearman``, then name.
    """

    experiment: str
    value: str | None
    direction: str | None
    trials: int
    fanova: bool
    params: list[ParamImportance]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and (not isinstance(value, float) or math.isfinite(value))


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation of ``x`` and ``y`` (Pearson's on their average ranks).

    Returns:
        A float in [-1, 1], or None for fewer than 3 pairs or a constant side.
    """
    if len(x) != len(y) or len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    mean = (len(x) + 1) / 2
    sxy = sum((a - mean) * (b - mean) for a, b in zip(rx, ry))
    sxx = sum((a - mean) ** 2 for a in rx)
    syy = sum((b - mean) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def _number_groups(values: Sequence[float]) -> list[int]:
    """Each value's group: at most ``MAX_GROUPS`` groups of about equal counts, equal values together."""
    n = len(values)
    distinct = len(set(values))
    groups = min(distinct, MAX_GROUPS, max(2, n // 3))
    order = sorted(range(n), key=lambda i: values[i])
    out = [0] * n
    first = 0
    for position, i in enumerate(order):
        if position == 0 or values[i] != values[order[position - 1]]:
            first = position  # equal values take the group of the first of them
        out[i] = first * groups // n
    return out


def epsilon_squared(groups: Sequence[Any], y: Sequence[float]) -> float | None:
    """One-way ANOVA's ε² of ``y`` by ``groups``: (SS_between - (k-1)·MS_within) / SS_total, floored at 0.

    Returns:
        A float in [0, 1], or None with fewer than 3 values, one group, no
        degree of freedom within the groups, or a constant ``y``.
    """
    n = len(y)
    members: dict[Any, list[float]] = {}
    for g, v in zip(groups, y):
        members.setdefault(g, []).append(v)
    k = len(members)
    if n < 3 or k < 2 or n - k < 1:
        return None
    mean = sum(y) / n
    total = sum((v - mean) ** 2 for v in y)
    if total == 0:
        return None
    between = sum(len(vs) * (sum(vs) / len(vs) - mean) ** 2 for vs in members.values())
    within = total - between
    return max(0.0, min(1.0, (between - (k - 1) * within / (n - k)) / total))


def _fanova(names: list[str], rows: list[dict[str, Any]], y: list[float]) -> dict[str, float]:
    """Optuna's fANOVA importances of ``names`` over ``rows`` (each has every name), seeded."""
    try:
        import optuna
        import sklearn  # noqa: F401 - FanovaImportanceEvaluator's random forest
    except ImportError as exc:
        raise InvalidArgumentError(
            f"fANOVA needs optuna and scikit-learn ({exc.name} is not installed): "
            "pip install 'keras-run-tracker[optuna]' scikit-learn."
        ) from None
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, Any] = {}
    for name in names:
        values = [r[name] for r in rows]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            distributions[name] = IntDistribution(min(values), max(values))
        elif all(_is_number(v) and not isinstance(v, bool) for v in values):
            distributions[name] = FloatDistribution(float(min(values)), float(max(values)))
        else:
            distributions[name] = CategoricalDistribution(sorted({json.dumps(v, sort_keys=True) for v in values}))
    study = optuna.create_study()
    study.add_trials([
        optuna.trial.create_trial(
            params={n: (float(r[n]) if isinstance(distributions[n], FloatDistribution) else
                        r[n] if isinstance(distributions[n], IntDistribution) else json.dumps(r[n], sort_keys=True))
                    for n in names},
            distributions=distributions, value=v)
        for r, v in zip(rows, y)
    ])
    found = optuna.importance.FanovaImportanceEvaluator(seed=0).evaluate(study, params=names)
    return {k: float(v) for k, v in found.items()}


def importance_info(info: SweepInfo, *, fanova: bool = False) -> ImportanceInfo:
    """How much each of ``info.param_names`` matters to the trials' value (see the module docstring).

    Args:
        info: An experiment's trials (``Store.sweep``).
        fanova: Also compute Optuna's fANOVA importance. Default False.

    Raises:
        InvalidArgumentError: ``fanova`` is asked and optuna or scikit-learn is not installed.
    """
    valued = [t for t in info.trials if t.objective is not None and math.isfinite(t.objective)]
    y_all = [float(t.objective) for t in valued if t.objective is not None]
    out: list[ParamImportance] = []
    for name in info.param_names:
        pairs = [(t.params[name], y) for t, y in zip(valued, y_all) if t.params.get(name) is not None]
        values = [p for p, _ in pairs]
        y = [v for _, v in pairs]
        numbers = bool(values) and all(_is_number(v) for v in values)
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if numbers:
            x = [float(v) for v in values]
            rho, eps = spearman(x, y), epsilon_squared(_number_groups(x), y)
        else:
            rho, eps = None, epsilon_squared(texts, y)
        out.append(ParamImportance(name, "number" if numbers else "category", len(pairs), len(set(texts)),
                                   rho, eps, None))
    if fanova:
        full = [p.param for p in out if p.trials == len(valued) and p.distinct > 1]
        rows = [t.params for t in valued]
        scores = _fanova(full, rows, y_all) if full and len(valued) >= 2 else {}
        out = [ParamImportance(*p[:-1], scores.get(p.param, 0.0 if p.trials == len(valued) and p.distinct == 1 else None))
               for p in out]

    def order(p: ParamImportance) -> tuple[float, float, str]:
        main = p.fanova if fanova else p.anova
        return (-(main if main is not None else -1.0), -abs(p.spearman) if p.spearman is not None else 0.0, p.param)

    return ImportanceInfo(info.experiment, info.ranked_by, info.direction if info.ranked_by == "score" else
                          _metric_direction(info.ranked_by), len(valued), fanova, sorted(out, key=order))


def _metric_direction(metric: str | None) -> str | None:
    from tracker.store.filters import maximised
    from tracker.store.names import logged_key

    return None if metric is None else ("max" if maximised(logged_key(metric)) else "min")
