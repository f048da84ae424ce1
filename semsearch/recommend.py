"""Recommend: papers like several given ones (and unlike others), by a linear model fitted per request.

As arXiv-sanity does per tag: the liked papers are positives, every other paper a negative (the
papers marked "unlike" always among them, with weight UNLIKE_WEIGHT, and left out of the results),
and a linear SVM on the embeddings (class-balanced) ranks the corpus by its decision value. The centroid of the liked
papers, the obvious alternative, is what the SVM is measured against (benchmarks/recommend.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np

#: LinearSVC regularisation; chosen on dev categories (docs/benchmarks.md).
SVM_C = 0.1
#: Weight of each "unlike" paper against an ordinary negative; chosen on dev categories (1 beat 10).
UNLIKE_WEIGHT = 1.0
#: Negatives drawn from the corpus at most (the rest cost time and change little).
MAX_NEGATIVES = 20_000
METHODS = ("svm", "centroid")


def recommend_scores(
    vectors: "np.ndarray",
    liked: Sequence[int],
    unliked: Sequence[int] = (),
    *,
    method: str = "svm",
    c: float = SVM_C,
    unlike_weight: float = UNLIKE_WEIGHT,
    random_state: int = 0,
) -> "np.ndarray":
    """A score for every row of `vectors`, higher = more like `liked` and less like `unliked`.

    Args:
        vectors: (n, dim) float32 L2-normalised vectors of the corpus.
        liked: row positions of the liked papers (at least one).
        unliked: row positions of papers to steer away from.
        method: "svm" (decision value of a per-request LinearSVC) or "centroid" (cosine to the
            normalised mean of the liked minus, with unliked, 0.5 x that of the unliked; Rocchio).
    Returns:
        (n,) float32 scores.
    """
    import numpy as np

    liked = np.asarray(sorted(set(int(r) for r in liked)), dtype=np.int64)
    unliked = np.asarray(sorted(set(int(r) for r in unliked) - set(liked.tolist())), dtype=np.int64)
    if method == "centroid" or len(vectors) <= len(liked) + len(unliked):
        centre = vectors[liked].mean(axis=0)
        if len(unliked):
            centre = centre - 0.5 * vectors[unliked].mean(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        return (vectors @ centre).astype(np.float32)
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(random_state)
    others = np.setdiff1d(np.arange(len(vectors)), np.concatenate([liked, unliked]))
    if len(others) > MAX_NEGATIVES:
        others = np.sort(rng.choice(others, MAX_NEGATIVES, replace=False))
    rows = np.concatenate([liked, unliked, others])
    y = np.r_[np.ones(len(liked)), np.zeros(len(unliked) + len(others))]
    weight = np.r_[np.ones(len(liked)), np.full(len(unliked), unlike_weight), np.ones(len(others))]
    model = LinearSVC(C=c, class_weight="balanced", max_iter=10_000, tol=1e-6, random_state=random_state)
    model.fit(vectors[rows], y, sample_weight=weight)
    return model.decision_function(vectors).astype(np.float32)
