"""The dashboard's web app: pages, the JSON API and the vendored static files.

A Starlette app over ``tracker.ui.data.Dashboard``. Every answer is JSON or
a static file; no request ever gets a traceback (errors are
``{"error": "..."}`` with a 4xx/5xx status). Pages are one HTML shell and
scripts that build the DOM with ``textContent`` only, under a Content
Security Policy that allows scripts from this server alone, so a hostile
run name is shown as text. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tracker.errors import UnknownRunError
from tracker.store.liveness import HEARTBEAT_TIMEOUT
from tracker.ui.data import BadRequest, Dashboard
from tracker.ui.jsonable import dumps
from tracker.ui.page import server_page

__all__ = ["create_app", "STATIC", "LOCAL_HOSTS"]

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
#: Host headers accepted when the server listens on a loopback address.
LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class JSON(Response):
    """A JSON answer with exact floats and NaN/±inf as strings (``tracker.ui.jsonable``)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def _error(status: int, message: str) -> JSON:
    return JSON({"error": message, "status": status}, status_code=status)


class SecurityHeaders:
    """ASGI middleware adding the CSP and the other security headers to every answer."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _query_int(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest(f"{name} must be a positive integer.")
    return int(raw)


def _query_text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is not None and (len(raw) > 500 or "\x00" in raw):
        raise BadRequest(f"{name} is too long or holds a NUL character.")
    return raw or None


def create_app(
    db: str, *, heartbeat_timeout: float = HEARTBEAT_TIMEOUT, allowed_hosts: list[str] | None = None
) -> Starlette:
    """Return the dashboard app for one database, opened read-only.

    Args:
        db: A file path or an SQLAlchemy URL.
        heartbeat_timeout: See ``tracker.Store``. Default 120.
        allowed_hosts: Host headers to answer (a guard against DNS
            rebinding). Default ``LOCAL_HOSTS``; ``["*"]`` answers any.

    Raises:
        DatabaseError: the database cannot be read (one sentence; an older
            schema asks for ``tracker db upgrade``).

    Example:
        ```python
        import uvicorn
        uvicorn.run(create_app("runs.db"), host="127.0.0.1", port=8765)
        ```
    """
    data = Dashboard(db, heartbeat_timeout=heartbeat_timeout)

    def page(request: Request) -> Response:
        return HTMLResponse(server_page())

    def api_runs(request: Request) -> Response:
        text = data.runs_json(
            metric=_query_text(request, "metric"),
            status=_query_text(request, "status"),
            name=_query_text(request, "name"),
            limit=_query_int(request, "limit", None),
        )
        return Response(text, media_type="application/json")

    def api_keys(request: Request) -> Response:
        return JSON({"keys": data.metric_keys(), "database": data.name})

    def api_run(request: Request) -> Response:
        return JSON(data.run(request.path_params["run_id"]))

    def api_epochs(request: Request) -> Response:
        return JSON(data.epochs(request.path_params["run_id"]))

    def api_batches(request: Request) -> Response:
        phase = _query_text(request, "phase") or "fit"
        points = _query_int(request, "points", 2000)
        return JSON(data.batches(request.path_params["run_id"], phase=phase, points=points or 0))

    def api_compare(request: Request) -> Response:
        return JSON(data.compare(request.query_params.getlist("run")))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if request.url.path.startswith("/api/") or status >= 500:
            message = "no such API endpoint" if status == 404 else str(detail)
            return _error(status, message)
        return HTMLResponse(f"<!doctype html><title>{status}</title><p>{status}: not found. "
                            f"<a href=\"/\">Runs</a></p>", status_code=status)

    async def on_unknown_run(request: Request, exc: Exception) -> Response:
        return _error(404, str(exc))

    async def on_bad_request(request: Request, exc: Exception) -> Response:
        return _error(400, str(exc))

    async def on_crash(request: Request, exc: Exception) -> Response:
        logger.exception("tracker ui: %s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    routes = [
        Route("/", page),
        Route("/runs/{run_id}", page),
        Route("/compare", page),
        Route("/api/runs", api_runs),
        Route("/api/keys", api_keys),
        Route("/api/compare", api_compare),
        Route("/api/runs/{run_id}", api_run),
        Route("/api/runs/{run_id}/epochs", api_epochs),
        Route("/api/runs/{run_id}/batches", api_batches),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOCAL_HOSTS),
        ],
        exception_handlers={
            HTTPException: on_http_error,
            UnknownRunError: on_unknown_run,
            BadRequest: on_bad_request,
            Exception: on_crash,
        },
    )
