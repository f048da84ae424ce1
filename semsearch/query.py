"""Query: an open index answering searches, related-paper lookups and theme groupings.

Every score says what it is (`score_kind`: cosine, bm25 or fused) and higher is always better.
Text calls delegate to array calls: `search(q)` -> `search_batch([q])` -> `search_vectors(array)`,
and only the last touches FAISS; none of them needs a model except to embed the query text.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from . import lexical
from .ann import search_params, supports_selector
from .embed import Embedder, query_embedder_for
from .errors import ModelMismatch, QueryError
from .index import DEFAULT_INDEX, Manifest, PaperStore, disk_usage, read_vectors, recover
from .ingest import MIN_ABSTRACT_WORDS, normalize_arxiv_id
from .provenance import field_sources, paper_url
from .records import Paper, containment, shingles, words
from .tables import dataframe, html_table
from .themes import ThemeGroups, ThemeSpec, group_discovered, group_named

if TYPE_CHECKING:
    import numpy as np

HIT_COLUMNS = ("rank", "score", "id", "title", "arxiv_id", "date", "abstract")
MODES = ("dense", "lexical", "hybrid")
#: Chosen by nDCG@10 on SciFact (benchmarks/retrieval.py, docs/benchmarks.md).
DEFAULT_MODE = "hybrid"
#: Hybrid = ALPHA * min-max(cosine) + (1 - ALPHA) * min-max(BM25) over both channels' candidates;
#: chosen among RRF (k=60) and ALPHA in {0.3, 0.5, 0.7} by nDCG@10 on SciFact (docs/benchmarks.md).
ALPHA = 0.5
#: Reciprocal-rank fusion constant (Cormack et al. 2009), for `rrf`, the measured alternative.
RRF_K = 60
#: Candidates taken from each channel before fusion or diversity re-ranking.
CANDIDATES = 100
#: Filtered queries on an approximate index search up to this many allowed papers exactly.
EXACT_FILTER_MAX = 50_000
#: MMR trade-off: 1 = relevance only, 0 = diversity only.
MMR_LAMBDA = 0.7
SCORE_KINDS = {"dense": "cosine", "lexical": "bm25", "hybrid": "fused"}
#: Title lookup: a title at least this similar (difflib ratio) to the reference matches.
TITLE_MATCH = 0.85
#: `similar(text=...)` leaves a paper out only when the text is near-verbatim of one of its versions:
#: they share at least this fraction of word 3-grams (records.containment). Measured on the seeds
#: (benchmarks/similar_text.py, docs/benchmarks.md): 20 hand-written paraphrases share 0.00-0.44 with
#: their paper (a close one of SpinQuant 0.37); stored versions pasted back share 1.00, PDF copies
#: with words hyphenated across line breaks 0.70-0.97, lightly edited revisions 0.98-1.00. 0.6 sits
#: midway between the worst cases (0.44, 0.70). Rewritten revisions (0.21, 0.56) fall below it and
#: are shown, not hidden.
TEXT_VERSION_CONTAINMENT = 0.6
#: Papers checked for being a version of a pasted text: the best BM25 matches of its words.
TEXT_VERSION_CANDIDATES = 20
PAPER_COLUMNS = ("id", "title", "arxiv_id", "date", "sources", "versions")


@dataclass(frozen=True)
class Neighbours:
    """Array-level search result.

    rows: int64 array (n_queries, k) of index rows, -1 where fewer than k exist.
    scores: float32 array (n_queries, k), cosine similarity, descending along each row.
    """

    rows: "np.ndarray"
    scores: "np.ndarray"


@dataclass(frozen=True)
class Hit:
    """One ranked paper. `score` is the cosine similarity of query and paper (higher is better)."""

    rank: int
    score: float
    paper: Paper
    score_kind: str = "cosine"

    @property
    def id(self) -> str:
        return self.paper.id

    @property
    def title(self) -> str | None:
        return self.paper.title

    def as_dict(self) -> dict:
        p = self.paper
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "score_kind": self.score_kind,
            "id": p.id,
            "title": p.title,
            "display_title": p.display_title(),
            "arxiv_id": p.arxiv_id,
            "date": p.date,
            "authors": list(p.authors),
            "url": paper_url(p),
            "abstract": p.abstract,
            "versions": len(p.versions),
            "sources": list(p.sources),
        }


@dataclass(frozen=True)
class Excluded:
    """A paper `similar` left out of its results, and why (`containment`: the 3-gram containment of
    a pasted text and the paper's closest version, None when the paper was the reference)."""

    paper: Paper
    reason: str
    containment: float | None = None

    @property
    def id(self) -> str:
        return self.paper.id

    def as_dict(self) -> dict:
        p = self.paper
        return {"id": p.id, "title": p.title, "display_title": p.display_title(), "reason": self.reason,
                "containment": self.containment}


class _Rows(Sequence):
    """A read-only list of dataclass rows that shows as a table and converts to pandas."""

    columns: tuple[str, ...] = ()
    caption = ""

    def __init__(self, items: Sequence):
        self._items = tuple(items)

    def __getitem__(self, i):
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} rows>"

    def as_dicts(self) -> list[dict]:
        return [item.as_dict() for item in self._items]

    def _table_rows(self) -> list[dict]:
        rows = self.as_dicts()
        for row in rows:
            row["title"] = row.get("display_title") or row.get("title")
        return rows

    def to_pandas(self):
        """A pandas DataFrame, one row per item (pandas imported lazily)."""
        return dataframe(self.as_dicts(), list(self.as_dicts()[0]) if self._items else self.columns)

    def _repr_html_(self) -> str:
        return html_table(self._table_rows(), self.columns, self.caption)


