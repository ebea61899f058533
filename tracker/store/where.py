"""The filter language of ``tracker runs --where``, ``Store.runs(where=...)`` and the dashboard's filter box.

One expression selects runs, in the spirit of MLflow's ``search_runs``::

    best.val_loss < 0.2 and params.lr >= 1e-3 and tags.sweep = "lr"
    status = crashed or (status = running and started_at < -2h)
    name ~ "resnet-*" and not params.optimizer = "sgd"

Fields: ``best.KEY`` and ``final.KEY`` (the best and final epoch value of a
logs key: best is the min or max by the key's direction, as everywhere),
``params.NAME``, ``tags.NAME``, ``status``, ``name``, ``experiment``,
``started_at`` and ``duration`` (seconds; ``90``, ``15m``, ``2h``, ``1d``). A
key or name with spaces or operators in it is quoted: ``best."val loss"``.
Operators: ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` and ``~``, a glob
match where ``*`` is any text and ``?`` any one character (every other
character, ``_`` and ``%`` too, matches itself, case-sensitively, as in
``--name``). ``and``, ``or``, ``not`` and parentheses combine them (``not``
binds tightest, then ``and``).

Values: numbers (``0.2``, ``1e-3``, ``-5``), text in double or single quotes
(JSON escapes inside double quotes), ``true``, ``false``, ``null`` (params
only), or a bare word, read as text (``status = crashed``). ``started_at``
takes an ISO date or time (``2026-01-31``, ``2026-01-31T12:00``; UTC unless
it says its zone, as in ``...T12:00+02:00``) or a time relative to now
(``-7d``, ``-12h``, ``-30m``).

A comparison on a field a run lacks (a key it did not log, a param or tag it
does not have, a run still running for ``duration``) is false, so
``not params.lr = 0.1`` also keeps the runs without ``lr``.

This module only reads the text into a tree (``parse``); ``tracker.store.where_sql``
turns the tree into SQL with bound parameters. A text that cannot be read
raises ``WhereError``, one sentence saying where and what was expected.
Imports neither Keras nor TensorFlow, nor SQLAlchemy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from tracker.errors import InvalidArgumentError

__all__ = ["WhereError", "Comparison", "And", "Or", "Not", "Node", "parse", "FIELDS", "KEYED", "OPERATORS",
           "statuses_in"]

#: Fields that take a key after a dot (``best.val_loss``).
KEYED = ("best", "final", "params", "tags")
#: Fields that stand alone.
PLAIN = ("status", "name", "experiment", "started_at", "duration")
FIELDS = KEYED + PLAIN
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~")
_TEXT_FIELDS = ("tags", "status", "name", "experiment")
_NUMBER_FIELDS = ("best", "final", "duration")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LIMIT = 2000  # characters; longer filters are refused (no recursion bombs)

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<op>!=|==|<=|>=|<|>|=|~)
  | (?P<paren>[()])
  | (?P<dot>\.)
  | (?P<dq>"(?:[^"\\]|\\.)*")
  | (?P<sq>'[^']*')
  | (?P<word>[^\s()=!<>~."']+(?:\.[^\s()=!<>~."']+)*)
""", re.VERBOSE)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_RELATIVE = re.compile(r"-(\d+(?:\.\d+)?)([smhdw])")


class WhereError(InvalidArgumentError):
    """A filter expression cannot be read or names something that does not exist (one sentence)."""


@dataclass(frozen=True)
class Comparison:
    """``field[.key] op value``; ``value`` is a float, str, bool, None or datetime (naive UTC)."""

    field: str
    key: str | None
    op: str
    value: Any
    quoted: bool  # the value was written in quotes (text, never a number or a JSON literal)
    position: int


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Union[Comparison, And, Or, Not]


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _near(text: str, position: int) -> str:
    """A short excerpt of ``text`` with a marker at ``position``."""
    before = text[max(0, position - 25):position]
    after = text[position:position + 25]
    return ("…" if position > 25 else "") + before + "⟨here⟩" + after + ("…" if position + 25 < len(text) else "")


