"""Filtering and sorting runs in SQL, always with bound parameters.

Built on lightweight table clauses rather than the ORM models, so that
``tracker runs`` never imports ``sqlalchemy.orm`` or maps the models (about
0.1 s of start-up); ``tests/test_store.py`` checks the clauses against the
models. Values come back as stored: statuses and times as text.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, exists, select

from tracker.db.types import JSONText
from tracker.errors import InvalidArgumentError, UnknownExperimentError
from tracker.store.clauses import (
    EXPERIMENTS,
    KEYS,
    PARAMS,
    RUN_METRICS,
    RUN_STATUSES,
    RUNS,
    TAGS,
    GlobMatch,
    maximised,
)
from tracker.store.names import asked_key, logged_key, shown_key

if TYPE_CHECKING:
    from tracker.store.base import AnySelect

Run = RUNS.c

__all__ = ["SortOrder", "parse_sort", "filter_runs", "maximised", "runs_statement", "check_metric_key",
           "check_experiment", "in_view", "GlobMatch", "RUNS", "PARAMS", "TAGS", "RUN_METRICS", "KEYS", "EXPERIMENTS",
           "RUN_STATUSES"]

@dataclass
class SortOrder:
    """A parsed ``sort`` argument."""

    key: str | None = None
    kind: str | None = None  # "best" or "final"
    descending: bool = False
    columns: list[ColumnElement[Any]] = field(default_factory=list)

    @property
    def value_column(self) -> str:
        if self.kind == "final":
            return "final"
        return "best_max" if self.descending else "best_min"


def parse_sort(sort: str | None) -> SortOrder:
    """Parse ``started_at``, ``-started_at``, ``name``, ``best:KEY[:min|max]``, ``final:KEY[:min|max]``.

    Raises:
        ValueError: the sort is not one of these.
    """
    if sort in (None, "", "started_at"):
        return SortOrder(columns=[Run.started_at, Run.id])
    if sort == "-started_at":
        return SortOrder(columns=[Run.started_at.desc(), Run.id.desc()])
    if sort == "name":
        return SortOrder(columns=[Run.name, Run.started_at])
    kind, _, rest = (sort or "").partition(":")
    if kind in ("best", "final") and rest:
        key, mode = rest, None
        if rest.endswith((":min", ":max")):
            key, mode = rest[:-4], rest[-3:]
        key = asked_key(key)  # by its shown name (tracker.store.names)
        descending = mode == "max" if mode else maximised(logged_key(key))
        return SortOrder(key=key, kind=kind, descending=descending)
    raise InvalidArgumentError(
        f"Unknown sort {sort!r}; use started_at, -started_at, name, best:KEY or final:KEY "
        "(optionally :min or :max)."
    )


def in_view(deleted: bool = False) -> Any:
    """The ids of the runs in view (``deleted=True``: of the runs in the trash), as a subquery.

    For aggregates over runs that do not go through ``filter_runs`` (the
    keys ``run_metrics`` knows, the stoppers' monitors): ``x.run_id.in_(in_view())``.
    """
    return select(Run.id).where(Run.deleted_at.is_not(None) if deleted else Run.deleted_at.is_(None))


def filter_runs(
    stmt: AnySelect,
    *,
    status: str | Sequence[str] | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    run_ids: Sequence[str] | None = None,
    experiment: str | None = None,
    deleted: bool = False,
    where: str | None = None,
) -> AnySelect:
    """Add WHERE clauses for the ``Store.runs`` filters.

    Runs in the trash (``tracker delete``) are always left out, unless
    ``deleted`` is True, which keeps only them: every listing built on this
    (the runs, the overview, the dashboard, export) inherits it. ``where`` is
    a filter expression (``tracker.store.where``); one that names ``status``
    adds the columns ``where_if_running`` and ``where_if_crashed`` (see
    ``tracker.store.where_sql.keep_decided``).

    Raises:
        ValueError: a status is not a known run status, or ``where`` cannot be read.
    """
    stmt = stmt.where(Run.deleted_at.is_not(None) if deleted else Run.deleted_at.is_(None))
    if where is not None:
        from tracker.store.where_sql import compile_where

        compiled = compile_where(where)
        stmt = stmt.where(compiled.clause)
        if compiled.decided:
            stmt = stmt.add_columns(*compiled.decided)
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        unknown = [s for s in wanted if s not in RUN_STATUSES]
        if unknown:
            raise InvalidArgumentError(f"Unknown status {unknown[0]!r}; use one of {', '.join(sorted(RUN_STATUSES))}.")
        stored = set(wanted)
        if stored & {"running", "crashed"}:
            # Whether a running run has crashed is decided after reading
            # (tracker.store.liveness), so both are fetched and filtered then.
            stored |= {"running", "crashed"}
        stmt = stmt.where(Run.status.in_(sorted(stored)))
    if run_ids is not None:
        stmt = stmt.where(Run.id.in_(list(run_ids)))
    if name is not None:
        if "*" in name or "?" in name:
            stmt = stmt.where(GlobMatch(Run.name, name))
        else:
            stmt = stmt.where(Run.name == name)
    if experiment is not None:
        stmt = stmt.where(Run.experiment_id == select(EXPERIMENTS.c.id).where(EXPERIMENTS.c.name == experiment)
                          .scalar_subquery())
    tag, param = TAGS.c, PARAMS.c
    for key, value in (tags or {}).items():
        stmt = stmt.where(exists(select(tag.run_id).where(and_(tag.run_id == Run.id, tag.key == key, tag.value == value))))
    for key, value in (params or {}).items():
        text = JSONText().process_bind_param(value, None)  # as the params table stores it
        stmt = stmt.where(
            exists(select(param.run_id).where(and_(param.run_id == Run.id, param.key == key, param.value == text)))
        )
    return stmt


def runs_statement(
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
) -> tuple[AnySelect, SortOrder]:
    """The SELECT behind ``Store.runs`` (see there), shared with the CLI's fast path.

    With ``deleted``, the runs in the trash instead, with a ``deleted_at`` column.

    Raises:
        InvalidArgumentError: ``limit`` is not a positive integer, or a filter or the sort is not understood.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1):
        raise InvalidArgumentError(
            f"The limit must be a positive number of runs, not {limit!r}; leave it out to list every run."
        )
    stmt: AnySelect = select(
        Run.id.label("run_id"),
        Run.name,
        Run.status,
        Run.started_at,
        Run.ended_at,
        Run.model_name,
        Run.param_count,
        Run.host,
        Run.pid,
        Run.phase_count.label("phases"),
        Run.epoch_count.label("epochs"),
        Run.heartbeat_at,
        select(EXPERIMENTS.c.name).where(EXPERIMENTS.c.id == Run.experiment_id).scalar_subquery().label("experiment"),
    )
    if deleted:
        stmt = stmt.add_columns(Run.deleted_at)
    stmt = filter_runs(stmt, status=status, name=name, tags=tags, params=params, run_ids=run_ids, experiment=experiment,
                       deleted=deleted, where=where)
    order = parse_sort(sort)
    if order.key is None:
        stmt = stmt.order_by(*order.columns)
    else:
        metric = RUN_METRICS.alias("sort_metric")
        value = metric.c[order.value_column]
        epoch = metric.c[order.value_column + "_epoch"]
        key_id = select(KEYS.c.id).where(KEYS.c.name == logged_key(order.key)).scalar_subquery()
        stmt = (
            stmt.add_columns(value.label(order.key), epoch.label(f"{order.key}_epoch"))
            .outerjoin_from(RUNS, metric, and_(metric.c.run_id == Run.id, metric.c.key_id == key_id))
            .order_by(value.is_(None), value.desc() if order.descending else value, Run.started_at)
        )
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt, order


