"""One conformance suite for every vector-index structure, checked against brute force.

The same cases run over Flat, IVF-SQ8, IVF-PQ (+SQ8 refinement), HNSW and the numpy reference:
search with and without allowed / excluded ids, reconstruct, add, save and load. "flat-read" is a
Flat index read back from its file without FAISS (searched with numpy until it is changed).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from semsearch.errors import IndexFormatError
from semsearch.store.tune import factory_for
from semsearch.store.vectors import NumpyIndex, VectorIndex

N, DIM, K = 1999, 32, 10  # odd sizes on purpose
KINDS = ["numpy", "flat", "flat-read", "ivf-sq8", "ivf-pq", "hnsw"]
#: recall@10 each structure must reach against brute force at full search effort.
MIN_RECALL = {"numpy": 1.0, "flat": 1.0, "flat-read": 1.0, "ivf-sq8": 0.9, "ivf-pq": 0.9, "hnsw": 0.9}
#: how far a reconstructed vector may be from the stored one (quantised structures decode approximately).
RECONSTRUCT_ATOL = {"numpy": 0, "flat": 0, "flat-read": 0, "ivf-sq8": 0.02, "ivf-pq": 0.02, "hnsw": 0}


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centres = _unit(rng.standard_normal((20, DIM)))
    vectors = _unit(centres[rng.integers(0, 20, N)] + 0.3 * rng.standard_normal((N, DIM)))
    queries = _unit(centres[rng.integers(0, 20, 17)] + 0.3 * rng.standard_normal((17, DIM)))
    return vectors, queries


def make(kind: str, vectors: np.ndarray, ids=None):
    ids = np.arange(len(vectors)) if ids is None else np.asarray(ids)
    if kind == "numpy":
        index = NumpyIndex(vectors.shape[1])
        index.add(vectors[ids], ids)
        return index
    if kind == "flat-read":
        with tempfile.TemporaryDirectory() as tmp:
            make("flat", vectors, ids).save(Path(tmp) / "vectors")
            return VectorIndex.load(Path(tmp) / "vectors")
    index = VectorIndex.trained(factory_for(kind, len(vectors), vectors.shape[1]), vectors, 0, ids)
    index.make_direct_map()
    index.set_params({"nprobe": index.nlist} if index.nlist else {"efSearch": 512} if kind == "hnsw" else {})
    return index


@pytest.fixture(scope="module", params=KINDS)
def built(request, data):
    return request.param, make(request.param, data[0])


def brute_force(vectors, queries, k, allowed=None, exclude=()):
    ids = np.arange(len(vectors)) if allowed is None else np.asarray(sorted(allowed))
    ids = np.setdiff1d(ids, np.asarray(list(exclude), dtype=np.int64))
    sims = queries @ vectors[ids].T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, top, axis=1), ids[top]


def check(kind, found_scores, found, truth, vectors, queries, allowed=None, exclude=()):
    assert found.shape == truth.shape and found.dtype == np.int64 and found_scores.dtype == np.float32
    assert (np.diff(found_scores, axis=1) <= 1e-6).all(), "scores must be best first"
    assert (found >= 0).all(), "k results exist, so k must come back"
    if allowed is not None:
        assert set(found.ravel()) <= set(allowed)
    assert not set(found.ravel()) & set(exclude)
    for q in range(len(found)):  # a score is the inner product of query and stored vector
        np.testing.assert_allclose(found_scores[q], vectors[found[q]] @ queries[q], atol=0.05)
    recall = np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)])
    assert recall >= MIN_RECALL[kind], f"{kind}: recall@{truth.shape[1]} {recall:.3f}"
    if MIN_RECALL[kind] == 1.0:
        np.testing.assert_allclose(found_scores, brute_force(vectors, queries, truth.shape[1], allowed, exclude)[0],
                                   atol=1e-5)


def test_search_matches_brute_force(built, data):
    kind, index = built
    vectors, queries = data
    scores, found = index.search(queries, K)
    check(kind, scores, found, brute_force(vectors, queries, K)[1], vectors, queries)


def test_search_within_allowed_ids(built, data):
    kind, index = built
    vectors, queries = data
    allowed = list(range(3, N, 7))
    scores, found = index.search(queries, K, allowed=allowed)
    check(kind, scores, found, brute_force(vectors, queries, K, allowed)[1], vectors, queries, allowed)


def test_search_never_returns_excluded_ids(built, data):
    kind, index = built
    vectors, queries = data
    exclude = [int(i) for i in brute_force(vectors, queries, 3)[1].ravel()]  # the best ones
    scores, found = index.search(queries, K, exclude=exclude)
    check(kind, scores, found, brute_force(vectors, queries, K, None, exclude)[1], vectors, queries, None, exclude)


def test_allowed_and_excluded_together(built, data):
    kind, index = built
    vectors, queries = data
    allowed, exclude = list(range(0, N, 3)), list(range(0, N, 6))
    scores, found = index.search(queries, K, allowed=allowed, exclude=exclude)
    truth = brute_force(vectors, queries, K, allowed, exclude)[1]
    check(kind, scores, found, truth, vectors, queries, allowed, exclude)


def test_fewer_allowed_than_k_pads_with_minus_one(built, data):
    _, index = built
    _, queries = data
    scores, found = index.search(queries[:2], K, allowed=[5, 11, 12])
    assert found.shape[0] == 2
    assert all(set(row[row >= 0]) == {5, 11, 12} for row in found)
    assert np.isneginf(scores[found < 0]).all()


def test_reconstruct_returns_the_stored_vectors(built, data):
    kind, index = built
    vectors, _ = data
    ids = [0, 17, N - 1]
    got = index.reconstruct(ids)
    assert got.shape == (3, DIM) and got.dtype == np.float32
    np.testing.assert_allclose(got, vectors[ids], atol=RECONSTRUCT_ATOL[kind] or 1e-6)
    assert index.reconstruct([]).shape == (0, DIM)


def test_added_vectors_are_found_under_their_ids(data):
    vectors, _ = data
    for kind in KINDS:
        index = make(kind, vectors, ids=range(N - 50))
        index.add(vectors[N - 50 :], np.arange(N - 50, N))
        assert index.ntotal == N
        _, found = index.search(vectors[N - 50 :], 1)
        assert np.mean(found[:, 0] == np.arange(N - 50, N)) >= 0.9, kind


def test_save_and_load_give_the_same_answers(built, data, tmp_path):
    kind, index = built
    _, queries = data
    path = tmp_path / "vectors"
    index.save(path)
    loaded = type(index).load(path, index.params)
    assert (loaded.dim, loaded.ntotal) == (index.dim, index.ntotal)
    for args in ({}, {"allowed": list(range(0, N, 5))}, {"exclude": [1, 2, 3]}):
        a, b = index.search(queries, K, **args), loaded.search(queries, K, **args)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6)  # a Flat file is read back to numpy: other summation order


def test_a_flat_file_is_read_as_faiss_reads_it(data, tmp_path):
    import faiss

    vectors, _ = data
    ids = np.arange(5, N + 5)[::-1].copy()  # ids 0-4 absent, the rest held in descending order
    index = VectorIndex.trained("Flat", np.vstack([np.zeros((5, DIM), np.float32), vectors]), 0, ids)
    index.save(tmp_path / "v")
    read = VectorIndex.load(tmp_path / "v")
    reference = faiss.read_index(str(tmp_path / "v"))
    assert read._flat is not None and (read.dim, read.ntotal) == (reference.d, reference.ntotal)
    np.testing.assert_array_equal(read.reconstruct(ids[:7]), np.vstack([reference.reconstruct(int(i)) for i in ids[:7]]))
    with pytest.raises(KeyError, match="id 0 is not in the index"):
        read.reconstruct([0])


def test_a_flat_file_cut_short_is_damaged(data, tmp_path):
    make("flat", data[0]).save(tmp_path / "v")
    whole = (tmp_path / "v").read_bytes()
    for size in (200, len(whole) - 8, len(whole) - 1):
        (tmp_path / "v").write_bytes(whole[:size])
        with pytest.raises(IndexFormatError, match="damaged FAISS file"):
            VectorIndex.load(tmp_path / "v")
    (tmp_path / "v").write_bytes(whole + b"x")
    with pytest.raises(IndexFormatError, match="damaged FAISS file"):
        VectorIndex.load(tmp_path / "v")


def test_searching_a_flat_file_never_imports_faiss(data, tmp_path):
    make("flat", data[0]).save(tmp_path / "v")
    code = ("import sys, numpy as np\n"
            "from semsearch.store.vectors import VectorIndex\n"
            f"index = VectorIndex.load({str(tmp_path / 'v')!r})\n"
            "index.search(np.ones((2, index.dim), np.float32), 5, allowed=[1, 2, 3], exclude=[2])\n"
            "index.reconstruct([4])\n"
            "print('faiss' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
