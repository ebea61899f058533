"""The read side's SQL building blocks: lightweight table handles, the name glob, which keys are maximised.

Table clauses rather than the ORM models, so that ``tracker runs`` never
imports ``sqlalchemy.orm`` or maps the models (about 0.1 s of start-up);
``tests/test_store.py`` checks the clauses against the models. Shared by
``tracker.store.filters`` (the listing's filters and sorting) and
``tracker.store.where_sql`` (the filter language).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Boolean, ColumnElement, column, table
from sqlalchemy.ext.compiler import compiles

from tracker.db.types import SafeString, SafeText, valid_text

__all__ = ["RUN_STATUSES", "RUNS", "EXPERIMENTS", "PARAMS", "TAGS", "RUN_METRICS", "KEYS", "maximised", "GlobMatch"]

RUN_STATUSES = ("running", "finished", "failed", "interrupted", "pruned", "crashed")

RUNS = table(
    "runs",
    *(column(c, SafeString()) if c in ("name", "model_name") else column(c)
      for c in ("id", "name", "status", "started_at", "ended_at", "model_name", "param_count",
                "host", "pid", "phase_count", "epoch_count", "heartbeat_at", "experiment_id", "deleted_at")),
)
EXPERIMENTS = table("experiments", *(column(c, SafeString()) if c in ("name", "objective") else column(c)
                                     for c in ("id", "name", "tool", "objective", "direction", "created_at")))
PARAMS = table("params", column("run_id"), column("key", SafeString()), column("value"))
TAGS = table("tags", column("run_id"), column("key", SafeString()), column("value", SafeText()))
RUN_METRICS = table(
    "run_metrics",
    *(column(c) for c in ("run_id", "key_id", "best_min", "best_min_epoch", "best_max", "best_max_epoch",
                          "final", "final_epoch", "epochs")),
)
KEYS = table("keys", column("id"), column("name", SafeString()))

_MAXIMISED = re.compile(r"acc|auc|precision|recall|f1|iou|r2|top_k|dice|map|score", re.IGNORECASE)


def maximised(key: Any) -> bool:
    """True if a larger value of ``key`` is better (accuracy, AUC, recall...).

    Anything that is not a string (a missing monitor read as NaN) is minimised.
    """
    return isinstance(key, str) and bool(_MAXIMISED.search(key.removeprefix("val_")))


def _like(pattern: str) -> str:
    escaped = valid_text(pattern).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class GlobMatch(ColumnElement[bool]):
    """A run name matching a ``*``/``?`` pattern, case-sensitively on every database.

    PostgreSQL's ``LIKE`` is case-sensitive but SQLite's is not, so SQLite
    uses ``GLOB`` (whose ``*`` and ``?`` are ours; ``[`` is escaped). Every
    other character, ``_`` and ``%`` included, matches itself.
    """

    inherit_cache = False
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], pattern: str) -> None:
        self.column, self.pattern = column, pattern


@compiles(GlobMatch)
def _name_like(element: GlobMatch, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.like(_like(element.pattern), escape="\\"), **kw))


@compiles(GlobMatch, "sqlite")
def _name_glob(element: GlobMatch, compiler: Any, **kw: Any) -> str:
    pattern = element.pattern.replace("[", "[[]")
    return str(compiler.process(element.column.op("GLOB", is_comparison=True)(pattern), **kw))
