"""Lexical channel: BM25 over titles and abstracts with SQLite FTS5, inside papers.sqlite.

User text never reaches FTS5's query syntax: it is cut into words and each word is quoted,
so quotes, operators (AND, NEAR, *, ^, :) and any Unicode are plain terms.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

#: FTS5 tokenizer: Unicode word splitting, diacritics folded, Porter stemming.
TOKENIZE = "porter unicode61 remove_diacritics 2"
#: BM25 column weights (title, abstract): FTS5's defaults, 1 and 1 (no tuning).
WEIGHTS = (1.0, 1.0)
_MAX_TERMS = 64
#: FTS5's BM25 term-frequency saturation and length normalisation (fixed inside SQLite, fts5_aux.c).
BM25_K1 = 1.2
BM25_B = 0.75
#: Words never distinctive of a paper, whatever their IDF in a small corpus.
STOPWORDS = frozenset(
    "a about after all also an and any are as at be been being before between both but by can do does during "
    "each for from had has have here how in into is it its more most no not of on only or other our over show "
    "shown shows some such than that the their then there these this those to under use used using very via "
    "was we well were what when where which while who why with".split()
)


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
    """{row: bm25 score} of the `rows` that hold a word of `text` (absent: no word matched), from
    one `scan`: with a rowid condition FTS5 evaluates the whole query per row instead (200 rows of
    SciFact: 215 ms that way, ~15 ms this way)."""
    wanted = {int(r) for r in rows}
    if not wanted:
        return {}
    held, bm25 = scan(con, terms(text), weights)
    return {r: s for r, s in zip(held.tolist(), bm25.tolist()) if r in wanted}


def scan(con: sqlite3.Connection, words: Sequence[str], weights: tuple[float, float] = WEIGHTS):
    """(rows, bm25 scores): every paper holding one of `words` (each a term of `terms`), in one FTS5
    scan; two aligned arrays (int64, float64), rows ascending."""
    import numpy as np

    if not words:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    expr = " OR ".join(f'"{w}"' for w in words)
    sql = (f"SELECT rowid, -bm25(papers_fts, {float(weights[0])}, {float(weights[1])}) FROM papers_fts "
           "WHERE papers_fts MATCH ? ORDER BY rowid")
    found = np.array(con.execute(sql, (expr,)).fetchall(), dtype=np.float64).reshape(-1, 2)
    return found[:, 0].astype(np.int64), found[:, 1]


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


class Replaced(Exception):
    """The index file at `Postings.path` is no longer the one the index was opened on."""


class Postings:
    """FTS5's BM25, computed from the index's own postings held in memory, term by term.

    Scoring with FTS5 costs about a microsecond for every paper holding any query word, again for
    every query (75k arXiv papers: 20-60 ms); a long-running reader (the web server) asks for the
    same words again and again. Each term's postings — the rows holding it and how often, in the
    title and in the abstract — are read once from FTS5's vocabulary (`fts5vocab` instance table)
    and kept, up to `max_bytes` (least recently used dropped first); the score is FTS5's formula
    (fts5_aux.c: k1 1.2, b 0.75, IDF floored at 1e-6, term frequency weighted per column, length
    over all columns), equal to `bm25()` up to float rounding (tests/test_lexical.py).

    Words the tokenizer splits into several tokens (or none) are not single terms: `tokens` returns
    None for the query, and the caller scores it with FTS5 (`search` / `scan`).

    Thread-safe: words are read through one read-only connection of its own to `path`, under a lock
    of its own, so a thread reading a new word's postings holds up only others reading new words,
    never a query whose words are all in memory. When `inode` is given and the file at `path` is
    another by then (the index was replaced), reading raises `Replaced`: the caller scores with
    its own connection instead.
    """

    def __init__(self, path: str | Path, max_bytes: int = 64 << 20, inode: int | None = None):
        self.path = Path(path)
        self.inode = inode
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # the cache
        self._reading = threading.Lock()  # the connection
        self._con: sqlite3.Connection | None = None
        self._cache: OrderedDict[str, tuple] = OrderedDict()
        self._bytes = 0
        self._token_of: dict[str, str | None] = {}  # word -> its token (None: not one token)
        self._held: dict[str, int] = {}  # token -> papers holding it
        self._lengths = None  # (max row + 1,) total tokens of each row, read on first use
        self._avgdl = 0.0
        self._papers = 0

    def _connection(self) -> sqlite3.Connection:
        """The reading connection, opened on first use; call with `_reading` held."""
        if self._con is None:
            con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            try:
                con.execute("SELECT 1 FROM papers_fts_docsize LIMIT 1").fetchall()  # the file is open now
                if self.inode is not None and os.stat(self.path).st_ino != self.inode:
                    raise Replaced(f"{self.path}: replaced since the index was opened")
            except (OSError, sqlite3.DatabaseError) as exc:
                con.close()
                raise Replaced(f"{self.path}: {exc}") from None
            except Replaced:
                con.close()
                raise
            con.execute("PRAGMA cache_size = -512")  # 512 KiB: postings are read once, then kept here
            con.execute("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, papers_fts, row)")
            con.execute("CREATE VIRTUAL TABLE temp.instances USING fts5vocab(main, papers_fts, instance)")
            con.execute(f"CREATE VIRTUAL TABLE temp.tokenizer USING fts5(x, tokenize='{TOKENIZE}')")
            con.execute("CREATE VIRTUAL TABLE temp.tokens USING fts5vocab(temp, tokenizer, instance)")
            self._con = con
        return self._con

    def tokens(self, words: Sequence[str]) -> list[str] | None:
        """FTS5's token for each word (stemmed, folded), or None if any word is not exactly one token."""
        with self._lock:
            known = {w: self._token_of[w] for w in words if w in self._token_of}
        for w in words:
            if w not in known:
                with self._reading:
                    con = self._connection()
                    con.execute("DELETE FROM temp.tokenizer")
                    con.execute("INSERT INTO temp.tokenizer(x) VALUES (?)", (w,))
                    found = [t for (t,) in con.execute("SELECT term FROM temp.tokens ORDER BY offset")]
                known[w] = found[0] if len(found) == 1 else None
                with self._lock:
                    if len(self._token_of) > 100_000:
                        self._token_of.clear()
                    self._token_of[w] = known[w]
        out = [known[w] for w in words]
        return None if None in out else out

    def held(self, tokens: Sequence[str]) -> list[int]:
        """Papers holding each token (FTS5's n of the IDF), from the vocabulary."""
        with self._lock:
            known = {t: self._held[t] for t in tokens if t in self._held}
        for t in tokens:
            if t not in known:
                with self._reading:
                    found = self._connection().execute("SELECT doc FROM temp.terms WHERE term = ?", (t,)).fetchone()
                known[t] = (found or (0,))[0]
                with self._lock:
                    if len(self._held) > 100_000:
                        self._held.clear()
                    self._held[t] = known[t]
        return [known[t] for t in tokens]

    @property
    def papers(self) -> int:
        """Rows of the FTS5 table (its N), read with the lengths on first use."""
        if self._lengths is None:
            self._load_lengths()
        return self._papers

    def _load_lengths(self) -> None:
        import numpy as np

        with self._reading:
            if self._lengths is not None:  # another thread read them meanwhile
                return
            sizes = self._connection().execute("SELECT id, sz FROM papers_fts_docsize").fetchall()
        rows = np.fromiter((r for r, _ in sizes), dtype=np.int64, count=len(sizes))
        lengths = np.zeros(int(rows.max()) + 1 if len(rows) else 1, dtype=np.float64)
        lengths[rows] = [sum(_varints(sz)) for _, sz in sizes]
        self._papers = len(sizes)
        self._avgdl = float(lengths.sum()) / max(len(sizes), 1)
        self._lengths = lengths  # last: other threads test it without the lock

    def _read(self, token: str) -> tuple:
        """(rows, title tf, abstract tf) of `token`, from FTS5's vocabulary."""
        import numpy as np

        with self._reading:
            found = self._connection().execute(  # a row per occurrence, counted in numpy (twice GROUP BY's speed)
                "SELECT doc, col = 'title' FROM temp.instances WHERE term = ?", (token,)
            ).fetchall()
        pairs = np.array(found, dtype=np.int32).reshape(-1, 2)
        rows, at = np.unique(pairs[:, 0], return_inverse=True)
        in_title = np.bincount(at, weights=pairs[:, 1], minlength=len(rows)).astype(np.float32)
        in_abstract = np.bincount(at, minlength=len(rows)).astype(np.float32) - in_title
        return rows.astype(np.int32), in_title, in_abstract

    def _postings(self, tokens: Sequence[str]) -> list[tuple]:
        with self._lock:
            found = {}
            for t in tokens:
                if t in self._cache:
                    self._cache.move_to_end(t)
                    found[t] = self._cache[t]
        for t in tokens:
            if t not in found:
                found[t] = self._read(t)
                with self._lock:
                    if t not in self._cache:
                        self._cache[t] = found[t]
                        self._bytes += sum(a.nbytes for a in found[t])
                    while self._bytes > self.max_bytes and len(self._cache) > 1:
                        _, old = self._cache.popitem(last=False)
                        self._bytes -= sum(a.nbytes for a in old)
        return [found[t] for t in tokens]

    def bm25(self, tokens: Sequence[str], held: Sequence[int], weights: tuple[float, float] = WEIGHTS):
        """(rows, BM25) of every paper holding one of `tokens` (`held`: each token's paper count, from
        `held`), as FTS5's `-bm25(papers_fts, *weights)` would give them, like `scan`'s arrays."""
        import numpy as np

        if self._lengths is None:
            self._load_lengths()
        lists = self._postings(tokens)  # a token given twice counts twice, as in FTS5
        if not lists:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        summed = np.zeros(len(self._lengths), dtype=np.float64)
        for p, n in zip(lists, held):
            summed[p[0]] += self._term_scores(p, n, weights)  # a token's rows are distinct
        # every term adds > 0 (IDF >= 1e-6) where it is held; comparing first is 12x faster than
        # flatnonzero of the floats themselves (75k rows: 32 vs 394 us)
        rows = np.flatnonzero(summed > 0)
        return rows, summed[rows]

    def _term_scores(self, postings: tuple, n: int, weights: tuple[float, float]):
        import numpy as np

        rows, tf_title, tf_abstract = postings
        idf = max(math.log((self._papers - n + 0.5) / (n + 0.5)), 1e-6)
        freq = weights[0] * tf_title.astype(np.float64) + weights[1] * tf_abstract
        norm = BM25_K1 * (1 - BM25_B + BM25_B * self._lengths[rows] / self._avgdl)
        return idf * freq * (BM25_K1 + 1) / (freq + norm)

    def close(self) -> None:
        with self._reading:
            if self._con is not None:
                self._con.close()
                self._con = None


def _varints(blob: bytes) -> list[int]:
    """SQLite's big-endian varints (FTS5's docsize record): 7 bits a byte, high bit = more follow."""
    out, value, i = [], 0, 0
    while i < len(blob):
        byte = blob[i]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            out.append(value)
            value = 0
        i += 1
    return out
