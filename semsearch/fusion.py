"""Fusion: dense and lexical evidence -> one score per paper that means the same on every query.

Min-max scaling (the old hybrid) stretches each query's candidates to [0, 1], so the best paper of
any query scores near 1 and a lexical channel that matched two stray words weighs as much as one
that matched the whole question. Here both channels keep absolute units:

- dense: the cosine of query and paper, as stored;
- lexical: BM25 divided by the query's *IDF mass* (sum over its terms of FTS5's IDF times k1 + 1,
  the most BM25 can give), so 1 means every term matched with saturated frequency and a query
  whose words are rare or absent in a paper scores near 0 whatever the other papers score.

The fused score `cosine + LEXICAL_WEIGHT * lexical` is therefore comparable across queries, and
the lexical channel weighs in only as much as it actually matched: a descriptive question with
little word overlap is ranked almost by its cosine, a claim sharing rare terms with an abstract
gets the lexical boost. Weights and the match threshold are chosen on development queries
(benchmarks/retrieval.py, docs/benchmarks.md).
"""

from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from .store import lexical

if TYPE_CHECKING:
    import numpy as np

#: FTS5's BM25 term-frequency saturation constant (fixed inside SQLite).
BM25_K1 = 1.2
#: Weight of the normalised BM25 score next to the cosine, and the BM25 column weights (title,
#: abstract) of the hybrid's lexical channel; chosen on dev queries (docs/benchmarks.md).
LEXICAL_WEIGHT = 1.5
TITLE_WEIGHTS = (4.0, 1.0)
#: Dense pseudo-relevance feedback: the query vector moves this far towards the mean of the
#: PRF_DEPTH best fused papers before the cosine is recomputed (0 = off); chosen on dev queries.
PRF_WEIGHT = 0.0
PRF_DEPTH = 3
#: `similar` of one paper: cosine + RELATED_WEIGHT x BM25 of the reference's RELATED_TERMS most
#: distinctive words (tf x IDF) / their IDF mass, a "more like this" channel; chosen on CSFCube's
#: dev queries (benchmarks/facets.py, docs/benchmarks.md).
RELATED_WEIGHT = 1.0
RELATED_TERMS = 10
#: Words never distinctive of a paper, whatever their IDF in a small corpus.
STOPWORDS = frozenset(
    "a about after all also an and any are as at be been being before between both but by can do does during "
    "each for from had has have here how in into is it its more most no not of on only or other our over show "
    "shown shows some such than that the their then there these this those to under use used using very via "
    "was we well were what when where which while who why with".split()
)


@dataclass(frozen=True)
class LexicalMass:
    """A query's terms as FTS5 sees them, with FTS5's IDF of each (a term no paper holds gets the
    IDF of a term found once less than once, log((N + 0.5) / 0.5): the rarest there is)."""

    terms: tuple[str, ...]
    idf: tuple[float, ...]

    @property
    def upper(self) -> float:
        """The most BM25 the query can give one paper: sum of idf * (k1 + 1)."""
        return sum(self.idf) * (BM25_K1 + 1)


def lexical_mass(con: sqlite3.Connection, text: str) -> LexicalMass:
    """FTS5's IDF, log((N - n + 0.5) / (n + 0.5)) floored at 1e-6, of each term of `text` in `papers_fts`.

    `n` (papers holding the term) is counted through FTS5 itself, so stemming and folding are
    exactly those of the BM25 channel. A word no paper holds counts with n = 0: it is part of what
    the query asks, so a paper matching only the query's other words must not look like a full
    match ("sourdough bread recipes" matching "recipes" alone is a third of the query, not all of it).
    """
    return _mass(con, lexical.terms(text))


def _mass(con: sqlite3.Connection, terms: Sequence[str]) -> LexicalMass:
    if not terms:
        return LexicalMass((), ())
    # FTS5's N is its row count, the papers table's (rows are added and dropped together); counting
    # `papers` takes 0.5 ms on 75k papers, counting `papers_fts` itself 90 ms (a scan of its content)
    total = con.execute("SELECT count(*) FROM papers").fetchone()[0]
    idf = []
    for t in terms:
        n = con.execute("SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?", (f'"{t}"',)).fetchone()[0]
        idf.append(max(math.log((total - n + 0.5) / (n + 0.5)), 1e-6))
    return LexicalMass(tuple(terms), tuple(idf))


