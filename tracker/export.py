"""Deprecated: moved to ``tracker.views.export``; this name keeps working with a DeprecationWarning."""

import warnings

from tracker.views.export import export, export_rows, read_csv

__all__ = ["export", "export_rows", "read_csv"]

warnings.warn(
    "tracker.export moved to tracker.views.export; import it from there (the old name will be removed).",
    DeprecationWarning,
    stacklevel=2,
)
