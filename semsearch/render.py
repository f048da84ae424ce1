"""What the `semsearch` command prints (rich, never typer), and `search` whole: its arguments read
from the command line, the library call, the output.

cli.py renders through this module. `search` lives here, not in cli.py, so that a plain
`semsearch search "…"` is answered without importing typer: typer's parsing costs ~0.15 s, half of
a cold query (docs/benchmarks.md, "Cold query"). `plain_search` reads only the forms it is sure of;
anything else (--help, an unknown or malformed option) goes to typer, which owns help and errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .store.target import DEFAULT_INDEX


def literal_console(**kwargs) -> Console:
    """A console that prints every string as it is: queries, titles, ids, file names and theme
    names come from users and corpora, so `[INST]`, `[bold]` or `:fire:` must reach the terminal
    unchanged. Style is given only through `Text` objects, never through markup in a string."""
    return Console(markup=False, emoji=False, highlight=False, **kwargs)


out = literal_console(soft_wrap=False)
err = literal_console(stderr=True)


def error(message: str) -> None:
    """The one line a failed command prints on stderr."""
    err.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)


def emit(data, as_json: bool, table: Callable[[], Table | str]) -> None:
    """Shared output: JSON to stdout for programs, or a rich table for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        out.print(table())


def table(title: str, columns: list[str], rows: list[list]) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    return t


def hits_table(hits) -> Table:
    rows = hits.as_dicts()
    return table(
        hits.caption,
        ["#", "score", "title", "id", "date"],
        [[h["rank"], f"{h['score']:.3f}", h["display_title"], h["id"], h["date"]] for h in rows],
    )


def export(papers, fmt: str, output: Path | None = None) -> None:
    """Papers as BibTeX/CSV/JSONL/RIS: to `output` (atomically), else to stdout."""
    from .export import render, write

    text = render(papers, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        write(text, output, fmt)
        err.print(f"wrote {len(papers)} papers to {output} ({fmt})")


def filters(year_from=None, year_to=None, source=None, category=None, author=None):
    """The query Filters of the command-line options."""
    from .query import Filters

    return Filters(year_from, year_to, tuple(source or ()), tuple(category or ()), tuple(author or ()))


def search(
    query: str,
    k: int = 10,
    index: Path = DEFAULT_INDEX,
    model: str | None = None,
    mode: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    source: Sequence[str] | None = None,
    category: Sequence[str] | None = None,
    author: Sequence[str] | None = None,
    diverse: bool = False,
    fmt: str | None = None,
    as_json: bool = False,
) -> None:
    """`semsearch search` (cli.search's arguments, same defaults); raises SemsearchError."""
    from .query import MATCH_COSINE, Index

    with Index.open(index, model=model) as idx:
        hits = idx.search(query, k, mode=mode, filters=filters(year_from, year_to, source, category, author),
                          diverse=diverse)
    if fmt:
        return export([h.paper for h in hits], fmt)
    if hits.match is False and not as_json:
        err.print(f"no close match: the best paper's cosine with the query is below {MATCH_COSINE:g}, the bar of a "
                  "real match (README, Scores)" if hits else "no results", soft_wrap=True)
    emit(hits.as_dicts(), as_json, lambda: hits_table(hits))


#: `semsearch search`'s options as cli.search declares them (a test checks that they agree):
#: option -> (parameter of `search`, type; list = may repeat, bool = a flag).
SEARCH_OPTIONS: dict[str, tuple[str, type]] = {
    "-k": ("k", int),
    "--index": ("index", Path),
    "-i": ("index", Path),
    "--model": ("model", str),
    "-m": ("model", str),
    "--mode": ("mode", str),
    "--year-from": ("year_from", int),
    "--year-to": ("year_to", int),
    "--source": ("source", list),
    "--category": ("category", list),
    "--author": ("author", list),
    "--diverse": ("diverse", bool),
    "--format": ("fmt", str),
    "--json": ("as_json", bool),
}


def answer_plain_search(argv: Sequence[str]) -> bool:
    """Run `search` when `argv` is a plain search (see plain_search) and say so; a SemsearchError
    becomes the error line and exit status 1, as every command's."""
    from .errors import SemsearchError

    plain = plain_search(argv)
    if plain is None:
        return False
    try:
        search(**plain)
    except SemsearchError as exc:
        error(str(exc))
        sys.exit(1)
    return True


def plain_search(argv: Sequence[str]) -> dict | None:
    """`search`'s keyword arguments for a command line `search QUERY [OPTION ...]`, or None for
    anything typer should read: another command, --help, an unknown, repeated-flag or malformed
    option, a second or missing QUERY, a QUERY that starts with "-"."""
    if not argv or argv[0] != "search":
        return None
    found: dict = {}
    words = iter(argv[1:])
    for word in words:
        if not word.startswith("-"):
            if "query" in found:
                return None
            found["query"] = word
            continue
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name not in SEARCH_OPTIONS:
            return None
        param, kind = SEARCH_OPTIONS[name]
        if kind is bool:
            if eq:
                return None
            found[param] = True
            continue
        if not eq:
            value = next(words, None)
            if value is None:
                return None
        if kind is list:
            found.setdefault(param, []).append(value)
        elif kind is int:
            digits = value[1:] if value[:1] == "-" else value
            if not (digits.isascii() and digits.isdigit()):
                return None
            found[param] = int(value)
        else:
            found[param] = kind(value)
    return found if "query" in found else None
