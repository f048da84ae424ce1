"""`semsearch mcp`: a Model Context Protocol server on stdio, so an assistant can use a local index.

Tools `search`, `similar`, `themes` and `paper`, each a thin skin over one `Index` call, with typed,
bounded inputs (the web app's limits) and concise text answers that carry every paper's id, so the
assistant can ask for a paper or its neighbours next. Read-only; the index is opened once and
followed across atomic replacements (`serve.live.LiveIndex`).
"""


from pathlib import Path
from typing import Annotated, Literal, Optional

from .errors import SemsearchError
from .query import Filters
from .serve.limits import MAX_FILTER_VALUES, MAX_K, MAX_QUERY_CHARS, MAX_REFS, MAX_TEXT_CHARS, MAX_THEME_K, MAX_THEMES
from .version import __version__

INSTRUCTIONS = (
    "Semantic search over a local index of scientific paper abstracts. `search` finds papers for a question; "
    "`similar` finds papers like one (by id, arXiv id or title) or like a pasted abstract; `themes` groups papers "
    "by named or discovered themes; `paper` gives one paper's full record. Results list ids: pass them to `paper` "
    "or `similar`. Scores: higher is better."
)
ABSTRACT_CHARS = 240


def create_server(index: str | Path, *, embedder=None):
    """The MCP server (`mcp.server.mcpserver.MCPServer`) over the index at `index`.

    Raises:
        IndexNotFound, IndexFormatError, ModelMismatch: the index cannot be opened.
        SemsearchError: the `mcp` package is not installed.
    """
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
        from mcp.types import ToolAnnotations
    except ImportError:
        raise SemsearchError("semsearch mcp needs the mcp package (2.x): pip install 'semsearch[serve]'") from None
    from pydantic import Field

    from .serve import calls
    from .serve.live import LiveIndex
    from .serve.models import SimilarParams

    live = LiveIndex(index, embedder=embedder)
    server = MCPServer("semsearch", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    read_only = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)

    Query = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
    K = Annotated[int, Field(ge=1, le=MAX_K, description="number of results")]
    Year = Annotated[Optional[int], Field(ge=0, le=9999)]
    Values = Annotated[Optional[list[Annotated[str, Field(max_length=200)]]], Field(max_length=MAX_FILTER_VALUES)]

    def filters(year_from, year_to, categories, authors) -> Filters:
        return Filters(year_from, year_to, (), tuple(categories or ()), tuple(authors or ()))

    def answer(call):
        try:
            with live.use() as idx:
                return call(idx)
        except SemsearchError as exc:  # the library's one-line message is the answer the model reads
            raise ToolError(str(exc)) from None

    @server.tool(annotations=read_only)
    def search(
        query: Annotated[Query, Field(description="what to look for, in plain words")],
        k: K = 10,
        mode: Annotated[Optional[Literal["dense", "lexical", "hybrid"]], Field(description="default hybrid")] = None,
        year_from: Year = None,
        year_to: Year = None,
        categories: Annotated[Values, Field(description="only papers with one of these categories")] = None,
        authors: Annotated[Values, Field(description="only papers with an author whose name contains one")] = None,
    ) -> str:
        """Find the papers that best answer a question. Returns rank, score, id, year, title, authors and
        the start of each abstract."""
        hits = answer(lambda idx: idx.search(query, k, mode=mode,
                                             filters=filters(year_from, year_to, categories, authors)))
        return format_hits(hits, f"{len(hits)} papers for {query!r}")

    @server.tool(annotations=read_only)
    def similar(
        refs: Annotated[Optional[list[Query]], Field(
            max_length=MAX_REFS, description="papers (id, arXiv id or title) to find papers like; with several, "
            "or with unlike, a linear SVM fitted to them ranks the rest")] = None,
        text: Annotated[Optional[str], Field(min_length=1, max_length=MAX_TEXT_CHARS,
                                             description="a pasted abstract, instead of refs")] = None,
        unlike: Annotated[Optional[list[Query]], Field(max_length=MAX_REFS,
                                                     description="papers to steer away from; needs refs")] = None,
        facet: Annotated[Optional[Literal["background", "method", "result"]], Field(
            description="compare only the sentences playing this role (one ref); slow the first time")] = None,
        k: K = 10,
    ) -> str:
        """Papers most like one or several papers (refs), unlike others, or like a pasted abstract (text).
        The papers given, and a paper the text is a copy of, are left out and named."""
        params = SimilarParams(ref=refs or [], text=text, unlike=unlike or [], facet=facet, k=k)
        hits = answer(lambda idx: calls.similar(idx, params))
        lines = [f"left out {e.id} ({e.paper.display_title(60)}): {e.reason}" for e in hits.excluded]
        lines += [f"note: {note}" for note in hits.notes]
        return format_hits(hits, f"{len(hits)} papers {hits.query}", lines)

    @server.tool(annotations=read_only)
    def themes(
        themes: Annotated[Optional[list[Query]], Field(max_length=MAX_THEMES,
                                                     description="theme names, or 'name: description'")] = None,
        auto: Annotated[bool, Field(description="discover themes by clustering instead of naming them")] = False,
        n: Annotated[Optional[int], Field(ge=1, le=MAX_THEMES, description="how many to discover")] = None,
        query: Annotated[Optional[Query], Field(description="group only this query's top k results")] = None,
        k: Annotated[int, Field(ge=1, le=MAX_THEME_K)] = 50,
    ) -> str:
        """Group the corpus, or a query's top k results, into themes you name (a paper may fit several) or
        that are discovered by clustering. Lists each theme's papers (id, score, title) and the unassigned."""
        groups = answer(lambda idx: calls.group(idx, themes or [], auto, n, query, k, None, None))
        return format_themes(groups)

    @server.tool(annotations=read_only)
    def paper(id: Annotated[str, Field(min_length=1, max_length=300, description="record id or arXiv id")]) -> str:
        """One paper's full record: title, authors, date, categories, links, the full abstract and how many
        versions of it were merged."""
        return format_paper(answer(lambda idx: idx.paper(id)))

    return server


