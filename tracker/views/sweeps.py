"""``tracker sweep``'s rows: an experiment's trials and its params' importance, exact and for people.

Draws ``tracker.store.sweeps.SweepInfo`` and
``tracker.store.importance.ImportanceInfo``; computes nothing of its own.
Exact rows (``sweep_rows``, ``importance_rows``) go to CSV and JSON; the
table rows (``sweep_table``) leave out what a person need not read. Imports
neither pandas nor Keras.
"""

from __future__ import annotations

from typing import Any

from tracker.store.importance import ImportanceInfo
from tracker.store.sweeps import SweepInfo
from tracker.views.tables import iso_utc, short_ids, table_view

__all__ = ["SWEEP_COLUMNS", "IMPORTANCE_COLUMNS", "sweep_rows", "sweep_table", "importance_rows", "sweep_title",
           "importance_title"]

#: The columns of ``sweep_rows``; ``param:NAME`` columns go where ``params`` stands.
SWEEP_COLUMNS = ["trial", "number", "rank", "name", "status", "state", "score", "params", "metric", "best",
                 "best_epoch", "epochs", "duration_s", "started_at", "run_id", "runs", "continues"]
#: The columns of ``importance_rows``.
IMPORTANCE_COLUMNS = ["param", "kind", "trials", "distinct", "spearman", "anova", "fanova"]

_TOOLS = {"keras_tuner": "KerasTuner", "optuna": "Optuna", "ray_tune": "Ray Tune"}


def sweep_rows(info: SweepInfo) -> tuple[list[str], list[list[Any]]]:
    """One row per trial, best first (``SWEEP_COLUMNS``), exact: times as ISO text, ``runs`` a list.

    ``trial``: the tool's trial id (a run id for runs no tool ran);
    ``score``: the tool's own; ``metric``, ``best``, ``best_epoch``: the
    best epoch value of the metric in the trial's best run, which is
    ``run_id``; ``runs``: every run of the trial (one per execution).
    """
    names = [f"param:{k}" for k in info.param_names]
    columns = [c for c in SWEEP_COLUMNS if c != "params"]
    at = SWEEP_COLUMNS.index("params")
    columns[at:at] = names
    rows = []
    for t in info.trials:
        row: list[Any] = [t.trial, t.number, t.rank, t.name, t.status, t.state, t.score]
        row += [t.params.get(k) for k in info.param_names]
        row += [info.metric, t.metric_best, t.best_epoch, t.epochs, t.duration_s, iso_utc(t.started_at), t.best_run,
                list(t.runs), t.continues]
        rows.append(row)
    return columns, rows


def sweep_table(info: SweepInfo) -> tuple[list[str], list[list[Any]]]:
    """``sweep_rows`` for people: trial, rank, name, status, the params, score, ``best:METRIC``,
    ``best_epoch``, epochs, duration, a short ``run_id``; empty columns left out."""
    columns, rows = sweep_rows(info)
    at = {c: i for i, c in enumerate(columns)}
    prefixes = short_ids([r[at["run_id"]] for r in rows])
    for row in rows:
        row[at["run_id"]] = prefixes.get(row[at["run_id"]], row[at["run_id"]])
    if info.tool is None:  # a trial is a run: its id is the run's
        for row in rows:
            row[at["trial"]] = row[at["run_id"]]
    shown = ["trial", "rank", "name", "status", *(f"param:{k}" for k in info.param_names), "score", "best",
             "best_epoch", "epochs", "duration_s"]
    if info.tool is not None:
        shown.append("run_id")
    keep = [at[c] for c in shown]
    out_columns = [columns[i] for i in keep]
    if info.metric:
        out_columns[out_columns.index("best")] = f"best:{info.metric}"
    return table_view(out_columns, [[r[i] for i in keep] for r in rows], short=False)


def importance_rows(imp: ImportanceInfo) -> tuple[list[str], list[list[Any]]]:
    """One row per param, most important first (``IMPORTANCE_COLUMNS``); ``fanova`` left out unless computed."""
    columns = [c for c in IMPORTANCE_COLUMNS if imp.fanova or c != "fanova"]
    rows = [[getattr(p, c) for c in columns] for p in imp.params]
    return columns, rows


def sweep_title(info: SweepInfo) -> str:
    """One line saying what the table ranks: ``kt-dense: 3 trials of KerasTuner, best first by its score of
    val_loss (min).``"""
    count = len(info.trials)
    if info.ranked_by == "score":
        tool = _TOOLS.get(info.tool or "", info.tool)
        what = "the study's value" if info.tool == "optuna" else "the oracle's score" if info.tool == "keras_tuner" \
            else "the last reported value" if info.tool == "ray_tune" else "its score"
        what += f" of {info.objective}" if info.objective else ""
        return f"{info.experiment}: {count:,} trials of {tool}, best first by {what} ({info.direction})."
    if info.ranked_by is None:
        return f"{info.experiment}: {count:,} runs; no metric ranks them (none logged an epoch value)."
    kind = f"trials of {_TOOLS.get(info.tool or '', info.tool)}" if info.tool else "runs"
    return f"{info.experiment}: {count:,} {kind}, best first by the best epoch value of {info.ranked_by}."


def importance_title(imp: ImportanceInfo) -> str:
    """The line above the importance table: over which trials, of what."""
    if imp.trials == 0:
        return "No trial has a value yet: nothing to say how much each param matters."
    what = "score" if imp.value == "score" else f"best {imp.value}"
    return (f"How much each param matters to the {what}, over the {imp.trials:,} trials with one: spearman "
            "(rank correlation), anova (share of variance explained, ε²)" + (", fanova (Optuna's fANOVA)."
                                                                             if imp.fanova else "."))
