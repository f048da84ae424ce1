"""Vector index structures: exact Flat below FLAT_MAX papers, else the lightest FAISS structure that
reaches the target recall@10 on a held-out sample of the corpus, measured at build time with each
sampled paper's near-duplicates set aside (a real query has none in the corpus).

Array-level only (vectors in, VectorIndex out); no model, and no FAISS call of its own: every one
goes through vectors.VectorIndex. Ids are the rows of papers.sqlite; scores are inner products
of L2-normalised vectors (cosine).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ..errors import SemsearchError
from .vectors import VectorIndex, omp_threads

if TYPE_CHECKING:
    import numpy as np

INDEX_TYPES = ("auto", "flat", "ivf-sq8", "ivf-pq", "hnsw")
#: Below this many papers `auto` keeps exact search: a Flat query then costs ~5 ms on 2 cores
#: (docs/benchmarks.md), tuning would cost more than it saves, and recall is 1.
FLAT_MAX = 50_000
TARGET_RECALL = 0.95
#: Queries sampled from the corpus to measure recall@10 at build time: the standard error of a
#: recall near 0.95 is then ~0.003 (with 300, ~0.005: about how far under the target nprobe=64
#: lies on the 1M benchmark corpus, docs/benchmarks.md).
TUNE_QUERIES = 1000
#: A tuning query's near-duplicates: its nearest neighbours above the deepest drop of at least
#: NEAR_DUPLICATE_GAP in cosine among its NEAR_DUPLICATE_MAX + 1 nearest. Real neighbourhoods decay
#: smoothly (all-MiniLM-L6-v2, arXiv titles: median largest drop 0.033, almost always after the
#: first or second neighbour); a tight group (versions of one paper, or the synthetic
#: neighbours of the 1M benchmark, 0.74-0.86 to each other) ends in a cliff of 0.09-0.3.
NEAR_DUPLICATE_GAP = 0.05
NEAR_DUPLICATE_MAX = 64
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
    #: tuning queries that had near-duplicates set aside, and how many papers that set aside in all
    near_duplicate_queries: int = 0
    near_duplicates_excluded: int = 0

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


def near_duplicates(sims: "np.ndarray", gap: float = NEAR_DUPLICATE_GAP, most: int = NEAR_DUPLICATE_MAX):
    """How many of each query's nearest neighbours are its near-duplicates: those above the
    deepest drop of at least `gap` in similarity between consecutive neighbours among the first
    `most` + 1 (0 where there is no such drop).

    Args:
        sims: (n, >= most + 1) float32 similarities of each query's nearest neighbours, best first.
    Returns:
        (n,) int64, each in [0, most].
    """
    import numpy as np

    drops = sims[:, :most] - sims[:, 1 : most + 1]
    big = drops >= gap
    deepest = most - np.argmax(big[:, ::-1], axis=1)  # 1-based position of the last big drop
    return np.where(big.any(axis=1), deepest, 0).astype(np.int64)


def _exact_neighbours(vectors: "np.ndarray", queries: "np.ndarray", skip: "np.ndarray", k: int):
    """(sims, ids), each (len(queries), k), of the k rows of `vectors` nearest each query by inner
    product, best first, rows where `skip` is True left out. Plain numpy in blocks, so a 1M corpus
    needs no second copy of its vectors in a Flat index."""
    import numpy as np

    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), 32_768):
        sims = queries @ vectors[start : start + 32_768].T
        sims[:, skip[start : start + 32_768]] = -np.inf
        kk = min(k, sims.shape[1])
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        both_s = np.hstack([best_s, np.take_along_axis(sims, top, axis=1)])
        both_i = np.hstack([best_i, top + start])
        keep = np.argpartition(-both_s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(both_s, keep, axis=1), np.take_along_axis(both_i, keep, axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_s, order, axis=1), np.take_along_axis(best_i, order, axis=1)


def _recall(index: VectorIndex, params: dict, queries, truth, excluded, k: int = 10) -> float:
    """Mean recall@k of `index` under `params`; query q never counts the ids `excluded[q]`."""
    index.set_params(params)
    found = {}
    plain = [q for q in range(len(queries)) if not len(excluded[q])]
    if plain:
        found.update(zip(plain, index.search(queries[plain], k)[1]))
    with omp_threads(1):  # one query at a time: OpenMP workers only stall on busy cores
        for q in range(len(queries)):
            if len(excluded[q]):
                found[q] = index.search(queries[q : q + 1], k, exclude=excluded[q])[1][0]
    return sum(len(set(found[q]) & set(truth[q])) for q in range(len(queries))) / (k * len(queries))


def build_vector_index(
    vectors: "np.ndarray",
    kind: str = "auto",
    *,
    target_recall: float = TARGET_RECALL,
    random_state: int = 0,
    near_duplicate_gap: float | None = NEAR_DUPLICATE_GAP,
):
    """Build the FAISS index for `vectors` ((n, dim) float32, L2-normalised; ids = row numbers).

    `auto`: Flat below FLAT_MAX; otherwise IVF-SQ8, then HNSW, each with the smallest search
    effort that reaches `target_recall`: recall@10 against exact search for TUNE_QUERIES papers
    held out of the index while it is tuned (added afterwards). Each held-out paper's
    near-duplicates (see `near_duplicates`; `near_duplicate_gap=None`: none) are left out of its
    exact top 10 and of its results: a paper with a tight group of near-copies in the corpus finds
    them in the first IVF list it probes, so counting them tuned a 1M corpus to nprobe=4 (recall
    0.69 on real queries). An explicit kind is tuned the same way.
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
    skip = np.zeros(n, dtype=bool)
    skip[held] = True
    rest = np.flatnonzero(~skip)
    queries = np.ascontiguousarray(vectors[held])
    most = min(NEAR_DUPLICATE_MAX, len(rest) - 10) if near_duplicate_gap is not None else 0
    sims, ids = _exact_neighbours(vectors, queries, skip, most + 10)  # among the papers held out from
    dups = near_duplicates(sims, near_duplicate_gap, most) if most > 0 else np.zeros(len(held), dtype=np.int64)
    truth = [ids[q, d : d + 10] for q, d in enumerate(dups)]
    excluded = [ids[q, :d] for q, d in enumerate(dups)]
    tried = []
    best = None
    for candidate in ("ivf-sq8", "hnsw") if kind == "auto" else (kind,):
        factory = factory_for(candidate, n, dim)
        index = VectorIndex.trained(factory, vectors, random_state, rest)
        name, values = ("nprobe", _NPROBES) if candidate.startswith("ivf") else ("efSearch", _EF_SEARCH)
        for v in values:
            if index.nlist is not None and v > index.nlist:
                break
            r = _recall(index, {name: v}, queries, truth, excluded)
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
                         time.perf_counter() - start, tried, int((dups > 0).sum()), int(dups.sum()))
    return index, choice
