"""Lexical channel: BM25 over titles and abstracts with SQLite FTS5, inside papers.sqlite.

User text never reaches FTS5's query syntax: it is cut into words and each word is quoted,
so quotes, operators (AND, NEAR, *, ^, :) and any Unicode are plain terms.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import OrderedDict
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

    Thread-safe: one lock around the cache and the connection.
    """

    K1 = 1.2
    B = 0.75

    def __init__(self, con: sqlite3.Connection, max_bytes: int = 64 << 20):
        self._con = con
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple] = OrderedDict()
        self._token_of: dict[str, str | None] = {}  # word -> its token (None: not one token)
        self._held: dict[str, int] = {}  # token -> papers holding it
        self._bytes = 0
        self.max_bytes = max_bytes
        self._lengths = None  # (rows + 1,) total tokens of each row, read on first use
        self._avgdl = 0.0
        self._papers = 0
        self._tokenizer = sqlite3.connect(":memory:", check_same_thread=False)
        self._tokenizer.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{TOKENIZE}')")
        self._tokenizer.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
        try:
            con.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.papers_fts_terms USING fts5vocab(main, papers_fts, row)")
            con.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.papers_fts_instances USING fts5vocab(main, papers_fts, instance)"
            )
        except sqlite3.OperationalError:  # a connection that cannot make temp tables: callers fall back to FTS5
            self._con = None

    @property
    def usable(self) -> bool:
        return self._con is not None

    def tokens(self, words: Sequence[str]) -> list[str] | None:
        """FTS5's token for each word (stemmed, folded), or None if any word is not exactly one token."""
        out = []
        with self._lock:
            for w in words:
                if w not in self._token_of:
                    self._tokenizer.execute("DELETE FROM t")
                    self._tokenizer.execute("INSERT INTO t(x) VALUES (?)", (w,))
                    found = [t for (t,) in self._tokenizer.execute("SELECT term FROM v ORDER BY offset")]
                    if len(self._token_of) > 100_000:
                        self._token_of.clear()
                    self._token_of[w] = found[0] if len(found) == 1 else None
                if self._token_of[w] is None:
                    return None
                out.append(self._token_of[w])
        return out

    def held(self, tokens: Sequence[str]) -> list[int]:
        """Papers holding each token (FTS5's n of the IDF), from the vocabulary."""
        sql = "SELECT doc FROM temp.papers_fts_terms WHERE term = ?"
        with self._lock:
            for t in tokens:
                if t not in self._held:
                    if len(self._held) > 100_000:
                        self._held.clear()
                    self._held[t] = (self._con.execute(sql, (t,)).fetchone() or (0,))[0]
            return [self._held[t] for t in tokens]

    def _load_lengths(self) -> None:
        import numpy as np

        sizes = self._con.execute("SELECT id, sz FROM papers_fts_docsize").fetchall()
        rows = np.fromiter((r for r, _ in sizes), dtype=np.int64, count=len(sizes))
        lengths = np.zeros(int(rows.max()) + 1 if len(rows) else 1, dtype=np.float64)
        lengths[rows] = [sum(_varints(sz)) for _, sz in sizes]
        self._lengths = lengths
        self._papers = len(sizes)
        self._avgdl = float(lengths.sum()) / max(len(sizes), 1)

    def _postings(self, token: str) -> tuple:
        """(rows, title tf, abstract tf) of `token`, cached; call with the lock held."""
        import numpy as np

        hit = self._cache.get(token)
        if hit is not None:
            self._cache.move_to_end(token)
            return hit
        found = self._con.execute(
            "SELECT doc, sum(col = 'title'), sum(col = 'abstract') FROM temp.papers_fts_instances "
            "WHERE term = ? GROUP BY doc ORDER BY doc", (token,)
        ).fetchall()
        arr = np.array(found, dtype=np.int64).reshape(-1, 3)
        entry = (arr[:, 0].copy(), arr[:, 1].astype(np.float64), arr[:, 2].astype(np.float64))
        size = sum(a.nbytes for a in entry)
        self._cache[token] = entry
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._bytes -= sum(a.nbytes for a in old)
        return entry

    def bm25(self, tokens: Sequence[str], held: Sequence[int], weights: tuple[float, float] = WEIGHTS):
        """(rows, BM25) of every paper holding one of `tokens` (`held`: each token's paper count, from
        `held`), as FTS5's `-bm25(papers_fts, *weights)` would give them, like `scan`'s arrays."""
        import numpy as np

        with self._lock:
            if self._lengths is None:
                self._load_lengths()
            lists = [self._postings(t) for t in tokens]  # a token given twice counts twice, as in FTS5
        if not lists:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        rows = np.concatenate([p[0] for p in lists])
        scores = np.concatenate([self._term_scores(p, n, weights) for p, n in zip(lists, held)])
        uniq, inverse = np.unique(rows, return_inverse=True)
        summed = np.zeros(len(uniq), dtype=np.float64)
        np.add.at(summed, inverse, scores)
        return uniq, summed

    def _term_scores(self, postings: tuple, n: int, weights: tuple[float, float]):
        import numpy as np

        rows, tf_title, tf_abstract = postings
        idf = max(math.log((self._papers - n + 0.5) / (n + 0.5)), 1e-6)
        freq = weights[0] * tf_title + weights[1] * tf_abstract
        norm = self.K1 * (1 - self.B + self.B * self._lengths[rows] / self._avgdl)
        return np.asarray(idf * freq * (self.K1 + 1) / (freq + norm), dtype=np.float64)

    def close(self) -> None:
        self._tokenizer.close()


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
