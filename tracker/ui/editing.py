"""The dashboard's edits (``tracker ui --edit``): rename, tags, note, delete and undo, and who may ask.

Read-only by default: without ``--edit`` every edit request is refused. With
it, a request that changes a run must

* be a ``POST`` of a JSON object (``Content-Type: application/json``),
* carry the server's token in ``X-Tracker-Token``: a random value made when
  the server starts and delivered only inside its own page (a
  ``<meta name="tracker-edit-token">``), which another site cannot read,
* and come from the page's own origin: an ``Origin`` header naming this
  server exactly as the request's ``Host`` does (the ``Host`` itself is
  checked first by ``tracker.ui.app.HostGuard``).

Anything else gets a 403 with a JSON error, before any database work. A
page on another site can make a browser send a form or a ``no-cors`` fetch
here, but it cannot set the token header without a CORS preflight (which
this server never grants) and it cannot forge the browser's ``Origin``.

The edits go through ``tracker.RunManager``; its errors become JSON: an
unknown or deleted run 404, bad input 400, an edit refused (a run still
training, a database role that may not) 409.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracker.errors import EditRefusedError, InvalidArgumentError, TrackerError, UnknownRunError
from tracker.manage import RunManager, RunRow
from tracker.ui.data import RUN_ID
from tracker.ui.jsonable import dumps, jsonable

__all__ = ["TOKEN_HEADER", "EditGate", "edit_routes", "new_token"]

#: The request header that carries the server's edit token.
TOKEN_HEADER = "x-tracker-token"
#: The largest edit request body read, in bytes (a note of a few pages).
MAX_BODY = 256 * 1024


def new_token() -> str:
    """A fresh random token for one server (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def _answer(status: int, content: Any) -> Response:
    return Response(dumps(content), status_code=status, media_type="application/json")


def _refuse(status: int, message: str) -> Response:
    return _answer(status, {"error": message, "status": status})


class EditGate:
    """Decides whether a request may change runs (see the module docstring).

    Args:
        token: The server's token; None for a read-only dashboard.
    """

    def __init__(self, token: str | None) -> None:
        self.token = token

    def refusal(self, request: Request) -> Response | None:
        """The 403 answer for a request that may not change runs, or None if it may."""
        if self.token is None:
            return _refuse(403, "This dashboard is read-only; start it with 'tracker ui --edit' to change runs.")
        origin = request.headers.get("origin")
        host = request.headers.get("host")
        own = f"{request.url.scheme}://{host}".lower() if host else None
        if origin is None or own is None or origin.lower() != own:
            return _refuse(403, "Refused: a change must come from this dashboard's own page (same origin).")
        given = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode()):
            return _refuse(403, "Refused: the request lacks this server's edit token; reload the dashboard's page.")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return _refuse(403, "Refused: a change is a JSON request (Content-Type: application/json).")
        return None


def _row(row: RunRow) -> dict[str, Any]:
    return jsonable({"id": row.id, "name": row.name, "status": row.status, "deleted_at": row.deleted_at})


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidArgumentError(f"The request is larger than {MAX_BODY // 1024} KiB.")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidArgumentError("The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise InvalidArgumentError("The request body must be a JSON object.")
    return body


def _run_id(request: Request) -> str:
    run_id = str(request.path_params["run_id"])
    if not RUN_ID.fullmatch(run_id):
        raise UnknownRunError(f"{run_id[:40]!r} is not a run id (32 hex digits).")
    return run_id


def edit_routes(gate: EditGate, manager: Callable[[], RunManager]) -> list[Route]:
    """The ``POST /api/runs/{run_id}/...`` routes (answered 403 unless ``gate`` lets the request through).

    * ``name``: ``{"name": "new"}``;
    * ``tags``: ``{"set": {"key": "value"}, "remove": ["key"]}`` (either may be left out);
    * ``note``: ``{"text": "...", "append": false}``;
    * ``delete`` and ``undelete``: ``{}``.

    Each answers ``{"run": {id, name, status, deleted_at}}`` (and ``tags``
    or ``note`` for those), or ``{"error": "..."}``.

    Args:
        gate: Who may change runs.
        manager: Returns the ``RunManager`` (opened on first use).
    """

    def edit(action: Callable[[RunManager, str, dict[str, Any]], dict[str, Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            refused = gate.refusal(request)
            if refused is not None:
                return refused
            try:
                run_id, body = _run_id(request), await _body(request)
                return _answer(200, await run_in_threadpool(action, manager(), run_id, body))
            except UnknownRunError as exc:
                return _refuse(404, str(exc))
            except EditRefusedError as exc:
                return _refuse(409, str(exc))
            except TrackerError as exc:
                return _refuse(400, str(exc))

        return endpoint

    def rename(m: RunManager, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str):
            raise InvalidArgumentError("Give the new name as {\"name\": \"...\"}.")
        row = m.rename(run_id, name)
        return {"run": {**_row(row), "name": name}}

    def tags(m: RunManager, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        given, remove = body.get("set") or {}, body.get("remove") or []
        if not isinstance(given, dict) or not isinstance(remove, list):
            raise InvalidArgumentError("Give tags as {\"set\": {\"key\": \"value\"}, \"remove\": [\"key\"]}.")
        return {"tags": m.tag(run_id, given, remove=remove)}

    def note(m: RunManager, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        text, append = body.get("text"), body.get("append", False)
        if not isinstance(text, str) or not isinstance(append, bool):
            raise InvalidArgumentError("Give the note as {\"text\": \"...\", \"append\": false}.")
        return {"note": m.note(run_id, text, append=append)}

    def delete(m: RunManager, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"run": _row(m.delete([run_id])[0])}

    def undelete(m: RunManager, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"run": _row(m.undelete([run_id])[0])}

    return [
        Route(f"/api/runs/{{run_id}}/{name}", edit(action), methods=["POST"])
        for name, action in (("name", rename), ("tags", tags), ("note", note), ("delete", delete),
                             ("undelete", undelete))
    ]
