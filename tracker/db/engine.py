"""Engines for the tracking database: URL resolution, SQLite pragmas, opening.

One engine per database URL per process. SQLite connections get WAL,
foreign keys and a busy timeout on the pool's ``connect`` event, and every
transaction is opened explicitly (``BEGIN`` or ``BEGIN IMMEDIATE`` for
writers) so that Python's sqlite3 module does not open them behind our back.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tracker.errors import DatabaseError, DatabaseNotFoundError, NotADatabaseError

__all__ = [
    "DEFAULT_DB",
    "host_name",
    "resolve_url",
    "get_engine",
    "dispose_engines",
    "readonly_url",
    "check_readable",
    "describe",
    "sqlite_path",
]

DEFAULT_DB = "tracker.db"
BUSY_TIMEOUT_MS = 30_000
#: Seconds a server connection attempt may take (libpq's ``connect_timeout``).
CONNECT_TIMEOUT_S = 3
SQLITE_HEADER = b"SQLite format 3\x00"

#: Engines kept open at once. A process that reads many database files one
#: after another (``for f in files: Store(f)``) keeps the pooled connections
#: of the most recent ones; older engines are disposed (three open files per
#: SQLite connection: the database, its WAL and its shared memory).
MAX_ENGINES = 16

_engines: OrderedDict[str, Engine] = OrderedDict()
_engines_lock = threading.Lock()


def resolve_url(db: str | os.PathLike[str]) -> str:
    """Return an SQLAlchemy URL for a path or URL.

    A plain path (relative paths are taken from the current directory) becomes
    ``sqlite:///ABSOLUTE_PATH``; a string containing ``://`` is taken as an
    SQLAlchemy URL and returned unchanged.

    Raises:
        DatabaseError: ``db`` is empty or not a valid URL.
    """
    text = os.fspath(db)
    if not text:
        raise DatabaseError("The database path is empty; pass a file path such as 'tracker.db'.")
    if "://" in text:
        try:
            make_url(text)
        except ArgumentError:
            scheme = text.split("://", 1)[0]
            raise DatabaseError(
                f"The database URL ({scheme}://...) is not a valid SQLAlchemy URL; check its form, "
                "e.g. postgresql+psycopg://user:password@host/dbname."
            ) from None
        return text
    # Rendered by SQLAlchemy, so a path holding ?, #, % or spaces stays that path.
    return URL.create("sqlite", database=str(Path(text).expanduser().resolve())).render_as_string()


def sqlite_path(url: str) -> Path | None:
    """Return the file of a file-based SQLite URL, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def describe(url: str) -> str:
    """Return a short human name for a database: its path, or the URL without password."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return make_url(url).render_as_string(hide_password=True)


def check_readable(url: str) -> None:
    """Refuse a SQLite file that is missing or is not SQLite, in one sentence.

    Raises:
        DatabaseNotFoundError: the file does not exist.
        NotADatabaseError: the file exists and is not an SQLite database.
    """
    path = sqlite_path(url)
    if path is None:
        return
    if not path.exists():
        raise DatabaseNotFoundError(
            f"No tracker database at {path}; check the path or pass --db / set TRACKER_DB."
        )
    check_not_foreign(path)


def check_not_foreign(path: Path) -> None:
    """Raise NotADatabaseError if ``path`` is a non-empty file that is not SQLite."""
    if not path.exists():
        return
    if path.is_dir():
        raise NotADatabaseError(f"{path} is a directory, not a SQLite database file.")
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise DatabaseError(f"Cannot read {path}: {exc.strerror}.") from None
    if header and header != SQLITE_HEADER:
        raise NotADatabaseError(f"{path} is not a SQLite database (wrong file header).")


def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # Take transaction control away from the sqlite3 module; BEGIN is
    # emitted by _on_begin below.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        if mode not in ("wal", "memory"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _on_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _on_connect_readonly(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def readonly_url(url: str) -> str:
    """The URL that opens ``url`` for reading only (SQLite: ``mode=ro``; servers: read-only transactions)."""
    path = sqlite_path(url)
    if path is None:
        return url
    # SQLAlchemy unquotes the URL once and SQLite decodes the URI once more,
    # so a path holding ?, #, % or spaces is quoted twice.
    return f"sqlite:///file:{quote(quote(str(path), safe='/'), safe='/')}?mode=ro&uri=true"


def get_engine(url: str, *, readonly: bool = False) -> Engine:
    """Return the process-wide engine for ``url``, creating it on first use.

    With ``readonly``, SQLite files are opened with ``mode=ro`` (nothing can
    write the file, not even a checkpoint) and server connections run
    read-only transactions.
    """
    key = ("ro:" if readonly else "") + url
    with _engines_lock:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, object] = {}
        if sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        else:
            # A server that went away (restarted, network) is noticed before use.
            kwargs["pool_pre_ping"] = True
            if parsed.get_backend_name() == "postgresql":
                connect_args: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_S}
                if readonly:
                    connect_args["options"] = "-c default_transaction_read_only=on"
                kwargs["connect_args"] = connect_args
        engine = create_engine(readonly_url(url) if readonly else url, **kwargs)
        if sqlite:
            event.listen(engine, "connect", _on_connect_readonly if readonly else _on_connect)
            event.listen(engine, "begin", _on_begin)
        _engines[key] = engine
        while len(_engines) > MAX_ENGINES:
            # Closes the pooled connections; one in use closes when returned, and
            # whoever still holds the engine gets new connections on its next use.
            _engines.popitem(last=False)[1].dispose()
        return engine


def dispose_engines(url: str | None = None) -> None:
    """Close the pooled connections of one database's engines (or of every engine).

    For long-lived processes and before a server database is dropped; the
    next use opens new connections.
    """
    with _engines_lock:
        keys = [k for k in _engines if url is None or k in (url, "ro:" + url)]
        engines = [_engines.pop(k) for k in keys]
    for engine in engines:
        engine.dispose()


def host_name() -> str:
    """This machine's name as runs record it: ``$TRACKER_HOST`` if set, else the host name.

    Set ``TRACKER_HOST`` where the host name is not stable (containers that
    get a new name at each start), so liveness checks find their own runs.
    """
    return os.environ.get("TRACKER_HOST") or socket.gethostname()
