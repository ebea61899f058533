"""The declarative base of the tracker's tables and the column types they share.

``MetaData`` carries a naming convention set before the first migration, so
every constraint has a stable name on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import enum
import json
from typing import Any, cast

from sqlalchemy import Enum, MetaData, Table, Text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = ["Base", "JSONText", "NAMING_CONVENTION", "enum_column", "table_of"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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
        return json.dumps(value, ensure_ascii=False, default=repr)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None or not isinstance(value, (str, bytes)):
            return value  # a number stored under numeric affinity by an older file
        return json.loads(value)


class Base(DeclarativeBase):
    """Declarative base carrying the constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)




def enum_column(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as short strings with a CHECK constraint rather than a native
    # enum type, so PostgreSQL and SQLite migrate it the same way.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def table_of(model: type[Base]) -> Table:
    """The ``Table`` of a mapped class, typed for Core statements."""
    return cast(Table, model.__table__)
