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
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tracker.errors import InvalidArgumentError, UnknownRunError
from tracker.store.liveness import HEARTBEAT_TIMEOUT
from tracker.manage import RunManager
from tracker.ui.data import BadRequest, Dashboard
from tracker.ui.editing import EditGate, edit_routes, new_token
from tracker.ui.experiment import UnknownExperiment, curves_answer, sweep_answer
from tracker.ui.jsonable import dumps
from tracker.ui.page import bundle, server_page
from tracker.ui.system import system_answer
from tracker.views.terminal import printable

__all__ = ["create_app", "STATIC", "LOCAL_HOSTS", "HostGuard", "host_of"]

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
#: Host headers accepted when the server listens on a loopback address.
LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1"]

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


def host_of(header: str | None) -> str | None:
    """The host of a ``Host`` header, lowercased, without its port or IPv6 brackets; None if malformed."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1:]
        return header[1:end] if end > 1 and (not rest or rest[:1] == ":" and rest[1:].isdigit()) else None
    name, sep, port = header.partition(":")
    return name if name and (not sep or port.isdigit()) and ":" not in port else None


class HostGuard:
    """ASGI middleware answering only requests whose ``Host`` names this server (a guard against DNS rebinding).

    A host is accepted if it is one of ``allowed`` (case-insensitive; ``*``
    accepts any) or is the very address the connection came in on (a
    browser that typed the server's IP address). Anything else gets a JSON
    400: a page on another site that rebinds its own name to this machine
    sends that name.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], allowed: list[str]) -> None:
        self.app = app
        self.any = "*" in allowed
        self.allowed = {h.strip().lower().strip("[]").rstrip(".") for h in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = host_of(Headers(scope=scope).get("host"))
        server = scope.get("server")
        local = str(server[0]).lower() if server else None
        if host is not None and (host in self.allowed or host == local):
            await self.app(scope, receive, send)
            return
        shown = "no Host header" if host is None else f"the host {host[:80]!r}"
        message = (f"This dashboard answers only to its own address and names, not to {shown}; "
                   "start it with --allow-host NAME to add a name.")
        await _error(400, message)(scope, receive, send)


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
    db: str, *, heartbeat_timeout: float = HEARTBEAT_TIMEOUT, allowed_hosts: list[str] | None = None,
    edit: bool = False,
) -> Starlette:
    """Return the dashboard app for one database, opened read-only (unless ``edit``).

    Args:
        db: A file path or an SQLAlchemy URL.
        heartbeat_timeout: See ``tracker.Store``. Default 120.
        allowed_hosts: Host names to answer, besides the address each
            request came in on (a guard against DNS rebinding; see
            ``HostGuard`` and ``tracker.ui.server.allowed_hosts``). Default
            ``LOCAL_HOSTS``; ``["*"]`` answers any.
        edit: Let the page rename runs, set tags and notes, and move runs to
            the trash, through ``tracker.RunManager`` (see
            ``tracker.ui.editing`` for what a request needs: this server's
            token and its own origin). Default False: every edit request is
            refused.

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
    gate = EditGate(new_token() if edit else None)
    managers: list[RunManager] = []
    if edit:  # opened now: a database that cannot be written is one sentence at start-up
        managers.append(RunManager(db, heartbeat_timeout=heartbeat_timeout))

    def page(request: Request) -> Response:
        return HTMLResponse(server_page(gate.token))

    def static_bundle(request: Request) -> Response:
        name = "bundle-" + request.path_params["rest"]
        kind = name.rpartition(".")[2]
        if kind not in ("js", "css") or name != f"bundle-{bundle(kind)[1]}.{kind}":
            raise HTTPException(404, "no such file")
        media = "text/javascript" if kind == "js" else "text/css"
        return Response(bundle(kind)[0], media_type=f"{media}; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})

    def api_runs(request: Request) -> Response:
        text = data.runs_json(
            metric=_query_text(request, "metric"),
            status=_query_text(request, "status"),
            name=_query_text(request, "name"),
            limit=_query_int(request, "limit", None),
            experiment=_query_text(request, "experiment"),
        )
        return Response(text, media_type="application/json")

    def api_table(request: Request) -> Response:
        order = _query_text(request, "order") or "desc"
        if order not in ("asc", "desc"):
            raise BadRequest("order must be asc or desc.")
        text = data.table(
            where=request.query_params.get("where") or None, status=_query_text(request, "status"),
            experiment=_query_text(request, "experiment"), metric=_query_text(request, "metric"),
            sort=_query_text(request, "sort") or "started_at", descending=order == "desc",
            offset=_query_int(request, "offset", 0) or 0, limit=_query_int(request, "limit", 100) or 0,
            since=_query_text(request, "since"),
        )
        return Response(text, media_type="application/json")

    def api_run_keys(request: Request) -> Response:
        return JSON({"keys": data.keys(request.path_params["run_id"])})

    def api_curves(request: Request) -> Response:
        keys = request.query_params.getlist("key")
        if any(len(k) > 500 or "\x00" in k for k in keys):
            raise BadRequest("a key is too long or holds a NUL character.")
        return JSON(data.curves(request.path_params["run_id"], keys or None))

    def api_experiments(request: Request) -> Response:
        return JSON({"experiments": data.experiments()})

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

    def api_system(request: Request) -> Response:
        return JSON(system_answer(data.store, data.check_run(request.path_params["run_id"])))

    def api_compare(request: Request) -> Response:
        return JSON(data.compare(request.query_params.getlist("run")))

    def api_sweep(request: Request) -> Response:
        fanova = request.query_params.get("fanova") in ("1", "true")
        return Response(sweep_answer(data.store, _query_text(request, "experiment"),
                                     metric=_query_text(request, "metric"), fanova=fanova),
                        media_type="application/json")

    def api_sweep_curves(request: Request) -> Response:
        return Response(curves_answer(data.store, _query_text(request, "experiment"),
                                      metric=_query_text(request, "metric")), media_type="application/json")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if request.url.path.startswith("/api/") or status >= 500:
            message = "no such API endpoint" if status == 404 else str(detail)
            return _error(status, message)
        return HTMLResponse(f"<!doctype html><title>{status}</title><p>{status}: not found. "
                            f"<a href=\"/\">Runs</a></p>", status_code=status)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return _error(404, str(exc))

    async def on_bad_request(request: Request, exc: Exception) -> Response:
        return _error(400, str(exc))

    async def on_crash(request: Request, exc: Exception) -> Response:
        # The path is the client's: escaped, so no request can write escapes to the server's terminal.
        logger.exception("tracker ui: %s %s failed", request.method, printable(request.url.path))
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    routes = [
        Route("/", page),
        Route("/runs/{run_id}", page),
        Route("/compare", page),
        Route("/experiments/{name:path}", page),
        Route("/api/runs", api_runs),
        Route("/api/keys", api_keys),
        Route("/api/table", api_table),
        Route("/api/experiments", api_experiments),
        Route("/api/compare", api_compare),
        Route("/api/sweep", api_sweep),
        Route("/api/sweep/curves", api_sweep_curves),
        Route("/api/runs/{run_id}", api_run),
        Route("/api/runs/{run_id}/epochs", api_epochs),
        Route("/api/runs/{run_id}/keys", api_run_keys),
        Route("/api/runs/{run_id}/curves", api_curves),
        Route("/api/runs/{run_id}/batches", api_batches),
        Route("/api/runs/{run_id}/system", api_system),
        *edit_routes(gate, lambda: managers[0]),
        Route("/static/bundle-{rest:str}", static_bundle),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(HostGuard, allowed=allowed_hosts or LOCAL_HOSTS),
        ],
        exception_handlers={
            HTTPException: on_http_error,
            UnknownRunError: on_not_found,
            UnknownExperiment: on_not_found,
            BadRequest: on_bad_request,
            InvalidArgumentError: on_bad_request,
            Exception: on_crash,
        },
    )
