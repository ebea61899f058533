"""Engines for the tracking database: URL resolution, SQLite pragmas, opening.

One engine per database URL per process. SQLite connections get WAL,
foreign keys and a busy timeout on the pool's ``connect`` event, and every
transaction is opened explicitly (``BEGIN`` or ``BEGIN IMMEDIATE`` for
writers) so that Python's sqlite3 module does not open them behind our back.
"""

from __future__ import annotations

import logging
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
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tracker.errors import DatabaseError, DatabaseNotFoundError, NotADatabaseError, UnsupportedDatabaseError

__all__ = [
    "DEFAULT_DB",
    "host_name",
    "resolve_url",
    "get_engine",
    "dispose_engines",
    "readonly_url",
    "check_readable",
    "describe",
    "display_name",
    "sqlite_path",
    "checkpoint_wal",
    "SUPPORTED_BACKENDS",
]

DEFAULT_DB = "tracker.db"
#: The databases the tracker stores runs in (an SQLAlchemy URL's backend name).
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
#: Query parameters of a URL whose values are never shown (libpq's password, sslpassword...).
_SECRET_PARAMS = ("password", "secret", "token")
BUSY_TIMEOUT_MS = 30_000
#: Seconds a server connection attempt may take (libpq's ``connect_timeout``).
CONNECT_TIMEOUT_S = 3

#: Engines kept open at once. A process that reads many database files one
#: after another (``for f in files: Store(f)``) keeps the pooled connections
#: of the most recent ones; older engines are disposed (three open files per
#: SQLite connection: the database, its WAL and its shared memory).
MAX_ENGINES = 16

logger = logging.getLogger(__name__)

_engines: OrderedDict[str, Engine] = OrderedDict()
_engines_lock = threading.Lock()


def resolve_url(db: str | os.PathLike[str]) -> str:
    """Return an SQLAlchemy URL for a path or URL.

    A plain path (relative paths are taken from the current directory) becomes
    ``sqlite:///ABSOLUTE_PATH``; a string containing ``://`` is taken as an
    SQLAlchemy URL and returned unchanged.

    Raises:
        UnsupportedDatabaseError: (a DatabaseError and a ValueError) ``db`` is
            empty, not a valid URL, a URL of a database
            the tracker does not support (only SQLite and PostgreSQL), or one
            whose driver is not installed.
    """
    text = os.fspath(db)
    if not text:
        raise UnsupportedDatabaseError("The database path is empty; pass a file path such as 'tracker.db'.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsupportedDatabaseError(
            f"The database path {_printable(text)} is not valid UTF-8 (a file name with undecodable bytes), which "
            "SQLite URLs cannot hold; choose a path without them."
        ) from None
    if "://" in text:
        scheme = text.split("://", 1)[0]
        try:
            parsed = make_url(text)
        except ArgumentError:
            raise UnsupportedDatabaseError(
                f"The database URL ({_printable(scheme)}://...) is not a valid SQLAlchemy URL; check its form, "
                "e.g. postgresql+psycopg://user:password@host/dbname."
            ) from None
        _check_supported(parsed)
        return text
    # Rendered by SQLAlchemy, so a path holding ?, #, % or spaces stays that path.
    return URL.create("sqlite", database=str(Path(text).expanduser().resolve())).render_as_string()


def _printable(text: str) -> str:
    return repr(text[:60])[1:-1]


def _check_supported(parsed: URL) -> None:
    """Refuse, in one sentence, a URL of a database the tracker does not support or whose driver is missing."""
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        import difflib

        close = difflib.get_close_matches(backend, SUPPORTED_BACKENDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UnsupportedDatabaseError(
            f"The tracker keeps runs in a SQLite file or a PostgreSQL database, not {_printable(backend)}{hint}; "
            "pass a file path or a URL such as postgresql+psycopg://user@host/dbname."
        )
    try:
        parsed.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError):
        raise UnsupportedDatabaseError(
            f"The driver of {_printable(parsed.drivername)}:// is not installed; pass a file path, or "
            "postgresql+psycopg://user@host/dbname for PostgreSQL (pip install 'keras-run-tracker[postgres]')."
        ) from None


