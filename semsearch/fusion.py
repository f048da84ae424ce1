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

#: Weight of the normalised BM25 score next to the cosine, and the BM25 column weights (title,
#: abstract) of the hybrid's lexical channel; chosen on dev queries (docs/benchmarks.md).
LEXICAL_WEIGHT = 1.5
TITLE_WEIGHTS = (4.0, 1.0)
#: Dense pseudo-relevance feedback: the query vector moves this far towards the mean of the
#: PRF_DEPTH best fused papers before the cosine is recomputed (0 = off); chosen on dev queries.
PRF_WEIGHT = 0.0
PRF_DEPTH = 3
#: The hybrid's lexical channel leaves out words held by more than this share of the papers ("of",
#: "the"): FTS5's IDF of such a word is log((N - n + 0.5) / (n + 0.5)) <= 0, floored at 1e-6, so
#: it adds nothing to BM25, yet scoring every paper holding it was most of a query's cost (75k
#: arXiv papers: 50 -> 22 ms by FTS5). Rankings are unchanged (docs/benchmarks.md); smaller shares,
#: which would drop words that do count, were measured there too and not taken.
COMMON_SHARE = 0.5

#: Words of a reference paper in its "more like this" query (`distinctive_terms`, used by `similar
#: --facet`); chosen on CSFCube's dev queries (benchmarks/facets.py, docs/benchmarks.md).
RELATED_TERMS = 10


@dataclass(frozen=True)
class Related:
    """How `similar` ranks papers like one reference paper (no facet): the cosine with the reference's
    vector, pulled `pull` of the way towards the mean of its `neighbours` nearest papers
    (`prf_query`; 0 = plain), + `weight` x BM25 of its `terms` most distinctive words
    (`distinctive_terms`, title and abstract weighted 1) / their IDF mass; weight 0 = plain cosine."""

    terms: int = RELATED_TERMS
    weight: float = 0.0
    neighbours: int = 0
    pull: float = 0.0


#: `similar REF`'s ranking: the best of 84 settings on CSFCube's dev queries through the product
#: (NDCG@20 0.598 vs 0.577 for cosine), above cosine on the held-out half too (0.611 vs 0.596), and
#: the choice made on the held-out half instead wins on dev (benchmarks/similar_related.py,
#: docs/benchmarks.md).
SIMILAR = Related(terms=20, weight=1.0, neighbours=10, pull=0.5)


@dataclass(frozen=True)
class LexicalMass:
    """A query's terms as FTS5 sees them, with FTS5's IDF of each (a term no paper holds gets the
    IDF of a term found once less than once, log((N + 0.5) / 0.5): the rarest there is)."""

    terms: tuple[str, ...]
    idf: tuple[float, ...]
    #: papers holding each term, and papers in all (0 when not counted)
    held: tuple[int, ...] = ()
    papers: int = 0
    #: FTS5's token of each term (stemmed, folded) when `lexical.Postings` told them, else ()
    tokens: tuple[str, ...] = ()

    def content(self, share: float = COMMON_SHARE) -> "LexicalMass":
        """The terms held by at most `share` of the papers (all of them when share >= 1)."""
        if share >= 1 or not self.held:
            return self
        keep = [i for i, n in enumerate(self.held) if n <= share * self.papers]
        terms, idf, held = (tuple(v[i] for i in keep) for v in (self.terms, self.idf, self.held))
        return LexicalMass(terms, idf, held, self.papers, tuple(self.tokens[i] for i in keep) if self.tokens else ())

    @property
    def upper(self) -> float:
        """The most BM25 the query can give one paper: sum of idf * (k1 + 1)."""
        return sum(self.idf) * (lexical.BM25_K1 + 1)


def lexical_mass(con: sqlite3.Connection, text: str, postings: lexical.Postings | None = None) -> LexicalMass:
    """FTS5's IDF, log((N - n + 0.5) / (n + 0.5)) floored at 1e-6, of each term of `text` in `papers_fts`.

    `n` (papers holding the term) is counted through FTS5 itself, so stemming and folding are
    exactly those of the BM25 channel (with `postings`, from FTS5's vocabulary: the same counts,
    without a scan). A word no paper holds counts with n = 0: it is part of what the query asks,
    so a paper matching only the query's other words must not look like a full match ("sourdough
    bread recipes" matching "recipes" alone is a third of the query, not all of it).
    """
    terms = lexical.terms(text)
    if not terms:
        return LexicalMass((), ())
    try:
        tokens = postings.tokens(terms) if postings is not None else None
        held = postings.held(tokens) if tokens is not None else []
        total = postings.papers if tokens is not None else 0
    except lexical.Replaced:  # the index was replaced since it was opened: FTS5 on our own connection
        tokens = None
    if tokens is None:
        # FTS5's N is its row count, the papers table's (rows are added and dropped together); counting
        # `papers` takes 0.5 ms on 75k papers, counting `papers_fts` itself 90 ms (a scan of its content)
        total = con.execute("SELECT count(*) FROM papers").fetchone()[0]
        held = [con.execute("SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?", (f'"{t}"',)).fetchone()[0]
                for t in terms]
    idf = [max(math.log((total - n + 0.5) / (n + 0.5)), 1e-6) for n in held]
    return LexicalMass(tuple(terms), tuple(idf), tuple(held), total, tuple(tokens or ()))


