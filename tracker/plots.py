"""Deprecated: moved to ``tracker.views.plots``; this name keeps working with a DeprecationWarning."""

import warnings

from tracker.views.plots import FORMATS, plot_runs

__all__ = ["FORMATS", "plot_runs"]

warnings.warn(
    "tracker.plots moved to tracker.views.plots; import it from there (the old name will be removed).",
    DeprecationWarning,
    stacklevel=2,
)