def distinctive_terms(con: sqlite3.Connection, text: str, n: int = RELATED_TERMS) -> LexicalMass:
    """The `n` words of `text` with the highest term frequency x FTS5 IDF, best first, with their IDF.

    Stopwords, numbers and one-letter words never count. This is the query of the "more like this"
    channel: a paper's rarest repeated words say what it is about better than all its words do.
    """
    counts: dict[str, int] = {}
    for w in re.findall(r"[^\W_]+", text.lower()):
        if w not in STOPWORDS and len(w) > 1 and not w.isdigit():
            counts[w] = counts.get(w, 0) + 1
    every = _mass(con, list(counts))
    ranked = sorted(zip(every.terms, every.idf), key=lambda t: (-counts[t[0]] * t[1], t[0]))[:n]
    return LexicalMass(tuple(t for t, _ in ranked), tuple(i for _, i in ranked))


def normalised_bm25(bm25: "np.ndarray", mass: LexicalMass) -> "np.ndarray":
    """BM25 scores (any shape) / the query's IDF mass: in [0, 1], 0 where nothing matched."""
    import numpy as np

    upper = mass.upper
    return np.zeros_like(bm25, dtype=np.float32) if upper <= 0 else (bm25 / upper).astype(np.float32)


def fused_scores(
    cosine: "np.ndarray", bm25: "np.ndarray", mass: LexicalMass, weight: float = LEXICAL_WEIGHT
) -> "np.ndarray":
    """cosine + weight * normalised BM25, for aligned (n,) float arrays of candidates; (n,) float32."""
    return (cosine + weight * normalised_bm25(bm25, mass)).astype("float32")


def prf_query(query: "np.ndarray", top: "np.ndarray", weight: float = PRF_WEIGHT) -> "np.ndarray":
    """Rocchio-style dense feedback: normalise(query + weight * mean(top)), (dim,) float32.

    Args:
        query: (dim,) float32 L2-normalised query vector.
        top: (m, dim) float32 vectors of the best-ranked papers.
    """
    import numpy as np

    if weight <= 0 or not len(top):
        return query
    moved = query + weight * top.mean(axis=0)
    return (moved / np.linalg.norm(moved)).astype(np.float32)


def rank(rows: Sequence[int], scores: "np.ndarray") -> list[tuple[int, float]]:
    """(row, score) best first; ties by row so results are reproducible."""
    order = sorted(range(len(rows)), key=lambda i: (-float(scores[i]), rows[i]))
    return [(int(rows[i]), float(scores[i])) for i in order]


def hybrid(
    con: sqlite3.Connection,
    text: str,
    query: "np.ndarray",
    dense: Sequence[tuple[int, float]],
    lex: Sequence[tuple[int, float]],
    vectors: Callable[[Sequence[int]], "np.ndarray"],
    *,
    weight: float = LEXICAL_WEIGHT,
    prf: float = PRF_WEIGHT,
    mass: LexicalMass | None = None,
    title_weights: tuple[float, float] = TITLE_WEIGHTS,
) -> list[tuple[int, float]]:
    """Fused (row, score) over the union of both channels' candidates, best first.

    Every candidate gets its real cosine (from `vectors(rows) -> (n, dim)`) and its real BM25
    (0 only when no query term is in it), so a paper found by one channel is not penalised for
    being missed by the other's top list.

    Args:
        text: the words the lexical channel searched for.
        query: (dim,) float32 L2-normalised query vector.
        dense, lex: each channel's top candidates, (row, score), already filtered.
        mass: the IDF mass of `text` (None: computed with lexical_mass).
        title_weights: the BM25 column weights (title, abstract) `lex` was ranked with.
    """
    import numpy as np

    cand = sorted({r for r, _ in dense} | {r for r, _ in lex})
    if not cand:
        return []
    vecs = vectors(cand)
    cosine = vecs @ query
    found = lexical.scores(con, text, cand, title_weights) if lex else {}
    bm25 = np.array([found.get(r, 0.0) for r in cand], dtype=np.float32)
    lexical_part = weight * normalised_bm25(bm25, mass if mass is not None else lexical_mass(con, text))
    if prf > 0:
        top = np.argsort(-(cosine + lexical_part), kind="stable")[:PRF_DEPTH]
        cosine = vecs @ prf_query(query, vecs[top], prf)
    return rank(cand, cosine + lexical_part)
