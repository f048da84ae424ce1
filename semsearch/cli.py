"""The `semsearch` command: a thin skin over the library (one call per command, then render)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import SemsearchError
from .index import DEFAULT_INDEX

app = typer.Typer(
    help="Semantic search over scientific paper abstracts, offline. Scores are cosine similarity.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=False)
err = Console(stderr=True)
MAX_SKIPPED_SHOWN = 20

IndexOpt = Annotated[Path, typer.Option("--index", "-i", help="Index directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for programs instead of a table.")]
ModelOpt = Annotated[
    Optional[str], typer.Option("--model", "-m", help="sentence-transformers model name or local path.")
]


def _fails_cleanly(command: Callable) -> Callable:
    """Turn the project's errors into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SemsearchError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _emit(data, as_json: bool, table: Callable[[], Table | str]) -> None:
    """Shared output: JSON to stdout for programs, or a rich table for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        out.print(table())


def _table(title: str, columns: list[str], rows: list[list]) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(Text("" if v is None else str(v)) for v in r))  # Text: "[no title]" is not markup
    return t


@app.command()
@_fails_cleanly
def build(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or directories of abstracts.")] = None,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build (or replace) an index from files of abstracts: pages, JSONL or CSV.

    Example: semsearch build corpus/ --index indexes/default
    """
    from .index import build as build_index

    s = build_index(paths or [Path("corpus")], index, model=model, progress=not as_json)
    d = s.as_dict()
    _emit(d, as_json, lambda: _build_table(d))
    if not as_json:
        for skip in s.skipped[:MAX_SKIPPED_SHOWN]:
            err.print(f"skipped {skip.source}:{skip.line}: {skip.reason}: {skip.text!r}", highlight=False, markup=False)
        if len(s.skipped) > MAX_SKIPPED_SHOWN:
            err.print(f"... and {len(s.skipped) - MAX_SKIPPED_SHOWN} more skipped lines (all are in --json)")


def _build_table(d: dict) -> Table:
    rows = [[f["path"], f["format"], f["records"], f["skipped"]] for f in d["files"]]
    rows.append(["total", "", d["records"], len(d["skipped"])])
    t = _table(
        f"{d['index']}: {d['papers']} papers from {d['records']} abstracts "
        f"({d['merged_records']} merged into {len(d['merged_groups'])} groups), {d['seconds']:.1f} s",
        ["file", "shape", "abstracts", "lines skipped"],
        rows,
    )
    return t


@app.command()
@_fails_cleanly
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    k: Annotated[int, typer.Option("-k", help="Number of results.")] = 10,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank papers by meaning for a natural-language query.

    Example: semsearch search "how do I shard embedding tables?" -k 5
    """
    from .query import Index

    with Index.open(index, model=model) as idx:
        hits = idx.search(query, k)
    rows = hits.as_dicts()
    _emit(
        rows,
        as_json,
        lambda: _table(
            f"{len(rows)} results for {query!r} (score = cosine similarity)",
            ["#", "score", "title", "id", "date"],
            [[h["rank"], f"{h['score']:.3f}", h["display_title"], h["id"], h["date"]] for h in rows],
        ),
    )


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
            ["id", "title", "date", "versions", "sources"],
            [[p["id"], p["display_title"], p["date"], p["versions"], len(p["sources"])] for p in rows],
        ),
    )


@app.command()
@_fails_cleanly
def info(index: IndexOpt = DEFAULT_INDEX, as_json: JsonOpt = False) -> None:
    """Show the index's model, dimension, paper count and size on disk.

    Example: semsearch info --index indexes/default
    """
    from .query import Index

    with Index.open(index) as idx:
        d = idx.info()
    keys = ["path", "model", "model_fingerprint", "dim", "count", "metric", "index_type", "text", "created"]
    rows = [[key, d[key]] for key in keys]
    rows += [[f"size of {name}", f"{size:,} bytes"] for name, size in d["files"].items()]
    _emit(d, as_json, lambda: _table(f"index {d['path']}", ["field", "value"], rows))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
