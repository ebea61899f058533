"""Roles on a PostgreSQL tracker database: a writer, a reader, and the owner who migrates.

``grant_statements`` returns the SQL (shipped as ``tracker db grant``):

* the **writer** may read every table, insert runs, and change only the runs
  it created: row-level security (revision 0008, on every table that belongs
  to a run) checks ``runs.created_by``. It deletes nothing but the
  ``run_metrics`` rows it rebuilds after a resume and the ``tags`` a person
  removes from its runs (``tracker tag --remove``); it renames, notes and
  moves to the trash only its own runs, and cannot remove runs for good
  (``tracker gc`` is the owner's). It may add to the shared ``keys``,
  ``keysets`` and ``experiments`` dictionaries but never change them, and
  may only read ``tracker_schema_version``;
* the **reader** may only ``SELECT`` (every read command, ``Store`` and the
  dashboard); its statements time out after ``READER_STATEMENT_TIMEOUT``;
* neither can create, alter or drop anything, create temporary tables or
  large objects (what PUBLIC gets by default is revoked), or connect to the
  database unless named: only the database's owner runs migrations
  (``tracker db upgrade``) and changes every run. Default privileges cover
  the tables a later migration adds.

A role may connect to every other database of the server that lets PUBLIC
connect (``postgres`` by default), which SQL cannot forbid for one role:
``hba_lines`` gives the ``pg_hba.conf`` lines that confine the two roles to
the tracker database.

The roles are created ``LOGIN`` without a password; set one with psql's
``\\password ROLE``, so that no password ever appears in this SQL or in logs.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, Engine, text

from tracker.errors import InvalidArgumentError

__all__ = ["READER_STATEMENT_TIMEOUT", "grant_statements", "apply_grants", "hba_lines", "grant_gaps",
           "confined_to_own_runs"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: How long one statement of the reader may run (a role setting in the tracker database).
READER_STATEMENT_TIMEOUT = "2min"

#: The functions that create large objects, which every role may call by default.
_LARGE_OBJECTS = ("pg_catalog.lo_creat(integer)", "pg_catalog.lo_create(oid)", "pg_catalog.lo_from_bytea(oid, bytea)")


def _check(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgumentError(
            f"The {what} role name {name!r} is not a plain PostgreSQL name; use lower-case letters, digits and _."
        )
    return name


def _names(reader: str, writer: str) -> tuple[str, str]:
    reader, writer = _check(reader, "reader"), _check(writer, "writer")
    if reader == writer:
        raise InvalidArgumentError("The reader and writer roles must be two different roles.")
    return reader, writer


def grant_statements(database: str, *, reader: str = "tracker_reader", writer: str = "tracker_writer",
                     schema: str = "public", reader_timeout: str = READER_STATEMENT_TIMEOUT) -> list[str]:
    """The SQL that creates (if missing) and grants the reader and writer roles.

    Run it as the database's owner on a database at the head revision. The
    revocation of the large-object functions takes effect only when a
    superuser runs it (``grant_gaps`` tells).

    Args:
        database: The tracker database's name.
        reader: The read-only role. Default ``tracker_reader``.
        writer: The role ``TrackingCallback`` connects as. Default ``tracker_writer``.
        schema: The schema holding the tracker's tables. Default ``public``.
        reader_timeout: The reader's ``statement_timeout``. Default ``READER_STATEMENT_TIMEOUT``.

    Raises:
        InvalidArgumentError: a name is not a plain identifier.
    """
    from tracker.db.migrate import VERSION_TABLE

    reader, writer = _names(reader, writer)
    schema = _check(schema, "schema")
    if not re.fullmatch(r"\d+\s*(ms|s|min|h)?", reader_timeout):
        raise InvalidArgumentError(f"The reader's statement timeout {reader_timeout!r} is not a duration such as '2min'.")
    db = '"' + database.replace('"', '""') + '"'
    create = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{r}') "
        "THEN CREATE ROLE {r} LOGIN; END IF; END $$"
    )
    return [
        create.format(r=reader),
        create.format(r=writer),
        # PUBLIC may connect and create temporary tables: only the named roles may connect.
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {db} TO {reader}, {writer}",
        f"GRANT USAGE ON SCHEMA {schema} TO {reader}, {writer}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
        f"REVOKE EXECUTE ON FUNCTION {', '.join(_LARGE_OBJECTS)} FROM PUBLIC",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader}",
        f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} TO {writer}",
        # What the writer rebuilds after a resume; row-level security limits it to its own runs.
        f"GRANT DELETE ON {schema}.run_metrics TO {writer}",
        # A tag removed by hand (tracker tag --remove); row-level security: of its own runs only.
        f"GRANT DELETE ON {schema}.tags TO {writer}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema}.{VERSION_TABLE} FROM {writer}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.keys, {schema}.keysets, {schema}.experiments FROM {writer}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {writer}",
        f"ALTER ROLE {reader} IN DATABASE {db} SET statement_timeout = '{reader_timeout}'",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE ON TABLES TO {writer}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {writer}",
    ]


def hba_lines(database: str, *, reader: str = "tracker_reader", writer: str = "tracker_writer") -> list[str]:
    """The ``pg_hba.conf`` lines that let the two roles connect, with a password, to ``database`` only.

    They go above any broader line of the file (the first matching line
    decides), followed by a reload (``SELECT pg_reload_conf()``).

    Raises:
        InvalidArgumentError: a name is not a plain identifier.
    """
    reader, writer = _names(reader, writer)
    db = '"' + database.replace('"', "") + '"'
    roles = f"{reader},{writer}"
    return [
        f"host   {db}  {roles}  all  scram-sha-256",
        f"local  {db}  {roles}       scram-sha-256",
        f"host   all  {roles}  all  reject",
        f"local  all  {roles}       reject",
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


def grant_gaps(engine: Engine, *, reader: str = "tracker_reader", writer: str = "tracker_writer") -> list[str]:
    """What the granted roles may still do beyond their grant, one sentence each (empty if nothing).

    Checked on the server after ``apply_grants``: large objects (revoking
    them needs a superuser) and other databases the roles may connect to
    (only ``pg_hba.conf`` can forbid that).
    """
    reader, writer = _names(reader, writer)
    gaps = []
    with engine.connect() as conn:
        can = conn.execute(
            text("SELECT has_function_privilege(:r, 'pg_catalog.lo_create(oid)', 'EXECUTE')"), {"r": reader}
        ).scalar()
        others: list[str] = list(conn.execute(text(
            "SELECT datname FROM pg_database WHERE datallowconn AND datname <> current_database() "
            "AND (has_database_privilege(:r, datname, 'CONNECT') OR has_database_privilege(:w, datname, 'CONNECT')) "
            "ORDER BY datname"
        ), {"r": reader, "w": writer}).scalars().all())
    if can:
        gaps.append(
            f"{reader} and {writer} may still create large objects: revoking that needs a superuser; "
            f"as one, run: REVOKE EXECUTE ON FUNCTION {', '.join(_LARGE_OBJECTS)} FROM PUBLIC;"
        )
    if others:
        gaps.append(
            f"{reader} and {writer} may connect to the other databases {', '.join(others)} (PUBLIC may); "
            "confine them with the pg_hba.conf lines below."
        )
    return gaps


def confined_to_own_runs(conn: Connection) -> bool:
    """True if the connection's role may change only the runs it created (row-level security
    applies to it: a writer role on PostgreSQL, not the tables' owner; never on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text("SELECT row_security_active('runs')")).scalar())
