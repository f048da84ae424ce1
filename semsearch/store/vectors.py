"""Vectors by integer id, searched by inner product: the one class that calls FAISS, and a numpy twin.

`VectorIndex` wraps a FAISS IndexIDMap2 (ids = rows of papers.sqlite) of any structure semsearch
builds (Flat, IVF-SQ8, IVF-PQ with SQ8 refinement, HNSW); `NumpyIndex` does the same with plain
arrays, exactly, as the reference the conformance test checks every structure against. Scores
are inner products of L2-normalised vectors (cosine), higher is better.

A Flat file is read without FAISS (`_read_flat`: its vectors and ids are plain arrays in the file)
and searched with a numpy matrix product, so a query never imports FAISS (~50 ms of a ~0.3 s cold
query); FAISS is loaded only if such an index is changed or saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import IndexFormatError

if TYPE_CHECKING:
    import numpy as np

#: Oversampling of IVF-PQ candidates re-ranked by the SQ8 refinement (see tune.factory_for).
REFINE_K_FACTOR = 4
#: Filtered queries on an approximate index search up to this many allowed rows exactly.
EXACT_FILTER_MAX = 50_000
#: Bytes of query-by-vector scores a numpy Flat search holds at once (queries are taken in chunks).
SCORES_BYTES = 64 << 20


class omp_threads:
    """Run FAISS with this many OpenMP threads (None = all): spinning OpenMP workers stall
    badly when the cores are busy, and small jobs gain nothing from them."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        import faiss

        self.before = faiss.omp_get_max_threads()
        if self.n is not None:
            faiss.omp_set_num_threads(self.n)

    def __exit__(self, *exc):
        import faiss

        faiss.omp_set_num_threads(self.before)


def _empty(n: int, k: int) -> tuple["np.ndarray", "np.ndarray"]:
    import numpy as np

    return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


def _top_k(sims: "np.ndarray", ids: "np.ndarray", k: int) -> tuple["np.ndarray", "np.ndarray"]:
    """(scores, ids) of the k best columns of `sims` per row, best first (ties: lower position first)."""
    import numpy as np

    kk = min(k, sims.shape[1])
    scores, found = _empty(len(sims), k)
    if kk:
        top = np.argsort(-sims, axis=1, kind="stable")[:, :kk]
        found[:, :kk] = ids[top]
        scores[:, :kk] = np.take_along_axis(sims, top, axis=1)
    return scores, found


def _best_k(sims: "np.ndarray", ids: "np.ndarray", k: int) -> tuple["np.ndarray", "np.ndarray"]:
    """`_top_k` by partial sort (same answers but among equal scores at the k-th place): (n, k)
    best first, id -1 and score -inf where fewer than k columns, or only -inf ones, exist."""
    import numpy as np

    kk = min(k, sims.shape[1])
    scores, found = _empty(len(sims), k)
    if kk:
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < sims.shape[1] else None
        part = np.sort(part, axis=1) if part is not None else np.broadcast_to(np.arange(kk), (len(sims), kk))
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        scores[:, :kk] = np.take_along_axis(sims, top, axis=1)
        found[:, :kk] = ids[top]
        found[np.isneginf(scores)] = -1
    return scores, found