def check_metric_key(conn: Any, key: str | None, *, option: str, deleted: bool = False) -> None:
    """Refuse an epoch key that no run logged as a number, naming the keys that are known.

    Args:
        conn: A connection to the database.
        key: The key asked for (``val_loss``); None passes.
        option: How the user gave it, for the message (``--sort best:val_los``).
        deleted: Look at the runs in the trash instead of the runs in view.

    Raises:
        InvalidArgumentError: no run has the key (when any run has keys at all).
    """
    if key is None:
        return
    key = asked_key(key)
    logged = conn.execute(select(KEYS.c.id).where(KEYS.c.name == logged_key(key), exists(
        select(RUN_METRICS.c.key_id).where(RUN_METRICS.c.key_id == KEYS.c.id,
                                            RUN_METRICS.c.run_id.in_(in_view(deleted)))))).first()
    if logged is not None:  # the common case, without listing every key of every run
        return
    known = sorted(shown_key(n) for (n,) in conn.execute(
        select(KEYS.c.name).where(KEYS.c.id.in_(
            select(RUN_METRICS.c.key_id).where(RUN_METRICS.c.run_id.in_(in_view(deleted))).distinct()))
    ))
    if not known or key in known:
        return
    import difflib

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(known[:40]) + (f" and {len(known) - 40} more" if len(known) > 40 else "")
    raise InvalidArgumentError(f"No run logged {key!r} ({option}); the epoch keys are: {shown}.{hint}")


def check_experiment(conn: Any, name: str | None) -> None:
    """Refuse an experiment name no run is in, naming the close ones.

    Raises:
        UnknownExperimentError: no experiment has the name (None passes).
    """
    if name is None:
        return
    if not isinstance(name, str):
        raise UnknownExperimentError(f"An experiment is named by a string, not {name!r}.")
    known = sorted(n for (n,) in conn.execute(select(EXPERIMENTS.c.name)))
    if name in known:
        return
    import difflib

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    if not known:
        raise UnknownExperimentError(f"No experiment is named {name!r}: this database has no experiments yet.")
    raise UnknownExperimentError(f"No experiment is named {name!r}; 'tracker experiments' lists them.{hint}")
