"""Schema versions: running the Alembic revisions and refusing newer databases.

The schema is created and changed only here, by the revisions in the
top-level ``migrations/`` folder (installed as ``tracker._migrations``).
Opening a database upgrades an empty or older one; a database stamped with a
revision this version of the tracker does not know is refused.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DatabaseError as SADatabaseError
from sqlalchemy.exc import OperationalError

from tracker.database import (
    check_not_foreign,
    check_readable,
    describe,
    get_engine,
    readonly_url,
    resolve_url,
    sqlite_path,
)
from tracker.errors import DatabaseError, NotADatabaseError, SchemaTooNewError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "HEAD_REVISION",
    "VERSION_TABLE",
    "script_location",
    "alembic_config",
    "head_revision",
    "current_revision",
    "open_database",
    "open_readonly",
    "upgrade",
]

VERSION_TABLE = "tracker_schema_version"

# The newest revision in migrations/versions. Opening a database already at
# this revision needs no Alembic import (it costs ~0.3 s of CLI start-up);
# tests/test_migrations.py checks it against Alembic's head.
HEAD_REVISION = "0005"


@lru_cache(maxsize=1)
def script_location() -> Path:
    """Return the folder holding ``env.py`` and ``versions/``."""
    spec = importlib.util.find_spec("tracker._migrations")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / "env.py").exists():
                return Path(location)
    repo = Path(__file__).resolve().parent.parent / "migrations"
    if (repo / "env.py").exists():
        return repo
    raise DatabaseError("The tracker's migration scripts are missing; reinstall the package.")


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic Config for our scripts, bound to ``connection`` if given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """Return the newest revision this version of the tracker knows."""
    head = _scripts().get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def current_revision(conn: Connection) -> str | None:
    """Return the revision a database is stamped with, or None if unstamped."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _quick_revision(conn: Connection) -> str | None:
    """The stamped revision by plain SQL, or None if that cannot tell."""
    try:
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    except (OperationalError, SADatabaseError):
        conn.rollback()
        return None
    return rows[0][0] if len(rows) == 1 else None


def _check_known(revision: str | None, url: str) -> None:
    if revision is None:
        return
    from alembic.util import CommandError

    try:
        _scripts().get_revision(revision)
    except CommandError:
        raise SchemaTooNewError(
            f"{describe(url)} has schema revision {revision}, which is newer than this "
            f"tracker knows (head {head_revision()}); upgrade the tracker package to read it."
        ) from None


def _check_ours(conn: Connection, url: str) -> None:
    tables = [t for t in inspect(conn).get_table_names() if not t.startswith("sqlite_")]
    if tables:
        raise NotADatabaseError(
            f"{describe(url)} is a database of another application (it has tables "
            f"but no tracker schema version); choose another file."
        )


def upgrade(engine: Engine, url: str) -> str:
    """Bring the database to the head revision and return that revision.

    Reads first and writes only when an upgrade is due; the upgrade runs in one
    ``BEGIN IMMEDIATE`` transaction, so concurrent openers serialise.

    Raises:
        SchemaTooNewError: the database has a revision newer than ours.
        NotADatabaseError: the database belongs to another application.
    """
    with engine.connect() as conn:
        if _quick_revision(conn) == HEAD_REVISION:
            return HEAD_REVISION
    head = head_revision()
    with engine.connect() as conn:
        revision = current_revision(conn)
        _check_known(revision, url)
        if revision == head:
            return head
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            revision = current_revision(conn)
            _check_known(revision, url)
            if revision is None:
                _check_ours(conn, url)
            if revision != head:
                from alembic import command

                command.upgrade(alembic_config(conn), "head")
    return head


def _friendly(exc: Exception, url: str) -> DatabaseError:
    text = str(getattr(exc, "orig", exc))
    where = describe(url)
    if "file is not a database" in text:
        return NotADatabaseError(f"{where} is not a SQLite database.")
    if "unable to open database file" in text:
        return DatabaseError(
            f"Cannot open {where}: its folder does not exist or is not writable."
        )
    if "readonly" in text or "read-only" in text:
        return DatabaseError(f"Cannot write {where}: the file or its folder is read-only.")
    return DatabaseError(f"Cannot use {where}: {text}.")


def open_database(db: str, *, create: bool = True) -> tuple[Engine, str]:
    """Return ``(engine, url)`` for ``db``, upgraded to the head revision.

    Args:
        db: A file path or an SQLAlchemy URL.
        create: Create the file if it does not exist (default True). With
            False, a missing file is an error (the read side uses this).

    Raises:
        DatabaseError: with one sentence saying what is wrong with ``db``.
    """
    url = resolve_url(db)
    path = sqlite_path(url)
    if create:
        if path is not None:
            check_not_foreign(path)
            if not path.parent.is_dir():
                raise DatabaseError(f"Cannot create {path}: the folder {path.parent} does not exist.")
    else:
        check_readable(url)
    engine = get_engine(url)
    try:
        upgrade(engine, url)
    except DatabaseError:
        raise
    except (OperationalError, SADatabaseError) as exc:
        raise _friendly(exc, url) from None
    return engine, url


def open_readonly(db: str) -> tuple[Engine, str]:
    """Return ``(engine, url)`` to read ``db`` without ever writing to it.

    Unlike ``open_database`` this never creates, upgrades or changes the
    database: a SQLite file is opened with ``mode=ro`` (see
    ``tracker.database.readonly_url``), and a schema older than the head is
    refused. ``tracker.Store(url)`` on the returned URL reads through the same
    engine, and writes nothing because the schema is already at the head.

    Raises:
        DatabaseNotFoundError: the file does not exist.
        NotADatabaseError: the file is not SQLite.
        SchemaTooNewError: a newer tracker wrote the database.
        DatabaseError: the schema is older than the head or missing (run
            ``tracker db upgrade``), or the database cannot be read.
    """
    url = resolve_url(db)
    check_readable(url)
    ro_url = readonly_url(url)
    engine = get_engine(ro_url)
    try:
        with engine.connect() as conn:
            revision = _quick_revision(conn)
    except (OperationalError, SADatabaseError) as exc:
        raise _friendly(exc, url) from None
    if revision == HEAD_REVISION:
        return engine, ro_url
    if revision is None:
        raise DatabaseError(
            f"{describe(url)} has no tracker schema; run 'tracker db upgrade' to create it, or check the path."
        )
    _check_known(revision, url)
    raise DatabaseError(
        f"{describe(url)} has schema revision {revision}, older than this tracker's {HEAD_REVISION}; "
        f"run 'tracker db upgrade' first (this reader never changes the database)."
    )


def check_schema(engine: Engine, url: str) -> list[str]:
    """Return what is wrong with a database (empty if nothing): integrity,
    revision, and differences between its tables and the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tracker.schema import Base

    problems: list[str] = []
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            result = [r[0] for r in conn.execute(text("PRAGMA integrity_check")).all()]
            if result != ["ok"]:
                problems.append("integrity check failed: " + ", ".join(result[:3]))
        revision = current_revision(conn)
        _check_known(revision, url)
        if revision != head_revision():
            problems.append(f"schema revision {revision or 'none'} is not head {head_revision()}; run 'tracker db upgrade'")
            return problems
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        if diff:
            problems.append(f"tables differ from the models: {diff[:3]}")
    return problems