def distinctive_terms(
    con: sqlite3.Connection, text: str, n: int = RELATED_TERMS, postings: lexical.Postings | None = None
) -> LexicalMass:
    """The `n` words of `text` with the highest term frequency x FTS5 IDF, best first, with their IDF.

    Stopwords, numbers and one-letter words never count. This is the query of the "more like this"
    channel: a paper's rarest repeated words say what it is about better than all its words do.
    """
    counts: dict[str, int] = {}
    for w in re.findall(r"[^\W_]+", text.lower()):
        if w not in lexical.STOPWORDS and len(w) > 1 and not w.isdigit():
            counts[w] = counts.get(w, 0) + 1
    words = list(counts)
    chunks = [lexical_mass(con, " ".join(words[i : i + 64]), postings) for i in range(0, len(words), 64)]
    tokened = all(m.tokens for m in chunks)  # FTS5 tokens of every word (from `postings`), else none
    every = [(t, idf, held, tok) for m in chunks
             for t, idf, held, tok in zip(m.terms, m.idf, m.held, m.tokens if tokened else [""] * len(m.terms))]
    best = sorted(every, key=lambda e: (-counts[e[0]] * e[1], e[0]))[:n]
    papers = chunks[0].papers if chunks else 0
    return LexicalMass(*(tuple(e[i] for e in best) for i in range(3)), papers,
                       tuple(e[3] for e in best) if tokened else ())


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
    import numpy as np

    rows_ = np.asarray(rows, dtype=np.int64)
    scores_ = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((rows_, -scores_))
    return list(zip(rows_[order].tolist(), scores_[order].tolist()))


def every_bm25(
    con: sqlite3.Connection,
    mass: LexicalMass,
    postings: lexical.Postings | None = None,
    weights: tuple[float, float] = TITLE_WEIGHTS,
) -> tuple["np.ndarray", "np.ndarray"]:
    """(rows, BM25) of every paper holding one of `mass`'s terms, rows ascending: from `postings`
    when `mass` has FTS5 tokens, else (or when the index file was replaced) by an FTS5 scan."""
    try:
        if mass.tokens and postings is not None:
            return postings.bm25(mass.tokens, mass.held, weights)
    except lexical.Replaced:
        pass
    return lexical.scan(con, mass.terms, weights)


def bm25_at(rows: "np.ndarray", bm25: "np.ndarray", wanted: Sequence[int]) -> "np.ndarray":
    """The BM25 of each of `wanted` from `every_bm25`'s (rows, bm25), 0 where absent; float32."""
    import numpy as np

    wanted = np.asarray(wanted, dtype=np.int64)
    if not len(rows):
        return np.zeros(len(wanted), dtype=np.float32)
    at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
    return np.where(rows[at] == wanted, bm25[at], 0.0).astype(np.float32)


def hybrid(
    con: sqlite3.Connection,
    text: str,
    query: "np.ndarray",
    dense: Sequence[tuple[int, float]],
    vectors: Callable[[Sequence[int]], "np.ndarray"],
    *,
    n: int,
    rows: Sequence[int] | None = None,
    weight: float = LEXICAL_WEIGHT,
    prf: float = PRF_WEIGHT,
    common: float = COMMON_SHARE,
    postings: lexical.Postings | None = None,
    mass: LexicalMass | None = None,
    title_weights: tuple[float, float] = TITLE_WEIGHTS,
    exclude: Sequence[int] = (),
) -> list[tuple[int, float]]:
    """Fused (row, score) over the union of the dense candidates and the lexical top `n`, best first.

    The lexical channel is BM25 over the query's content words (`LexicalMass.content`), from one
    scan of the papers holding one of them, or from `postings`. Every candidate gets its real cosine (from
    `vectors(rows) -> (c, dim)`) and its real BM25 (0 only when no content word is in it), so a paper
    found by one channel is not penalised for being missed by the other's top list.

    Args:
        query: (dim,) float32 L2-normalised query vector.
        dense: the dense channel's top candidates, (row, cosine), already filtered.
        n: lexical candidates to add.
        rows: only these rows may come from the lexical channel (a filter); None = all.
        common: `LexicalMass.content` share.
        postings: score from postings kept in memory (same scores, no scan once a word was seen).
        mass: the lexical channel's terms and IDF (`text` is then not read): e.g. `distinctive_terms`.
        title_weights: BM25 column weights (title, abstract).
        exclude: rows the lexical channel never adds (the dense candidates are already filtered).
    """
    import numpy as np

    if mass is None:
        mass = lexical_mass(con, text, postings).content(common)
    held, bm25_of = every_bm25(con, mass, postings, title_weights)
    if rows is not None or len(exclude):
        keep = np.isin(held, np.asarray(rows, dtype=np.int64)) if rows is not None else np.ones(len(held), bool)
        keep &= ~np.isin(held, np.asarray(exclude, dtype=np.int64))
        held, bm25_of = held[keep], bm25_of[keep]
    best = np.arange(len(held))
    if len(held) > n:  # those reaching the n-th best score (all of a tie), then the top n, ties by row
        best = np.flatnonzero(bm25_of >= -np.partition(-bm25_of, n - 1)[n - 1])
    best = best[np.lexsort((held[best], -bm25_of[best]))][:n]
    cand = np.union1d(np.array([r for r, _ in dense], dtype=np.int64), held[best])
    if not len(cand):
        return []
    vecs = vectors(cand.tolist())
    cosine = vecs @ query
    lexical_part = weight * normalised_bm25(bm25_at(held, bm25_of, cand), mass)
    if prf > 0:
        top = np.argsort(-(cosine + lexical_part), kind="stable")[:PRF_DEPTH]
        cosine = vecs @ prf_query(query, vecs[top], prf)
    return rank(cand, cosine + lexical_part)

