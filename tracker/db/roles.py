"""Roles on a PostgreSQL tracker database: a writer, a reader, and the owner who migrates.

``grant_statements`` returns the SQL (shipped as ``tracker db grant``):

* the **writer** may read every table and insert and update rows (what
  ``TrackingCallback`` needs; it deletes only ``run_metrics`` rows, which it
  rebuilds after a resume);
* the **reader** may only ``SELECT`` (every read command, ``Store`` and the
  dashboard);
* neither can create, alter or drop anything: only the database's owner
  runs migrations (``tracker db upgrade``). Default privileges cover the
  tables a later migration adds.

The roles are created ``LOGIN`` without a password; set one with psql's
``\\password ROLE``, so that no password ever appears in this SQL or in logs.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, text

from tracker.errors import InvalidArgumentError

__all__ = ["grant_statements", "apply_grants"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgumentError(
            f"The {what} role name {name!r} is not a plain PostgreSQL name; use lower-case letters, digits and _."
        )
    return name


def grant_statements(database: str, *, reader: str = "tracker_reader", writer: str = "tracker_writer",
                     schema: str = "public") -> list[str]:
    """The SQL that creates (if missing) and grants the reader and writer roles.

    Args:
        database: The tracker database's name.
        reader: The read-only role. Default ``tracker_reader``.
        writer: The role ``TrackingCallback`` connects as. Default ``tracker_writer``.
        schema: The schema holding the tracker's tables. Default ``public``.

    Raises:
        InvalidArgumentError: a name is not a plain identifier.
    """
    reader, writer, schema = _check(reader, "reader"), _check(writer, "writer"), _check(schema, "schema")
    if reader == writer:
        raise InvalidArgumentError("The reader and writer roles must be two different roles.")
    db = '"' + database.replace('"', '""') + '"'
    create = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{r}') "
        "THEN CREATE ROLE {r} LOGIN; END IF; END $$"
    )
    return [
        create.format(r=reader),
        create.format(r=writer),
        f"GRANT CONNECT ON DATABASE {db} TO {reader}, {writer}",
        f"GRANT USAGE ON SCHEMA {schema} TO {reader}, {writer}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader}",
        f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} TO {writer}",
        f"GRANT DELETE ON {schema}.run_metrics TO {writer}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {writer}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE ON TABLES TO {writer}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {writer}",
    ]


def apply_grants(engine: Engine, statements: list[str]) -> None:
    """Run the statements in one transaction (as the database's owner).

    Raises:
        InvalidArgumentError: the database is not PostgreSQL.
    """
    if engine.dialect.name != "postgresql":
        raise InvalidArgumentError(
            "Roles exist on a PostgreSQL server; a SQLite file is protected by its file permissions instead."
        )
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
