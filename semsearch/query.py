"""Query: an open index answering searches. Scores are cosine similarity (higher is better).

Text calls delegate to array calls: `search(q)` -> `search_batch([q])` -> `search_vectors(array)`,
and only the last touches FAISS; none of them needs a model except to embed the query text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from .embed import Embedder, SentenceTransformerEmbedder
from .errors import ModelMismatch, QueryError
from .index import DEFAULT_INDEX, Manifest, PaperStore, disk_usage, read_vectors, recover
from .records import Paper
from .tables import dataframe, html_table

if TYPE_CHECKING:
    import numpy as np

HIT_COLUMNS = ("rank", "score", "id", "title", "arxiv_id", "date", "abstract")
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
            "id": p.id,
            "title": p.title,
            "display_title": p.display_title(),
            "arxiv_id": p.arxiv_id,
            "date": p.date,
            "authors": list(p.authors),
            "abstract": p.abstract,
            "versions": len(p.versions),
            "sources": list(p.sources),
        }


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
    """Ranked hits for one query, best first."""

    columns = HIT_COLUMNS

    def __init__(self, items: Sequence[Hit], query: str = ""):
        super().__init__(items)
        self.query = query
        self.caption = f"{len(items)} results for {query!r} (score = cosine similarity)" if query else ""


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
        "date": p.date,
        "authors": list(p.authors),
        "categories": list(p.categories),
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
            embedder = SentenceTransformerEmbedder(model)
        if embedder is not None:
            check_model(manifest, embedder)
        return cls(path, manifest, read_vectors(path, manifest), PaperStore(path), embedder)

    # --- embedding -------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The query embedder: the model recorded in the manifest unless one was given."""
        if self._embedder is None:
            embedder = SentenceTransformerEmbedder(self.manifest.model)
            check_model(self.manifest, embedder)
            self._embedder = embedder
        return self._embedder

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """Texts -> (len(texts), dim) float32 query vectors; raises QueryError on empty text."""
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise QueryError("empty query: give some words to search for")
        vectors = self.embedder.encode(list(texts))
        if vectors.shape[1] != self.manifest.dim:
            raise ModelMismatch(_mismatch_message(self.manifest, self.embedder.name, vectors.shape[1]))
        return vectors

    # --- search ----------------------------------------------------------------------

    def search(self, query: str, k: int = 10) -> Hits:
        """The k papers closest to `query`, best first."""
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int = 10) -> list[Hits]:
        """`search` for many queries at once (one embedding call, one FAISS call)."""
        found = self.search_vectors(self.embed(queries), k)
        return [self._hits(found.rows[i], found.scores[i], q) for i, q in enumerate(queries)]

    def search_vectors(self, vectors: "np.ndarray", k: int = 10) -> Neighbours:
        """Exact inner-product search for (n, dim) float32 L2-normalised `vectors`; never loads a model."""
        import numpy as np

        if k < 1:
            raise QueryError(f"k must be at least 1, got {k}")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.manifest.dim:
            raise QueryError(f"query vectors must have shape (n, {self.manifest.dim}), got {vectors.shape}")
        scores, rows = self._vectors.search(vectors, min(k, max(self.manifest.count, 1)))
        return Neighbours(rows=rows, scores=scores)

    def _hits(self, rows: "np.ndarray", scores: "np.ndarray", query: str) -> Hits:
        papers = self._store.by_rows([r for r in rows if r >= 0])
        hits = [Hit(rank, float(s), papers[int(r)]) for rank, (r, s) in enumerate(zip(rows[rows >= 0], scores[rows >= 0]), 1)]
        return Hits(hits, query)

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
            "metric": m.metric,
            "index_type": m.index_type,
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
