"""Enrich: fill the missing titles, authors, dates and categories of an index's papers that carry
an arXiv id (from the arXiv API) or a DOI (from OpenAlex). A field the user's input gave is
never overwritten; each filled paper gets a source `enrich:SERVICE:REF[fields]:0` (see
provenance.field_sources), written through the index's writer lock like `add`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import FetchError
from .fetch import arxiv, openalex
from .provenance import FIELDS, enriched_source, paper_doi
from .records import Paper
from .store.target import DEFAULT_WAIT
from .update import rewrite


@dataclass
class EnrichSummary:
    """What enrich looked up and filled. `filled`: {"id", "fields", "from"} per paper changed."""

    index: str
    candidates: int
    filled: list[dict] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    update: str = "nothing changed"
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def missing(paper: Paper) -> list[str]:
    return [name for name in FIELDS if not getattr(paper, name)]


def _base(arxiv_id: str) -> str:
    return re.sub(r"v\d+$", "", arxiv_id).lower()


def lookup(papers: list[Paper], *, progress: Callable[[int, int], None] | None = None,
           **client_options) -> tuple[dict[str, tuple[str, dict]], list[str], FetchError | None]:
    """Fetch metadata for `papers`: {paper id: (service, record)}, ids not found, and the error that
    stopped the look-ups early (None when all were looked up)."""
    by_arxiv = {_base(p.arxiv_id): p.id for p in papers if p.arxiv_id}
    by_doi = {paper_doi(p).lower(): p.id for p in papers if not p.arxiv_id and paper_doi(p)}
    found: dict[str, tuple[str, dict]] = {}
    done = 0
    try:
        if by_arxiv:
            http = arxiv.client(**client_options)
            try:
                for page in arxiv.api_pages({"ids": sorted(by_arxiv)}, None, set(), http, arxiv.api_base()):
                    for r in page.records:
                        if _base(r["arxiv_id"]) in by_arxiv:
                            found[by_arxiv[_base(r["arxiv_id"])]] = ("arxiv", r)
                    done += len(page.records) + len(page.skipped)
                    if progress:
                        progress(done, len(by_arxiv) + len(by_doi))
            finally:
                http.close()
        if by_doi:
            http = openalex.client(**client_options)
            try:
                for page in openalex.pages({"dois": sorted(by_doi)}, None, set(), http, openalex.base()):
                    for r in page.records:
                        if r.get("doi") in by_doi:
                            found[by_doi[r["doi"]]] = ("openalex", r)
                    done += 1
                    if progress:
                        progress(done, len(by_arxiv) + len(by_doi))
            finally:
                http.close()
        error = None
    except FetchError as exc:
        error = exc
    asked = set(by_arxiv.values()) | set(by_doi.values())
    return found, sorted(asked - set(found)) if error is None else [], error


def fill(paper: Paper, service: str, record: dict) -> tuple[Paper, list[str]]:
    """`paper` with its empty FIELDS taken from a fetched `record` (never a field it has)."""
    values = {
        "title": record.get("title"),
        "authors": tuple(record.get("authors") or ()),
        "date": record.get("date"),
        "categories": tuple(record.get("categories") or ()),
    }
    filled = {name: values[name] for name in missing(paper) if values[name]}
    if not filled:
        return paper, []
    ref = record.get("arxiv_id") or record.get("doi") or record.get("id") or "?"
    source = enriched_source(service, ref, list(filled))
    return replace(paper, **filled, sources=(*paper.sources, source)), list(filled)


def enrich(
    index: str | Path,
    *,
    embedder=None,
    progress: Callable[[int, int], None] | None = None,
    wait: float = DEFAULT_WAIT,
    **client_options,
) -> EnrichSummary:
    """Fill missing metadata of the papers of `index` from arXiv / OpenAlex (see module doc).

    The look-ups run before the index is locked; the fill is applied to the papers as they are
    once the lock is held. Titles change the embedded text, so those papers are re-embedded.
    Raises:
        FetchError: a service failed after retries; what was fetched before is applied first
            and the message says so.
        IndexNotFound, IndexFormatError, IndexBusy: as for `add`.
    """
    from .query import Index

    start = time.perf_counter()
    with Index.open(index, embedder=embedder) as idx:
        papers = [p for p in idx.papers() if missing(p) and (p.arxiv_id or paper_doi(p))]
    summary = EnrichSummary(str(index), len(papers))
    found, summary.not_found, error = lookup(papers, progress=progress, **client_options)

    def change(stored: list[Paper]) -> list[Paper]:
        out = []
        for p in stored:
            if p.id in found:
                p, names = fill(p, *found[p.id])
                if names:
                    summary.filled.append({"id": p.id, "fields": names, "from": found[p.id][0]})
            out.append(p)
        return out

    if found:
        done = rewrite(index, change, embedder=embedder, wait=wait)
        summary.update = done.update or "updated"
    summary.seconds = time.perf_counter() - start
    if error is not None:
        raise FetchError(f"{error}; {len(summary.filled)} papers were enriched before it, run again to continue")
    return summary
