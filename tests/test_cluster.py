"""Discovered themes: k-means clusters, the automatic k, c-TF-IDF names, the benchmark program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch.cluster import AutoThemes, label_clusters, terms
from semsearch.errors import QueryError

ROOT = Path(__file__).resolve().parents[1]


def unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(k: int, per: int, dim: int, noise: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """k well-separated groups of `per` unit vectors around random directions; (vectors, truth)."""
    rng = np.random.default_rng(seed)
    centers = unit(rng.normal(size=(k, dim)))
    truth = np.repeat(np.arange(k), per)
    return unit(centers[truth] + noise * rng.normal(size=(k * per, dim))), truth


def same_partition(a, b) -> bool:
    """True when two labelings group the items identically (up to renaming clusters)."""
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
    return len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})


SIX = unit([[1, 0, 0], [0.9, 0.1, 0], [0.95, 0, 0.05], [0, 1, 0], [0.1, 0.9, 0], [0, 0.95, 0.05]])
GALAXY = [
    "Galaxies and stars: star formation in dwarf galaxies.",
    "Stars in spiral galaxies trace star formation history.",
    "Dust in galaxies hides young stars and star formation.",
]
ROBOT = [
    "Robots grasping objects with learned grasping policies.",
    "Robot hands for grasping deformable objects.",
    "Grasping with robots: tactile sensing for robot hands.",
]


def test_six_vectors_two_groups_found_automatically():
    model = AutoThemes().fit(SIX, GALAXY + ROBOT)
    assert model.n_themes_ == 2
    assert same_partition(model.labels_, [0, 0, 0, 1, 1, 1])
    assert set(model.selection_) == {2}  # at most sqrt(6) -> 2 themes are tried for 6 points
    assert max(model.selection_, key=model.selection_.get) == 2


def test_learned_attributes_have_documented_shapes_and_values():
    model = AutoThemes().fit(SIX, GALAXY + ROBOT)
    assert model.labels_.shape == (6,) and model.labels_.dtype == np.int64
    assert model.centers_.shape == (2, 3) and model.centers_.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(model.centers_, axis=1), 1.0, rtol=1e-6)
    expected = np.sum(SIX * model.centers_[model.labels_], axis=1)
    assert model.scores_.dtype == np.float32
    np.testing.assert_allclose(model.scores_, expected, rtol=1e-6)
    assert (model.scores_ > 0.9).all()
    assert len(model.words_) == len(model.names_) == 2


def test_four_separated_blobs_auto_picks_four():
    vectors, truth = blobs(k=4, per=40, dim=32, noise=0.15)
    texts = [f"doc {i}" for i in range(len(vectors))]
    model = AutoThemes(random_state=3).fit(vectors, texts)
    assert model.n_themes_ == 4
    assert same_partition(model.labels_, truth)
    assert set(model.selection_) == set(range(2, int(160**0.5) + 1))  # up to sqrt(n) themes



def test_k_is_the_smallest_within_the_tolerance_of_the_best_modularity(monkeypatch):
    import semsearch.cluster as cluster

    monkeypatch.setattr(cluster, "COMMUNITY_BELOW", 0)  # k-means with a chosen k even for 50 papers
    vectors, _ = blobs(k=5, per=10, dim=16, noise=0.1)
    made_up = {2: 0.50, 3: 0.80, 4: 0.804, 5: 0.79, 6: 0.70, 7: 0.60}  # 4 is best, 3 within TOLERANCE of it
    monkeypatch.setattr(cluster, "_modularity", lambda rows, cols, labels: made_up[int(labels.max()) + 1])
    model = AutoThemes().fit(vectors, [f"doc {i}" for i in range(50)])
    assert model.selection_ == made_up and model.n_themes_ == 3
    monkeypatch.setattr(cluster, "TOLERANCE", 0.0)
    assert AutoThemes().fit(vectors, [f"doc {i}" for i in range(50)]).n_themes_ == 4

def test_small_corpus_themes_are_the_knn_graph_communities(monkeypatch):
    import semsearch.cluster as cluster

    vectors, truth = blobs(k=4, per=12, dim=32, noise=0.15, seed=5)
    texts = [f"doc {i}" for i in range(len(vectors))]
    model = AutoThemes(random_state=2).fit(vectors, texts)
    assert model.n_themes_ == 4 and same_partition(model.labels_, truth)
    assert list(model.selection_) == [4]  # the communities' modularity, no scan of k
    again = AutoThemes(random_state=2).fit(vectors, texts)
    assert np.array_equal(model.labels_, again.labels_) and model.names_ == again.names_
    # communities outside min_themes..max_themes: back to k-means with a chosen k
    fallback = AutoThemes(max_themes=3).fit(vectors, texts)
    assert fallback.n_themes_ <= 3 and len(fallback.selection_) == 2
    monkeypatch.setattr(cluster, "COMMUNITY_BELOW", 0)
    assert len(AutoThemes(random_state=2).fit(vectors, texts).selection_) > 1


def test_n_themes_given_is_respected_and_nothing_is_selected():
    vectors, _ = blobs(k=4, per=40, dim=32, noise=0.15)
    texts = [f"doc {i}" for i in range(len(vectors))]
    for k in (2, 3, 7):
        model = AutoThemes(n_themes=k).fit(vectors, texts)
        assert model.n_themes_ == k == len(set(model.labels_.tolist())) == len(model.names_)
        assert model.selection_ == {}


def test_themes_are_numbered_by_size():
    vectors, _ = blobs(k=3, per=1, dim=16, noise=0.0)
    rng = np.random.default_rng(0)
    sizes = (5, 20, 10)
    x = unit(np.vstack([np.repeat(vectors[[i]], n, axis=0) + 0.05 * rng.normal(size=(n, 16)) for i, n in enumerate(sizes)]))
    model = AutoThemes(n_themes=3).fit(x, ["t"] * len(x))
    assert np.bincount(model.labels_).tolist() == [20, 10, 5]


def test_fixed_random_state_is_deterministic():
    vectors, _ = blobs(k=5, per=30, dim=24, noise=0.6, seed=7)  # overlapping: k-means init matters
    texts = [f"doc {i}" for i in range(len(vectors))]
    a = AutoThemes(max_themes=8, random_state=11).fit(vectors, texts)
    b = AutoThemes(max_themes=8, random_state=11).fit(vectors, texts)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.centers_, b.centers_)
    assert a.selection_ == b.selection_ and a.names_ == b.names_


def test_names_come_from_each_cluster_distinctive_words():
    model = AutoThemes().fit(SIX, GALAXY + ROBOT)
    galaxy, robot = model.labels_[0], model.labels_[3]
    assert set(model.words_[galaxy][:2]) == {"galaxies", "star formation"}  # 3 of 3 papers each
    assert model.words_[robot][0] == "grasping"
    assert "robots" in model.words_[robot] or "robot hands" in model.words_[robot]
    assert model.names_[galaxy] == " · ".join(model.words_[galaxy][:3])
    assert not set(" ".join(model.words_[galaxy]).split()) & set(" ".join(model.words_[robot]).split())


def test_label_clusters_skips_stop_words_math_numbers_and_prefers_phrases():
    texts = [
        "We propose a new method: dark matter halos at $z=6$ with 3D simulations.",
        "Dark matter halos and the results of 21 cm surveys.",
        "Using dark matter models, we show halos form early.",
        "Robots grasping cups.",
    ]
    words = label_clusters(texts, [0, 0, 0, 1], n_words=3)
    assert words[0][0] == "dark matter halos"  # in 2 of 3 papers: replaces "dark", "matter", "halos"
    assert len(words[0]) == 3
    flat = {w for ws in words for t in ws for w in t.split()}
    assert not flat & {"we", "propose", "new", "method", "results", "using", "show", "z", "3d", "21"}
    assert words[1] == ["robots grasping cups"]
    assert label_clusters([], [], 3) == []


def test_terms_never_join_words_across_punctuation_or_numbers():
    found = terms("Dark matter. Halos at 6 galaxies, stars", frozenset({"at"}))
    assert "dark matter" in found and "matter halos" not in found and "halos galaxies" not in found
    assert "galaxies stars" not in found and "stars" in found


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_inputs_give_one_theme(n):
    model = AutoThemes().fit(SIX[:n], GALAXY[:n])
    assert model.n_themes_ == 1 and model.labels_.tolist() == [0] * n
    assert model.selection_ == {} and model.names_[0]
    np.testing.assert_allclose(model.centers_[0], unit(SIX[:n].sum(axis=0, keepdims=True))[0], rtol=1e-6)


def test_n_themes_larger_than_the_data_is_clamped():
    model = AutoThemes(n_themes=10).fit(SIX[:4], (GALAXY + ROBOT)[:4])
    assert model.n_themes_ == 4
    assert AutoThemes(n_themes=5).fit(SIX[:1], GALAXY[:1]).n_themes_ == 1


def test_identical_vectors_are_one_theme():
    model = AutoThemes().fit(np.repeat(SIX[:1], 5, axis=0), ["same text"] * 5)
    assert model.n_themes_ == 1 and model.labels_.tolist() == [0] * 5


def test_bad_inputs_raise_query_error():
    with pytest.raises(QueryError, match="6 vectors but 5 texts"):
        AutoThemes().fit(SIX, (GALAXY + ROBOT)[:5])
    with pytest.raises(QueryError, match="shape"):
        AutoThemes().fit(SIX[0], ["x"])
    with pytest.raises(QueryError, match="n_themes"):
        AutoThemes(n_themes=0).fit(SIX, GALAXY + ROBOT)
    with pytest.raises(QueryError, match="min_themes"):
        AutoThemes(min_themes=5, max_themes=3).fit(SIX, GALAXY + ROBOT)
    with pytest.raises(QueryError, match="outliers"):
        label_clusters(GALAXY, [0, -1, 0])


def test_import_loads_neither_numpy_nor_sklearn():
    code = "import sys, semsearch.cluster; print(sorted({'numpy', 'sklearn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_benchmark_runs_on_a_tiny_input(tmp_path):
    cache = tmp_path / "vectors.npy"
    np.save(cache, blobs(k=3, per=20, dim=16, noise=0.3)[0])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "clustering.py"), "--limit", "48", "--cache", str(cache), "--wait", "0",
         "--data", str(ROOT / "tests" / "data" / "arxiv_sample.jsonl")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "corpus: 48 papers" in out.stdout and f"from cache {cache}" in out.stdout
    assert "AutoThemes (auto k)" in out.stdout and "k-means, true k = 6 (baseline)" in out.stdout


def test_labels_leave_out_words_common_to_the_whole_corpus():
    texts = [f"a model of galaxy formation and dark matter halo {i}" for i in range(6)] + [
        f"a model of robot grasping with tactile sensors {i}" for i in range(6)]
    words = label_clusters(texts, [0] * 6 + [1] * 6, n_words=3)
    assert all("model" not in w for ws in words for w in ws)
    assert any("galaxy" in w for w in words[0]) and any("robot" in w for w in words[1])


def test_an_acronym_does_not_repeat_its_phrase():
    texts = [f"large language models (LLMs) answer questions; llms reason {i}" for i in range(5)] + [
        f"galaxy clusters and dark matter halos {i}" for i in range(5)]
    words = label_clusters(texts, [0] * 5 + [1] * 5, n_words=4)
    assert not ({"llms", "llm"} & set(words[0]) and any(" " in w and w.startswith("large") for w in words[0]))


def test_stem_folds_word_forms_into_one():
    from semsearch.cluster import _stem

    assert len({_stem(w) for w in ("robot", "robots", "robotic", "robotics")}) == 1
    assert _stem("galaxies") == _stem("galaxy") and _stem("states") == _stem("state")
    assert _stem("image") == _stem("imaging") and _stem("clustering") == _stem("clusters")
    assert _stem("quantum") != _stem("quantization") and _stem("vision") != _stem("visual")


def test_a_label_holds_one_form_of_a_word():
    fill = "alpha bravo charlie delta echo foxtrot golf".split()
    texts = [f"robot. {a}{b}" for a, b in zip(fill[:3], fill[1:4])] + [
        f"robot, robotic. {fill[3]}{fill[4]}", f"robotic. {fill[4]}{fill[5]}", f"robotic. {fill[5]}{fill[6]}"] + [
        f"galaxy formation in dark matter halos. {w}" for w in fill[:6]]
    words = label_clusters(texts, [0] * 6 + [1] * 6, n_words=4)
    assert words[0] == ["robot"]  # not robot · robotic


def test_a_part_is_shown_in_its_most_frequent_form():
    # "theories" is the distinctive form (only theme 0 says it) but theme 0 says "theory" more often
    texts = ([f"theory, strings. {w}" for w in "ab cd ef gh ij".split()]
             + [f"theories. {w}" for w in "kl mn op".split()]
             + [f"theory; robot. {w}" for w in "qr st uv wx yz zy za zb".split()])
    words = label_clusters(texts, [0] * 8 + [1] * 8, n_words=3)
    assert "theory" in words[0] and "theories" not in words[0]


def test_label_clusters_is_deterministic():
    texts = [f"robotic grasping with a robot hand {i}" for i in range(4)] + [
        f"galaxy formation in dark matter halos {i}" for i in range(4)]
    assert label_clusters(texts, [0] * 4 + [1] * 4) == label_clusters(list(texts), [0] * 4 + [1] * 4)
