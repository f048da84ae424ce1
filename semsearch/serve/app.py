"""The web app: a JSON API and server-rendered pages over one index, both calling the same library functions.

Read-only: no endpoint writes, none touches a path taken from the request. Every string a user or
a corpus supplies reaches a page through Jinja2's autoescaping; a Content-Security-Policy allows
only this server's own scripts and styles, so even a missed escape could not run a script.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, unquote_to_bytes

import jinja2
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..errors import QueryError, SemsearchError
from ..query import FACETS, MATCH_COSINE, SCORE_MEANING
from ..version import __version__
from . import pages
from .calls import NotFound, find_paper, group, paper_dict, search, similar
from .limits import MAX_GROUP_PAPERS, MAX_THEMES, RELATED_K
from .live import LiveIndex
from .models import (
    ErrorOut,
    HitOut,
    InfoOut,
    NoParams,
    PaperOut,
    PaperPageParams,
    SearchPageParams,
    SearchParams,
    SimilarOut,
    SimilarParams,
    ThemesOut,
    ThemesPageParams,
    ThemesParams,
)

HERE = Path(__file__).parent
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_ERRORS = {400: {"model": ErrorOut, "description": "the request cannot be answered as given"},
           404: {"model": ErrorOut, "description": "no such paper"},
           422: {"model": ErrorOut, "description": "a parameter is missing, unknown, malformed or out of bounds"},
           503: {"model": ErrorOut, "description": "the index cannot be read (damaged files)"}}


def _errors(*codes: int) -> dict:
    return {code: _ERRORS[code] for code in (*codes, 422, 503)}


def create_app(
    index: str | Path | LiveIndex,
    *,
    embedder=None,
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS,
    threads: int | None = None,
) -> FastAPI:
    """The web app over the index at `index` (opened once, followed across atomic replacements).

    Args:
        index: index directory, or a `LiveIndex` already open.
        embedder: query embedder (tests); default the model recorded in the index.
        allowed_hosts: Host headers answered (guards a loopback server against DNS rebinding);
            None answers any.
        threads: requests answered at once (the worker threads' limit, set when the app starts);
            None keeps the framework's (40).
    Raises:
        IndexNotFound, IndexFormatError, ModelMismatch: the index cannot be opened.
    """
    live = index if isinstance(index, LiveIndex) else LiveIndex(index, embedder=embedder)

    @asynccontextmanager
    async def lifespan(app):
        if threads is not None:
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="semsearch",
        version=__version__,
        description="Semantic search over scientific paper abstracts, read-only. Scores: higher is better; "
        "`score_kind` says what each is (cosine, bm25, fused).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.live = live
    env = _templates()

    def page(name: str, request: Request, code: int = 200, **context) -> HTMLResponse:
        html = env.get_template(name).render(request=request, info=live.info, **context)
        return HTMLResponse(html, status_code=code)

    # --- JSON API -----------------------------------------------------------------------

    @app.get("/api/search", response_model=list[HitOut], responses=_errors(400), tags=["api"])
    def api_search(params: Annotated[SearchParams, Query()]):
        """Rank papers for a natural-language query (`semsearch search --json`)."""
        with live.use() as idx:
            return search(idx, params).as_dicts()

    @app.get("/api/similar", response_model=SimilarOut, responses=_errors(400, 404), tags=["api"])
    def api_similar(params: Annotated[SimilarParams, Query()]):
        """Papers most like a given paper (`ref`) or a pasted abstract (`text`) (`semsearch similar --json`)."""
        with live.use() as idx:
            hits = similar(idx, params)
        return {"hits": hits.as_dicts(), "excluded": [e.as_dict() for e in hits.excluded], "notes": list(hits.notes)}

    @app.get("/api/themes", response_model=ThemesOut, response_model_exclude_unset=True, responses=_errors(400),
             tags=["api"])
    def api_themes(params: Annotated[ThemesParams, Query()]):
        """Group the corpus, or a query's results, by named or discovered themes (`semsearch themes --json`)."""
        with live.use() as idx:
            return group(idx, params.theme, params.auto, params.n, params.query, params.k, params.mode,
                         params.filters()).as_dict()

    @app.get("/api/papers/{paper_id:path}", response_model=PaperOut, responses=_errors(404), tags=["api"])
    def api_paper(paper_id: str, _: Annotated[NoParams, Query()]):
        """One paper by record id or arXiv id, with every version of its abstract."""
        with live.use() as idx:
            return paper_dict(find_paper(idx, paper_id))

    @app.get("/api/info", response_model=InfoOut, responses=_errors(), tags=["api"])
    def api_info(_: Annotated[NoParams, Query()]):
        """The index's model, dimension, paper count, index type and sizes on disk (`semsearch info --json`)."""
        with live.use():
            return live.info

    # --- pages ---------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, params: Annotated[SearchPageParams, Query()]):
        hits, error = None, None
        if params.q is not None and params.q.strip():
            try:
                with live.use() as idx:
                    hits = search(idx, params)
            except QueryError as exc:
                error = str(exc)
        return page("search.html", request, 400 if error else 200, params=params, hits=hits, error=error,
                    modes=["hybrid", "dense", "lexical"])

    @app.get("/paper/{paper_id:path}", response_class=HTMLResponse, include_in_schema=False)
    def paper_page(request: Request, paper_id: str, params: Annotated[PaperPageParams, Query()]):
        with live.use() as idx:
            paper = find_paper(idx, paper_id)
            related = idx.similar(paper.id, RELATED_K, facet=params.facet)
        record = paper_dict(paper)
        return page("paper.html", request, paper=paper, record=record, related=related, facet=params.facet,
                    facets=FACETS, links=pages.links(paper, record["url"]))

    @app.get("/themes", response_class=HTMLResponse, include_in_schema=False)
    def themes_page(request: Request, params: Annotated[ThemesPageParams, Query()]):
        names = [line.strip() for line in (params.themes or "").splitlines() if line.strip()]
        groups, error, chart = None, None, None
        if names or params.auto:
            try:
                if len(names) > MAX_THEMES:
                    raise QueryError(f"{len(names)} themes: name at most {MAX_THEMES}")
                with live.use() as idx:
                    groups = group(idx, names, params.auto, params.n, params.query, params.k, None, params.filters())
                chart = pages.theme_map(groups)
            except QueryError as exc:
                error = str(exc)
        return page("themes.html", request, 400 if error else 200, params=params, groups=groups, chart=chart,
                    error=error, max_group=MAX_GROUP_PAPERS)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs_page(request: Request):
        return page("docs.html", request, api=pages.api_reference(app.openapi()))

    static = {p.name: (p.read_bytes(), STATIC_TYPES[p.suffix]) for p in (HERE / "static").iterdir()
              if p.suffix in STATIC_TYPES}  # read once: no request names a file on disk

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str):
        if name not in static:
            raise HTTPException(404, f"no static file {name!r}")
        body, media_type = static[name]
        return Response(body, media_type=media_type, headers={"cache-control": "public, max-age=3600"})

    # --- errors: one line, never a stack trace ------------------------------------------

    def error(request: Request, status: int, message: str, headers=None) -> Response:
        message = " ".join(message.split())
        if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        try:
            return page("error.html", request, status, status=status, message=message)
        except Exception:  # never let an error page hide the error
            traceback.print_exc(file=sys.stderr)
            return PlainTextResponse(message, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError):
        return error(request, 422, validation_message(exc.errors()))

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException):
        return error(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(SemsearchError)
    def library_error(request: Request, exc: SemsearchError):
        if isinstance(exc, NotFound):
            return error(request, 404, str(exc))
        return error(request, 400 if isinstance(exc, QueryError) else 503, str(exc))

    @app.exception_handler(Exception)
    def crash(request: Request, exc: Exception):
        traceback.print_exception(exc, file=sys.stderr)
        return error(request, 500, f"internal error ({type(exc).__name__}); the server log has the details")

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or ["*"]))
    app.add_middleware(_Guard)
    return app


