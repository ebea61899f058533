"""Schema versions: running the Alembic revisions and refusing newer databases.

The schema is created and changed only here, by the revisions in the
top-level ``migrations/`` folder (installed as ``tracker._migrations``).
Opening a database upgrades an empty or older one; a database stamped with a
revision this version of the tracker does not know is refused.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DatabaseError as SADatabaseError
from sqlalchemy.exc import OperationalError

from tracker.db.engine import (
    check_not_foreign,
    checkpoint_wal,
    check_readable,
    describe,
    get_engine,
    resolve_url,
    sqlite_path,
)
from tracker.errors import (
    DatabaseError,
    NotADatabaseError,
    SchemaOutdatedError,
    SchemaTooNewError,
)

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
    "open_for_reading",
    "read_revision",
    "check_schema",
    "upgrade",
]

VERSION_TABLE = "tracker_schema_version"

# The newest revision in migrations/versions. Opening a database already at
# this revision needs no Alembic import (it costs ~0.3 s of CLI start-up);
# tests/test_migrations.py checks it against Alembic's head.
HEAD_REVISION = "0012"


@lru_cache(maxsize=1)
def script_location() -> Path:
    """Return the folder holding ``env.py`` and ``versions/``."""
    spec = importlib.util.find_spec("tracker._migrations")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / "env.py").exists():
                return Path(location)
    repo = Path(__file__).resolve().parents[2] / "migrations"
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
            f"but no tracker schema version); choose another file, or a database of its own on a server."
        )


#: The PostgreSQL advisory lock that serialises migrations ("trk-mig" as an integer).
_ADVISORY_LOCK = int.from_bytes(b"trk-mig", "big")
_upgrade_locks: dict[str, threading.Lock] = {}
_upgrade_locks_guard = threading.Lock()


def _upgrade_lock(url: str) -> threading.Lock:
    """One lock per database URL: threads of one process upgrade one at a time
    (processes are serialised by the database's own write lock)."""
    with _upgrade_locks_guard:
        return _upgrade_locks.setdefault(url, threading.Lock())


def upgrade(engine: Engine, url: str) -> str:
    """Bring the database to the head revision and return that revision.

    Reads first and writes only when an upgrade is due; the upgrade runs in one
    transaction (``BEGIN IMMEDIATE`` on SQLite, under an advisory lock on
    PostgreSQL) and threads take a lock first, so concurrent openers serialise.

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
    with _upgrade_lock(url), engine.connect() as conn, foreign_keys_off(conn):
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                # Processes opening one server database at once migrate one at a time.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            revision = current_revision(conn)
            _check_known(revision, url)
            if revision is None:
                _check_ours(conn, url)
            if revision != head:
                from alembic import command

                command.upgrade(alembic_config(conn), "head")
                check_foreign_keys(conn)
    checkpoint_wal(engine)  # the file alone holds the new schema (SQLite)
    return head


def _friendly(exc: Exception, url: str) -> DatabaseError:
    """One sentence for a database error, chosen by SQLite's error name (not its message text)."""
    orig = getattr(exc, "orig", exc)
    name = getattr(orig, "sqlite_errorname", None)
    where = describe(url)
    if name == "SQLITE_NOTADB":
        return NotADatabaseError(f"{where} is not a SQLite database.")
    if name == "SQLITE_CANTOPEN":
        return DatabaseError(f"Cannot open {where}: its folder does not exist or is not writable.")
    if name is not None and name.startswith("SQLITE_READONLY"):
        return DatabaseError(f"Cannot write {where}: the file or its folder is read-only.")
    if name == "SQLITE_FULL":
        return DatabaseError(f"Cannot write {where}: the disk is full.")
    if name is not None and name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return DatabaseError(f"Cannot use {where}: another process holds it locked; try again.")
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return DatabaseError(f"Cannot use {where}: {text}.")


@contextmanager
def foreign_keys_off(conn: Connection) -> Iterator[None]:
    """On SQLite, run the block with foreign keys off (``conn`` must not be in a transaction yet).

    A revision that rebuilds a table (SQLite cannot alter a constraint)
    drops the old table, and with foreign keys on, dropping it would delete
    every row that refers to it (``ON DELETE CASCADE``). SQLite's own recipe
    for such changes turns them off first, outside any transaction, and
    checks them after (``check_foreign_keys``). Elsewhere it does nothing.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys = ON")


def check_foreign_keys(conn: Connection) -> None:
    """On SQLite, raise DatabaseError if a row refers to one that does not exist (before committing)."""
    if conn.dialect.name == "sqlite":
        broken = conn.execute(text("PRAGMA foreign_key_check")).all()
        if broken:
            raise DatabaseError(f"Upgrading left {len(broken)} rows referring to missing rows; nothing was changed.")


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


def open_for_reading(db: str, *, upgrade_schema: bool = False) -> tuple[Engine, str]:
    """Return ``(engine, url)`` of an existing database, opened read-only and never migrated.

    Args:
        db: A file path or an SQLAlchemy URL.
        upgrade_schema: Upgrade an older schema first (opening it for writing).
            Default False: an older schema is refused instead.

    Raises:
        DatabaseNotFoundError: the file does not exist.
        NotADatabaseError: the file is not SQLite, or holds no tracker schema.
        SchemaOutdatedError: the schema is older than this tracker's.
        SchemaTooNewError: a newer tracker wrote the database.
        DatabaseError: it cannot be read, in one sentence.
    """
    if upgrade_schema:
        engine, url = open_database(db, create=False)
        return get_engine(url, readonly=True), url
    url = resolve_url(db)
    check_readable(url)
    engine = get_engine(url, readonly=True)
    try:
        with engine.connect() as conn:
            revision = _quick_revision(conn)
            if revision is None:
                revision = current_revision(conn) if _has_version_table(conn) else None
    except (OperationalError, SADatabaseError) as exc:
        raise _friendly(exc, url) from None
    if revision == HEAD_REVISION:
        return engine, url
    if revision is None:
        raise NotADatabaseError(f"{describe(url)} holds no tracker runs (no tracker schema); check the path.")
    _check_known(revision, url)
    raise SchemaOutdatedError(
        f"{describe(url)} has the older schema revision {revision} (this tracker reads {HEAD_REVISION}); "
        f"run 'tracker --db {describe(url)} db upgrade' to upgrade it. Reading never changes the file."
    )


def _has_version_table(conn: Connection) -> bool:
    return VERSION_TABLE in inspect(conn).get_table_names()


def read_revision(engine: Engine, url: str) -> str | None:
    """Return the revision a database is stamped with (None if unstamped), reading only.

    Raises:
        DatabaseError: it cannot be read (not SQLite, damaged, unreachable), in one sentence.
    """
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    except (OperationalError, SADatabaseError) as exc:
        raise _friendly(exc, url) from None


def check_schema(engine: Engine, url: str) -> list[str]:
    """Return what is wrong with a database (empty if nothing): integrity,
    revision, and differences between its tables and the models.

    Raises:
        DatabaseError: it cannot be read at all (not SQLite, damaged, unreachable), in one sentence.
        SchemaTooNewError: a newer tracker wrote it.
    """
    try:
        return _check_schema(engine, url)
    except (OperationalError, SADatabaseError) as exc:
        raise _friendly(exc, url) from None


def _check_schema(engine: Engine, url: str) -> list[str]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tracker.db.tables import Base

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
