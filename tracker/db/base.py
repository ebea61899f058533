"""The declarative base of the tracker's tables (column types are in ``tracker.db.types``).

``MetaData`` carries a naming convention set before the first migration, so
every constraint has a stable name on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import enum
from typing import cast

from sqlalchemy import Enum, MetaData, Table
from sqlalchemy.orm import DeclarativeBase

__all__ = ["Base", "NAMING_CONVENTION", "enum_column", "table_of"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base carrying the constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)




def enum_column(cls: type[enum.Enum], name: str, *, constraint: bool = True) -> Enum:
    # Stored as short strings with a CHECK constraint rather than a native
    # enum type, so PostgreSQL and SQLite migrate it the same way. A column
    # added to an existing table goes without the constraint (constraint=False):
    # on SQLite adding one would rebuild the table.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=constraint,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def table_of(model: type[Base]) -> Table:
    """The ``Table`` of a mapped class, typed for Core statements."""
    return cast(Table, model.__table__)