class Hits(_Rows):
    """Ranked hits for one query, best first. `excluded`: papers `similar` left out, and why."""

    columns = HIT_COLUMNS

    def __init__(
        self, items: Sequence[Hit], query: str = "", score_kind: str = "cosine", excluded: Sequence[Excluded] = ()
    ):
        super().__init__(items)
        self.query = query
        self.score_kind = score_kind
        self.excluded = tuple(excluded)
        self.caption = f"{len(items)} results for {query!r} (score = {SCORE_MEANING[score_kind]})"


SCORE_MEANING = {
    "cosine": "cosine similarity, higher is better",
    "bm25": "BM25, higher is better",
    "fused": f"{ALPHA:g} x min-max cosine + {1 - ALPHA:g} x min-max BM25 over the candidates, higher is better",
}


@dataclass(frozen=True)
class Filters:
    """Restrict a query to papers by year, source file, category or author; applied before ranking.

    Papers without a date never match a year filter. `sources` match as substrings of a
    paper's `file:line` sources; `categories` match exactly (case-insensitive); `authors` as
    substrings of an author's name (case-insensitive for ASCII letters). Several values
    of one kind are alternatives (OR); different kinds must all hold (AND).
    """

    year_from: int | None = None
    year_to: int | None = None
    sources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()  # case-insensitive substrings of an author's name

    def __bool__(self) -> bool:
        return bool(self.year_from or self.year_to or self.sources or self.categories or self.authors)

    def sql(self) -> tuple[str, list]:
        """An SQL condition over the papers table, and its arguments."""
        clauses, args = [], []
        year = "CAST(substr(date, 1, 4) AS INTEGER)"
        if self.year_from is not None:
            clauses.append(f"date IS NOT NULL AND {year} >= ?")
            args.append(int(self.year_from))
        if self.year_to is not None:
            clauses.append(f"date IS NOT NULL AND {year} <= ?")
            args.append(int(self.year_to))
        if self.sources:
            alternatives = " OR ".join("instr(value, ?) > 0" for _ in self.sources)
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(papers.sources) WHERE {alternatives})")
            args.extend(self.sources)
        if self.categories:
            alternatives = " OR ".join("lower(value) = lower(?)" for _ in self.categories)
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(papers.categories) WHERE {alternatives})")
            args.extend(self.categories)
        if self.authors:
            alternatives = " OR ".join("instr(lower(value), lower(?)) > 0" for _ in self.authors)
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(papers.authors) WHERE {alternatives})")
            args.extend(self.authors)
        return " AND ".join(f"({c})" for c in clauses) or "1", args

    def describe(self) -> str:
        parts = []
        if self.year_from is not None or self.year_to is not None:
            parts.append(f"year {self.year_from or '…'}–{self.year_to or '…'}")
        if self.sources:
            parts.append("source " + " or ".join(self.sources))
        if self.categories:
            parts.append("category " + " or ".join(self.categories))
        if self.authors:
            parts.append("author " + " or ".join(self.authors))
        return ", ".join(parts)


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score(row) = sum over rankings of 1 / (k + rank), best first."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, 1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def fuse(
    dense: Sequence[tuple[int, float]], lex: Sequence[tuple[int, float]], alpha: float = ALPHA
) -> list[tuple[int, float]]:
    """Convex fusion: alpha * min-max(dense) + (1 - alpha) * min-max(lexical), best first.

    Each channel's scores are scaled to [0, 1] over its own candidates; a row missing from a
    channel scores 0 there. Fused scores lie in [0, 1].
    """

    def scaled(pairs: Sequence[tuple[int, float]]) -> dict[int, float]:
        if not pairs:
            return {}
        lo, hi = min(s for _, s in pairs), max(s for _, s in pairs)
        return {r: (s - lo) / (hi - lo) if hi > lo else 1.0 for r, s in pairs}

    d, l = scaled(dense), scaled(lex)
    fused = {r: alpha * d.get(r, 0.0) + (1 - alpha) * l.get(r, 0.0) for r in d.keys() | l.keys()}
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def mmr(relevance: "np.ndarray", vectors: "np.ndarray", k: int, lam: float = MMR_LAMBDA) -> list[int]:
    """Maximal marginal relevance: positions of k items balancing relevance and novelty.

    Args:
        relevance: (n,) float, the candidates' similarity to the query.
        vectors: (n, dim) float32 L2-normalised candidate vectors.
    Returns:
        up to k positions into the candidates, in selection order.
    """
    import numpy as np

    chosen: list[int] = []
    max_sim = np.full(len(relevance), -np.inf, dtype=np.float32)
    left = np.ones(len(relevance), dtype=bool)
    for _ in range(min(k, len(relevance))):
        gain = lam * relevance - (1 - lam) * np.where(np.isinf(max_sim), 0, max_sim)
        gain[~left] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        left[pick] = False
        max_sim = np.maximum(max_sim, vectors @ vectors[pick])
    return chosen


