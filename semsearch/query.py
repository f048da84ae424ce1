"""Query: an open index answering searches, related-paper lookups and theme groupings.

Every score says what it is (`score_kind`: cosine, bm25 or fused) and higher is always better.
Text calls delegate to array calls: `search(q)` -> `search_batch([q])` -> `search_vectors(array)`,
and only the last touches FAISS; none of them needs a model except to embed the query text.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import embed, fusion
from .embed import Embedder, paper_text
from .errors import ModelMismatch, QueryError
from .ingest import MIN_ABSTRACT_WORDS, maybe_arxiv
from .records import Paper, containment, shingles, words
from .results import Excluded, Hit, Hits, Neighbours, PaperList, Papers
from .store import lexical
from .store.directory import read_vectors, recover
from .store.manifest import Manifest, disk_usage
from .store.papers import PaperStore
from .store.target import DEFAULT_INDEX
from .store.vectors import VectorIndex
from .themes import ThemeGroups, ThemeSpec, evidence_from, group_discovered, group_named, term_counts

FACETS = ("background", "method", "result")  # semsearch.facets.FACETS, without importing it at start-up
#: `similar` with one reference and no facet re-ranks by all its sentences (facets.ALL_DOC_WEIGHT)
#: when True. False: on CSFCube it gains +0.007 NDCG@20 and loses 0.007 MAP against plain cosine,
#: while the first call on a 75k-paper index embeds the candidates' sentences for 12-23 s
#: (docs/benchmarks.md); sentence matching stays for `--facet`.
FACET_BY_DEFAULT = False

if TYPE_CHECKING:
    import numpy as np

MODES = ("dense", "lexical", "hybrid")
#: Chosen on SciFact and descriptive queries (benchmarks/retrieval.py, docs/benchmarks.md).
DEFAULT_MODE = "hybrid"
#: Hybrid = cosine + fusion.LEXICAL_WEIGHT * BM25 / the query's IDF mass (semsearch.fusion).
#: ALPHA is the old min-max fusion's weight, kept for `fuse` and the benchmark's comparison.
ALPHA = 0.5
#: Reciprocal-rank fusion constant (Cormack et al. 2009), for `rrf`, the measured alternative.
RRF_K = 60
#: Candidates taken from each channel before fusion or diversity re-ranking.
CANDIDATES = 100
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

SCORE_MEANING = {
    "cosine": "cosine similarity, higher is better",
    "bm25": "BM25, higher is better",
    "fused": f"cosine + {fusion.LEXICAL_WEIGHT:g} x BM25 / the query's IDF mass, higher is better",
    "related": (f"cosine with the paper's vector moved {fusion.SIMILAR.pull:g} towards its {fusion.SIMILAR.neighbours} "
                f"nearest papers + {fusion.SIMILAR.weight:g} x BM25 of its {fusion.SIMILAR.terms} most distinctive words "
                "/ their IDF mass, higher is better"),
    "svm": "decision value of a linear SVM fitted to the papers given, higher is better",
    "facet": "blend of facet sentence max-sim, abstract cosine and BM25 of the reference's most distinctive words, "
    "higher is better",
}
#: A search hit is a real match when its cosine with the query reaches this, whatever the mode
#: ranked by: chosen on dev queries as the best separation of queries whose best paper is judged
#: relevant from queries against a corpus that cannot answer them; of the top-1 scores tried the
#: cosine separates best (held-out AUC 0.996, fused 0.995, old min-max 0.882; docs/benchmarks.md).
MATCH_COSINE = 0.40
#: Themes over at most this many papers read every record at once (5,000 records: ~0.1 s), so
#: their groups outlive the open index; above it records are read when shown (75k papers: 1.9 s
#: for all of them, of a 2 s budget for named themes).
EAGER_PAPERS = 5000
#: Named themes over at most this many papers get lexical expansion (`themes.NamedThemes`, step 6):
#: it reads and tokenises every text, about 1 s at 4,500 papers; above it, the cost grows with the
#: corpus and the themes are made without it.
EXPANSION_MAX_PAPERS = 5000


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


class Index:
    """An index directory opened for queries. Use `Index.open(path)`."""

    def __init__(
        self, path: Path, manifest: Manifest, vectors: VectorIndex, store: PaperStore, embedder: Embedder | None
    ):
        self.path = path
        self.manifest = manifest
        self._vectors = vectors
        self._store = store
        self._embedder = embedder
        self._retired = store.retired() if manifest.retired else []  # rows left by in-place updates
        self._closed = False
        self._postings: lexical.Postings | None = None  # the hybrid's term postings, made on first use
        self._postings_lock = threading.Lock()

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
            embedder = embed.query_embedder_for(model, manifest.model_fingerprint)
        if embedder is not None:
            check_model(manifest, embedder)
        return cls(path, manifest, read_vectors(path, manifest), PaperStore(path), embedder)

    # --- embedding -------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The query embedder: the model recorded in the manifest unless one was given, run by the
        lightest backend that reproduces the index's vectors (ONNX, without torch, when it can)."""
        if self._embedder is None:
            embedder = embed.query_embedder_for(self.manifest.model, self.manifest.model_fingerprint)
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
            mode: "dense" (embeddings, cosine), "lexical" (BM25) or "hybrid" (convex fusion of
                both, see `fuse`: ALPHA x min-max cosine + (1 - ALPHA) x min-max BM25); default
                DEFAULT_MODE.
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
        ranked, vectors = self._rank(queries, k, mode, filters, diverse)
        return [self._hits(r, q, SCORE_KINDS[mode], query_vector=None if vectors is None else v)
                for r, q, v in zip(ranked, queries, vectors if vectors is not None else [None] * len(queries))]

    def _rank(
        self, queries: Sequence[str], k: int, mode: str, filters: Filters | None, diverse: bool
    ) -> tuple[list[list[tuple[int, float]]], "np.ndarray | None"]:
        """Per query, up to k (row, score) best first; and the query vectors (None in lexical mode)."""
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
            if mode == "lexical":
                ranked = lexical.search(self._store.connection, q, n, rows, lexical.WEIGHTS)
            elif mode == "hybrid":
                ranked = fusion.hybrid(self._store.connection, q, vectors[i], ranked, self.vectors, n=n, rows=rows,
                                       postings=self.postings)
            if diverse:
                ranked = self._diversify(vectors[i], ranked, k)
            results.append(ranked[:k])
        return results, vectors

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
        scores, found = self._vectors.search(vectors, min(k, max(self.manifest.count, 1)), allowed=rows, exclude=exclude)
        return Neighbours(rows=found, scores=scores)

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
        return self._vectors.reconstruct(rows)

    def embeddings(self, ids: Sequence[str] | None = None) -> tuple[list[str], "np.ndarray"]:
        """Papers' ids and stored vectors, for analysis of your own (UMAP, clustering, ...).

        Args:
            ids: paper references (id, arXiv id, an alias or a title, as `similar` takes them);
                None = every paper, in index order.
        Returns:
            (ids, vectors): the papers' ids and a (len(ids), dim) float32 array, L2-normalised
            (decoded from the index: approximate for ivf-sq8 / ivf-pq indexes).
        Raises:
            QueryError: a reference that names no paper.
        """
        if ids is None:
            pairs = self._store.rows_and_papers()
        else:
            pairs = [self.resolve(ref) for ref in ids]
        return [p.id for _, p in pairs], self.vectors([row for row, _ in pairs])

    def _diversify(self, query_vector: "np.ndarray", ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
        cand = [r for r, _ in ranked]
        vecs = self.vectors(cand)
        order = mmr(vecs @ query_vector, vecs, k)
        return [ranked[i] for i in order]

    def _hits(
        self,
        ranked: Sequence[tuple[int, float]],
        query: str,
        score_kind: str,
        excluded: Sequence[Excluded] = (),
        query_vector: "np.ndarray | None" = None,
    ) -> Hits:
        papers = self._store.by_rows([r for r, _ in ranked])
        match = [None] * len(ranked)
        if query_vector is not None and ranked:
            cosine = self.vectors([r for r, _ in ranked]) @ query_vector
            match = [bool(c >= MATCH_COSINE) for c in cosine]
        hits = [Hit(i, s, papers[r], score_kind, m) for i, ((r, s), m) in enumerate(zip(ranked, match), 1)]
        return Hits(hits, query, score_kind, excluded, SCORE_MEANING[score_kind])

    # --- related papers ------------------------------------------------------------

    def paper(self, id: str) -> Paper:
        """The paper with this record id, arXiv id (any form) or former id (`Paper.names`); never by title.

        Raises:
            QueryError: no paper has this id.
        """
        arxiv = maybe_arxiv(id)
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
        arxiv = maybe_arxiv(ref)  # then the ids of papers merged into another, or renamed:
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
        ref: str | Sequence[str] | None = None,
        k: int = 10,
        *,
        text: str | None = None,
        filters: Filters | None = None,
        diverse: bool = False,
        facet: str | None = None,
        unlike: Sequence[str] = (),
    ) -> Hits:
        """Papers most like a given one (by `ref`), like several, or like a pasted abstract (`text`).

        The paper itself never appears, nor, for `text`, a paper the text is near-verbatim of
        (TEXT_VERSION_CONTAINMENT of the word 3-grams of one of its versions); the returned Hits'
        `excluded` names each paper left out and why.

        Args:
            ref: a paper id, arXiv id or title, or several of them: with several (or with
                `unlike`) papers are ranked by a linear SVM fitted to them (semsearch.recommend).
            facet: "background", "method" or "result": rank by the sentences that play that role
                (semsearch.facets); `Hits.notes` says when the reference forced a fallback.
            unlike: papers to steer away from (negatives of the SVM); needs `ref`.
        Returns:
            Hits scored "related" (one reference: fusion.SIMILAR, cosine to its vector moved towards its
                nearest papers + BM25 of its most distinctive words), "cosine" (`text`), "facet" or "svm"
                (`score_kind`).
        Raises:
            QueryError: no reference or both kinds, a reference matching no or several papers,
                an unknown facet, `unlike` without `ref`, `facet` with several references.
        """
        _check_k(k)
        refs = [ref] if isinstance(ref, str) else list(ref or ())
        if facet is not None and facet not in FACETS:
            raise QueryError(f"unknown facet {facet!r}: use one of {', '.join(FACETS)}")
        if unlike and not refs:
            raise QueryError("--unlike needs at least one paper to be like: give REF")
        if len(refs) > 1 or unlike:
            if text is not None:
                raise QueryError("give paper references or --text, not both")
            if facet is not None:
                raise QueryError(f"--facet compares one paper: give one REF (got {len(refs)})")
            return self._recommend(refs, list(unlike), k, filters, diverse)
        ref = refs[0] if refs else None
        if (ref is None) == (text is None):
            raise QueryError("give a paper reference or --text, not both")
        if facet is not None or (FACET_BY_DEFAULT and not diverse):
            return self._facet_similar(ref, text, facet, k, filters)
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
        related = fusion.SIMILAR if text is None else fusion.Related()  # measured for a reference paper only
        n = max(CANDIDATES, 3 * k) if (diverse or related.weight > 0) else k
        found = self.search_vectors(vector[None, :], max(n, related.neighbours), rows=allowed, exclude=exclude)
        ranked = [(int(r), float(sc)) for r, sc in zip(found.rows[0], found.scores[0]) if r >= 0]
        kind = "cosine"
        if related.neighbours and related.pull > 0:
            kind, vector = "related", fusion.prf_query(vector, self.vectors([r for r, _ in ranked[: related.neighbours]]),
                                                       related.pull)
            found = self.search_vectors(vector[None, :], n, rows=allowed, exclude=exclude)
            ranked = [(int(r), float(sc)) for r, sc in zip(found.rows[0], found.scores[0]) if r >= 0]
        if related.weight > 0:
            kind, con = "related", self._store.connection
            mass = fusion.distinctive_terms(con, paper_text(paper), related.terms, postings=self.postings)
            ranked = fusion.hybrid(con, "", vector, ranked[:n], self.vectors, n=n, rows=allowed, weight=related.weight,
                                   postings=self.postings, mass=mass, title_weights=(1.0, 1.0),
                                   exclude=exclude + self._retired)
        if diverse:
            ranked = self._diversify(vector, ranked, k)
        return self._hits(ranked[:k], f"like {label}", kind, excluded)

    def _reference(
        self, ref: str | None, text: str | None, allowed
    ) -> tuple["np.ndarray", str, str, list[int], list[Excluded]]:
        """(vector, abstract, label, rows to exclude, Excluded) of a reference paper or pasted text."""
        if text is not None:
            _check_text(text)
            label = text if len(text) <= 60 else text[:57] + "..."
            versions = self._versions_of(text, allowed)
            return self.embed([text])[0], text, label, [r for r, _ in versions], [e for _, e in versions]
        row, paper = self.resolve(ref)
        asked = [Excluded(paper, "the paper asked about")]
        return self.vectors([row])[0], paper.abstract, paper.display_title(60), [row], asked

    def _facet_similar(self, ref, text, facet, k, filters) -> Hits:
        """`similar` re-ranking the facets.CANDIDATES nearest papers by sentence max-sim (facets.py)."""
        from .embed import CachedEmbedder, default_cache_path
        from .facets import CANDIDATES as FACET_CANDIDATES
        from .facets import facet_scores, split_sentences

        allowed = self._allowed(filters)
        vector, abstract, label, exclude, excluded = self._reference(ref, text, allowed)
        found = self.search_vectors(vector[None, :], max(FACET_CANDIDATES, k), rows=allowed, exclude=exclude)
        cand = [(int(r), float(sc)) for r, sc in zip(found.rows[0], found.scores[0]) if r >= 0]
        papers = self._store.by_rows([r for r, _ in cand])
        cache = default_cache_path()
        embedder = CachedEmbedder(self.embedder, cache) if cache else self.embedder
        import numpy as np

        sentences = split_sentences(abstract)
        con = self._store.connection
        mass = fusion.distinctive_terms(con, text if text is not None else paper_text(excluded[0].paper),
                                       postings=self.postings)
        bm25 = fusion.bm25_at(*fusion.every_bm25(con, mass, self.postings, (1.0, 1.0)), [r for r, _ in cand])
        scores, note = facet_scores(
            sentences, facet, vector, [papers[r].abstract for r, _ in cand],
            np.array([sc for _, sc in cand], dtype=np.float32), lambda t: embedder.encode(t),
            model=self.manifest.model, lexical=fusion.normalised_bm25(bm25, mass),
        )
        ranked = fusion.rank([r for r, _ in cand], scores)[:k]
        kind = "facet" if len(sentences) >= 2 else "cosine"  # one sentence: plain cosine, and a note says so
        hits = self._hits(ranked, f"like {label}" + (f" by {facet}" if facet else ""), kind, excluded)
        hits.notes = (note,) if note and facet else ()
        return hits

    def _recommend(self, refs: list[str], unlike: list[str], k: int, filters, diverse: bool) -> Hits:
        """`similar` for several papers (and papers to avoid): a per-request SVM (recommend.py)."""
        from .recommend import recommend_scores

        if diverse:
            raise QueryError("--diverse works with one REF: drop it or give one paper")
        liked = [self.resolve(r) for r in refs]
        avoid = [self.resolve(r) for r in unlike]
        both = [p for row, p in avoid if row in {r for r, _ in liked}]
        if both:
            raise QueryError(f"{both[0].id} is both liked and unliked: give it once")
        allowed = self._allowed(filters) or self._store.rows()
        skip = {row for row, _ in liked + avoid}
        train = list(dict.fromkeys([row for row, _ in liked + avoid] + list(allowed)))
        vectors = self.vectors(train)
        scores = recommend_scores(vectors, range(len(liked)), range(len(liked), len(liked) + len(avoid)))
        allowed_set = set(allowed)
        keep = [i for i, row in enumerate(train) if row not in skip and row in allowed_set]
        ranked = fusion.rank([train[i] for i in keep], scores[keep])[:k]
        excluded = [Excluded(p, "a paper asked about") for _, p in liked]
        excluded += [Excluded(p, "marked unlike") for _, p in avoid]
        label = ", ".join(p.display_title(30) for _, p in liked[:3]) + (" ..." if len(liked) > 3 else "")
        return self._hits(ranked, f"like {label}" + (f", unlike {len(avoid)}" if avoid else ""), "svm", excluded)

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
        words = lambda w: lexical.rows_matching(self._store.connection, w)  # noqa: E731
        evidence = evidence_from(words, len(rows), [s.name for s in specs], rows)
        counts = None
        if len(rows) <= EXPANSION_MAX_PAPERS:  # straight from the store: the PaperList stays unread
            found = self._store.by_rows(rows)
            counts = term_counts([paper_text(found[r]) for r in rows])
        return group_named(papers, self.vectors(rows), specs, theme_vectors, evidence, counts)

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

        if n is not None and n < 1:
            raise QueryError(f"--n must be at least 1, got {n}")
        rows, papers = self._papers_for(query, k, mode, filters)
        vectors = self.vectors(rows)
        model = AutoThemes(n_themes=n, random_state=random_state).fit(vectors, _Texts(papers))
        return group_discovered(papers, vectors, model)

    def _papers_for(self, query, k, mode, filters) -> tuple[list[int], PaperList]:
        """Rows and papers to group: a query's top k, or every paper passing `filters`. The
        papers are a `PaperList`: records are read when a caller looks at them, not here."""
        if query is not None:
            rows = [r for r, _ in self._rank([query], k, self._mode(mode), filters, False)[0][0]]
        else:
            rows = self._allowed(filters) or self._store.rows()
        papers = PaperList(rows, self._read_papers, self._row_of)
        if len(rows) <= EAGER_PAPERS:  # cheap: read now, so the groups outlive the open index
            papers.take(range(len(rows)))
        return rows, papers

    def _read_papers(self, rows: Sequence[int]) -> dict[int, Paper]:
        if self._closed:
            raise QueryError(f"{self.path}: the index was closed before these papers were read; over more than "
                             f"{EAGER_PAPERS:,} papers, themes read their papers when shown: look at them "
                             "before closing the index (inside `with Index.open(...)`)")
        return self._store.by_rows(rows)

    def _row_of(self, paper_id: str) -> int | None:
        found = self._store.find("id", paper_id)
        return found[0][0] if found else None

    # --- records ---------------------------------------------------------------------

    def papers(self) -> Papers:
        """Every paper in the index, in index order."""
        return Papers([p for _, p in self._store.rows_and_papers()])

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

    @property
    def postings(self) -> lexical.Postings:
        """The lexical channel's term postings, kept in memory while the index is open (made on first use)."""
        with self._postings_lock:
            if self._postings is None:
                self._postings = lexical.Postings(self._store.path, inode=self._store.inode)
            return self._postings

    def close(self) -> None:
        self._closed = True
        if self._postings is not None:
            self._postings.close()
        self._store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, {self.manifest.count} papers, model={self.manifest.model!r})"


class _Texts(Sequence):
    """The texts of a `PaperList`'s papers, read only for the positions asked for (`take`)."""

    def __init__(self, papers: PaperList):
        self._papers = papers

    def __len__(self) -> int:
        return len(self._papers)

    def __getitem__(self, i):
        return paper_text(self._papers[i]) if not isinstance(i, slice) else [paper_text(p) for p in self._papers[i]]

    def take(self, positions: Sequence[int]) -> list[str]:
        return [paper_text(p) for p in self._papers.take(positions)]


def _check_k(k: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be at least 1, got {k}")


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise QueryError("empty query: give some words to search for")


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
