"""Lexical channel: BM25 over titles and abstracts with SQLite FTS5, inside papers.sqlite.

User text never reaches FTS5's query syntax: it is cut into words and each word is quoted,
so quotes, operators (AND, NEAR, *, ^, :) and any Unicode are plain terms.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Sequence

#: FTS5 tokenizer: Unicode word splitting, diacritics folded, Porter stemming.
TOKENIZE = "porter unicode61 remove_diacritics 2"
#: BM25 column weights (title, abstract): FTS5's defaults, 1 and 1 (no tuning).
WEIGHTS = (1.0, 1.0)
_MAX_TERMS = 64


def create(con: sqlite3.Connection) -> None:
    """Create and fill the FTS5 table `papers_fts` over `papers(title, abstract)`."""
    con.execute(
        "CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, content='papers', "
        f"content_rowid='row', tokenize='{TOKENIZE}')"
    )
    con.execute("INSERT INTO papers_fts(papers_fts) VALUES('rebuild')")


def terms(text: str) -> list[str]:
    """The distinct lower-cased words of `text` the channel searches for (at most _MAX_TERMS)."""
    return list(dict.fromkeys(w.lower() for w in re.findall(r"[^\W_]+", text)))[:_MAX_TERMS]


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression for `text`: its words, each quoted, joined by OR (None if no words)."""
    terms_ = terms(text)
    return " OR ".join(f'"{t}"' for t in terms_) if terms_ else None


def search(
    con: sqlite3.Connection,
    text: str,
    k: int,
    rows: Sequence[int] | None = None,
    weights: tuple[float, float] = WEIGHTS,
) -> list[tuple[int, float]]:
    """Top-k (row, bm25 score) for `text`, higher is better; only `rows` when given.

    `weights`: BM25 column weights (title, abstract).
    """
    expr = match_expression(text)
    if expr is None or k < 1:
        return []
    where, args = "papers_fts MATCH ?", [expr]
    if rows is not None:
        where += " AND rowid IN (SELECT value FROM json_each(?))"
        args.append("[" + ",".join(str(int(r)) for r in rows) + "]")
    sql = (
        f"SELECT rowid, -bm25(papers_fts, {float(weights[0])}, {float(weights[1])}) AS s FROM papers_fts "
        f"WHERE {where} ORDER BY s DESC, rowid LIMIT ?"
    )
    return [(int(r), float(s)) for r, s in con.execute(sql, (*args, k))]


def scores(
    con: sqlite3.Connection, text: str, rows: Sequence[int], weights: tuple[float, float] = WEIGHTS
) -> dict[int, float]:
    """{row: bm25 score} of the `rows` that hold a word of `text` (absent: no word matched).

    Scans every match once: with a rowid condition FTS5 evaluates the whole query per row instead
    (200 rows of SciFact: 215 ms that way, ~15 ms this way).
    """
    expr = match_expression(text)
    if expr is None or not len(rows):
        return {}
    wanted = {int(r) for r in rows}
    sql = (f"SELECT rowid, -bm25(papers_fts, {float(weights[0])}, {float(weights[1])}) FROM papers_fts "
           "WHERE papers_fts MATCH ?")
    return {int(r): float(s) for r, s in con.execute(sql, (expr,)) if r in wanted}


def rows_matching(con: sqlite3.Connection, word: str) -> list[int]:
    """Rows whose title or abstract contains `word` (after the tokenizer's stemming)."""
    term = " ".join(re.findall(r"[^\W_]+", word.lower()))
    if not term:
        return []
    return [int(r) for (r,) in con.execute("SELECT rowid FROM papers_fts WHERE papers_fts MATCH ?", (f'"{term}"',))]


def forget(con: sqlite3.Connection, row: int) -> None:
    """Drop `row` from `papers_fts` (call before its `papers` row is deleted or changed)."""
    con.execute(
        "INSERT INTO papers_fts(papers_fts, rowid, title, abstract) "
        "SELECT 'delete', row, title, abstract FROM papers WHERE row = ?",
        (row,),
    )


def index_row(con: sqlite3.Connection, row: int) -> None:
    """Add `papers` row `row` to `papers_fts` (after it is inserted)."""
    con.execute("INSERT INTO papers_fts(rowid, title, abstract) SELECT row, title, abstract FROM papers WHERE row = ?", (row,))
