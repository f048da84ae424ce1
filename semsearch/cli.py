"""The `semsearch` command: a thin skin over the library (one call per command, then render)."""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.table import Table

from . import render
from .errors import SemsearchError
from .render import emit as _emit
from .render import err, out
from .render import export as _export
from .render import filters as _filters
from .render import hits_table as _hits_table
from .render import table as _table
from .store.target import DEFAULT_INDEX, DEFAULT_WAIT

app = typer.Typer(
    help="Semantic search over scientific paper abstracts, offline. Scores: cosine (dense), BM25 (lexical) or "
    "fused (hybrid, the default); higher is better.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MAX_SKIPPED_SHOWN = 20

IndexOpt = Annotated[Path, typer.Option("--index", "-i", help="Index directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for programs instead of a table.")]
ModelOpt = Annotated[
    Optional[str], typer.Option("--model", "-m", help="sentence-transformers model name or local path.")
]
KOpt = Annotated[int, typer.Option("-k", help="Number of results.")]
ModeOpt = Annotated[
    Optional[str], typer.Option("--mode", help="dense | lexical | hybrid (default: hybrid, best on SciFact).")
]
YearFromOpt = Annotated[Optional[int], typer.Option("--year-from", help="Only papers from this year on.")]
YearToOpt = Annotated[Optional[int], typer.Option("--year-to", help="Only papers up to this year.")]
SourceOpt = Annotated[
    Optional[list[str]], typer.Option("--source", help="Only papers seen in a source whose path contains this.")
]
CategoryOpt = Annotated[Optional[list[str]], typer.Option("--category", help="Only papers with this category.")]
WaitOpt = Annotated[
    float, typer.Option("--wait", help="Seconds to wait for another process changing the index, then fail.")
]
DiverseOpt = Annotated[bool, typer.Option("--diverse", help="Re-rank for diversity (MMR).")]
AuthorOpt = Annotated[
    Optional[list[str]], typer.Option("--author", help="Only papers with an author whose name contains this.")
]
FormatOpt = Annotated[
    Optional[str], typer.Option("--format", help="Print the papers as bibtex | csv | jsonl | ris instead.")
]


def _fails_cleanly(command: Callable) -> Callable:
    """Turn the project's errors into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SemsearchError as exc:
            render.error(str(exc))
            raise typer.Exit(1) from None

    return wrapper


@app.command()
@_fails_cleanly
def build(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or directories of abstracts.")] = None,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = None,
    index_type: Annotated[
        str, typer.Option("--index-type", help="auto | flat | ivf-sq8 | ivf-pq | hnsw (auto: Flat below 50k papers).")
    ] = "auto",
    target_recall: Annotated[
        float, typer.Option("--target-recall", help="Recall@10 an approximate index must reach (held-out sample).")
    ] = 0.95,
    columns: Annotated[
        Optional[str], typer.Option("--columns", help="CSV/TSV columns for our fields: title=Title,abstract=Summary.")
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="auto | torch | onnx | onnx-int8 (auto: int8 ONNX when available).")
    ] = "auto",
    engine: Annotated[
        str, typer.Option("--engine", help="local | ray: embed in this process, or on Ray actors (same vectors).")
    ] = "local",
    ray_address: Annotated[
        Optional[str], typer.Option("--ray-address", help="Ray cluster (default: $RAY_ADDRESS, else a local Ray).")
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option("--workers", help="Ray actors embedding at once (default: one per CPU).")
    ] = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Build (or replace) an index from files of abstracts: pages, JSONL (arXiv metadata too), CSV/TSV, BibTeX.

    --engine ray embeds on Ray actors, here or on a cluster (same vectors); the index is written here.

    Example: semsearch build corpus/ --index indexes/default
    """
    from .builder import build as build_index
    from .ingest import parse_columns

    s = build_index(
        paths or [Path("corpus")], index, model=model, progress=not as_json, index_type=index_type,
        target_recall=target_recall, columns=parse_columns(columns), backend=backend, engine=engine,
        workers=workers, ray_address=ray_address, wait=wait,
    )
    choice = s.index_choice
    if not choice.get("reached", True):
        err.print(
            f"warning: {index_type} could not reach recall@10 {target_recall}; using the best measured, "
            f"{choice['type']} {choice['params']} (recall@10 {choice['recall_at_10']})",
        )
    _emit_summary(s, as_json)


def _emit_summary(s, as_json: bool) -> None:
    """A build or add summary: the table (or JSON), then every skipped line on stderr."""
    d = s.as_dict()
    _emit(d, as_json, lambda: _build_table(d))
    if not as_json:
        for skip in s.skipped[:MAX_SKIPPED_SHOWN]:
            err.print(f"skipped {skip.source}:{skip.line}: {skip.reason}: {skip.text!r}")
        if len(s.skipped) > MAX_SKIPPED_SHOWN:
            err.print(f"... and {len(s.skipped) - MAX_SKIPPED_SHOWN} more skipped lines (all are in --json)")


def _build_table(d: dict) -> Table:
    rows = [[f["path"], f["format"], f["records"], f["skipped"]] for f in d["files"]]
    rows.append(["total", "", d["records"], len(d["skipped"])])
    update = d["update"]
    how = f"; {d['embedded']} texts embedded, index {update}" if update else ""
    t = _table(
        f"{d['index']}: {d['papers']} papers from {d['records']} abstracts "
        f"({d['merged_records']} merged into {len(d['merged_groups'])} groups){how}, {d['seconds']:.1f} s"
        + _likely_duplicates(d),
        ["file", "shape", "abstracts", "lines skipped"],
        rows,
    )
    return t


def _likely_duplicates(d: dict) -> str:
    """Caption lines for pairs that look like one paper but carry different ids or titles."""
    pairs = d.get("likely_duplicates", [])
    shown = [f"\n  {p['papers'][0]} ~ {p['papers'][1]} ({p['reason']}, containment {p['containment']:.2f})"
             for p in pairs[:MAX_SKIPPED_SHOWN]]
    more = f"\n  ... and {len(pairs) - len(shown)} more (all are in --json)" if len(pairs) > len(shown) else ""
    return f"\n{len(pairs)} likely duplicates kept apart:{''.join(shown)}{more}" if pairs else ""


@app.command()
@_fails_cleanly
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories of new abstracts.")],
    index: IndexOpt = DEFAULT_INDEX,
    columns: Annotated[
        Optional[str], typer.Option("--columns", help="CSV/TSV columns for our fields: title=Title,abstract=Summary.")
    ] = None,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Add papers to an index: merged with its records, only new texts embedded, replaced atomically.

    Example: semsearch add new-papers.bib --index indexes/default
    """
    from .ingest import parse_columns
    from .update import add as add_papers

    s = add_papers(paths, index, progress=not as_json, columns=parse_columns(columns), wait=wait)
    _emit_summary(s, as_json)


@app.command()
@_fails_cleanly
def remove(
    ids: Annotated[list[str], typer.Argument(help="Record ids or arXiv ids.")],
    index: IndexOpt = DEFAULT_INDEX,
    wait: WaitOpt = DEFAULT_WAIT,
    as_json: JsonOpt = False,
) -> None:
    """Remove papers from an index by record id or arXiv id, atomically.

    Example: semsearch remove 2407.21783 --index indexes/default
    """
    from .update import remove as remove_papers

    d = remove_papers(ids, index, wait=wait).as_dict()
    _emit(d, as_json, lambda: f"removed {', '.join(d['removed'])}; {d['papers']} papers left in {d['index']} "
          f"(index {d['update']})")


@app.command()
@_fails_cleanly
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    k: KOpt = 10,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    year_from: YearFromOpt = None,
    year_to: YearToOpt = None,
    source: SourceOpt = None,
    category: CategoryOpt = None,
    author: AuthorOpt = None,
    diverse: DiverseOpt = False,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank papers by meaning for a natural-language query.

    Example: semsearch search "how do I shard embedding tables?" -k 5 --year-from 2021
    """
    render.search(query, k, index, model, mode, year_from, year_to, source, category, author, diverse, fmt, as_json)


@app.command()
@_fails_cleanly
def similar(
    ref: Annotated[
        Optional[list[str]], typer.Argument(help="Paper id, arXiv id or title; several for papers like all of them.")
    ] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="A pasted abstract instead of REF.")] = None,
    facet: Annotated[
        Optional[str],
        typer.Option("--facet", help="background | method | result: compare the sentences playing that role."),
    ] = None,
    unlike: Annotated[
        Optional[list[str]], typer.Option("--unlike", help="A paper to steer away from (repeat); needs REF.")
    ] = None,
    k: KOpt = 10,
    index: IndexOpt = DEFAULT_INDEX,
    year_from: YearFromOpt = None,
    year_to: YearToOpt = None,
    source: SourceOpt = None,
    category: CategoryOpt = None,
    author: AuthorOpt = None,
    diverse: DiverseOpt = False,
    fmt: FormatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Papers most like a given paper, like several (--unlike others), or like a pasted abstract (--text).

    One paper: ranked by its sentences and whole abstract (--facet: only the sentences playing that
    role). Several papers, or --unlike: ranked by a linear SVM fitted to them, as arXiv-sanity does.
    The papers given are left out, and so is a paper the --text is near-verbatim of; each one left
    out is named on stderr (in "excluded" with --json), and so is any fallback (in "notes").

    Example: semsearch similar "AutoShard" "FlexShard" --unlike "Llama 3" -k 5
    """
    from .query import Index

    with Index.open(index) as idx:
        hits = idx.similar(ref, k, text=text, filters=_filters(year_from, year_to, source, category, author),
                           diverse=diverse, facet=facet, unlike=unlike or ())
    if fmt:
        return _export([h.paper for h in hits], fmt)
    if not as_json:
        for e in hits.excluded:
            err.print(f"left out {e.id} ({e.paper.display_title(60)}): {e.reason}", soft_wrap=True)
        for note in hits.notes:
            err.print(f"note: {note}", soft_wrap=True)
    _emit({"hits": hits.as_dicts(), "excluded": [e.as_dict() for e in hits.excluded], "notes": list(hits.notes)},
          as_json, lambda: _hits_table(hits))


@app.command()
@_fails_cleanly
def themes(
    theme: Annotated[
        Optional[list[str]], typer.Option("--theme", "-t", help="A theme: NAME or 'NAME: description'. Repeat.")
    ] = None,
    auto: Annotated[bool, typer.Option("--auto", help="Discover themes by clustering instead.")] = False,
    n: Annotated[Optional[int], typer.Option("--n", help="Number of discovered themes (default: automatic).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="Group only this query's results.")] = None,
    k: Annotated[int, typer.Option("-k", help="With --query: how many results to group.")] = 50,
    explain: Annotated[bool, typer.Option("--explain", help="Named themes: each paper's theme scores, "
                                          "boundaries and why it is in or out.")] = False,
    index: IndexOpt = DEFAULT_INDEX,
    year_from: YearFromOpt = None,
    year_to: YearToOpt = None,
    source: SourceOpt = None,
    category: CategoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Group the corpus, or a query's results, by themes you name or that it discovers.

    Example: semsearch themes --theme "recommendation systems" --theme quantization --theme sharding
    """
    from .errors import QueryError
    from .query import Index

    if bool(theme) == auto:
        raise QueryError("name themes with --theme, or use --auto to discover them (not both)")
    if explain and auto:
        raise QueryError("--explain is for named themes (--theme)")
    filters = _filters(year_from, year_to, source, category)
    with Index.open(index) as idx:
        if auto:
            groups = idx.discover_themes(n, query=query, k=k, filters=filters)
        else:
            groups = idx.themes(theme, query=query, k=k, filters=filters)
    d = groups.as_dict()
    if explain:
        d["explain"] = {p.id: groups.explain(p.id) for p in groups.papers}
        if not as_json:
            for p in groups.papers:
                out.print(f"{p.id} {p.display_title(60)}: " + "; ".join(
                    f"{r['theme']} {r['reason']}" for r in d["explain"][p.id]), soft_wrap=True)
    _emit(d, as_json, lambda: _themes_table(groups))