def _tokens(text: str) -> list[_Token]:
    out, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            what = "an unclosed quote" if text[at] in "\"'" else f"the character {text[at]!r}"
            raise WhereError(f"Cannot read the filter at character {at + 1} ({_near(text, at)}): "
                             f"{what} is not part of the filter language.")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, match.group(), at))
        at = match.end()
    out.append(_Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, token: _Token, expected: str) -> WhereError:
        found = "the end of the filter" if token.kind == "end" else repr(token.text)
        return WhereError(f"Cannot read the filter at character {token.position + 1} "
                          f"({_near(self.text, token.position)}): expected {expected}, found {found}.")

    def word(self, token: _Token, *words: str) -> bool:
        return token.kind == "word" and token.text.lower() in words

    def expression(self) -> Node:
        items = [self.conjunction()]
        while self.word(self.peek(), "or"):
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self.word(self.peek(), "and"):
            self.take()
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def negation(self) -> Node:
        if self.word(self.peek(), "not"):
            self.take()
            return Not(self.negation())
        token = self.peek()
        if token.text == "(":
            self.take()
            self.depth += 1
            if self.depth > 50:
                raise self.fail(token, "fewer nested parentheses (at most 50)")
            inner = self.expression()
            if self.peek().text != ")":
                raise self.fail(self.peek(), "')' to close the '(' at character " + str(token.position + 1))
            self.take()
            self.depth -= 1
            return inner
        return self.comparison()

    def comparison(self) -> Node:
        token = self.take()
        fields = ", ".join(f"{f}.{'KEY' if f in ('best', 'final') else 'NAME'}" for f in KEYED) + ", " + ", ".join(PLAIN)
        if token.kind != "word":
            raise self.fail(token, f"a field ({fields})")
        name, _, key = token.text.partition(".")
        if name not in FIELDS:
            raise self.fail(token, f"a field ({fields})")
        if name in KEYED:
            if not key and self.peek().kind == "dot":
                self.take()
                quoted = self.take()
                if quoted.kind not in ("dq", "sq"):
                    raise self.fail(quoted, f"a key after '{name}.'")
                key = _unquote(quoted, self)
            if not key:
                raise self.fail(token, f"'{name}.' and a key, as in {name}.{'val_loss' if name in ('best', 'final') else 'lr'}")
        elif key:
            raise self.fail(token, f"the field {name} without a key after a dot")
        op_token = self.take()
        if op_token.kind != "op":
            raise self.fail(op_token, "an operator (=, !=, <, <=, >, >= or ~)")
        op = "=" if op_token.text == "==" else op_token.text
        value_token = self.take()
        if value_token.kind not in ("word", "dq", "sq"):
            raise self.fail(value_token, f"a value after {op}")
        is_quoted = value_token.kind != "word"
        raw: Any = _unquote(value_token, self) if is_quoted else value_token.text
        value = _value(self, name, op, raw, is_quoted, value_token)
        return Comparison(name, key or None, op, value, is_quoted, token.position)


def _unquote(token: _Token, parser: _Parser) -> str:
    if token.kind == "sq":
        return token.text[1:-1]
    try:
        return str(json.loads(token.text))
    except ValueError:
        raise parser.fail(token, "a quoted text with valid escapes (\\\" \\\\ \\n \\uXXXX)") from None


def _value(parser: _Parser, field: str, op: str, raw: Any, quoted: bool, token: _Token) -> Any:
    """The value of a comparison as the field needs it, or a WhereError."""
    if op == "~":
        if field in ("best", "final", "duration", "started_at"):
            raise parser.fail(token, f"a comparison other than ~ for {field} (glob matches text)")
        return raw
    if field in ("best", "final"):
        if quoted or not _NUMBER.fullmatch(raw):
            raise parser.fail(token, f"a number after {field}.KEY {op}")
        return float(raw)
    if field == "duration":
        if quoted:
            raise parser.fail(token, "a duration in seconds (90) or with a unit (15m, 2h, 1d)")
        unit = _DURATION.fullmatch(raw)
        if unit:
            return float(unit.group(1)) * _UNITS[unit.group(2)]
        if not _NUMBER.fullmatch(raw):
            raise parser.fail(token, "a duration in seconds (90) or with a unit (15m, 2h, 1d)")
        return float(raw)
    if field == "started_at":
        return _time(parser, raw, token)
    if field in _TEXT_FIELDS:
        if field == "status" and op in ("=", "!="):
            from tracker.store.clauses import RUN_STATUSES

            if raw not in RUN_STATUSES:
                raise parser.fail(token, "a status (" + ", ".join(RUN_STATUSES) + ")")
        return raw
    # params: a number, a JSON literal or text
    if not quoted and _NUMBER.fullmatch(raw):
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    if not quoted and raw in ("true", "false", "null"):
        if op not in ("=", "!="):
            raise parser.fail(token, f"= or != with {raw}")
        return {"true": True, "false": False, "null": None}[raw]
    return raw


def _time(parser: _Parser, raw: str, token: _Token) -> datetime:
    relative = _RELATIVE.fullmatch(raw)
    if relative:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return now - timedelta(seconds=float(relative.group(1)) * _UNITS[relative.group(2)])
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise parser.fail(token, "a time: an ISO date or time (2026-01-31, 2026-01-31T12:00Z) or -7d, -12h, -30m") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def parse(text: str) -> Node:
    """Read a filter expression into a tree of ``Comparison``, ``And``, ``Or`` and ``Not``.

    Raises:
        WhereError: the text is empty, too long, holds a NUL character, or
            cannot be read (the message gives the character where it stops
            and what was expected there).
    """
    if not isinstance(text, str):
        raise WhereError(f"A filter is text, such as 'best.val_loss < 0.2', not {type(text).__name__}.")
    if "\x00" in text:
        raise WhereError(f"The filter holds a NUL character at character {text.index(chr(0)) + 1}; remove it.")
    if len(text) > _LIMIT:
        raise WhereError(f"The filter is {len(text)} characters long; at most {_LIMIT} are read.")
    if not text.strip():
        raise WhereError("The filter is empty; write a comparison such as best.val_loss < 0.2.")
    parser = _Parser(text)
    tree = parser.expression()
    if parser.peek().kind != "end":
        raise parser.fail(parser.peek(), "'and', 'or' or the end of the filter")
    return tree


def statuses_in(tree: Node) -> bool:
    """True if the expression compares ``status`` (decided in part after reading: see ``where_sql``)."""
    if isinstance(tree, Comparison):
        return tree.field == "status"
    if isinstance(tree, Not):
        return statuses_in(tree.item)
    return any(statuses_in(item) for item in tree.items)
