"""The dashboard's one HTML shell, for the server and for the static report.

The server's page links the files in ``static/``; the report inlines the
same files and the data, under a Content Security Policy that allows only
those inline scripts (by hash) and no network at all. No user string is
ever put into the HTML: the scripts fill the page with ``textContent``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any

__all__ = ["SCRIPTS", "STYLES", "server_page", "report_page"]

STATIC = Path(__file__).resolve().parent / "static"
#: The scripts of every page, in load order (uPlot first, the router last).
SCRIPTS = ("uPlot.iife.min.js", "core.js", "charts.js", "runs.js", "run.js", "compare.js", "app.js")
STYLES = ("uPlot.min.css", "style.css")

_SHELL = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
$csp<title>tracker</title>
<link rel="icon" href="data:,">
$styles
</head>
<body data-mode="$mode">
<header class="top">
  <a class="brand" href="/" data-route="/">tracker</a>
  <nav><a href="/" data-route="/">Runs</a></nav>
  <span id="database" class="database"></span>
  <span id="live" class="live-state" hidden>live</span>
</header>
<main id="app"><p class="loading">Loading&hellip;</p></main>
$data$scripts
</body>
</html>
""")


@lru_cache(maxsize=None)
def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@lru_cache(maxsize=1)
def server_page() -> str:
    """Return the HTML of every dashboard page: the shell, linking ``/static``."""
    return _SHELL.substitute(
        csp="",
        mode="server",
        styles="\n".join(f'<link rel="stylesheet" href="/static/{n}">' for n in STYLES),
        data="",
        scripts="\n".join(f'<script src="/static/{n}"></script>' for n in SCRIPTS),
    )


def report_page(responses: dict[str, Any]) -> str:
    """Return a self-contained report page holding ``responses``.

    Args:
        responses: API answers by request path (``/api/runs/ID/epochs``...),
            as ``tracker.ui.report`` collects them; the scripts read these
            instead of fetching.

    Returns:
        HTML with every script, style and datum inline, and a CSP allowing
        only those scripts and styles and no connection.

    Raises:
        ValueError: a vendored script contains ``</script`` (it could not be inlined).
    """
    from tracker.ui.jsonable import dumps

    scripts = [_read(n) for n in SCRIPTS]
    styles = [_read(n) for n in STYLES]
    for name, text in zip(SCRIPTS + STYLES, scripts + styles):
        if "</script" in text.lower() or "</style" in text.lower():
            raise ValueError(f"static/{name} contains a closing tag and cannot be inlined.")
    payload = dumps(responses).decode("utf-8")
    # Inside <script type="application/json"> only "</" could end the element.
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    json.loads(payload)  # still the same JSON
    csp = (
        "default-src 'none'; script-src " + " ".join(_sha256(s) for s in scripts)
        + "; style-src " + " ".join(_sha256(s) for s in styles) + "; img-src data:; base-uri 'none'; form-action 'none'"
    )
    return _SHELL.substitute(
        csp=f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n',
        mode="report",
        styles="\n".join(f"<style>{s}</style>" for s in styles),
        data=f'<script type="application/json" id="report-data">{payload}</script>\n',
        scripts="\n".join(f"<script>{s}</script>" for s in scripts),
    )
