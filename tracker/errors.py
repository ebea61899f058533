"""The tracker's exceptions: one small hierarchy whose messages say what to do next."""

from __future__ import annotations

__all__ = [
    "TrackerError",
    "DatabaseError",
    "NotADatabaseError",
    "DatabaseNotFoundError",
    "SchemaOutdatedError",
    "SchemaTooNewError",
    "InvalidArgumentError",
    "UnknownRunError",
    "TrackingWriteError",
    "TrackingWarning",
]


class TrackerError(Exception):
    """Base class of every error the tracker raises on purpose."""


class DatabaseError(TrackerError):
    """The tracking database cannot be opened or used."""


class NotADatabaseError(DatabaseError):
    """The file exists but is not a SQLite database."""


class DatabaseNotFoundError(DatabaseError):
    """A read was asked of a database file that does not exist."""


class SchemaOutdatedError(DatabaseError):
    """The database has an older schema; reading it needs ``tracker db upgrade`` first."""


class SchemaTooNewError(DatabaseError):
    """The database was written by a newer version of the tracker."""


class InvalidArgumentError(TrackerError, ValueError):
    """An argument of a read, report, plot or export is not understood (the message says what is)."""


class UnknownRunError(TrackerError, LookupError):
    """No run matches the given reference."""


class TrackingWriteError(TrackerError):
    """Writing the record failed and the callback runs in strict mode."""


class TrackingWarning(UserWarning):
    """The tracker could not record something; training goes on."""
