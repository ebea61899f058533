"""Column types shared by the tables and by the read side's light table clauses.

No ORM import: ``tracker runs`` builds its query on these without mapping
the models.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.types import TypeDecorator

__all__ = ["JSONText", "SafeText", "SafeString", "unmark", "valid_text"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(value: str) -> str:
    """Return ``value`` with every lone surrogate written as its escape (``\\udcff``: six characters).

    A Python string can hold lone surrogates (``os.fsdecode`` and
    ``sys.argv`` give them for bytes that are not UTF-8), which no database
    driver can encode; every other string is returned as it is.
    """
    if value.isascii() or _SURROGATE.search(value) is None:
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _escape_in_json(match: re.Match[str]) -> str:
    return f"\\\\u{ord(match.group()):04x}"  # a JSON-escaped backslash, then uXXXX


class JSONText(TypeDecorator[Any]):
    """JSON kept as TEXT on every database.

    SQLite gives a column declared ``JSON`` numeric affinity, which turns the
    text ``12345678901234567890`` into a rounded REAL; TEXT keeps it exact.
    Python's json module writes NaN and ±Infinity, so floats round-trip.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, default=repr)
        if text.isascii() or _SURROGATE.search(text) is None:
            return text
        # Lone surrogates appear only inside JSON strings: they read back as escapes (see valid_text).
        return _SURROGATE.sub(_escape_in_json, text)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None or not isinstance(value, (str, bytes)):
            return value  # a number stored under numeric affinity by an older file
        return json.loads(value)



class _NulSafe(TypeDecorator[str]):
    """Text that may hold NUL characters, which PostgreSQL text refuses.

    On PostgreSQL a string holding ``\\x00`` (or starting with ESC, the
    marker) is stored as ESC followed by its JSON form, and read back as it
    was; every other string, and every string on SQLite, is stored as is.
    On both, lone surrogates (not valid Unicode) are stored escaped
    (``valid_text``).
    """

    impl: Any = Text
    cache_ok = True
    _MARK = "\x1b"

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return value
        value = valid_text(value)
        if dialect.name != "postgresql":
            return value
        if "\x00" in value or value.startswith(self._MARK):
            return self._MARK + json.dumps(value)
        return value

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is not None and dialect.name == "postgresql":
            return unmark(value)
        return value

    # Result processors only where they do something: SQLite gives every
    # string back as stored, so its rows are not passed through Python per
    # value (10,000 run names, two calls each, were a third of a listing's time).
    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        return unmark if dialect.name == "postgresql" else None


def unmark(value: Any) -> Any:
    """A string as read from PostgreSQL through a NUL-safe column, as it was written (see ``_NulSafe``).

    For reads that bypass SQLAlchemy's types (``tracker.store.bulk``).
    """
    if type(value) is str and value[:1] == _NulSafe._MARK:
        return str(json.loads(value[1:]))
    return value


class SafeText(_NulSafe):
    """``Text`` that keeps NUL characters on every database (see ``_NulSafe``)."""

    impl = Text
    cache_ok = True


class SafeString(_NulSafe):
    """``String`` that keeps NUL characters on every database (see ``_NulSafe``)."""

    impl = String
    cache_ok = True
