"""The tracker's exceptions: one small hierarchy whose messages say what to do next."""

from __future__ import annotations

__all__ = [
    "TrackerError",
    "DatabaseError",
    "NotADatabaseError",
    "DatabaseNotFoundError",
    "UnsupportedDatabaseError",
    "SchemaOutdatedError",
    "SchemaTooNewError",
    "InvalidArgumentError",
    "UnknownRunError",
    "ModelFileError",
    "DeletedRunError",
    "EditRefusedError",
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


class UnsupportedDatabaseError(DatabaseError, ValueError):
    """The path or URL names no database the tracker can use: empty, malformed, not SQLite or PostgreSQL, or its driver is missing."""


class SchemaOutdatedError(DatabaseError):
    """The database has an older schema; reading it needs ``tracker db upgrade`` first."""


class SchemaTooNewError(DatabaseError):
    """The database was written by a newer version of the tracker."""


class InvalidArgumentError(TrackerError, ValueError):
    """An argument of a read, report, plot or export is not understood (the message says what is)."""


class UnknownRunError(TrackerError, LookupError):
    """No run matches the given reference."""


class DeletedRunError(UnknownRunError):
    """The run is in the trash (``tracker delete``); the message says how to undelete it."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class EditRefusedError(TrackerError):
    """An edit of runs was refused: a run is still training, or the database role may not change it."""


class UnknownExperimentError(InvalidArgumentError, LookupError):
    """No experiment has the given name (the message names close ones)."""


class ModelFileError(TrackerError, ValueError):
    """A model file given to ``tracker which`` is missing, not a Keras model or weights file, or corrupt."""


class TrackingWriteError(TrackerError):
    """Writing the record failed and the callback runs in strict mode."""


class TrackingWarning(UserWarning):
    """The tracker could not record something; training goes on."""
