"""Vector index structures: exact Flat below FLAT_MAX papers, else the lightest FAISS structure that
reaches the target recall@10 on a held-out sample of the corpus, measured at build time.

Array-level only (vectors in, VectorIndex out); no model, and no FAISS call of its own: every one
goes through vectors.VectorIndex. Ids are the rows of papers.sqlite; scores are inner products
of L2-normalised vectors (cosine).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ..errors import SemsearchError
from .vectors import VectorIndex

if TYPE_CHECKING:
    import numpy as np

INDEX_TYPES = ("auto", "flat", "ivf-sq8", "ivf-pq", "hnsw")
#: Below this many papers `auto` keeps exact search: a Flat query then costs ~5 ms on 2 cores
#: (docs/benchmarks.md), tuning would cost more than it saves, and recall is 1.
FLAT_MAX = 50_000
TARGET_RECALL = 0.95
#: Queries sampled from the corpus to measure recall@10 at build time.
TUNE_QUERIES = 300
_NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_EF_SEARCH = (16, 32, 64, 128, 256, 512)


@dataclass
class IndexChoice:
    """What was built and why: structure, FAISS factory string, search parameters, measured recall."""

    type: str
    factory: str
    params: dict = field(default_factory=dict)
    recall_at_10: float = 1.0
    target_recall: float = TARGET_RECALL
    tuned_on: int = 0
    reached: bool = True
    seconds: float = 0.0
    tried: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def nlist_for(n: int) -> int:
    """IVF lists: about 4 * sqrt(n), at least 1, at most n / 39 (FAISS wants >= 39 points per list)."""
    return max(1, min(int(4 * n**0.5), n // 39 or 1))


def factory_for(kind: str, n: int, dim: int) -> str:
    """FAISS index_factory string for an index type and corpus size."""
    if kind == "flat":
        return "Flat"
    if kind == "hnsw":
        return "HNSW32,Flat"
    if kind == "ivf-sq8":
        return f"IVF{nlist_for(n)},SQ8"
    if kind == "ivf-pq":
        m = next(m for m in (48, 32, 24, 16, 12, 8, 4, 2, 1) if dim % m == 0)
        bits = 8 if n >= 256 * 39 else 4  # 8-bit codebooks need ~10k training points
        # PQ codes alone cap recall@10 well below 0.95; re-ranking REFINE_K_FACTOR * k candidates
        # with 8-bit scalar-quantised vectors restores it (dim + m bytes per paper in all).
        return f"IVF{nlist_for(n)},PQ{m}x{bits},Refine(SQ8)"
    raise SemsearchError(f"unknown index type {kind!r}: use one of {', '.join(INDEX_TYPES)}")


def _recall(index: VectorIndex, params: dict, queries, truth, k: int = 10) -> float:
    index.set_params(params)
    _, found = index.search(queries, k)
    return sum(len(set(found[q]) & set(truth[q])) for q in range(len(queries))) / (k * len(queries))


def build_vector_index(
    vectors: "np.ndarray",
    kind: str = "auto",
    *,
    target_recall: float = TARGET_RECALL,
    random_state: int = 0,
):
    """Build the FAISS index for `vectors` ((n, dim) float32, L2-normalised; ids = row numbers).

    `auto`: Flat below FLAT_MAX; otherwise IVF-SQ8, then HNSW, each with the smallest search
    effort that reaches `target_recall`: recall@10 against exact search for TUNE_QUERIES papers
    held out of the index while it is tuned (added afterwards). An explicit kind is tuned the
    same way.
    When nothing reaches the target, the best measured setting is used and `reached` is False.

    Returns:
        (VectorIndex, IndexChoice)
    """
    import numpy as np

    start = time.perf_counter()
    n, dim = vectors.shape
    if kind not in INDEX_TYPES:
        raise SemsearchError(f"unknown index type {kind!r}: use one of {', '.join(INDEX_TYPES)}")
    if kind == "flat" or (kind == "auto" and n < FLAT_MAX) or n < 39:  # IVF needs >= 39 points per list
        index = VectorIndex.trained("Flat", vectors, random_state)
        return index, IndexChoice("flat", "Flat", {}, 1.0, target_recall, 0, True, time.perf_counter() - start)
    rng = np.random.default_rng(random_state)
    held = np.sort(rng.choice(n, min(TUNE_QUERIES, n // 10), replace=False))
    rest = np.setdiff1d(np.arange(n), held)
    queries = np.ascontiguousarray(vectors[held])
    exact = VectorIndex.trained("Flat", vectors, random_state, rest)
    _, truth = exact.search(queries, 10)  # exact top-10 among the papers the queries were held out from
    del exact
    tried = []
    best = None
    for candidate in ("ivf-sq8", "hnsw") if kind == "auto" else (kind,):
        factory = factory_for(candidate, n, dim)
        index = VectorIndex.trained(factory, vectors, random_state, rest)
        name, values = ("nprobe", _NPROBES) if candidate.startswith("ivf") else ("efSearch", _EF_SEARCH)
        for v in values:
            if index.nlist is not None and v > index.nlist:
                break
            r = _recall(index, {name: v}, queries, truth)
            tried.append({"type": candidate, name: v, "recall_at_10": round(r, 4)})
            if best is None or r > best[2]:
                best = (candidate, factory, r, {name: v}, index)
            if r >= target_recall:
                break
        if best[4] is index and best[2] >= target_recall:
            break
    candidate, factory, r, params, index = best
    index.add(vectors[held], held)  # the held-out rows, then rows made reconstructable (similar, themes)
    index.make_direct_map()
    index.set_params(params)
    choice = IndexChoice(candidate, factory, params, round(r, 4), target_recall, len(held), r >= target_recall,
                         time.perf_counter() - start, tried)
    return index, choice