class VectorIndex:
    """A FAISS index of vectors by id (an IndexIDMap2): build, add, search, reconstruct, save, load.

    Args:
        index: the FAISS IndexIDMap2 to wrap (None with `flat`).
        params: search parameters (`nprobe` for IVF, `efSearch` for HNSW), applied now.
        flat: instead of `index`, a Flat index as arrays: (vectors (n, dim) float32, ids (n,) int64),
            searched with numpy; the FAISS index is made from them only when needed (add, save).
    """

    def __init__(self, index=None, params: dict | None = None, *, flat: tuple["np.ndarray", "np.ndarray"] | None = None):
        if (index is None) == (flat is None):
            raise ValueError("give a FAISS index or flat arrays")
        self._faiss_index = index
        self._flat = flat
        self._positions_of: tuple["np.ndarray", "np.ndarray"] | None = None  # (argsort of ids, sorted ids)
        self.params = dict(params or {})
        self.set_params(self.params)

    @property
    def _index(self):
        """The FAISS IndexIDMap2, made from the flat arrays on first use (then those are dropped)."""
        if self._faiss_index is None:
            import faiss
            import numpy as np

            vectors, ids = self._flat
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
            self._faiss_index, self._flat, self._positions_of = index, None, None
        return self._faiss_index

    @classmethod
    def trained(cls, factory: str, vectors: "np.ndarray", random_state: int = 0, ids=None) -> "VectorIndex":
        """A new index of FAISS `factory` structure, trained on (a sample of) `vectors`, holding the
        rows `ids` of `vectors` (all when None) under their row numbers.

        Args:
            vectors: (n, dim) float32, L2-normalised.
        """
        with omp_threads(1 if len(vectors) < 200_000 else None):
            return cls._trained(factory, vectors, random_state, ids)

    @classmethod
    def _trained(cls, factory: str, vectors: "np.ndarray", random_state: int, ids) -> "VectorIndex":
        import faiss
        import numpy as np

        inner = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        if not inner.is_trained:
            rng = np.random.default_rng(random_state)
            ivf = faiss.try_extract_index_ivf(inner)
            size = max(100_000, 40 * ivf.nlist) if ivf is not None else 100_000  # FAISS wants >= 39 per list
            sample = vectors if len(vectors) <= size else vectors[rng.choice(len(vectors), size, replace=False)]
            if hasattr(inner, "cp"):
                inner.cp.seed = random_state
            inner.train(sample)
        index = faiss.IndexIDMap2(inner)
        ids = np.arange(len(vectors), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        index.add_with_ids(np.ascontiguousarray(vectors[ids], dtype=np.float32), ids)
        return cls(index)

    # --- facts -------------------------------------------------------------------------

    def _inner(self):
        import faiss

        return faiss.downcast_index(self._index.index)

    @property
    def dim(self) -> int:
        return int(self._flat[0].shape[1] if self._flat is not None else self._index.d)

    @property
    def ntotal(self) -> int:
        """Vectors held (retired rows included)."""
        return int(len(self._flat[1]) if self._flat is not None else self._index.ntotal)

    @property
    def exact(self) -> bool:
        """Whether search is brute force (a Flat index)."""
        if self._flat is not None:
            return True
        import faiss

        return isinstance(self._inner(), faiss.IndexFlat)

    @property
    def nlist(self) -> int | None:
        """IVF lists, or None for a structure without them."""
        if self._flat is not None:
            return None
        import faiss

        ivf = faiss.try_extract_index_ivf(self._inner())
        return None if ivf is None else int(ivf.nlist)

    @property
    def supports_selector(self) -> bool:
        """Whether FAISS can filter inside this index (a refined index ignores selectors)."""
        if self._flat is not None:
            return True
        import faiss

        return not isinstance(self._inner(), faiss.IndexRefine)

    def set_params(self, params: dict) -> None:
        """Apply search parameters (nprobe, efSearch) to the index."""
        self.params = dict(params)
        if self._flat is not None:
            return  # a Flat index has none
        import faiss

        inner = self._inner()
        if isinstance(inner, faiss.IndexRefine):
            inner.k_factor = REFINE_K_FACTOR
        ivf = faiss.try_extract_index_ivf(inner)
        if "nprobe" in params and ivf is not None:
            ivf.nprobe = int(params["nprobe"])
        if "efSearch" in params and hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = int(params["efSearch"])

    # --- changes -----------------------------------------------------------------------

    def add(self, vectors: "np.ndarray", ids: Sequence[int]) -> None:
        """Add (n, dim) float32 `vectors` under `ids` (n int64, not yet in the index)."""
        import numpy as np

        ids = np.asarray(ids, dtype=np.int64)
        with omp_threads(1 if len(ids) < 10_000 else None):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def make_direct_map(self) -> None:
        """Let an IVF index reconstruct vectors by id (no-op for other structures)."""
        if self._flat is not None:
            return
        import faiss

        ivf = faiss.try_extract_index_ivf(self._inner())
        if ivf is not None:
            ivf.make_direct_map()

    # --- reading -----------------------------------------------------------------------

    def reconstruct(self, ids: Sequence[int]) -> "np.ndarray":
        """(len(ids), dim) float32 stored vectors (decoded: approximate for quantised structures)."""
        import numpy as np

        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._flat is not None:
            wanted = np.asarray(ids, dtype=np.int64)
            where = self._positions(wanted)
            if len(where) != len(wanted):
                missing = np.setdiff1d(wanted, self._flat[1])[:1]
                raise KeyError(f"id {int(missing[0]) if len(missing) else wanted[0]} is not in the index")
            return self._flat[0][where]
        return np.asarray(self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64)), dtype=np.float32)

    def _positions(self, wanted: "np.ndarray") -> "np.ndarray":
        """Positions in the flat arrays of the `wanted` ids that are there (in `wanted`'s order)."""
        import numpy as np

        ids = self._flat[1]
        if self._positions_of is None:
            order = np.argsort(ids, kind="stable")
            self._positions_of = order, ids[order]
        order, ranked = self._positions_of
        at = np.minimum(np.searchsorted(ranked, wanted), max(len(ranked) - 1, 0))
        hit = ranked[at] == wanted if len(ranked) else np.zeros(len(wanted), dtype=bool)
        return order[at[hit]]

    def _flat_search(self, queries, k: int, allowed, exclude):
        """Exact search of the flat arrays: `search`'s answer, by numpy."""
        import numpy as np

        vectors, ids = self._flat
        width = min(k, max(len(ids), 1))
        if allowed is not None:
            cols = np.unique(self._positions(np.asarray(allowed, dtype=np.int64)))
        else:
            cols = None
        if len(exclude):
            drop = self._positions(np.asarray(exclude, dtype=np.int64))
            cols = np.setdiff1d(np.arange(len(ids)) if cols is None else cols, drop)
        matrix = vectors if cols is None else vectors[cols]
        col_ids = ids if cols is None else ids[cols]
        scores, found = _empty(len(queries), width)
        step = max(1, SCORES_BYTES // (4 * max(len(col_ids), 1)))
        for start in range(0, len(queries), step):
            part = slice(start, start + step)
            scores[part], found[part] = _best_k(queries[part] @ matrix.T, col_ids, width)
        return scores, found

    def search(
        self, queries: "np.ndarray", k: int, *, allowed: Sequence[int] | None = None, exclude: Sequence[int] = ()
    ) -> tuple["np.ndarray", "np.ndarray"]:
        """The k best ids per query by inner product, restricted to `allowed` ids, never `exclude`d ones.

        Args:
            queries: (n, dim) float32.
            k: results per query; at most the vectors held.
            allowed: only these ids (None = all). On an approximate structure, up to EXACT_FILTER_MAX
                of them are searched exactly; more go through a FAISS selector, and should the
                structure lose some of them, exactly again, so k still come back when k exist.
            exclude: never these ids.
        Returns:
            (scores, ids): float32 and int64 arrays of shape (n, min(k, ntotal)), best first; id -1
            (score -inf) where fewer exist.
        """
        import numpy as np

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self._flat is not None:
            return self._flat_search(queries, k, allowed, exclude)
        if allowed is not None and not self.exact and (len(allowed) <= EXACT_FILTER_MAX or not self.supports_selector):
            return self._exact(queries, k, allowed, exclude)
        if not self.supports_selector and len(exclude):
            scores, found = self.search(queries, k + len(exclude), allowed=allowed)  # then drop the excluded
            return _drop(scores, found, {int(e) for e in exclude}, min(k, max(self.ntotal, 1)))
        scores, found = self._search(queries, min(k, max(self.ntotal, 1)), allowed, exclude)
        live = None if allowed is None else len(np.setdiff1d(np.asarray(allowed, dtype=np.int64), exclude))
        if live is not None and (found < 0).any() and live > (found >= 0).sum(axis=1).min():
            return self._exact(queries, k, allowed, exclude)  # an approximate structure lost some: be exact
        return scores, found

    def _search(self, queries, k: int, allowed, exclude):
        import faiss
        import numpy as np

        keep = []  # FAISS selectors hold raw pointers: keep their arrays alive during search
        selector = None
        if allowed is not None:
            keep.append(np.asarray(allowed, dtype=np.int64))
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
        scores, found = self._index.search(queries, k, params=self._search_params(selector))
        scores[found < 0] = -np.inf  # FAISS pads with -FLT_MAX; the exact paths with -inf
        return scores, found

    def _search_params(self, selector):
        """FAISS SearchParameters carrying the selector and this index's nprobe / efSearch."""
        import faiss

        if selector is None:
            return None  # the parameters were set on the index by set_params
        inner = self._inner()
        if "nprobe" in self.params and faiss.try_extract_index_ivf(inner) is not None:
            return faiss.SearchParametersIVF(sel=selector, nprobe=int(self.params["nprobe"]))
        if "efSearch" in self.params and hasattr(inner, "hnsw"):
            return faiss.SearchParametersHNSW(sel=selector, efSearch=int(self.params["efSearch"]))
        return faiss.SearchParameters(sel=selector)

    def _exact(self, queries, k: int, allowed: Sequence[int], exclude: Sequence[int]):
        """Brute force over the stored vectors of `allowed` (filtered queries on approximate indexes)."""
        import numpy as np

        ids = np.setdiff1d(np.asarray(allowed, dtype=np.int64), np.asarray(exclude, dtype=np.int64))
        scores, found = _top_k(queries @ self.reconstruct(ids).T, ids, k)
        width = max(min(k, len(ids)), 1)
        return scores[:, :width], found[:, :width]

    # --- files -------------------------------------------------------------------------

    def nbytes(self) -> int:
        """Bytes of the index serialised (about its size in memory and on disk)."""
        import faiss

        return int(faiss.serialize_index(self._index).nbytes)

    def save(self, path: Path) -> None:
        """Write the index to `path` in FAISS's binary format; raises OSError / RuntimeError."""
        import faiss

        # Through a Python file: given a file name, FAISS ignores a failed fclose (it prints "close
        # error" and returns), so a disk that fills at the last buffered bytes left a truncated file.
        with open(path, "wb") as f:
            faiss.write_index(self._index, faiss.PyCallbackIOWriter(f.write))

    @classmethod
    def load(cls, path: Path, params: dict | None = None) -> "VectorIndex":
        """Read an index `save` wrote; raises IndexFormatError for a missing or damaged file.

        A Flat index comes back as arrays searched with numpy (FAISS not imported); others through FAISS.
        """
        path = Path(path)
        if not path.is_file():
            raise IndexFormatError(f"{path}: missing; rebuild the index")
        flat = _read_flat(path)
        if flat is not None:
            return cls(params=params, flat=flat)
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            reason = reason.rsplit("failed: ", 1)[-1]  # FAISS prefixes the C++ function and source line
            raise IndexFormatError(f"{path}: damaged FAISS file ({reason}); rebuild the index") from None
        if not hasattr(index, "id_map"):
            raise IndexFormatError(f"{path}: not a semsearch vector index (no row ids); rebuild the index")
        return cls(index, params)


#: FAISS's four-character codes of the one layout `_read_flat` reads: an IndexIDMap2 around an IndexFlatIP.
_IDMAP2, _FLAT_IP = b"IxM2", b"IxFI"
_HEADER = 4 + 8 + 8 + 8 + 1 + 4  # d int32, ntotal int64, two dummies int64, is_trained bool, metric int32


def _read_flat(path: Path) -> tuple["np.ndarray", "np.ndarray"] | None:
    """(vectors (n, d) float32, ids (n,) int64) of a FAISS IndexIDMap2 + IndexFlatIP file, or None
    for any other structure (read by FAISS then).

    The layout (faiss/impl/index_write.cpp): "IxM2", index header, "IxFI", index header, the
    vectors as a uint64 count of floats then the floats, the ids as a uint64 count then int64s; all
    little-endian. An index header is d (int32), ntotal (int64), two unused int64, is_trained (one
    byte), metric (int32; inner product = 0, no metric argument follows).

    Raises:
        IndexFormatError: a Flat file cut short or with inconsistent sizes.
    """
    import numpy as np

    with open(path, "rb") as f:
        data = f.read(2 * (4 + _HEADER))
        if len(data) < 2 * (4 + _HEADER) or data[:4] != _IDMAP2 or data[4 + _HEADER : 8 + _HEADER] != _FLAT_IP:
            return None
        d, n = int(np.frombuffer(data, "<i4", 1, 8 + _HEADER)[0]), int(np.frombuffer(data, "<i8", 1, 12 + _HEADER)[0])
        metric = int(np.frombuffer(data, "<i4", 1, 4 + 2 * _HEADER)[0])
        if metric != 0 or d <= 0 or n < 0:
            return None

        def count(expected: int) -> None:
            got = f.read(8)
            if len(got) < 8 or int(np.frombuffer(got, "<u8")[0]) != expected:
                raise IndexFormatError(f"{path}: damaged FAISS file (sizes do not add up); rebuild the index")

        count(n * d)
        vectors = np.fromfile(f, dtype="<f4", count=n * d)
        count(n)
        ids = np.fromfile(f, dtype="<i8", count=n)
        if len(vectors) != n * d or len(ids) != n or f.read(1):
            raise IndexFormatError(f"{path}: damaged FAISS file (cut short or too long); rebuild the index")
    return vectors.reshape(n, d).astype(np.float32, copy=False), ids.astype(np.int64, copy=False)


def _drop(scores, found, excluded: set[int], k: int):
    """The first k results per query that are not `excluded` (for structures without selectors)."""
    out_scores, out_found = _empty(len(found), k)
    for q in range(len(found)):
        keep = [i for i, r in enumerate(found[q]) if r >= 0 and int(r) not in excluded][:k]
        out_found[q, : len(keep)] = found[q][keep]
        out_scores[q, : len(keep)] = scores[q][keep]
    return out_scores, out_found


class NumpyIndex:
    """`VectorIndex`'s interface over plain arrays, searched exactly: the reference backend.

    Args:
        dim: vector dimension.
    """

    exact = True
    supports_selector = True
    nlist = None

    def __init__(self, dim: int):
        import numpy as np

        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self.params: dict = {}

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    def set_params(self, params: dict) -> None:
        self.params = dict(params)

    def add(self, vectors: "np.ndarray", ids: Sequence[int]) -> None:
        import numpy as np

        self._vectors = np.vstack([self._vectors, np.asarray(vectors, dtype=np.float32)])
        self._ids = np.concatenate([self._ids, np.asarray(ids, dtype=np.int64)])

    def make_direct_map(self) -> None:
        pass

    def reconstruct(self, ids: Sequence[int]) -> "np.ndarray":

        where = {int(i): p for p, i in enumerate(self._ids)}
        return self._vectors[[where[int(i)] for i in ids]].reshape(len(ids), self.dim)

    def search(self, queries, k: int, *, allowed=None, exclude=()):
        import numpy as np

        keep = np.ones(len(self._ids), dtype=bool)
        if allowed is not None:
            keep &= np.isin(self._ids, np.asarray(allowed, dtype=np.int64))
        keep &= ~np.isin(self._ids, np.asarray(exclude, dtype=np.int64))
        queries = np.asarray(queries, dtype=np.float32)
        return _top_k(queries @ self._vectors[keep].T, self._ids[keep], min(k, max(self.ntotal, 1)))

    def save(self, path: Path) -> None:
        import numpy as np

        with open(path, "wb") as f:
            np.savez(f, vectors=self._vectors, ids=self._ids)

    @classmethod
    def load(cls, path: Path, params: dict | None = None) -> "NumpyIndex":
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            index = cls(int(data["vectors"].shape[1]))
            index.add(data["vectors"], data["ids"])
        return index