def sqlite_path(url: str) -> Path | None:
    """Return the file of a file-based SQLite URL, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def describe(url: str) -> str:
    """Return a database as the CLI names it: its path, or the URL with every password masked.

    A password is masked as ``***`` both in ``user:password@`` and in the
    query (``?password=``, ``?sslpassword=``, any parameter whose name holds
    ``password``, ``secret`` or ``token``).
    """
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    parsed = make_url(url)
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    pairs = []
    for key, values in parsed.query.items():
        hidden = any(s in key.lower() for s in _SECRET_PARAMS)
        for value in (values,) if isinstance(values, str) else values:
            pairs.append(f"{quote(key, safe='')}={'***' if hidden else quote(value, safe='')}")
    return shown + ("?" + "&".join(pairs) if pairs else "")


def display_name(url: str) -> str:
    """Return a database as the dashboard and reports name it: no folder, user or password.

    A SQLite file's name (``runs.db``), else ``host:port/dbname`` (``dbname``
    alone for a server reached without a host in the URL).
    """
    path = sqlite_path(url)
    if path is not None:
        return path.name
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return "in-memory database" if not parsed.database or parsed.database == ":memory:" else "SQLite database"
    where = (parsed.host or "") + (f":{parsed.port}" if parsed.port and parsed.host else "")
    return f"{where}/{parsed.database or ''}" if where else str(parsed.database or parsed.get_backend_name())


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
    """Raise NotADatabaseError if ``path`` is a non-empty file that is not SQLite.

    The header is read through SQLite itself (read-only, ``immutable=1``),
    never with Python's ``open()``: closing a file descriptor drops every
    POSIX lock the process holds on that file, so a plain read while this
    process has the database open (the recorder's connection, a ``Store``)
    would let another process's closing connection take the file for its
    last user and delete the write-ahead log under the live one. SQLite
    keeps such a descriptor open until its own connections are done.
    """
    if not path.exists():
        return
    if path.is_dir():
        raise NotADatabaseError(f"{path} is a directory, not a SQLite database file.")
    uri = f"file:{quote(str(path), safe='/')}?mode=ro&immutable=1"
    try:
        probe = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise DatabaseError(f"Cannot read {path}: {exc}.") from None
    try:
        probe.execute("PRAGMA schema_version").fetchall()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", None) == "SQLITE_NOTADB":
            raise NotADatabaseError(f"{path} is not a SQLite database (wrong file header).") from None
        # A damaged file with a valid header: opening it reports what is wrong, in one sentence.
    finally:
        probe.close()


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
    """The URL that opens ``url`` for reading only (SQLite: ``mode=ro``; servers: read-only transactions).

    A SQLite file whose folder cannot be written (a read-only mount, a
    folder without write permission) is read through its write-ahead log
    and index (``mode=ro``) where both are there, else as it is
    (``immutable=1``: no log, so the file holds everything). Neither writes
    anything.

    Raises:
        DatabaseError: the folder is read-only and holds a write-ahead log
            with records but not its ``-shm`` index, which SQLite needs to
            read the log and cannot create there.
    """
    path = sqlite_path(url)
    if path is None:
        return url
    mode = "mode=ro"
    if not os.access(path.parent, os.W_OK):
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        if wal.exists() and shm.exists():
            mode = "mode=ro"
        elif wal.exists() and wal.stat().st_size > 0:
            raise DatabaseError(
                f"Cannot read {path}: its last writer left records in {wal.name} without {shm.name}, and its "
                "folder is read-only; copy the file and its -wal file to a writable folder and read the copy."
            )
        else:
            mode = "immutable=1"
    # SQLAlchemy unquotes the URL once and SQLite decodes the URI once more,
    # so a path holding ?, #, % or spaces is quoted twice.
    return f"sqlite:///file:{quote(quote(str(path), safe='/'), safe='/')}?{mode}&uri=true"


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


def checkpoint_wal(engine: Engine, *, wait: float = 2.0) -> bool:
    """Copy every committed transaction of an SQLite database's write-ahead log into its file.

    A ``FULL`` checkpoint: it waits (at most ``wait`` seconds) for readers
    still on an older snapshot, such as ``tracker ui`` in the middle of a
    poll, and copies the whole log. Then, if no reader is inside the log, it
    empties it (``TRUNCATE``, without waiting). A checkpoint that copies only
    part of the log leaves a file that is consistent only together with its
    log; that happens only if a reader keeps one snapshot open for longer
    than ``wait`` (the records stay safe in the log).

    Returns:
        True if the database file alone now holds every committed record
        (always True for a server database). Never raises.
    """
    if engine.dialect.name != "sqlite":
        return True
    try:
        with engine.connect() as conn:
            raw: Any = conn.connection.driver_connection
            raw.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
            try:
                busy = raw.execute("PRAGMA wal_checkpoint(FULL)").fetchone()[0]
                if not busy:
                    raw.execute("PRAGMA busy_timeout = 0")
                    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except Exception as exc:  # noqa: BLE001 - the records are safe in the log
        logger.warning("tracker: could not checkpoint %s: %s", engine.url, exc)
        return False
    return not busy


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
    name = os.environ.get("TRACKER_HOST") or socket.gethostname()
    # As stored: an environment variable can hold bytes that are not UTF-8.
    return name.encode("utf-8", "backslashreplace").decode("utf-8")
