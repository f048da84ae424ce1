"""The calls behind every endpoint, page and MCP tool: one library call each, plus the server's bounds.

No web framework here, so the web app and the MCP server share them.
"""

from __future__ import annotations

from ..errors import QueryError
from ..query import Index
from ..results import Hits, Papers
from .limits import MAX_GROUP_PAPERS, MAX_ID_CHARS


class NotFound(QueryError):
    """A paper id or reference that names no paper (HTTP 404)."""


def search(idx: Index, params) -> Hits:
    """`Index.search` with a request's parameters (`models.SearchParams` or the search page's)."""
    return idx.search(params.q, params.k, mode=params.mode, filters=params.filters(), diverse=params.diverse)


def similar(idx: Index, params) -> Hits:
    """`Index.similar` like one or several `ref`s (and `unlike` others, by `facet`) or like a `text`
    (`models.SimilarParams`); a reference that names no paper raises NotFound."""
    if bool(params.ref) == (params.text is not None):
        raise QueryError("give paper references (ref) or a pasted abstract (text), not both")
    refs = [resolve(idx, r) for r in params.ref]
    return idx.similar(
        (refs[0] if len(refs) == 1 else refs) or None, params.k, text=params.text, filters=params.filters(),
        diverse=params.diverse, facet=params.facet, unlike=[resolve(idx, r) for r in params.unlike],
    )


def resolve(idx: Index, ref: str) -> str:
    """The id of the paper `ref` names (`Index.resolve`); NotFound when none does."""
    try:
        return idx.resolve(ref)[1].id
    except QueryError as exc:
        if " matches " in str(exc):  # several papers fit the title: a bad request, the caller must choose
            raise
        raise NotFound(str(exc)) from None


def group(idx: Index, themes, auto, n, query, k, mode, filters):
    """ThemeGroups for named `themes` or, with `auto`, discovered ones; a large corpus needs a query."""
    if bool(themes) == bool(auto):
        raise QueryError("name themes (theme=...), or ask for discovered themes (auto=true), not both")
    if query is None and len(idx) > MAX_GROUP_PAPERS:
        raise QueryError(
            f"this index has {len(idx):,} papers; themes over a whole corpus are served up to "
            f"{MAX_GROUP_PAPERS:,}: give a query to group its top k results"
        )
    if auto:
        return idx.discover_themes(n, query=query, k=k, mode=mode, filters=filters)
    return idx.themes(list(themes), query=query, k=k, mode=mode, filters=filters)


def find_paper(idx: Index, paper_id: str):
    """`Index.paper`, raising NotFound."""
    if len(paper_id) > MAX_ID_CHARS:
        raise NotFound(f"no paper has an id of {len(paper_id)} characters (at most {MAX_ID_CHARS})")
    try:
        return idx.paper(paper_id)
    except QueryError as exc:
        raise NotFound(str(exc)) from None


def paper_dict(p) -> dict:
    """A paper as `models.PaperOut`: `semsearch papers --json`'s record plus the text of every version."""
    return {**Papers([p]).as_dicts()[0], "version_texts": list(p.versions)}