def format_hits(hits, heading: str, notes=()) -> str:
    lines = [heading + f" (score: {hits.score_kind}, higher is better)", *notes]
    if hits.match is False:
        lines.append("no close match: the best paper's cosine with the query is below the bar of a real match")
    for h in hits:
        p = h.paper
        meta = "; ".join(x for x in (str(p.year or "no date"), _authors(p.authors)) if x)
        lines.append(f"{h.rank}. [{h.score:.3f}] {p.id}: {p.display_title()} ({meta})")
        lines.append(f"   {_clip(p.abstract, ABSTRACT_CHARS)}")
    return "\n".join(lines)


def format_themes(groups) -> str:
    lines = [f"{len(groups.themes)} themes over {len(groups.papers)} papers ({groups.method})"]
    for t in groups.themes:
        words = f" [{', '.join(t.words)}]" if t.words else ""
        lines.append(f"## {t.name}{words}: {len(t.papers)} papers")
        lines += [f"- [{m.score:.3f}] {m.paper.id}: {m.paper.display_title()}" for m in t.papers]
    if groups.unassigned:
        lines.append(f"## unassigned: {len(groups.unassigned)} papers")
        lines += [f"- {p.id}: {p.display_title()}" for p in groups.unassigned]
    return "\n".join(lines)


def format_paper(p) -> str:
    from .serve.calls import paper_dict
    from .serve.pages import links

    lines = [f"{p.display_title()}", f"id: {p.id}"]
    if p.arxiv_id:
        lines.append(f"arXiv: {p.arxiv_id}")
    lines.append(f"date: {p.date or 'not given'}")
    lines.append(f"authors: {', '.join(p.authors) if p.authors else 'not given'}")
    if p.categories:
        lines.append(f"categories: {', '.join(p.categories)}")
    lines += [f"{label}: {url}" for label, url in links(p, paper_dict(p)["url"])]
    lines.append(f"versions merged: {len(p.versions)}")
    lines += ["", p.abstract]
    return "\n".join(lines)


def _authors(authors, n: int = 3) -> str:
    authors = list(authors)
    return ", ".join(authors[:n]) + (" et al." if len(authors) > n else "")


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0] + "…"


def run(index: str | Path, *, embedder=None) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    from .serve.live import one_thread_per_query

    server = create_server(index, embedder=embedder)
    one_thread_per_query()
    server.run("stdio")