class Papers(_Rows):
    """Papers of an index, in index order."""

    columns = PAPER_COLUMNS

    def as_dicts(self) -> list[dict]:
        return [paper_dict(p) for p in self._items]


def paper_dict(p: Paper) -> dict:
    return {
        "id": p.id,
        "title": p.title,
        "display_title": p.display_title(),
        "arxiv_id": p.arxiv_id,
        "aliases": [n for n in p.names if n not in (p.id, p.arxiv_id)],
        "date": p.date,
        "authors": list(p.authors),
        "categories": list(p.categories),
        "url": paper_url(p),
        "field_sources": field_sources(p),
        "sources": list(p.sources),
        "versions": len(p.versions),
        "abstract": p.abstract,
    }


class Index:
    """An index directory opened for queries. Use `Index.open(path)`."""

    def __init__(self, path: Path, manifest: Manifest, vectors, store: PaperStore, embedder: Embedder | None):
        self.path = path
        self.manifest = manifest
        self._vectors = vectors
        self._store = store
        self._embedder = embedder
        self._retired = store.retired() if manifest.retired else []  # rows left by in-place updates

    @classmethod
    def open(
        cls, path: str | Path = DEFAULT_INDEX, *, model: str | None = None, embedder: Embedder | None = None
    ) -> "Index":
        """Open the index at `path` for queries.

        Args:
            path: index directory.
            model: query with this model instead of the one recorded in the manifest; it must be
                the same weights.
            embedder: an `Embedder` to embed query text (tests, custom models).
        Raises:
            IndexNotFound, IndexFormatError: no index, or damaged files.
            ModelMismatch: `model`/`embedder` is not the model the index was built with.
        """
        path = Path(path)
        recover(path)
        manifest = Manifest.read(path)
        if embedder is None and model is not None:
            embedder = query_embedder_for(model, manifest.model_fingerprint)
        if embedder is not None:
            check_model(manifest, embedder)
        return cls(path, manifest, read_vectors(path, manifest), PaperStore(path), embedder)

    # --- embedding -------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The query embedder: the model recorded in the manifest unless one was given, run by the
        lightest backend that reproduces the index's vectors (ONNX, without torch, when it can)."""
        if self._embedder is None:
            embedder = query_embedder_for(self.manifest.model, self.manifest.model_fingerprint)
            check_model(self.manifest, embedder)
            self._embedder = embedder
        return self._embedder

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """Texts -> (len(texts), dim) float32 query vectors; raises QueryError on empty text."""
        for t in texts:
            _check_text(t)
        vectors = self.embedder.encode(list(texts))
        if vectors.shape[1] != self.manifest.dim:
            raise ModelMismatch(_mismatch_message(self.manifest, self.embedder.name, vectors.shape[1]))
        return vectors

    # --- search ----------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str | None = None,
        filters: Filters | None = None,
        diverse: bool = False,
    ) -> Hits:
        """The k papers that best answer `query`, best first.

        Args:
            query: natural-language text.
            k: number of results; fewer only when fewer papers pass `filters`.
            mode: "dense" (embeddings, cosine), "lexical" (BM25) or "hybrid" (reciprocal-rank
                fusion of both); default DEFAULT_MODE.
            filters: restrict to papers by year, source or category before ranking.
            diverse: re-rank the candidates by maximal marginal relevance (MMR_LAMBDA).
        Raises:
            QueryError: empty query, bad k or mode, or no paper passes the filters.
        """
        return self.search_batch([query], k, mode=mode, filters=filters, diverse=diverse)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        mode: str | None = None,
        filters: Filters | None = None,
        diverse: bool = False,
    ) -> list[Hits]:
        """`search` for many queries (one embedding call, one FAISS call)."""
        mode = self._mode(mode)
        ranked = self._rank(queries, k, mode, filters, diverse)
        return [self._hits(r, q, SCORE_KINDS[mode]) for r, q in zip(ranked, queries)]

    def _rank(
        self, queries: Sequence[str], k: int, mode: str, filters: Filters | None, diverse: bool
    ) -> list[list[tuple[int, float]]]:
        """Per query, up to k (row, score) best first."""
        _check_k(k)
        for q in queries:
            _check_text(q)
        rows = self._allowed(filters)
        n = max(CANDIDATES, 3 * k) if (diverse or mode == "hybrid") else k
        vectors = self.embed(queries) if (mode != "lexical" or diverse) else None
        dense = self.search_vectors(vectors, n, rows=rows) if mode != "lexical" else None
        results = []
        for i, q in enumerate(queries):
            ranked: list[tuple[int, float]] = []
            if dense is not None:
                ranked = [(int(r), float(sc)) for r, sc in zip(dense.rows[i], dense.scores[i]) if r >= 0]
            if mode != "dense":
                lex = lexical.search(self._store.connection, q, n, rows)
                ranked = lex if mode == "lexical" else fuse(ranked, lex)
            if diverse:
                ranked = self._diversify(vectors[i], ranked, k)
            results.append(ranked[:k])
        return results

    def search_vectors(
        self, vectors: "np.ndarray", k: int = 10, *, rows: Sequence[int] | None = None, exclude: Sequence[int] = ()
    ) -> Neighbours:
        """Inner-product search for (n, dim) float32 L2-normalised `vectors` (exact on a Flat index,
        else at the tuned search effort); never loads a model.

        Args:
            rows: search only these index rows (a filter applied inside FAISS, so k still come back).
            exclude: never return these rows.
        """
        import numpy as np

        _check_k(k)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.manifest.dim:
            raise QueryError(f"query vectors must have shape (n, {self.manifest.dim}), got {vectors.shape}")
        if rows is None and self._retired:  # a filter's rows are live already
            exclude = list(exclude) + self._retired
        return self._search(vectors, k, rows, exclude)

    def _search(self, vectors: "np.ndarray", k: int, rows: Sequence[int] | None, exclude: Sequence[int]) -> Neighbours:
        import faiss
        import numpy as np

        approximate = self.manifest.index_type != "flat"
        if rows is not None and approximate and (len(rows) <= EXACT_FILTER_MAX or not supports_selector(self._vectors)):
            return self._exact(vectors, k, rows, exclude)
        if not supports_selector(self._vectors) and len(exclude):
            found = self._search(vectors, k + len(exclude), rows, ())  # then drop the excluded
            return _drop(found, set(int(e) for e in exclude), k)
        keep = []  # FAISS selectors hold raw pointers: keep their arrays alive during search
        selector = None
        if rows is not None:
            keep.append(np.asarray(rows, dtype=np.int64))
            selector = faiss.IDSelectorBatch(keep[-1])
        if len(exclude):
            keep.append(np.asarray(exclude, dtype=np.int64))
            keep.append(faiss.IDSelectorBatch(keep[-1]))
            not_excluded = faiss.IDSelectorNot(keep[-1])
            keep.append(not_excluded)
            if selector is None:
                selector = not_excluded
            else:
                keep.append(selector)
                selector = faiss.IDSelectorAnd(selector, not_excluded)
        params = search_params(self._vectors, self.manifest.index_params, selector)
        kk = min(k, max(self.manifest.count, 1))
        scores, found = self._vectors.search(vectors, kk, params=params)
        if rows is not None and (found < 0).any() and len(rows) - len(exclude) > (found >= 0).sum(axis=1).min():
            return self._exact(vectors, k, rows, exclude)  # an approximate structure lost some: be exact
        return Neighbours(rows=found, scores=scores)

    def _exact(self, vectors: "np.ndarray", k: int, rows: Sequence[int], exclude: Sequence[int]) -> Neighbours:
        """Brute-force search over the stored vectors of `rows` (filtered queries on approximate indexes)."""
        import numpy as np

        rows = np.setdiff1d(np.asarray(rows, dtype=np.int64), np.asarray(exclude, dtype=np.int64))
        kk = min(k, len(rows))
        out_rows = np.full((len(vectors), k), -1, dtype=np.int64)
        out_scores = np.full((len(vectors), k), -np.inf, dtype=np.float32)
        if kk:
            sims = vectors @ self.vectors(rows).T
            top = np.argsort(-sims, axis=1, kind="stable")[:, :kk]
            out_rows[:, :kk] = rows[top]
            out_scores[:, :kk] = np.take_along_axis(sims, top, axis=1)
        return Neighbours(rows=out_rows[:, : max(kk, 1)], scores=out_scores[:, : max(kk, 1)])

    def _mode(self, mode: str | None) -> str:
        mode = mode or DEFAULT_MODE
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        return mode

    def _allowed(self, filters: Filters | None) -> list[int] | None:
        """Rows passing `filters` (None = all); raises QueryError when none does."""
        if not filters:
            return None
        rows = self._store.rows_where(*filters.sql())
        if not rows:
            raise QueryError(f"no paper matches the filters ({filters.describe()})")
        return rows

    def vectors(self, rows: Sequence[int]) -> "np.ndarray":
        """(len(rows), dim) float32 stored vectors of index rows."""
        import numpy as np

        if not len(rows):
            return np.zeros((0, self.manifest.dim), dtype=np.float32)
        return np.vstack([self._vectors.reconstruct(int(r)) for r in rows]).astype(np.float32)

    def _diversify(self, query_vector: "np.ndarray", ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
        cand = [r for r, _ in ranked]
        vecs = self.vectors(cand)
        order = mmr(vecs @ query_vector, vecs, k)
        return [ranked[i] for i in order]

    def _hits(
        self, ranked: Sequence[tuple[int, float]], query: str, score_kind: str, excluded: Sequence[Excluded] = ()
    ) -> Hits:
        papers = self._store.by_rows([r for r, _ in ranked])
        hits = [Hit(i, s, papers[r], score_kind) for i, (r, s) in enumerate(ranked, 1)]
        return Hits(hits, query, score_kind, excluded)

    # --- related papers ------------------------------------------------------------

    def paper(self, id: str) -> Paper:
        """The paper with this record id, arXiv id (any form) or former id (`Paper.names`); never by title.

        Raises:
            QueryError: no paper has this id.
        """
        arxiv = _maybe_arxiv(id)
        for column, value in (("id", id), ("arxiv_id", arxiv), ("name", id), ("name", arxiv)):
            if value:
                found = self._store.find(column, value)
                if found:
                    return found[0][1]
        raise QueryError(f"no paper with id or arXiv id {id!r}: see `semsearch papers`")

    def resolve(self, ref: str) -> tuple[int, Paper]:
        """The (row, paper) a reference names: record id, arXiv id (any form), any id of a record
        merged into it or an id it had before an update (`Paper.names`), or title.

        Titles match case-insensitively and tolerate small differences; a title that fits
        several papers raises QueryError listing them.
        """
        ref = " ".join(str(ref).split())
        if not ref:
            raise QueryError("empty reference: give a paper id, arXiv id or title")
        arxiv = _maybe_arxiv(ref)  # then the ids of papers merged into another, or renamed:
        for column, value in (("id", ref), ("arxiv_id", arxiv), ("name", ref), ("name", arxiv)):
            if value:
                found = self._store.find(column, value)
                if found:
                    return found[0]
        candidates = _title_candidates(ref, self._store.titles())
        if len(candidates) == 1:
            row = candidates[0]
            return row, self._store.by_rows([row])[row]
        if not candidates:
            raise QueryError(f"no paper with id, arXiv id or title {ref!r}: see `semsearch papers`")
        papers = self._store.by_rows(candidates)
        listing = "; ".join(f"{papers[r].id} ({papers[r].title})" for r in candidates[:8])
        raise QueryError(f"{ref!r} matches {len(candidates)} papers, give one id: {listing}")

    def similar(
        self,
        ref: str | None = None,
        k: int = 10,
        *,
        text: str | None = None,
        filters: Filters | None = None,
        diverse: bool = False,
    ) -> Hits:
        """Papers most like a given one (by `ref`) or like a pasted abstract (`text`), best first.

        The paper itself never appears, nor, for `text`, a paper the text is near-verbatim of
        (TEXT_VERSION_CONTAINMENT of the word 3-grams of one of its versions); the returned Hits'
        `excluded` names each paper left out and why. Ranking is by cosine of the stored (or
        embedded) vectors.
        """
        _check_k(k)
        if (ref is None) == (text is None):
            raise QueryError("give a paper reference or --text, not both")
        allowed = self._allowed(filters)
        if text is not None:
            _check_text(text)
            vector = self.embed([text])[0]
            label = text if len(text) <= 60 else text[:57] + "..."
            versions = self._versions_of(text, allowed)
            exclude, excluded = [row for row, _ in versions], [e for _, e in versions]
        else:
            row, paper = self.resolve(ref)
            vector, label, exclude = self.vectors([row])[0], paper.display_title(60), [row]
            excluded = [Excluded(paper, "the paper asked about")]
        n = max(CANDIDATES, 3 * k) if diverse else k
        found = self.search_vectors(vector[None, :], n, rows=allowed, exclude=exclude)
        ranked = [(int(r), float(sc)) for r, sc in zip(found.rows[0], found.scores[0]) if r >= 0]
        if diverse:
            ranked = self._diversify(vector, ranked, k)
        return self._hits(ranked[:k], f"like {label}", "cosine", excluded)

    def _versions_of(self, text: str, allowed: Sequence[int] | None = None) -> list[tuple[int, Excluded]]:
        """(row, Excluded) of the papers `text` is near-verbatim of, among `allowed` rows (None: all).

        A text shorter than an abstract (ingest.MIN_ABSTRACT_WORDS) is a query, never a version:
        three words found in one abstract do not make it that paper.
        """
        if len(words(text)) < MIN_ABSTRACT_WORDS:
            return []
        grams = shingles(text)
        rows = [row for row, _ in lexical.search(self._store.connection, text, TEXT_VERSION_CANDIDATES, allowed)]
        papers = self._store.by_rows(rows)
        found = []
        for row in rows:
            c = max(containment(grams, shingles(v)) for v in papers[row].versions)
            if c >= TEXT_VERSION_CONTAINMENT:
                reason = f"the text is a version of this paper (3-gram containment {c:.2f})"
                found.append((row, Excluded(papers[row], reason, round(c, 4))))
        return found

    # --- themes --------------------------------------------------------------------

    def themes(
        self,
        themes: Sequence[str],
        *,
        query: str | None = None,
        k: int = 50,
        mode: str | None = None,
        filters: Filters | None = None,
    ) -> ThemeGroups:
        """Group the corpus (or a query's top-k results) into themes the user names.

        Args:
            themes: each `name` or `name: description`.
            query: group only this query's top `k` results (ranked by `mode`).
        Returns:
            ThemeGroups: multi-label groups with scores (cosine to the theme) and `unassigned`.
        """
        specs = [ThemeSpec.parse(t) for t in themes]
        if not specs:
            raise QueryError("name at least one theme (or use discovered themes)")
        if len({s.name.lower() for s in specs}) != len(specs):
            raise QueryError("two themes have the same name")
        rows, papers = self._papers_for(query, k, mode, filters)
        theme_vectors = self.embed([s.text for s in specs])
        return group_named(papers, self.vectors(rows), specs, theme_vectors)

    def discover_themes(
        self,
        n: int | None = None,
        *,
        query: str | None = None,
        k: int = 50,
        mode: str | None = None,
        filters: Filters | None = None,
        random_state: int = 0,
    ) -> ThemeGroups:
        """Discover themes by clustering the embeddings (n chosen automatically when None).

        Each theme is labelled with its papers' most distinctive words (class-based TF-IDF);
        a paper's score is the cosine to its cluster centre.
        """
        from .cluster import AutoThemes
        from .embed import paper_text

        if n is not None and n < 1:
            raise QueryError(f"--n must be at least 1, got {n}")
        rows, papers = self._papers_for(query, k, mode, filters)
        vectors = self.vectors(rows)
        model = AutoThemes(n_themes=n, random_state=random_state).fit(vectors, [paper_text(p) for p in papers])
        return group_discovered(papers, vectors, model)

    def _papers_for(self, query, k, mode, filters) -> tuple[list[int], list[Paper]]:
        """Rows and papers to group: a query's top k, or every paper passing `filters`."""
        if query is not None:
            rows = [r for r, _ in self._rank([query], k, self._mode(mode), filters, False)[0]]
        else:
            rows = self._allowed(filters) or self._store.rows()
        found = self._store.by_rows(rows)
        return rows, [found[r] for r in rows]

    # --- records ---------------------------------------------------------------------

    def papers(self) -> Papers:
        """Every paper in the index, in index order."""
        return Papers(self._store.all())

    def __len__(self) -> int:
        return self.manifest.count

    def info(self) -> dict:
        """Model, dimension, count, index type and bytes on disk of each file."""
        m = self.manifest
        sizes = disk_usage(self.path)
        return {
            "path": str(self.path),
            "model": m.model,
            "model_fingerprint": m.model_fingerprint,
            "dim": m.dim,
            "count": m.count,
            "retired_rows": m.retired,
            "metric": m.metric,
            "index_type": m.index_type,
            "index_params": m.index_params,
            "index_recall_at_10": m.build.get("index_choice", {}).get("recall_at_10"),
            "text": m.text,
            "corpus_hash": m.corpus_hash,
            "created": m.created,
            "format_version": m.format_version,
            "semsearch_version": m.semsearch_version,
            "files": sizes,
            "bytes": sum(sizes.values()),
            "build": m.build,
        }

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, {self.manifest.count} papers, model={self.manifest.model!r})"


