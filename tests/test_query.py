"""Searching: the array path against a brute-force oracle, hits, papers, notebook conversions."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import Hits, Index, QueryError
from semsearch.embed import paper_text


def test_search_vectors_matches_brute_force(seed_index, fake):
    papers = seed_index.papers()
    corpus = fake.encode([paper_text(p) for p in papers])
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(7, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for k in (1, 5, 25, 40):
        found = seed_index.search_vectors(queries, k)
        expected = corpus @ queries.T
        kk = min(k, 25)
        assert found.rows.shape == found.scores.shape == (7, kk)
        for q in range(7):
            order = np.argsort(-expected[:, q], kind="stable")[:kk]
            np.testing.assert_allclose(found.scores[q], expected[order, q], atol=1e-5)
            # each returned row really has the returned score (tie-safe check of the ids)
            np.testing.assert_allclose(expected[found.rows[q], q], found.scores[q], atol=1e-5)


def test_text_search_delegates_to_vectors(seed_index, fake):
    hits = seed_index.search("embedding table sharding for recommendation", k=4, mode="dense")
    vec = fake.encode(["embedding table sharding for recommendation"])
    found = seed_index.search_vectors(vec, 4)
    assert [h.score for h in hits] == pytest.approx(found.scores[0].tolist())
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_search_batch_equals_single_searches(seed_index):
    qs = ["quantization of language models", "video generation"]
    batch = seed_index.search_batch(qs, k=3)
    assert [[h.id for h in hits] for hits in batch] == [[h.id for h in seed_index.search(q, 3)] for q in qs]


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_refused(seed_index, query):
    with pytest.raises(QueryError, match="empty query"):
        seed_index.search(query)


def test_bad_k_and_bad_vectors_are_refused(seed_index):
    with pytest.raises(QueryError, match="k must be at least 1"):
        seed_index.search("x", k=0)
    with pytest.raises(QueryError, match=r"shape \(n, 64\)"):
        seed_index.search_vectors(np.zeros((1, 3), dtype=np.float32))


def test_hits_convert_to_pandas_and_html(seed_index):
    hits = seed_index.search("recommendation model training", k=3)
    assert isinstance(hits, Hits)
    df = hits.to_pandas()
    assert list(df["rank"]) == [1, 2, 3]
    assert {"id", "title", "arxiv_id", "score", "abstract"} <= set(df.columns)
    html = hits._repr_html_()
    assert html.startswith("<table>") and "reciprocal-rank fusion" in html and html.count("<tr>") == 4


def test_untitled_papers_show_a_marked_excerpt_in_html(seed_index):
    html = seed_index.papers()._repr_html_()
    assert "[no title] We propose RecShard" in html


def test_info_reports_model_dim_count_and_sizes(seed_index):
    info = seed_index.info()
    assert (info["model"], info["dim"], info["count"]) == ("fake-hash", 64, 25)
    assert set(info["files"]) == {"manifest.json", "vectors.faiss", "papers.sqlite"}
    assert info["bytes"] == sum(info["files"].values()) > 0


def test_open_without_embedder_uses_the_manifest_model_lazily(seed_index_path):
    idx = Index.open(seed_index_path)  # must not load a model until text is embedded
    assert idx._embedder is None and len(idx.papers()) == 25
    idx.close()
