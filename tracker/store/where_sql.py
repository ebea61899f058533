"""The filter language (``tracker.store.where``) compiled to SQL, with bound parameters only.

Every value of an expression reaches the database as a bound parameter;
the SQL text holds only the operators of the expression, column names and
constants of this module. Comparisons are two-valued (a field a run lacks
compares false, never NULL), so ``not`` means what it says.

* ``best.KEY``/``final.KEY`` read ``run_metrics`` (best: ``best_min`` or
  ``best_max`` by the key's direction, ``tracker.store.filters.maximised``).
* ``params.NAME``: params are JSON text. A number compares numerically with
  the params that hold a number (NaN never matches; on PostgreSQL as
  ``numeric``, exactly; on SQLite as a float); text compares with the params
  that hold text (``=``/``!=`` exactly, ``<``... by code point); ``~``
  matches text params by their text and other params by their JSON text. A
  text holding a NUL character or a lone surrogate, which PostgreSQL text
  cannot hold, is ordered and matched by its JSON text on both databases
  (``a\\u0000b``).
* ``status``: whether a ``running`` run has crashed is decided after
  reading (``tracker.store.liveness``). An expression that names ``status``
  is compiled three times: with the stored status, and with ``running`` and
  ``crashed`` for the runs stored as running; the last two are selected as
  the columns ``where_if_running`` and ``where_if_crashed``, and
  ``keep_decided`` keeps the rows whose decided status passes.
* Strings order by code point on both databases (``COLLATE "C"`` on
  PostgreSQL).

Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean, DateTime, Float, Numeric, String, and_, bindparam, case, exists, false, not_, or_, select, true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement

from tracker.db.types import JSONText
from tracker.store.clauses import EXPERIMENTS, KEYS, PARAMS, RUN_METRICS, RUNS, TAGS, GlobMatch, maximised
from tracker.store.names import asked_key, logged_key, shown_key
from tracker.store.where import And, Comparison, Node, Not, Or, WhereError, parse, statuses_in

__all__ = ["compile_where", "Compiled", "keep_decided", "check_names", "DECIDED"]

#: The columns a status-naming filter adds to the listing (see ``keep_decided``).
DECIDED = ("where_if_running", "where_if_crashed")

Run = RUNS.c


class _Text(ColumnElement[str]):
    """A param's JSON text decoded when it is a JSON string, else its JSON text (for ``~``)."""

    inherit_cache = False
    type = String()

    def __init__(self, value: Any, strings_only: bool) -> None:
        self.value, self.strings_only = value, strings_only


@compiles(_Text, "sqlite")
def _text_sqlite(element: _Text, compiler: Any, **kw: Any) -> str:
    v = compiler.process(element.value, **kw)
    other = "NULL" if element.strings_only else v
    odd = f"({v} GLOB '*\\u0000*' OR {v} GLOB '*\\u[dD][89abcdefABCDEF]*')"
    return (f"(CASE WHEN substr({v}, 1, 1) = '\"' THEN (CASE WHEN {odd} THEN substr({v}, 2, length({v}) - 2) "
            f"ELSE json_extract({v}, '$') END) ELSE {other} END)")


@compiles(_Text)
def _text_postgresql(element: _Text, compiler: Any, **kw: Any) -> str:
    v = compiler.process(element.value, **kw)
    other = "NULL" if element.strings_only else v
    # NUL and lone surrogates cannot be PostgreSQL text: such a string compares as its JSON text (as on SQLite).
    odd = f"({v} ~ '\\\\u(0000|[dD][89a-fA-F])')"
    return (f"(CASE WHEN {v} LIKE '\"%%' THEN (CASE WHEN {odd} THEN substr({v}, 2, length({v}) - 2) "
            f"ELSE ({v})::jsonb #>> '{{}}' END) ELSE {other} END)")


class _Number(ColumnElement[Any]):
    """A param's JSON text as a number when it holds one (NaN excluded), else NULL."""

    inherit_cache = False
    type = Float()

    def __init__(self, value: Any) -> None:
        self.value = value


@compiles(_Number, "sqlite")
def _number_sqlite(element: _Number, compiler: Any, **kw: Any) -> str:
    v = compiler.process(element.value, **kw)
    return (f"(CASE WHEN ({v} GLOB '[0-9]*' OR {v} GLOB '-[0-9]*') AND NOT {v} GLOB '*[^0-9eE.+-]*' "
            f"THEN CAST({v} AS REAL) WHEN {v} = 'Infinity' THEN 9e999 WHEN {v} = '-Infinity' THEN -9e999 END)")


@compiles(_Number)
def _number_postgresql(element: _Number, compiler: Any, **kw: Any) -> str:
    v = compiler.process(element.value, **kw)
    return f"(CASE WHEN {v} ~ '^-?[0-9]' OR {v} IN ('Infinity', '-Infinity') THEN CAST({v} AS numeric) END)"


