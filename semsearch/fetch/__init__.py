"""Fetch papers from arXiv, OpenAlex and Zotero into JSON lines that `build`/`add` read, or
straight into an index (through `add`, so through its merge and writer lock)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..errors import FetchError
from . import arxiv, openalex, zotero
from ._http import Client
from ._run import FetchSummary, Page, run

SOURCES = ("arxiv", "openalex", "zotero")

__all__ = ["SOURCES", "FetchSummary", "Page", "fetch", "plan"]


def _arxiv(request: dict, http: dict) -> Callable:
    if request.get("ids"):
        if request.get("query") or request.get("category") or request.get("oai"):
            raise FetchError("arxiv: give --id alone, or --query/--category, not both")
        request["ids"] = [arxiv.check_id(i) for i in request["ids"]]
    elif not (request.get("query") or request.get("category")):
        raise FetchError("arxiv: give --query Q, --category CAT (with --from/--until) or --id ID")
    if request.get("category"):
        arxiv.check_category(request["category"])
    arxiv.check_dates(request.get("from"), request.get("until"))
    if request.get("oai"):
        if not request.get("category") or request.get("query"):
            raise FetchError("arxiv --oai harvests one --category over --from/--until; it takes no --query")
        if request.get("metadata_prefix", "arXiv") not in ("arXiv", "arXivRaw"):
            raise FetchError("arxiv --oai: --metadata-prefix is arXiv or arXivRaw")
        return partial(arxiv.oai_pages, request, http=http["client"], base=arxiv.oai_base())
    return partial(arxiv.api_pages, request, http=http["client"], base=arxiv.api_base())


def _openalex(request: dict, http: dict) -> Callable:
    if request.get("dois"):
        if request.get("search") or request.get("filter"):
            raise FetchError("openalex: give --doi alone, or --search/--filter, not both")
        request["dois"] = [openalex.check_doi(d) for d in request["dois"]]
    elif not (request.get("search") or request.get("filter")):
        raise FetchError("openalex: give --search Q, --filter FIELD:VALUE or --doi DOI")
    return partial(openalex.pages, request, http=http["client"], url=openalex.base())


def _zotero(request: dict, http: dict) -> Callable:
    if request.get("sqlite"):
        return partial(zotero.sqlite_pages, request)
    if not os.environ.get(zotero.KEY_VARIABLE) and not request.get("group"):
        raise FetchError(f"zotero: set ${zotero.KEY_VARIABLE} (create one at zotero.org/settings/keys) or give "
                         "--sqlite PATH to read your local library")
    return partial(zotero.pages, request, http=http["client"], url=zotero.base())


#: source name -> (validate the request and return its page function, make its polite client)
_REGISTRY = {
    "arxiv": (_arxiv, arxiv.client),
    "openalex": (_openalex, openalex.client),
    "zotero": (_zotero, zotero.client),
}


def plan(source: str, request: dict, **client_options) -> tuple[Callable, Client, dict]:
    """Check `request` for `source` and return (pages(position, seen), its client, the request
    as checked: empty options dropped, ids and DOIs normalised).

    Raises:
        FetchError: unknown source, or options the source cannot take (bad category, dates, ids).
    """
    if source not in _REGISTRY:
        raise FetchError(f"unknown source {source!r}: choose {', '.join(SOURCES)}")
    check, make_client = _REGISTRY[source]
    http = make_client(**client_options)
    request = {k: v for k, v in request.items() if v not in (None, False, [], (), "")}
    return check(request, {"client": http}), http, request


def fetch(
    source: str,
    request: dict,
    *,
    output: str | Path | None = None,
    index: str | Path | None = None,
    limit: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    embedder=None,
    **client_options,
) -> FetchSummary:
    """Fetch the papers `request` selects from `source` into `output` (JSON lines) or `index`.

    Args:
        source: "arxiv", "openalex" or "zotero".
        request: arxiv: query, category, from, until (YYYY-MM-DD), ids, oai, metadata_prefix;
            openalex: search, filter (list of FIELD:VALUE), dois; zotero: user or group,
            collection, or sqlite (a path). Base URLs come from $SEMSEARCH_ARXIV_API,
            $SEMSEARCH_ARXIV_OAI, $SEMSEARCH_OPENALEX_API, $SEMSEARCH_ZOTERO_API.
        output: the JSON-lines file to write (resumed if a `.part` of the same request exists).
        index: instead of `output`, add the papers to this index (built if absent).
        limit: stop after this many new records.
        progress: called with (records written, total the service announced or None).
        client_options: for the polite client (sleep, notify, retries, backoff, transport).
    Returns:
        FetchSummary; `complete` is False only when `limit` stopped it before the end.
    Raises:
        FetchError: bad options, or the service failed after retries (records so far are kept
            and a re-run continues).
    """
    if (output is None) == (index is None):
        raise FetchError("give --output FILE.jsonl or --index DIR (one of them)")
    pages, http, request = plan(source, request, **client_options)
    start = time.perf_counter()
    if index is not None:
        from ..store.target import judge

        target = judge(index)  # a wrong --index is refused before any request or file
        output = target.parent / f".{target.name}.fetch-{source}.jsonl"
    try:
        summary = run(source, request, pages, Path(output), limit=limit, progress=progress,
                      requests=lambda: http.requests)
    finally:
        http.close()
    if index is not None:
        summary.index = _into_index(Path(output), index, summary, embedder, progress is not None)
    summary.seconds = time.perf_counter() - start
    return summary


def _into_index(jsonl: Path, index: str | Path, summary: FetchSummary, embedder, progress: bool) -> dict:
    """Add (or build) `index` from the fetched file, then delete the file."""
    from ..builder import build
    from ..update import add

    if summary.records + summary.kept == 0:
        jsonl.unlink(missing_ok=True)
        return {"papers": None, "update": "nothing fetched"}
    exists = (Path(index) / "manifest.json").exists()
    done = (add if exists else build)([jsonl], index, embedder=embedder, progress=progress)
    jsonl.unlink(missing_ok=True)
    summary.output = str(index)
    return {"papers": done.papers, "update": done.update or "built"}
