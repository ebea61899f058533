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

__all__ = ["SCRIPTS", "STYLES", "server_page", "report_page", "bundle"]

STATIC = Path(__file__).resolve().parent / "static"
#: The scripts of every page, in load order (uPlot first, the router last).
SCRIPTS = ("uPlot.iife.min.js", "core.js", "reportdata.js", "axes.js", "tools.js", "charts.js", "curvedata.js", "keys.js",
           "lazy.js", "runcols.js", "edit.js", "runs.js", "system.js", "run.js", "difftable.js", "compare.js", "plotkit.js",
           "parallel.js", "experiment.js", "app.js")
STYLES = ("uPlot.min.css", "style.css", "experiment.css")

_SHELL = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
$csp$token<title>tracker</title>
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


@lru_cache(maxsize=2)
def bundle(kind: str) -> tuple[str, str]:
    """The page's scripts (``kind`` "js") or styles ("css") joined in load order, and a digest of them.

    The server's page links the two bundles (``/static/bundle-DIGEST.js``): two requests instead of
    twenty-three before the first rows can be drawn, cached by the browser for as long as the files
    are the same (the digest changes with them).
    """
    names = SCRIPTS if kind == "js" else STYLES
    # Every script of ours is strict (uPlot's is inside its own function): the bundle says so once, first.
    text = '"use strict";\n' + "\n;\n".join(_read(n) for n in names) if kind == "js" else "\n".join(
        _read(n) for n in names)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@lru_cache(maxsize=4)
def server_page(edit_token: str | None = None) -> str:
    """Return the HTML of every dashboard page: the shell, linking ``/static``.

    With ``edit_token`` (``tracker ui --edit``), the page carries the
    server's token in ``<meta name="tracker-edit-token">`` (URL-safe
    characters only), which the scripts send with each edit.
    """
    if edit_token is not None and not (edit_token.isascii() and edit_token.replace("-", "").replace("_", "").isalnum()):
        raise ValueError("An edit token holds URL-safe characters only.")
    token = "" if edit_token is None else f'<meta name="tracker-edit-token" content="{edit_token}">\n'
    return _SHELL.substitute(
        csp="",
        token=token,
        mode="server",
        styles=f'<link rel="stylesheet" href="/static/bundle-{bundle("css")[1]}.css">',
        data="",
        scripts=f'<script src="/static/bundle-{bundle("js")[1]}.js"></script>',
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
        token="",
        mode="report",
        styles="\n".join(f"<style>{s}</style>" for s in styles),
        data=f'<script type="application/json" id="report-data">{payload}</script>\n',
        scripts="\n".join(f"<script>{s}</script>" for s in scripts),
    )
