"""The local dashboard: ``tracker ui`` (a read-only web server) and ``tracker report`` (a static HTML file).

Layout: ``data`` (every database read, shaped for the JSON API) →
``app`` (the Starlette routes) → ``server`` (uvicorn, binding) and
``report`` (the self-contained file); ``page`` is the HTML shell both use,
``static/`` the scripts, styles and the vendored uPlot. Imports neither
Keras nor TensorFlow; Starlette and uvicorn are imported only when a
command needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracker.ui.app import create_app
    from tracker.ui.report import report_html, write_report

__all__ = ["create_app", "report_html", "write_report"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tracker.ui.app import create_app

        return create_app
    if name in ("report_html", "write_report"):
        from tracker.ui import report

        return getattr(report, name)
    raise AttributeError(f"module 'tracker.ui' has no attribute {name!r}")
