"""Recommend: several papers in (and some to avoid), a per-request SVM ranks the rest."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.errors import QueryError
from semsearch.recommend import recommend_scores


def clusters(seed=0, n=30, dim=6):
    """Three tight clusters on the axes of a 6-d space: rows 0-29 near e0, 30-59 near e1, 60-89 near e2."""
    rng = np.random.default_rng(seed)
    x = np.vstack([np.eye(dim)[i] + 0.15 * rng.normal(size=(n, dim)) for i in range(3)]).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("method", ["svm", "centroid"])
def test_liked_papers_pull_their_cluster_to_the_top(method):
    x = clusters()
    scores = recommend_scores(x, [0, 1, 2], method=method)
    top = np.argsort(-scores)[:30]
    assert set(top) == set(range(30))


def test_unliked_papers_push_theirs_down():
    x = clusters()
    liked = [0, 30]  # one paper of cluster 0 and one of cluster 1 ...
    both = recommend_scores(x, liked)
    assert min(both[:60]) > max(both[60:])  # cluster 2 last either way
    steered = recommend_scores(x, liked, [31, 32, 33])  # ... and three of cluster 1 disliked
    assert np.mean(steered[:30]) > np.mean(steered[30:60])


def test_several_references_rank_by_svm_and_leave_them_out(seed_index):
    hits = seed_index.similar(["AutoShard", "FlexShard"], 5, unlike=["The Llama 3 Herd of Models"])
    assert hits.score_kind == "svm" and len(hits) == 5
    asked = {e.id for e in hits.excluded}
    assert len(asked) == 3 and not asked & {h.id for h in hits}
    assert [e.reason for e in hits.excluded] == ["a paper asked about", "a paper asked about", "marked unlike"]


def test_bad_multi_paper_requests_are_one_line(seed_index):
    with pytest.raises(QueryError, match=r"^--unlike needs at least one paper to be like: give REF$"):
        seed_index.similar(None, 5, unlike=["FlexShard"])
    with pytest.raises(QueryError, match=r"^--facet compares one paper: give one REF \(got 2\)$"):
        seed_index.similar(["AutoShard", "FlexShard"], 5, facet="method")
    with pytest.raises(QueryError, match=r"^no paper with id, arXiv id or title 'no such paper at all'"):
        seed_index.similar(["AutoShard", "no such paper at all"], 5)
    with pytest.raises(QueryError, match=r"is both liked and unliked: give it once$"):
        seed_index.similar(["AutoShard", "FlexShard"], 5, unlike=["FlexShard"])
