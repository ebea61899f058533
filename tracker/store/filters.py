"""Filtering and sorting runs in SQL, always with bound parameters.

Built on lightweight table clauses rather than the ORM models, so that
``tracker runs`` never imports ``sqlalchemy.orm`` or maps the models (about
0.1 s of start-up); ``tests/test_store.py`` checks the clauses against the
models. Values come back as stored: statuses and times as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, column, exists, select, table

from tracker.db.types import SafeString, SafeText
from tracker.errors import InvalidArgumentError

if TYPE_CHECKING:
    from tracker.store.base import AnySelect

RUN_STATUSES = ("running", "finished", "failed", "interrupted", "crashed")

RUNS = table(
    "runs",
    *(column(c, SafeString()) if c in ("name", "model_name") else column(c)
      for c in ("id", "name", "status", "started_at", "ended_at", "model_name", "param_count",
                "host", "pid", "phase_count", "epoch_count", "heartbeat_at")),
)
PARAMS = table("params", column("run_id"), column("key", SafeString()), column("value"))
TAGS = table("tags", column("run_id"), column("key", SafeString()), column("value", SafeText()))
RUN_METRICS = table(
    "run_metrics",
    *(column(c) for c in ("run_id", "key_id", "best_min", "best_min_epoch", "best_max", "best_max_epoch",
                          "final", "final_epoch", "epochs")),
)
KEYS = table("keys", column("id"), column("name", SafeString()))
Run = RUNS.c

__all__ = ["SortOrder", "parse_sort", "filter_runs", "maximised", "runs_statement", "check_metric_key", "RUNS", "PARAMS", "TAGS", "RUN_METRICS", "KEYS", "RUN_STATUSES"]

_MAXIMISED = re.compile(r"acc|auc|precision|recall|f1|iou|r2|top_k|dice|map|score", re.IGNORECASE)


def maximised(key: Any) -> bool:
    """True if a larger value of ``key`` is better (accuracy, AUC, recall...).

    Anything that is not a string (a missing monitor read as NaN) is minimised.
    """
    return isinstance(key, str) and bool(_MAXIMISED.search(key.removeprefix("val_")))


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
        descending = mode == "max" if mode else maximised(key)
        return SortOrder(key=key, kind=kind, descending=descending)
    raise InvalidArgumentError(
        f"Unknown sort {sort!r}; use started_at, -started_at, name, best:KEY or final:KEY "
        "(optionally :min or :max)."
    )


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def filter_runs(
    stmt: AnySelect,
    *,
    status: str | Sequence[str] | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    run_ids: Sequence[str] | None = None,
) -> AnySelect:
    """Add WHERE clauses for the ``Store.runs`` filters.

    Raises:
        ValueError: a status is not a known run status.
    """
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
            stmt = stmt.where(Run.name.like(_like(name), escape="\\"))
        else:
            stmt = stmt.where(Run.name == name)
    tag, param = TAGS.c, PARAMS.c
    for key, value in (tags or {}).items():
        stmt = stmt.where(exists(select(tag.run_id).where(and_(tag.run_id == Run.id, tag.key == key, tag.value == value))))
    for key, value in (params or {}).items():
        text = json.dumps(value, ensure_ascii=False, default=repr)  # as tracker.db.tables.JSONText writes it
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
) -> tuple[AnySelect, SortOrder]:
    """The SELECT behind ``Store.runs`` (see there), shared with the CLI's fast path."""
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
    )
    stmt = filter_runs(stmt, status=status, name=name, tags=tags, params=params, run_ids=run_ids)
    order = parse_sort(sort)
    if order.key is None:
        stmt = stmt.order_by(*order.columns)
    else:
        metric = RUN_METRICS.alias("sort_metric")
        value = metric.c[order.value_column]
        epoch = metric.c[order.value_column + "_epoch"]
        key_id = select(KEYS.c.id).where(KEYS.c.name == order.key).scalar_subquery()
        stmt = (
            stmt.add_columns(value.label(order.key), epoch.label(f"{order.key}_epoch"))
            .outerjoin_from(RUNS, metric, and_(metric.c.run_id == Run.id, metric.c.key_id == key_id))
            .order_by(value.is_(None), value.desc() if order.descending else value, Run.started_at)
        )
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt, order


def check_metric_key(conn: Any, key: str | None, *, option: str) -> None:
    """Refuse an epoch key that no run logged as a number, naming the keys that are known.

    Args:
        conn: A connection to the database.
        key: The key asked for (``val_loss``); None passes.
        option: How the user gave it, for the message (``--sort best:val_los``).

    Raises:
        InvalidArgumentError: no run has the key (when any run has keys at all).
    """
    if key is None:
        return
    known = sorted(n for (n,) in conn.execute(
        select(KEYS.c.name).where(KEYS.c.id.in_(select(RUN_METRICS.c.key_id).distinct()))
    ))
    if not known or key in known:
        return
    import difflib

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(known[:40]) + (f" and {len(known) - 40} more" if len(known) > 40 else "")
    raise InvalidArgumentError(f"No run logged {key!r} ({option}); the epoch keys are: {shown}.{hint}")