def validation_message(errors) -> str:
    """pydantic's errors as one line: `k: Input should be less than or equal to 100; foo: unknown parameter`."""
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("query", "path", "params")]
        name = ".".join(loc) or "request"
        if e.get("type") == "extra_forbidden":
            parts.append(f"unknown parameter {name!r}")
        elif e.get("type") == "missing":
            parts.append(f"{name}: required")
        else:
            parts.append(f"{name}: {e.get('msg', 'invalid')}")
    return "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["idpath"] = lambda pid: quote(pid, safe="")
    env.filters["authors"] = pages.short_authors
    env.filters["excerpt"] = pages.excerpt
    env.globals["version"] = __version__
    env.globals["active"] = ""  # the nav item of the page (set by each template)
    env.globals["score_meaning"] = SCORE_MEANING
    env.globals["match_cosine"] = MATCH_COSINE
    return env


_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _malformed(raw: bytes) -> str | None:
    """Why a raw URL part is not valid percent-encoded UTF-8, or None."""
    if _BAD_PERCENT.search(raw):
        return "a '%' not followed by two hex digits"
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return "bytes that are not UTF-8"
    return None


class _Guard:
    """ASGI middleware: refuses malformed percent-encoding (400) and adds the security headers."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for part, raw in (("query string", scope.get("query_string", b"")), ("path", scope.get("raw_path") or b"")):
            why = _malformed(raw)
            if why:
                body = json.dumps({"error": f"malformed percent-encoding in the {part}: {why}"}).encode()
                await send({"type": "http.response.start", "status": 400, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *SECURITY_HEADERS]})
                await send({"type": "http.response.body", "body": body})
                return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)
