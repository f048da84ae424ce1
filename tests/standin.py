"""A local stand-in for a web service: a real HTTP server on 127.0.0.1 in a thread, answering
each request from a script (a function of path and query), recording every request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    status: int = 200
    body: bytes | str = b""
    headers: dict = field(default_factory=dict)
    content_type: str = "application/xml"
    truncate: bool = False  # announce the full length, send half, close: a transfer cut short


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class StandIn:
    """`with StandIn(route) as s:` serves at `s.url`; `route(request) -> Answer`; `s.requests`."""

    def __init__(self, route: Callable[[Request], Answer]):
        self.route = route
        self.requests: list[Request] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                parts = urlsplit(self.path)
                req = Request(parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}, dict(self.headers))
                outer.requests.append(req)
                answer = outer.route(req)
                body = answer.body.encode() if isinstance(answer.body, str) else answer.body
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                if answer.truncate:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def scripted(*answers: Answer | Callable[[Request], Answer]) -> Callable[[Request], Answer]:
    """A route answering with each of `answers` in turn, then repeating the last."""
    queue = list(answers)

    def route(req: Request) -> Answer:
        a = queue.pop(0) if len(queue) > 1 else queue[0]
        return a(req) if callable(a) else a

    return route
