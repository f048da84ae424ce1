"""Vector index structures: exact below FLAT_MAX, tuned to a target recall above, filters still exact."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import Filters, Index
from semsearch.builder import build_records
from semsearch.ingest import RawRecord
from semsearch.store.tune import FLAT_MAX, build_vector_index, factory_for, nlist_for

from .conftest import FakeEmbedder


def clustered(n: int, dim: int = 32, centers: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    x = c[rng.integers(0, centers, n)] + 0.35 * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def exact_top(x, q, k):
    return np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]


def test_auto_is_exact_flat_below_the_threshold():
    x = clustered(500)
    index, choice = build_vector_index(x, "auto")
    assert choice.type == "flat" and choice.recall_at_10 == 1.0 and FLAT_MAX > 500
    _, found = index.search(x[:5], 10)
    assert (found == exact_top(x, x[:5], 10)).all()


@pytest.mark.parametrize("kind", ["ivf-sq8", "ivf-pq", "hnsw"])
def test_approximate_kinds_reach_the_target_recall(kind):
    both = clustered(4050)
    x, q = both[:4000], both[4000:]
    index, choice = build_vector_index(x, kind, target_recall=0.9)
    assert choice.type == kind and choice.reached and choice.recall_at_10 >= 0.9
    assert choice.params and choice.tried
    _, found = index.search(q, 10)
    truth = exact_top(x, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.85  # fresh queries, not the tuning sample


def test_unreachable_target_falls_back_to_the_best_measured():
    x = clustered(3000, dim=48)
    _, choice = build_vector_index(x, "ivf-pq", target_recall=1.01)
    assert not choice.reached and choice.type == "ivf-pq"
    assert choice.recall_at_10 == max(t["recall_at_10"] for t in choice.tried)


def test_factory_strings():
    assert factory_for("ivf-pq", 1_000_000, 384) == "IVF4000,PQ48x8,Refine(SQ8)" and "PQ32x4," in factory_for("ivf-pq", 5000, 32)
    assert nlist_for(100) == 2 and factory_for("hnsw", 10, 8) == "HNSW32,Flat"


def test_filtered_queries_on_an_approximate_index_still_return_k(tmp_path):
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(300)]
    records = [
        RawRecord(" ".join(rng.choice(words, 25)), "gen.jsonl", i + 1, title=f"paper {i}", id=f"p{i}",
                  date=f"{2000 + i % 20}-01-01")
        for i in range(2500)
    ]
    build_records(records, tmp_path / "idx", embedder=FakeEmbedder(dim=32), dedupe=False, cache=False,
                  index_type="hnsw", target_recall=0.9)
    with Index.open(tmp_path / "idx", embedder=FakeEmbedder(dim=32)) as idx:
        assert idx.manifest.index_type == "hnsw" and idx.info()["index_params"]
        hits = idx.search("w1 w2 w3", k=10, mode="dense", filters=Filters(year_from=2019))
        assert len(hits) == 10 and all(h.paper.year == 2019 for h in hits)
        exact = idx.search_vectors(idx.embed(["w1 w2 w3"]), 10, rows=[r for r in range(2500) if r % 20 == 19])
        assert [h.id for h in hits] == [f"p{r}" for r in exact.rows[0]]
