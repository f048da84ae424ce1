"""Vector index structures: exact below FLAT_MAX, tuned to a target recall above, filters still exact."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import Filters, Index
from semsearch.builder import build_records
from semsearch.ingest import RawRecord
from semsearch.store.tune import FLAT_MAX, build_vector_index, factory_for, near_duplicates, nlist_for

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


def with_near_copies(papers: int = 800, copies: int = 12, dim: int = 32, seed: int = 0):
    """(corpus, fresh queries): papers with smoothly spread neighbourhoods, each followed into the
    corpus by ~`copies` near-copies (cosine ~0.86 to it, ~0.74 to each other; the 1M benchmark's
    synthetic papers), and 200 more papers from the same distribution that have no copies."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    base = centres[rng.integers(0, 50, papers + 200)] + rng.normal(size=(papers + 200, dim))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    near = base[rng.integers(0, papers, papers * copies)] + 0.1 * rng.normal(size=(papers * copies, dim))
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    return np.vstack([base[:papers], near]).astype(np.float32), base[papers:].astype(np.float32)


def test_near_copies_do_not_make_tuning_stop_early():
    x, fresh = with_near_copies()
    truth = exact_top(x, fresh, 10)

    def fresh_recall(index):
        _, found = index.search(fresh, 10)
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])

    # Counting a sampled paper's own near-copies, tuning is easy and stops at a tiny nprobe.
    old, old_choice = build_vector_index(x, "ivf-sq8", target_recall=0.9, near_duplicate_gap=None)
    assert old_choice.reached and fresh_recall(old) < 0.8
    index, choice = build_vector_index(x, "ivf-sq8", target_recall=0.9)
    assert choice.reached and choice.params["nprobe"] > old_choice.params["nprobe"]
    assert choice.near_duplicate_queries > choice.tuned_on / 2 and choice.near_duplicates_excluded > choice.tuned_on
    assert fresh_recall(index) >= 0.88  # the target, within the error of 200 queries


def test_near_duplicates_end_at_the_deepest_cliff():
    smooth = np.linspace(0.8, 0.5, 20)
    group = np.r_[0.9, 0.8, 0.78, 0.6, np.linspace(0.59, 0.4, 16)]  # three, then a drop of 0.18
    late = np.r_[0.95, 0.8, np.linspace(0.79, 0.7, 8), 0.6, np.linspace(0.59, 0.5, 9)]  # two cliffs: after 1, 10
    sims = np.vstack([smooth, group, late]).astype(np.float32)
    assert near_duplicates(sims, 0.05, 19).tolist() == [0, 3, 10]
    assert near_duplicates(sims, 0.05, 5).tolist() == [0, 3, 1]  # only the first 6 neighbours looked at


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
