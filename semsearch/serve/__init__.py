"""A local web app and JSON API over an index (`semsearch serve`); needs `pip install 'semsearch[serve]'`.

`create_app(index)` is the FastAPI app (pages and `/api/...`); `serve(index, host, port)` runs it
with uvicorn until Ctrl-C. fastapi and uvicorn are imported only when these are called.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import SemsearchError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def default_threads() -> int:
    """Requests answered at once: twice the cores, at least 4. Each is CPU work (embedding, FAISS,
    numpy) under one GIL, so more threads only contend: on the 2-core machine, 16 clients of the 75k
    index got search p99 136 ms with 40 threads and 90 ms with 4 (docs/benchmarks.md)."""
    return max(4, 2 * (os.cpu_count() or 1))


def create_app(index, **kwargs):
    """The FastAPI app over `index`; see `semsearch.serve.app.create_app`."""
    _require()
    from .app import create_app as make

    return make(index, **kwargs)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    index: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    embedder=None,
    threads: int | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> None:
    """Serve the web app and API over `index` until interrupted (Ctrl-C ends cleanly).

    Only this machine can connect unless `host` is another address (then `say` warns). Port 0
    picks a free port; the URL is passed to `say`. `threads`: requests answered at once (default
    `default_threads()`); others wait their turn.

    Raises:
        IndexNotFound, IndexFormatError, ModelMismatch: the index cannot be opened.
        SemsearchError: the extra is not installed, or the address cannot be bound.
    """
    _require()
    import uvicorn

    from .app import LOOPBACK_HOSTS
    from .app import create_app as make
    from .live import one_thread_per_query

    loopback = is_loopback(host)
    if not loopback:
        say(f"warning: serving on {host}: anyone who can reach this machine on port {port} can read the index "
            f"(read-only); use --host 127.0.0.1 to keep it local")
    if threads is not None and threads < 1:
        raise SemsearchError(f"--threads must be at least 1, got {threads}")
    app = make(index, embedder=embedder, allowed_hosts=LOOPBACK_HOSTS if loopback else None,
               threads=threads or default_threads())
    live = app.state.live
    one_thread_per_query()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit it: without, a keep-alive response written in two parts waits
        # ~40 ms for the client's delayed ACK (Nagle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            raise SemsearchError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port or --host"
            ) from None
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5)
        # listening before the URL is printed: a client that connects as soon as it reads the URL
        # waits in the backlog until the server starts, instead of being refused
        sock.listen(config.backlog)
        shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
        say(f"serving {live.info['path']} ({live.info['count']:,} papers) at http://{shown}:{sock.getsockname()[1]}/ "
            f"(API docs at /docs); Ctrl-C to stop")
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn shuts down gracefully, then re-raises the Ctrl-C it caught
            pass
    finally:
        sock.close()
        live.close()
    say("stopped")


def _require() -> None:
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise SemsearchError(f"semsearch serve needs {exc.name}: pip install 'semsearch[serve]'") from None
