"""Serving the dashboard with uvicorn: binding, the non-local warning, a server in a thread.

The socket is bound before uvicorn starts, so a port in use is one clear
sentence and ``port=0`` picks a free port whose number is known at once.
"""

from __future__ import annotations

import errno
import gc
import ipaddress
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["is_local", "exposure_warning", "allowed_hosts", "bind", "url_of", "serve", "running_server"]


def is_local(host: str) -> bool:
    """True if ``host`` is a loopback address or ``localhost``."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """The warning to print when ``host`` is not a loopback address, else None."""
    if is_local(host):
        return None
    return (
        f"Warning: listening on {host}, so other machines can reach the dashboard. It has no login "
        "and shows every run, param and tag in the database; use --host 127.0.0.1 unless you mean it."
    )


def _machine_names() -> list[str]:
    names = ["localhost"]
    for lookup in (socket.gethostname, socket.getfqdn):
        try:
            names.append(lookup())
        except OSError:  # pragma: no cover - a machine without a usable name
            continue
    return names


def allowed_hosts(host: str, sock: socket.socket, extra: Sequence[str] = ()) -> list[str]:
    """The ``Host`` names the dashboard answers to when served on ``sock`` (bound to ``host``).

    Exactly: ``host`` as given (unless it is a wildcard such as ``0.0.0.0``),
    the address the socket is bound to, the machine's names (``localhost``,
    its host name and fully qualified name), the loopback addresses when the
    socket is bound to a loopback or wildcard address, and ``extra`` (the
    ``--allow-host`` names). A request naming the address it came in on is
    answered as well (``tracker.ui.app.HostGuard``), so a dashboard bound to
    ``0.0.0.0`` answers ``http://ITS-LAN-ADDRESS:PORT``. Any other name is
    refused: that is how a DNS-rebinding page would name it.

    Returns:
        The names, lowercased, without IPv6 brackets, each once.
    """
    address = ipaddress.ip_address(str(sock.getsockname()[0]).split("%")[0])
    names = [] if host.strip("[]") in ("", "0.0.0.0", "::") else [host]
    names += ([] if address.is_unspecified else [str(address)]) + _machine_names()
    if address.is_loopback or address.is_unspecified:
        names += ["127.0.0.1", "::1"]
    names += list(extra)
    return list(dict.fromkeys(n.strip().lower().strip("[]").rstrip(".") for n in names if n.strip()))


def bind(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket on ``host:port`` (``port=0``: a free port).

    Raises:
        OSError: the host cannot be resolved, or the address is in use or
            cannot be bound, with one sentence.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise OSError(f"Cannot resolve the host {host!r}: {exc.strerror}.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        advice = "pass another --port" if exc.errno == errno.EADDRINUSE else "check --host"
        raise OSError(f"Cannot listen on {host}:{port}: {exc.strerror}; {advice}.") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http URL a bound socket answers on."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _server(app: Any, sock: socket.socket) -> Any:
    import uvicorn

    # The imports (pandas, SQLAlchemy, Starlette) leave some 10^5 objects that
    # the cyclic GC would rescan at every full collection, and a request that
    # builds 10,000 run objects triggers several: freezing them first cuts
    # /api/runs by about a third.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until interrupted (Ctrl+C)."""
    _server(app, sock).run(sockets=[sock])


@contextmanager
def running_server(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` in a background thread; yield its base URL; stop it on exit.

    Example:
        ```python
        with running_server(create_app("runs.db")) as url:
            urllib.request.urlopen(url + "/api/runs").read()
        ```
    """
    sock = bind(host, port)
    server = _server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="tracker-ui")
    thread.start()
    try:
        ready = threading.Event()
        while not server.started and thread.is_alive():
            ready.wait(0.01)
        if not server.started:
            raise RuntimeError("the dashboard server did not start")
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