def _drop(found: Neighbours, excluded: set[int], k: int) -> Neighbours:
    import numpy as np

    rows = np.full((len(found.rows), k), -1, dtype=np.int64)
    scores = np.full((len(found.rows), k), -np.inf, dtype=np.float32)
    for q in range(len(found.rows)):
        keep = [i for i, r in enumerate(found.rows[q]) if r >= 0 and int(r) not in excluded][:k]
        rows[q, : len(keep)] = found.rows[q][keep]
        scores[q, : len(keep)] = found.scores[q][keep]
    return Neighbours(rows=rows, scores=scores)


def _check_k(k: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be at least 1, got {k}")


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise QueryError("empty query: give some words to search for")


def _maybe_arxiv(ref: str) -> str | None:
    try:
        return normalize_arxiv_id(ref)
    except ValueError:
        return None


def _title_candidates(ref: str, titles: Sequence[tuple[int, str]]) -> list[int]:
    """Rows whose title matches `ref`: exactly (ignoring case and punctuation), as the part
    before a colon (`FlexShard`), else by difflib ratio >= TITLE_MATCH, else as a phrase inside."""
    key = " ".join(words(ref))
    normal = [(row, " ".join(words(t))) for row, t in titles]
    exact = [row for row, t in normal if t == key]
    if exact:
        return exact
    heads = [row for row, t in titles if ":" in t and " ".join(words(t.split(":", 1)[0])) == key]
    if heads:
        return heads
    ratios = [(difflib.SequenceMatcher(None, key, t).ratio(), row) for row, t in normal]
    close = [row for ratio, row in sorted(ratios, reverse=True) if ratio >= TITLE_MATCH]
    if close:
        return close
    return [row for row, t in normal if key and f" {key} " in f" {t} "]


def _mismatch_message(manifest: Manifest, query_model: str, query_dim: int | str) -> str:
    return (
        f"index built with {manifest.model} (dim {manifest.dim}, weights {manifest.model_fingerprint}), "
        f"query model {query_model} (dim {query_dim}): rebuild with `semsearch build --model {query_model}` "
        f"or drop --model"
    )


def check_model(manifest: Manifest, embedder: Embedder) -> None:
    """Raise ModelMismatch unless `embedder` has the index's weights (fingerprint) and dimension."""
    if embedder.fingerprint != manifest.model_fingerprint:
        raise ModelMismatch(_mismatch_message(manifest, embedder.name, embedder.dim))
    if embedder.dim != manifest.dim:
        raise ModelMismatch(_mismatch_message(manifest, embedder.name, embedder.dim))