class _Ordered(ColumnElement[bool]):
    """``left op right`` on text, by code point on every database."""

    inherit_cache = False
    type = Boolean()

    def __init__(self, left: Any, op: str, right: Any) -> None:
        self.left, self.right = left, right
        self.operator_text = op


@compiles(_Ordered)
def _ordered(element: _Ordered, compiler: Any, **kw: Any) -> str:
    left, right = compiler.process(element.left, **kw), compiler.process(element.right, **kw)
    return f"({left} {element.operator_text} {right})"


@compiles(_Ordered, "postgresql")
def _ordered_postgresql(element: _Ordered, compiler: Any, **kw: Any) -> str:
    left, right = compiler.process(element.left, **kw), compiler.process(element.right, **kw)
    return f"(({left}) COLLATE \"C\" {element.operator_text} ({right}) COLLATE \"C\")"


class _Seconds(ColumnElement[Any]):
    """A run's duration in seconds (NULL while it has not ended)."""

    inherit_cache = False
    type = Float()


@compiles(_Seconds, "sqlite")
def _seconds_sqlite(element: _Seconds, compiler: Any, **kw: Any) -> str:
    return "((julianday(runs.ended_at) - julianday(runs.started_at)) * 86400.0)"


@compiles(_Seconds)
def _seconds_postgresql(element: _Seconds, compiler: Any, **kw: Any) -> str:
    return "EXTRACT(EPOCH FROM (runs.ended_at - runs.started_at))"


class _ByDialect(ColumnElement[Any]):
    """A bound value given differently to each database: ``sqlite`` there, ``other`` elsewhere.

    Bound values may reach the driver without their type's processing
    (``tracker.store.bulk.driver_rows``), so each database gets a value its
    driver takes as it is: a float and the stored text of a time on SQLite,
    an exact ``Decimal`` and a ``datetime`` on PostgreSQL.
    """

    inherit_cache = False

    def __init__(self, sqlite: Any, other: Any, kind: Any) -> None:
        self.sqlite, self.other, self.type = sqlite, other, kind


@compiles(_ByDialect, "sqlite")
def _by_dialect_sqlite(element: _ByDialect, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(bindparam(None, element.sqlite, unique=True), **kw))


@compiles(_ByDialect)
def _by_dialect_other(element: _ByDialect, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(bindparam(None, element.other, unique=True), **kw))


def _number(value: float | int) -> _ByDialect:
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return _ByDialect(float(value), exact, Numeric())


def _moment(value: Any) -> _ByDialect:
    return _ByDialect(value.strftime("%Y-%m-%d %H:%M:%S.%f"), value, DateTime())


def _bind(value: Any, kind: Any = None) -> Any:
    return bindparam(None, value, type_=kind, unique=True)


def _compare(left: Any, op: str, right: Any) -> ColumnElement[bool]:
    ops = {"=": left == right, "!=": left != right, "<": left < right, "<=": left <= right, ">": left > right,
           ">=": left >= right}
    return ops[op]


def _text_compare(left: Any, op: str, value: str) -> ColumnElement[bool]:
    if op == "~":
        return GlobMatch(left, value)
    if op in ("=", "!="):
        return _compare(left, op, _bind(value, String()))
    return _Ordered(left, op, _bind(value, String()))