def _themes_table(groups) -> Table:
    rows = []
    for t in groups.themes:
        for m in t.papers:
            rows.append([t.name, f"{m.score:.3f}", m.paper.display_title(70), m.paper.id])
    rows += [["unassigned", "", p.display_title(70), p.id] for p in groups.unassigned]
    return _table(f"{len(groups.themes)} themes, {len(groups.papers)} papers ({groups.method})",
                  ["theme", "score", "title", "id"], rows)


@app.command("eval")
@_fails_cleanly
def eval_(
    directory: Annotated[Path, typer.Argument(help="A BEIR dataset: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    mode: ModeOpt = None,
    split: Annotated[str, typer.Option("--split", help="Which qrels file to score.")] = "test",
    index: Annotated[
        Optional[Path], typer.Option("--index", "-i", help="An index of DIR's corpus (default: build a temporary one).")
    ] = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score retrieval on judged data: nDCG@10, Recall@100, MRR@10.

    Example: semsearch eval ../shared/data/scifact --mode hybrid
    """
    from .evaluate import evaluate

    m = evaluate(directory, index=index, mode=mode, split=split, model=model, progress=not as_json)
    keys = ["ndcg@10", "recall@100", "mrr@10", "queries", "mode", "split", "index", "seconds"]
    rows = [[key, f"{m[key]:.4f}" if isinstance(m[key], float) and key != "seconds" else m[key]] for key in keys]
    _emit(m, as_json, lambda: _table(f"{directory} ({split})", ["metric", "value"], rows))


@app.command()
@_fails_cleanly
def papers(index: IndexOpt = DEFAULT_INDEX, as_json: JsonOpt = False) -> None:
    """List every paper in the index with its sources and number of abstract versions.

    Example: semsearch papers --json
    """
    from .query import Index

    with Index.open(index) as idx:
        rows = idx.papers().as_dicts()
    _emit(
        rows,
        as_json,
        lambda: _table(
            f"{len(rows)} papers in {index}",
            ["id", "title", "date", "versions", "sources", "filled by enrich"],
            [[p["id"], p["display_title"], p["date"], p["versions"], len(p["sources"]), _filled(p)] for p in rows],
        ),
    )


def _filled(row: dict) -> str:
    """`title, authors: arxiv:2407.21783v2` for the fields enrich filled (empty: all from the input)."""
    by: dict[str, list[str]] = {}
    for name, where in row.get("field_sources", {}).items():
        if where not in (None, "input"):
            by.setdefault(where, []).append(name)
    return "; ".join(f"{', '.join(names)}: {where}" for where, names in by.items())


@contextmanager
def _progress(label: str, show: bool):
    """A progress bar on stderr; yields the callback (done, total or None) the library calls."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@app.command()
@_fails_cleanly
def fetch(
    source: Annotated[str, typer.Argument(help="arxiv | openalex | zotero")],
    query: Annotated[
        Optional[str], typer.Option("--query", "-q", help="arxiv: search words (or ti:/au:/abs: syntax).")
    ] = None,
    category: Annotated[Optional[str], typer.Option("--category", help="arxiv: a category, e.g. cs.IR.")] = None,
    since: Annotated[Optional[str], typer.Option("--from", help="arxiv: submitted on or after YYYY-MM-DD.")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="arxiv: submitted on or before YYYY-MM-DD.")] = None,
    ids: Annotated[Optional[list[str]], typer.Option("--id", help="arxiv: an arXiv id. Repeat.")] = None,
    oai: Annotated[
        bool, typer.Option("--oai", help="arxiv: harvest --category by OAI-PMH (dates: last change).")
    ] = False,
    metadata_prefix: Annotated[str, typer.Option("--metadata-prefix", help="arxiv --oai: arXiv | arXivRaw.")] = "arXiv",
    search: Annotated[Optional[str], typer.Option("--search", help="openalex: full-text search.")] = None,
    dois: Annotated[Optional[list[str]], typer.Option("--doi", help="openalex: a DOI. Repeat.")] = None,
    filters: Annotated[Optional[list[str]], typer.Option("--filter", help="openalex: FIELD:VALUE. Repeat.")] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="zotero: user id (API key in $ZOTERO_API_KEY).")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="zotero: group id.")] = None,
    collection: Annotated[Optional[str], typer.Option("--collection", help="zotero: collection key.")] = None,
    sqlite: Annotated[
        Optional[Path], typer.Option("--sqlite", help="zotero: a local zotero.sqlite (read from a copy).")
    ] = None,
    limit: Annotated[Optional[int], typer.Option("--max", help="Stop after this many papers.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="JSON-lines file to write.")] = None,
    index: Annotated[
        Optional[Path], typer.Option("--index", "-i", help="Add the papers to this index instead.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch papers from arXiv, OpenAlex or Zotero into JSON lines (or an index); an interrupted run resumes.

    Example: semsearch fetch arxiv --category cs.IR --from 2024-01-01 --output cs-ir.jsonl
    """
    from .fetch import fetch as fetch_papers

    request = {"query": query, "category": category, "from": since, "until": until, "ids": ids, "oai": oai,
               "metadata_prefix": metadata_prefix if oai else None, "search": search, "dois": dois,
               "filter": filters, "user": user, "group": group, "collection": collection,
               "sqlite": str(sqlite) if sqlite else None}
    with _progress(f"fetching from {source}", not as_json) as bar:
        s = fetch_papers(source, request, output=output, index=index, limit=limit, progress=bar,
                         notify=lambda m: err.print(m, soft_wrap=True))
    for why in s.skipped[:MAX_SKIPPED_SHOWN]:
        err.print(f"skipped {why}", soft_wrap=True)
    _emit(s.as_dict(), as_json, lambda: f"{s.records} new papers ({s.kept} kept from before, {len(s.skipped)} "
          f"skipped, {s.requests} requests, {s.seconds:.1f} s) -> {s.output}")


@app.command()
@_fails_cleanly
def enrich(index: IndexOpt = DEFAULT_INDEX, wait: WaitOpt = DEFAULT_WAIT, as_json: JsonOpt = False) -> None:
    """Fill missing titles, authors, dates and categories from arXiv (arXiv id) or OpenAlex (DOI).

    A field your input gave is never overwritten; `semsearch papers` shows what was filled and from where.

    Example: semsearch enrich --index indexes/default
    """
    from .enrich import enrich as enrich_index

    with _progress("looking up papers", not as_json) as bar:
        s = enrich_index(index, progress=bar, wait=wait, notify=lambda m: err.print(m, soft_wrap=True))
    _emit(s.as_dict(), as_json, lambda: _table(
        f"{index}: {len(s.filled)} of {s.candidates} papers missing metadata filled; not found: "
        f"{', '.join(s.not_found) or 'none'} (index {s.update})",
        ["id", "filled", "from"], [[f["id"], ", ".join(f["fields"]), f["from"]] for f in s.filled]))


@app.command()
@_fails_cleanly
def export(
    ids: Annotated[Optional[list[str]], typer.Argument(help="Record ids or arXiv ids (default: every paper).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="Export this query's results instead.")] = None,
    k: KOpt = 10,
    fmt: Annotated[str, typer.Option("--format", help="bibtex | csv | jsonl | ris")] = "bibtex",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --output if it exists.")] = False,
    author: AuthorOpt = None,
    index: IndexOpt = DEFAULT_INDEX,
) -> None:
    """Export papers as BibTeX, CSV, JSON lines or RIS; a .bib export builds back into the same papers.

    Example: semsearch export --query "embedding table sharding" -k 20 --format bibtex --output refs.bib
    """
    from .export import select
    from .query import Index

    with Index.open(index) as idx:
        papers = select(idx, ids or (), query, k, _filters(None, None, None, None, author))
    _export(papers, fmt, output, force)


@app.command()
@_fails_cleanly
def info(index: IndexOpt = DEFAULT_INDEX, as_json: JsonOpt = False) -> None:
    """Show the index's model, dimension, paper count and size on disk.

    Example: semsearch info --index indexes/default
    """
    from .query import Index

    with Index.open(index) as idx:
        d = idx.info()
    keys = ["path", "model", "model_fingerprint", "dim", "count", "metric", "index_type", "index_params",
            "index_recall_at_10", "text", "created"]
    rows = [[key, d[key]] for key in keys]
    rows += [[f"size of {name}", f"{size:,} bytes"] for name, size in d["files"].items()]
    _emit(d, as_json, lambda: _table(f"index {d['path']}", ["field", "value"], rows))


@app.command()
@_fails_cleanly
def serve(
    index: IndexOpt = DEFAULT_INDEX,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; other than 127.0.0.1 is warned.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 8000,
    threads: Annotated[
        Optional[int], typer.Option("--threads", help="Requests answered at once (default: 2 per core, at least 4).")
    ] = None,
) -> None:
    """Serve a web app and a JSON API over the index (read-only) until Ctrl-C; pages at /, API docs at /docs.

    Needs pip install 'semsearch[serve]'.

    Example: semsearch serve --index indexes/default --port 8000
    """
    from .serve import serve as run

    run(index, host, port, threads=threads, say=lambda line: err.print(line, soft_wrap=True))


@app.command()
@_fails_cleanly
def mcp(index: IndexOpt = DEFAULT_INDEX) -> None:
    """Answer Model Context Protocol requests on stdin/stdout (tools: search, similar, themes, paper).

    Needs pip install 'semsearch[serve]'. An assistant starts it; see the README for its configuration.

    Example: semsearch mcp --index indexes/default
    """
    from .mcp_server import run

    run(index)


def main() -> None:
    """The `semsearch` command. A plain `search` skips typer's parsing (see render.py); launch.main,
    the installed entry point, also skips importing this module for it."""
    if not render.answer_plain_search(sys.argv[1:]):
        app()


if __name__ == "__main__":
    main()