def _two_valued(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition`` with NULL read as false."""
    return case((condition, true()), else_=false())


def _metric(c: Comparison) -> ColumnElement[bool]:
    m = RUN_METRICS.c
    shown = asked_key(c.key or "")
    value_col = m.final if c.field == "final" else (m.best_max if maximised(shown) else m.best_min)
    key_id = select(KEYS.c.id).where(KEYS.c.name == _bind(logged_key(shown), String())).scalar_subquery()
    return exists(select(m.run_id).where(m.run_id == Run.id, m.key_id == key_id,
                                         _compare(value_col, c.op, _bind(float(c.value), Float()))))


def _param(c: Comparison) -> ColumnElement[bool]:
    p = PARAMS.c
    mine = and_(p.run_id == Run.id, p.key == _bind(c.key, PARAMS.c.key.type))
    value = c.value
    if c.op == "~":
        test: ColumnElement[bool] = GlobMatch(_Text(p.value, strings_only=False), str(value))
    elif isinstance(value, bool) or value is None:
        test = _compare(p.value, c.op, _bind(JSONText().process_bind_param(value, None), String()))
    elif isinstance(value, (int, float)):
        test = _compare(_Number(p.value), c.op, _number(value))
    elif c.op in ("=", "!="):
        # Text as the params table stores it; != keeps only params that hold text.
        stored = _bind(JSONText().process_bind_param(value, None), String())
        test = p.value == stored if c.op == "=" else and_(_Text(p.value, strings_only=True).is_not(None),
                                                          p.value != stored)
    else:
        test = _Ordered(_Text(p.value, strings_only=True), c.op, _bind(value, String()))
    return exists(select(p.run_id).where(mine, test))


def _tag(c: Comparison) -> ColumnElement[bool]:
    t = TAGS.c
    return exists(select(t.run_id).where(t.run_id == Run.id, t.key == _bind(c.key, TAGS.c.key.type),
                                         _text_compare(t.value, c.op, str(c.value))))


def _status(c: Comparison, status_as: str | None) -> ColumnElement[bool]:
    if status_as is None:
        return _two_valued(_text_compare(Run.status, c.op, str(c.value)))
    from fnmatch import fnmatchcase

    if c.op == "~":
        hit = fnmatchcase(status_as, str(c.value).replace("[", "[[]"))
    else:
        hit = {"=": status_as == c.value, "!=": status_as != c.value, "<": status_as < c.value,
               "<=": status_as <= c.value, ">": status_as > c.value, ">=": status_as >= c.value}[c.op]
    return true() if hit else false()


def _node(node: Node, status_as: str | None) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(*(_node(n, status_as) for n in node.items))
    if isinstance(node, Or):
        return or_(*(_node(n, status_as) for n in node.items))
    if isinstance(node, Not):
        return not_(_node(node.item, status_as))
    c = node
    if c.field in ("best", "final"):
        return _metric(c)
    if c.field == "params":
        return _param(c)
    if c.field == "tags":
        return _tag(c)
    if c.field == "status":
        return _status(c, status_as)
    if c.field == "name":
        return _two_valued(_text_compare(Run.name, c.op, str(c.value)))
    if c.field == "experiment":
        e = EXPERIMENTS.c
        return exists(select(e.id).where(e.id == Run.experiment_id, _text_compare(e.name, c.op, str(c.value))))
    if c.field == "started_at":
        return _two_valued(_compare(Run.started_at, c.op, _moment(c.value)))
    return _two_valued(_compare(_Seconds(), c.op, _bind(float(c.value), Float())))


class Compiled:
    """A compiled filter: ``clause`` for WHERE and, when it names ``status``, ``decided`` columns to select."""

    def __init__(self, tree: Node) -> None:
        self.tree = tree
        self.decided: list[ColumnElement[Any]] = []
        if not statuses_in(tree):
            self.clause = _node(tree, None)
            return
        stored = Run.status.not_in(["running"])
        if_running, if_crashed = _node(tree, "running"), _node(tree, "crashed")
        self.clause = or_(and_(stored, _node(tree, None)), and_(Run.status == "running", or_(if_running, if_crashed)))
        self.decided = [case((if_running, 1), else_=0).label(DECIDED[0]),
                        case((if_crashed, 1), else_=0).label(DECIDED[1])]


def compile_where(text: str) -> Compiled:
    """Parse and compile a filter (see ``tracker.store.where``).

    Raises:
        WhereError: the filter cannot be read (one sentence).
    """
    return Compiled(parse(text))


def keep_decided(columns: Sequence[str], rows: list[list[Any]]) -> list[list[Any]]:
    """Keep the rows whose decided status passes the filter, after ``apply_liveness`` set it.

    A run decided ``running`` needs ``where_if_running``, one decided
    ``crashed`` ``where_if_crashed``; others passed in SQL. Without those
    columns the rows are returned as they are.
    """
    if DECIDED[0] not in columns:
        return rows
    at = {c: i for i, c in enumerate(columns)}
    st, run_ok, crash_ok = at["status"], at[DECIDED[0]], at[DECIDED[1]]
    return [row for row in rows if (row[run_ok] if row[st] == "running" else row[crash_ok] if row[st] == "crashed"
                                    else 1)]


def _comparisons(node: Node) -> list[Comparison]:
    if isinstance(node, Comparison):
        return [node]
    if isinstance(node, Not):
        return _comparisons(node.item)
    return [c for item in node.items for c in _comparisons(item)]


def check_names(conn: Any, compiled: Compiled) -> None:
    """Refuse a filter naming a key no run logged, or a param or tag no run has (once any run has some).

    Raises:
        WhereError: one sentence naming the unknown key and a close one.
    """
    wanted = _comparisons(compiled.tree)
    for field, query in (
        ("best", select(KEYS.c.name).where(KEYS.c.id.in_(select(RUN_METRICS.c.key_id).distinct()))),
        ("params", select(PARAMS.c.key).distinct()),
        ("tags", select(TAGS.c.key).distinct()),
    ):
        asked = [c for c in wanted if c.field == field or (field == "best" and c.field == "final")]
        if not asked:
            continue
        known = [shown_key(n) if field == "best" else n for (n,) in conn.execute(query)]
        for c in asked:
            key = asked_key(c.key or "") if field == "best" else c.key
            if known and key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                what = {"best": "logged the key", "params": "has the param", "tags": "has the tag"}[field]
                hint = f"; did you mean {c.field}.{close[0]}?" if close else "."
                raise WhereError(f"In the filter at character {c.position + 1}, no run {what} {key!r}{hint}")
    return None

