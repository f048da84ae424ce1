"""Discovered themes against arXiv primary categories: AutoThemes vs k-means baselines, side by side.

Corpus: ../shared/data/arxiv/clustering_subset.jsonl (ground truth = `primary_category`).
Vectors: all-MiniLM-L6-v2 of `title + ". " + abstract`, read from --cache when present (the
file may still be being written: it is polled for --wait seconds), else embedded here. One
run of each method on the same vectors; seconds are wall time of that run.

Part 1 (the choice of k): on subsets of 3-9 categories, the k each criterion picks and the
V-measure of that solution. Part 2: the whole corpus, every method, ratios vs k-means at the
true k. Part 3: each discovered theme's size, name and majority category; and the generic
words GENERIC_WORDS keeps out of the names.

    PYTHONPATH=. python benchmarks/clustering.py [--cache CACHE/bench/clustering.npy] [--limit N]
        [--bertopic BERTOPIC-VENV/bin/python] [--dev] [--small] [--communities] [--graphs]
        [--late [--late-cache DIR]] [--late-seeds INDEX --late-variant NAME ...]

Part 0 (--dev): how AutoThemes' TOLERANCE was chosen, on the dev theme sets only.
Part 0c (--communities): kNN-graph Louvain communities against k-means with a chosen k (fourth
round of issue 13), how COMMUNITY_BELOW / _NEIGHBOURS / _RESOLUTION were chosen, dev data only.
Part 0b (--small): small corpora (the 20 draws of benchmarks/data/small_theme_sets.json, 26-59
papers of 3-5 categories, truth = primary category): V-measure of AutoThemes and of variants
of its neighbour counts and range of k (third round of issue 13; none adopted).
Part 0d (--graphs): fifth round of issue 13, dev data only: variants of the small-corpus
communities (smoothing, edge weights, mutual neighbours, resolution fixed / by size / by
stability / consensus, kNN size, a second-level split of each community); none adopted.
Part 0e (--late): sixth round of issue 13, dev data only: communities of the kNN graph of
paper-to-paper late interaction (symmetric MaxSim over the default int8 ONNX model's token
states, as benchmarks/retrieval_late.py), alone or blended with the pooled cosine; 12 settings
fixed before the run, then seconds at 25 / 50 / 100 papers. --late-seeds shows named variants'
themes on a built index (the seeds, looked at once per final candidate); none adopted.

BERTopic is not a dependency: --bertopic names an interpreter of a separate venv holding it
(torch==2.13.0 installed first, then `pip install bertopic`), run as a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np

from semsearch.cluster import GENERIC_WORDS, N_INIT, AutoThemes, label_clusters
from semsearch.embed import cache_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "arxiv" / "clustering_subset.jsonl"
#: Part 1: papers per category in each subset, and the subsets' numbers of categories.
SUBSET_PAPERS = 300
SUBSET_SIZES = (3, 3, 5, 5, 7, 7, 9)
SUBSET_MAX_K = 15


def load_vectors(path: Path, n: int, wait: float, texts: list[str]) -> tuple[np.ndarray, str]:
    """(n, dim) float32 vectors: the first n rows of the cache once it is complete, else embedded."""
    deadline = time.monotonic() + wait
    while True:
        if path.exists():
            try:
                vectors = np.load(path, allow_pickle=False)
                if vectors.ndim == 2 and len(vectors) >= n:
                    return np.ascontiguousarray(vectors[:n], dtype=np.float32), f"cache {path}"
            except (ValueError, OSError, EOFError):
                pass  # still being written
        if time.monotonic() >= deadline:
            break
        time.sleep(10)
    from semsearch.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    t = time.perf_counter()
    vectors = embedder.encode(texts, progress=True)
    return vectors, f"embedded here with {embedder.name} ({time.perf_counter() - t:.0f} s)"


def centred(x: np.ndarray) -> np.ndarray:
    c = x - x.mean(axis=0)
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit_predict(x)


def criteria(vectors: np.ndarray, truth: np.ndarray, seed: int) -> None:
    """Part 1: the k picked by each criterion on category subsets, and the V-measure there."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score, v_measure_score

    cats = sorted(set(truth))
    rng = np.random.default_rng(seed)
    names = ("silhouette raw", "silhouette centred", "Davies-Bouldin", "Calinski-Harabasz")
    print(f"\n1. choosing k: {SUBSET_PAPERS} papers per category, k-means for k = 2..{SUBSET_MAX_K}; "
          "'centred' = vectors minus their mean, re-normalised (AutoThemes)")
    print(f"{'categories':>10} {'papers':>6} " + " ".join(f"{n + ' k / V':>24}" for n in names)
          + f" {'V at true k (centred)':>22}")
    totals: dict[str, list[float]] = {n: [] for n in names}
    for m in SUBSET_SIZES:
        if m > len(cats):
            continue
        chosen = rng.choice(cats, m, replace=False)
        rows = np.concatenate([np.flatnonzero(truth == c)[:SUBSET_PAPERS] for c in chosen])
        x, y = vectors[rows], truth[rows]
        xc = centred(x)
        ks = range(2, min(SUBSET_MAX_K, len(x) - 1) + 1)
        if len(ks) == 0:
            continue
        raw = {k: kmeans(x, k, seed) for k in ks}
        cen = {k: kmeans(xc, k, seed) for k in ks}
        score = {
            "silhouette raw": {k: silhouette_score(x, raw[k], metric="cosine") for k in ks},
            "silhouette centred": {k: silhouette_score(xc, cen[k], metric="cosine") for k in ks},
            "Davies-Bouldin": {k: -davies_bouldin_score(xc, cen[k]) for k in ks},
            "Calinski-Harabasz": {k: calinski_harabasz_score(xc, cen[k]) for k in ks},
        }
        cells = []
        for name in names:
            k = max(ks, key=lambda k: score[name][k])
            v = v_measure_score(y, (raw if name == "silhouette raw" else cen)[k])
            totals[name].append(v)
            cells.append(f"{k:>17} / {v:.3f}")
        true_v = v_measure_score(y, cen[m]) if m in cen else float("nan")
        print(f"{m:>10} {len(x):>6} " + " ".join(cells) + f" {true_v:>22.3f}")
    if totals[names[0]]:
        print(f"{'mean V':>17} " + " ".join(f"{np.mean(totals[n]):>24.3f}" for n in names))


BERTOPIC = """
import json, sys, time
import numpy as np
from bertopic import BERTopic
from umap import UMAP
vectors, texts, seed = np.load(sys.argv[1]), json.load(open(sys.argv[2])), int(sys.argv[3])
t = time.perf_counter()
# BERTopic's default UMAP, with a seed so the run can be repeated
umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
topics, _ = BERTopic(umap_model=umap).fit_transform(texts, vectors)
print(json.dumps({"labels": [int(t) for t in topics], "seconds": time.perf_counter() - t}))
"""


def bertopic(python: str, vectors: np.ndarray, texts: list[str], seed: int) -> tuple[np.ndarray, float]:
    """BERTopic (defaults: UMAP + HDBSCAN) on the same vectors, run by another interpreter."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "v.npy", vectors)
        (Path(tmp) / "t.json").write_text(json.dumps(texts), encoding="utf-8")
        out = subprocess.run([python, "-c", BERTOPIC, f"{tmp}/v.npy", f"{tmp}/t.json", str(seed)],
                             capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return np.array(result["labels"]), result["seconds"]


def compare(vectors: np.ndarray, texts: list[str], true_k: int, seed: int, bertopic_python: str | None):
    """Part 2: [(name, labels, seconds)] of each method, and the fitted auto AutoThemes."""
    from sklearn.cluster import AgglomerativeClustering

    runs = []

    def timed(name, fit):
        t = time.perf_counter()
        out = fit()
        runs.append((name, getattr(out, "labels_", out), time.perf_counter() - t))
        return out

    auto = timed("AutoThemes (auto k)", lambda: AutoThemes(random_state=seed).fit(vectors, texts))
    timed(f"k-means, true k = {true_k} (baseline)", lambda: kmeans(vectors, true_k, seed))
    timed(f"k-means, k = {auto.n_themes_} (AutoThemes' k)", lambda: kmeans(vectors, auto.n_themes_, seed))
    timed(f"AutoThemes, n_themes = {true_k}", lambda: AutoThemes(n_themes=true_k, random_state=seed).fit(vectors, texts))
    timed("kNN-graph communities (AutoThemes < 100 papers)", lambda: _communities_always(vectors, texts, seed))
    timed(f"agglomerative ward, k = {true_k}",
          lambda: AgglomerativeClustering(n_clusters=true_k, linkage="ward").fit_predict(vectors))
    if bertopic_python:
        labels, seconds = bertopic(bertopic_python, vectors, texts, seed)
        runs.append((f"BERTopic 0.17 defaults ({np.mean(labels == -1):.0%} outliers = 1 cluster)", labels, seconds))
    return runs, auto


def dev_papers(data: Path, sets_path: Path) -> tuple[dict, np.ndarray, list[str], np.ndarray]:
    """The dev theme sets' papers (arXiv categories outside the clustering subset): (config,
    vectors, texts, primary categories)."""
    import gzip

    from semsearch.embed import CachedEmbedder, default_cache_path, make_embedder

    cfg = json.loads(sets_path.read_text(encoding="utf-8"))
    held = {json.loads(line)["id"] for line in data.open(encoding="utf-8")}
    want: dict[str, list[dict]] = {c: [] for s in cfg["sets"].values() for c in s.values()}
    with gzip.open(data.parent / "abstracts.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            p = json.loads(line)
            c = p.get("primary_category")
            if c in want and p["id"] not in held and len(want[c]) < cfg["per_theme"]:
                want[c].append(p)
    papers = [p for c in want for p in want[c]]
    texts = [f"{p['title']}. {p['abstract']}" for p in papers]
    truth = np.array([p["primary_category"] for p in papers])
    return cfg, CachedEmbedder(make_embedder(), default_cache_path()).encode(texts), texts, truth


def dev_draws(cfg: dict, truth: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Small draws of dev papers (3-5 categories of one set; 100 x 25, 60 x 50, 10 x 200 papers)."""
    rng = np.random.default_rng(1)
    draws = []
    for n, reps in ((25, 100), (50, 60), (200, 10)):
        for _ in range(reps):
            cats = list(list(cfg["sets"].values())[rng.integers(len(cfg["sets"]))].values())
            pool = np.flatnonzero(np.isin(truth, rng.choice(cats, rng.integers(3, 6), replace=False)))
            draws.append((n, np.sort(rng.choice(pool, n, replace=False))))
    return draws


def small_sets(data: Path, sets_path: Path) -> list[tuple[np.ndarray, list[str], list[str]]]:
    """The small-corpus draws of small_theme_sets.json: [(vectors, texts, primary categories)]."""
    from small_theme_sets import read_draws  # this script's folder is on sys.path

    from semsearch.embed import CachedEmbedder, default_cache_path, make_embedder

    emb = CachedEmbedder(make_embedder(), default_cache_path())
    sets = []
    for _, papers in read_draws(sets_path, data.parent / "abstracts.jsonl.gz"):
        texts = [f"{p['title']}. {p['abstract']}" for p in papers]
        sets.append((emb.encode(texts), texts, [p["primary_category"] for p in papers]))
    return sets


def _communities_always(vectors: np.ndarray, texts: list[str], seed: int) -> np.ndarray:
    """AutoThemes' small-corpus rule (kNN-graph communities) on a corpus of any size, any number."""
    import semsearch.cluster as cluster

    saved, cluster.COMMUNITY_BELOW = cluster.COMMUNITY_BELOW, 10**9
    try:
        return cluster.AutoThemes(max_themes=len(vectors), random_state=seed).fit(vectors, texts).labels_
    finally:
        cluster.COMMUNITY_BELOW = saved


def dev_tolerance(data: Path, sets_path: Path, seed: int) -> None:
    """Part 0 (how TOLERANCE was chosen, dev data only): V-measure of AutoThemes' auto k for each
    tolerance on the dev theme sets (arXiv categories outside the clustering subset) and on small
    draws of their papers (3-5 categories of one set; 100 x 25, 60 x 50, 10 x 200 papers)."""
    from sklearn.metrics import v_measure_score

    import semsearch.cluster as cluster

    cfg, vectors, texts, truth = dev_papers(data, sets_path)
    draws = dev_draws(cfg, truth)

    def v(rows) -> float:
        model = cluster.AutoThemes(random_state=seed).fit(vectors[rows], [texts[i] for i in rows])
        return v_measure_score(truth[rows], model.labels_)

    print(f"\n0. dev: tolerance of the choice of k ({len(texts)} dev papers; mean V-measure)")
    print(f"{'tolerance':>9} " + " ".join(f"{name:>17}" for name in cfg["sets"]) + "   n=25   n=50  n=200   mean")
    chosen = cluster.TOLERANCE
    for tol in (0.0, 0.002, 0.005, 0.01, 0.02):
        cluster.TOLERANCE = tol
        whole = [v(np.flatnonzero(np.isin(truth, list(s.values())))) for s in cfg["sets"].values()]
        small = [float(np.mean([v(r) for m, r in draws if m == n])) for n in (25, 50, 200)]
        print(f"{tol:9.3f} " + " ".join(f"{x:17.3f}" for x in whole) + " " + " ".join(f"{x:6.3f}" for x in small)
              + f" {np.mean(whole + small):6.3f}" + ("  (semsearch)" if tol == chosen else ""))
    cluster.TOLERANCE = chosen


def dev_small(data: Path, sets_path: Path, seed: int) -> None:
    """Part 0b: mean V-measure over the small-corpus draws, AutoThemes and variants."""
    from sklearn.metrics import v_measure_score

    import semsearch.cluster as cluster

    sets = small_sets(data, sets_path)
    kmeans_k = {"COMMUNITY_BELOW": 0}  # the third round's variants are of k-means with a chosen k
    variants = {
        "AutoThemes (semsearch)": {},
        "k-means, k by modularity (before)": kmeans_k,
        "no smoothing below 100 papers": {**kmeans_k, "_smooth_neighbours": lambda n: 0 if n < 100 else min(10, n // 10)},
        "smoothing n // 20 neighbours": {**kmeans_k, "_smooth_neighbours": lambda n: min(10, n // 20)},
        "graph sqrt(n) neighbours": {**kmeans_k, "_graph_neighbours": lambda n: max(1, min(10, int(n**0.5)))},
        "k up to sqrt(2n)": {**kmeans_k, "_max_k": lambda n: int((2 * n) ** 0.5)},
    }
    print(f"\n0b. small corpora ({len(sets)} draws of {min(len(t) for _, t, _ in sets)}-"
          f"{max(len(t) for _, t, _ in sets)} papers; mean V-measure, mean k vs mean true k)")
    for name, patch in variants.items():
        saved = {attr: getattr(cluster, attr) for attr in patch}
        for attr, f in patch.items():
            setattr(cluster, attr, f)
        try:
            fits = [(cluster.AutoThemes(random_state=seed).fit(x, t), y) for x, t, y in sets]
        finally:
            for attr, f in saved.items():
                setattr(cluster, attr, f)
        v = np.mean([v_measure_score(y, m.labels_) for m, y in fits])
        print(f"{name:34} V {v:.3f}   k {np.mean([m.n_themes_ for m, _ in fits]):.1f} "
              f"(true {np.mean([len(set(y)) for _, y in fits]):.1f})")


def dev_communities(data: Path, small_path: Path, sets_path: Path, seed: int) -> None:
    """Part 0c (how COMMUNITY_* were chosen, dev data only): mean V-measure of kNN-graph Louvain
    communities against k-means with k by modularity, on the small draws and on the dev sets'
    draws of 25, 50 and 200 papers and whole sets."""
    from sklearn.metrics import v_measure_score

    import semsearch.cluster as cluster

    small = small_sets(data, small_path)
    cfg, vectors, texts, truth = dev_papers(data, sets_path)
    draws = dev_draws(cfg, truth)
    whole = [np.flatnonzero(np.isin(truth, list(s.values()))) for s in cfg["sets"].values()]
    corpora = [("small", [(x, t, y) for x, t, y in small])]
    for n in (25, 50, 200):
        corpora.append((f"n={n}", [(vectors[r], [texts[i] for i in r], truth[r]) for m, r in draws if m == n]))
    corpora += [(f"set {len(r)}", [(vectors[r], [texts[i] for i in r], truth[r])]) for r in whole]
    always = {"COMMUNITY_BELOW": 10**9}
    variants = {"AutoThemes (semsearch)": {}, "k-means, k by modularity (before)": {"COMMUNITY_BELOW": 0}}
    for neighbours in (cluster.COMMUNITY_NEIGHBOURS, 5):
        for res in (0.5, 0.6, 0.75, 0.9, 1.0, 1.25):
            variants[f"Louvain, min(sqrt n, {neighbours}) NN, res {res}"] = {
                **always, "COMMUNITY_NEIGHBOURS": neighbours, "COMMUNITY_RESOLUTION": res}
    print(f"\n0c. dev: kNN-graph communities vs k-means ({len(small)} small draws; dev draws and whole "
          "dev sets; mean V-measure / mean k; 'mean3' = mean of small, n=25, n=50; communities outside "
          "2..20 fall back to k-means, as in AutoThemes)")
    print(f"{'variant':44} " + " ".join(f"{name:>13}" for name, _ in corpora) + "  mean3")
    for name, patch in variants.items():
        saved = {attr: getattr(cluster, attr) for attr in patch}
        for attr, value in patch.items():
            setattr(cluster, attr, value)
        cells = []
        try:
            for _, sets in corpora:
                fits = [(cluster.AutoThemes(random_state=seed).fit(x, t), y) for x, t, y in sets]
                cells.append((np.mean([v_measure_score(y, m.labels_) for m, y in fits]),
                              np.mean([m.n_themes_ for m, _ in fits])))
        finally:
            for attr, value in saved.items():
                setattr(cluster, attr, value)
        print(f"{name:44} " + " ".join(f"{v:6.3f} /{k:5.1f}" for v, k in cells)
              + f" {np.mean([v for v, _ in cells[:3]]):6.3f}", flush=True)


def _centred(x: np.ndarray) -> np.ndarray:
    return centred(np.asarray(x, dtype=np.float32)).astype(np.float32)


def _louvain(x: np.ndarray, neighbours: int, resolution: float = 1.0, seed: int = 0, weight: str = "cosine",
             mutual: bool = False) -> tuple[np.ndarray, float]:
    """Louvain communities of the kNN graph of x (rows L2-normalised): (labels, weighted modularity).
    weight: "cosine" (as AutoThemes) or "snn" ((shared neighbours + 1) / (neighbours + 1));
    mutual: keep an edge only when each end is among the other's neighbours."""
    import networkx as nx

    n = len(x)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    near = [set(r.tolist()) for r in np.argpartition(-sims, neighbours - 1, axis=1)[:, :neighbours]]
    pairs = sorted({(min(i, j), max(i, j)) for i in range(n) for j in near[i] if not mutual or i in near[j]})
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for i, j in pairs:
        w = max(float(x[i] @ x[j]), 0.0) if weight == "cosine" else (len(near[i] & near[j]) + 1) / (neighbours + 1)
        if w > 0:
            graph.add_edge(i, j, weight=w)
    found = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    labels = np.zeros(n, dtype=np.int64)
    for c, members in enumerate(sorted(found, key=min)):
        labels[sorted(members)] = c
    q = nx.community.modularity(graph, found, weight="weight") if graph.number_of_edges() else 0.0
    return labels, q


def _product(x: np.ndarray, texts: list[str], seed: int) -> np.ndarray:
    return AutoThemes(random_state=seed).fit(x, texts).labels_


def _graph_variant(smooth: bool = True, neighbours=None, resolution=lambda n: 1.0, weight: str = "cosine",
                   mutual: bool = False, louvain_seed: int = 0):
    """A labelling function: Louvain on the (smoothed or not) centred vectors' kNN graph; AutoThemes'
    answer when the communities are outside 2..20, as in the product."""
    import semsearch.cluster as cluster

    def fit(x, texts, seed):
        c = _centred(x)
        n = len(c)
        z = cluster._smooth(c, cluster._smooth_neighbours(n)) if smooth else c
        k = neighbours(n) if neighbours else max(1, min(cluster.COMMUNITY_NEIGHBOURS, int(n**0.5), n - 1))
        labels, _ = _louvain(z, k, resolution(n), louvain_seed, weight, mutual)
        return labels if 2 <= labels.max() + 1 <= 20 else _product(x, texts, seed)
    return fit


def _split_variant(vectors: str, min_q: float, min_part: int = 3):
    """The product's communities, each then split once by Louvain on its own kNN graph (sqrt(size)
    neighbours, at most 10) when every part has >= min_part papers and the split's modularity is
    >= min_q. vectors: "raw" (centred), "recentred" (centred again within the community), "smoothed"."""
    import semsearch.cluster as cluster

    def fit(x, texts, seed):
        labels = _product(x, texts, seed).copy()
        c = _centred(x)
        z = cluster._smooth(c, cluster._smooth_neighbours(len(c)))
        new = labels.max() + 1
        for theme in range(labels.max() + 1):
            rows = np.flatnonzero(labels == theme)
            if len(rows) < 2 * min_part:
                continue
            y = {"raw": c[rows], "smoothed": z[rows]}.get(vectors)
            y = _centred(c[rows]) if y is None else y
            sub, q = _louvain(y, max(1, min(10, int(len(rows) ** 0.5))), 1.0, seed)
            sizes = np.bincount(sub)
            if len(sizes) >= 2 and sizes.min() >= min_part and q >= min_q:
                for s in range(1, len(sizes)):
                    labels[rows[sub == s]] = new
                    new += 1
        return labels
    return fit


_RESOLUTIONS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def _stability_variant(smooth: bool):
    """The resolution (of _RESOLUTIONS) whose partitions agree most across Louvain seeds 0-4 (mean
    pairwise adjusted Rand index), ties to the lower one; that resolution's seed-0 partition."""
    import itertools

    from sklearn.metrics import adjusted_rand_score

    import semsearch.cluster as cluster

    def fit(x, texts, seed):
        c = _centred(x)
        n = len(c)
        z = cluster._smooth(c, cluster._smooth_neighbours(n)) if smooth else c
        k = max(1, min(10, int(n**0.5), n - 1))
        best = None
        for res in _RESOLUTIONS:
            runs = [_louvain(z, k, res, s)[0] for s in range(5)]
            agree = np.mean([adjusted_rand_score(a, b) for a, b in itertools.combinations(runs, 2)])
            if runs[0].max() >= 1 and (best is None or agree > best[0] + 1e-9):
                best = (agree, runs[0])
        labels = best[1] if best else None
        return labels if labels is not None and labels.max() + 1 <= 20 else _product(x, texts, seed)
    return fit


def _consensus_variant(threshold: float):
    """Co-membership over Louvain at _RESOLUTIONS x seeds 0-2 (unsmoothed graph); Louvain on the
    graph of pairs together in >= threshold of those runs."""
    import networkx as nx

    def fit(x, texts, seed):
        c = _centred(x)
        n = len(c)
        k = max(1, min(10, int(n**0.5), n - 1))
        together = np.zeros((n, n))
        for res in _RESOLUTIONS:
            for s in range(3):
                labels = _louvain(c, k, res, s)[0]
                together += labels[:, None] == labels[None, :]
        together /= 3 * len(_RESOLUTIONS)
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        for i, j in zip(*np.nonzero(np.triu(together, 1) >= threshold)):
            graph.add_edge(int(i), int(j), weight=float(together[i, j]))
        labels = np.zeros(n, dtype=np.int64)
        for m, members in enumerate(sorted(nx.community.louvain_communities(graph, weight="weight", seed=0), key=min)):
            labels[sorted(members)] = m
        return labels if 2 <= labels.max() + 1 <= 20 else _product(x, texts, seed)
    return fit


def dev_graphs(data: Path, small_path: Path, sets_path: Path, seed: int) -> None:
    """Part 0d (fifth round of issue 13, dev data only): variants of the small-corpus communities on
    the 20 small draws and the dev sets' draws of 25 and 50 papers (mean V-measure / mean k)."""
    from sklearn.metrics import v_measure_score

    small = small_sets(data, small_path)
    cfg, vectors, texts, truth = dev_papers(data, sets_path)
    draws = dev_draws(cfg, truth)
    corpora = [("small", small)] + [
        (f"n={n}", [(vectors[r], [texts[i] for i in r], truth[r]) for m, r in draws if m == n]) for n in (25, 50)]
    variants: dict[str, object] = {"AutoThemes (semsearch: smoothed, cosine, res 1)": lambda x, t, s: _product(x, t, s)}
    for smooth in (True, False):
        for weight, mutual in (("cosine", False), ("snn", False), ("cosine", True), ("snn", True)):
            for res in (0.75, 1.0, 1.25, 1.5):
                name = f"{'smoothed' if smooth else 'unsmoothed'}, {weight}{' mutual' if mutual else ''}, res {res}"
                variants[name] = _graph_variant(smooth, resolution=lambda n, r=res: r, weight=weight, mutual=mutual)
    for name, k in (("3", lambda n: 3), ("4", lambda n: 4), ("5", lambda n: min(5, n - 1)),
                    ("sqrt(n) / 2", lambda n: max(2, int(n**0.5 / 2))), ("n // 10 + 2", lambda n: n // 10 + 2),
                    ("1.5 sqrt(n)", lambda n: int(1.5 * n**0.5))):
        variants[f"unsmoothed, cosine, res 1, {name} NN"] = _graph_variant(False, neighbours=k)
    for name, res in (("1 + 10/n", lambda n: 1 + 10 / n), ("1 + 25/n", lambda n: 1 + 25 / n),
                      ("sqrt(50/n)", lambda n: (50 / n) ** 0.5), ("sqrt(100/n)", lambda n: (100 / n) ** 0.5)):
        for smooth in (True, False):
            variants[f"{'smoothed' if smooth else 'unsmoothed'}, cosine, res {name}"] = _graph_variant(smooth, resolution=res)
    for vecs in ("recentred", "raw", "smoothed"):
        for q in (0.2, 0.3, 0.35, 0.4, 0.45, 0.5):
            variants[f"split each community ({vecs}) if Q >= {q}"] = _split_variant(vecs, q)
    for smooth in (True, False):
        variants[f"resolution by stability, {'smoothed' if smooth else 'unsmoothed'}"] = _stability_variant(smooth)
    for threshold in (0.3, 0.5, 0.7):
        variants[f"consensus of resolutions, together >= {threshold}"] = _consensus_variant(threshold)

    def row(fit) -> list[tuple[float, float]]:
        cells = []
        for _, sets in corpora:
            labels = [(fit(x, t, seed), y) for x, t, y in sets]
            cells.append((np.mean([v_measure_score(y, lab) for lab, y in labels]),
                          np.mean([lab.max() + 1 for lab, _ in labels])))
        return cells

    print(f"\n0d. dev: small-corpus community variants ({len(small)} small draws, dev draws of 25 / 50 papers; "
          "mean V-measure / mean k; 'mean3' = their mean)")
    print(f"{'variant':56} " + " ".join(f"{name:>12}" for name, _ in corpora) + "  mean3")
    for name, fit in variants.items():
        cells = row(fit)
        print(f"{name:56} " + " ".join(f"{v:6.3f} /{k:4.1f}" for v, k in cells)
              + f" {np.mean([v for v, _ in cells]):6.3f}", flush=True)
    print("\n   Louvain seeds 0-4 (mean over seeds of each column; sd of mean3 across seeds)")
    for smooth in (True, False):
        for res in (0.75, 0.9, 1.0, 1.1):
            per_seed = np.array([[v for v, _ in row(_graph_variant(smooth, resolution=lambda n, r=res: r, louvain_seed=s))]
                                 for s in range(5)])
            print(f"{('smoothed' if smooth else 'unsmoothed') + f', cosine, res {res}':56} "
                  + " ".join(f"{v:12.3f}" for v in per_seed.mean(axis=0))
                  + f" {per_seed.mean():6.3f} (sd {per_seed.mean(axis=1).std():.3f})", flush=True)



#: Part 0e: which pieces a paper's MaxSim averages over, and the share of late interaction in a blend.
_LATE_KINDS = ("all", "content")
_LATE_BLENDS = (0.25, 0.5, 0.75)


def late_states(texts: list[str], cache: Path | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each text's (pieces, dim) float16 token states of the default int8 ONNX model, and its
    content mask (alphanumeric pieces, not an FTS5 stopword), as benchmarks/retrieval_late.py."""
    import hashlib

    from retrieval_late import pieces, token_states  # this script's folder is on sys.path

    from semsearch.embed.onnx import OnnxEmbedder
    from semsearch.store.lexical import STOPWORDS

    key = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    path = cache / f"late_states_{key}.npz" if cache else None
    if path and path.exists():
        z = np.load(path, allow_pickle=False)
        flat, offsets, mask = z["flat"], z["offsets"], z["content"]
    else:
        emb = OnnxEmbedder(None, quantized=True)
        inputs = [windows[0] for windows in pieces(emb, texts, False)]  # what the model reads
        states = token_states(emb, inputs)
        flat, offsets = np.concatenate(states), np.cumsum([0] + [len(s) for s in states])
        tok, _ = emb._load(1)
        words = (tok.id_to_token(int(i)) for ids in inputs for i in ids[1:-1])
        mask = np.array([w.isalnum() and w not in STOPWORDS for w in words], dtype=bool)
        if path:
            np.savez(path, flat=flat, offsets=offsets, content=mask)
    cut = lambda a: [a[offsets[i] : offsets[i + 1]] for i in range(len(texts))]  # noqa: E731
    return cut(flat), cut(mask)


def maxsim(states: list[np.ndarray], masks: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Symmetric MaxSim between papers, {"all", "content"}: (n, n) float64, the mean of both
    directions; one direction = the mean over one paper's pieces (all, or content only) of their
    best cosine to any piece of the other."""
    n = len(states)
    lengths = np.array([len(s) for s in states])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    every = np.concatenate(states).astype(np.float32)
    out = {kind: np.zeros((n, n)) for kind in _LATE_KINDS}
    for i, s in enumerate(states):
        best = np.maximum.reduceat(s.astype(np.float32) @ every.T, starts, axis=1)  # (pieces of i, n)
        content = masks[i] if masks[i].any() else np.ones(len(s), dtype=bool)
        out["all"][i], out["content"][i] = best.mean(axis=0), best[content].mean(axis=0)
    return {kind: (m + m.T) / 2 for kind, m in out.items()}


def _hub_centred(s: np.ndarray) -> np.ndarray:
    """s minus the mean of both papers' average similarity to the others (a paper matching every
    other one well, as a long abstract does under MaxSim, is not everyone's neighbour)."""
    n = len(s)
    mean = (s.sum(axis=1) - np.diag(s)) / max(n - 1, 1)
    return s - (mean[:, None] + mean[None, :]) / 2


def _zscore(s: np.ndarray) -> np.ndarray:
    off = s[~np.eye(len(s), dtype=bool)]
    return (s - off.mean()) / max(off.std(), 1e-12)


def _louvain_on(s: np.ndarray, seed: int) -> np.ndarray:
    """Louvain communities (resolution 1) of the kNN graph of a symmetric similarity matrix:
    min(sqrt(n), COMMUNITY_NEIGHBOURS) neighbours by s, edges weighted max(s, 0), as the product."""
    import networkx as nx

    import semsearch.cluster as cluster

    n = len(s)
    k = max(1, min(cluster.COMMUNITY_NEIGHBOURS, int(n**0.5), n - 1))
    sims = np.array(s, dtype=np.float64)
    np.fill_diagonal(sims, -np.inf)
    near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    pairs = sorted({(min(i, int(j)), max(i, int(j))) for i in range(n) for j in near[i]})
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from((i, j, max(float(s[i, j]), 0.0)) for i, j in pairs)
    found = nx.community.louvain_communities(graph, weight="weight", resolution=cluster.COMMUNITY_RESOLUTION,
                                             seed=seed)
    labels = np.zeros(n, dtype=np.int64)
    for c, members in enumerate(sorted(found, key=min)):
        labels[sorted(members)] = c
    return labels


def late_variants() -> dict[str, object]:
    """Part 0e's grid, fixed before the run: name -> f(vectors, texts, late, seed) -> labels, where
    late = maxsim(...) of the corpus; communities outside 2..20 give the product's answer."""
    def cosine(x):
        c = _centred(x)
        return c @ c.T

    def graph(similarity):
        def fit(x, texts, late, seed):
            labels = _louvain_on(similarity(x, late), seed)
            return labels if 2 <= labels.max() + 1 <= 20 else _product(x, texts, seed)
        return fit

    variants: dict[str, object] = {
        "AutoThemes (semsearch: smoothed pooled cosine)": lambda x, t, late, s: _product(x, t, s),
        "unsmoothed pooled cosine (fifth round)": graph(lambda x, late: cosine(x)),
    }
    for kind in _LATE_KINDS:
        variants[f"MaxSim {kind}"] = graph(lambda x, late, k=kind: late[k])
    for kind in _LATE_KINDS:
        variants[f"MaxSim {kind}, hub-centred"] = graph(lambda x, late, k=kind: _hub_centred(late[k]))
    for kind in _LATE_KINDS:
        for b in _LATE_BLENDS:
            variants[f"{1 - b:g} z(cos) + {b:g} z(MaxSim {kind}, hub-centred)"] = graph(
                lambda x, late, k=kind, b=b: (1 - b) * _zscore(cosine(x)) + b * _zscore(_hub_centred(late[k])))
    return variants


def dev_late(data: Path, small_path: Path, sets_path: Path, seed: int, cache: Path | None) -> None:
    """Part 0e (sixth round of issue 13, dev data only): communities of the kNN graph of paper-to-paper
    late interaction (MaxSim over the model's token states), alone or blended with the pooled cosine,
    on the small draws and the dev draws of 25 / 50 papers; then the seconds it costs."""
    import time

    from sklearn.metrics import v_measure_score

    small = small_sets(data, small_path)
    cfg, vectors, texts, truth = dev_papers(data, sets_path)
    draws = dev_draws(cfg, truth)
    corpora = [("small", small)] + [
        (f"n={n}", [(vectors[r], [texts[i] for i in r], truth[r]) for m, r in draws if m == n]) for n in (25, 50)]
    unique = sorted({t for _, sets in corpora for _, ts, _ in sets for t in ts})
    at = {t: i for i, t in enumerate(unique)}
    t0 = time.perf_counter()
    states, masks = late_states(unique, cache)
    print(f"\n0e. dev: late-interaction graphs ({len(unique)} distinct papers' token states, "
          f"{time.perf_counter() - t0:.0f} s{' or cache' if cache else ''}; mean V-measure / mean k; "
          "'mean3' = mean of small, n=25, n=50)", flush=True)
    lates = []
    for _, sets in corpora:
        lates.append([maxsim([states[at[t]] for t in ts], [masks[at[t]] for t in ts]) for _, ts, _ in sets])
    print(f"{'variant':58} " + " ".join(f"{name:>12}" for name, _ in corpora) + "  mean3")
    for name, fit in late_variants().items():
        cells = []
        for (_, sets), late in zip(corpora, lates):
            labels = [(fit(x, t, m, seed), y) for (x, t, y), m in zip(sets, late)]
            cells.append((np.mean([v_measure_score(y, lab) for lab, y in labels]),
                          np.mean([lab.max() + 1 for lab, _ in labels])))
        print(f"{name:58} " + " ".join(f"{v:6.3f} /{k:4.1f}" for v, k in cells)
              + f" {np.mean([v for v, _ in cells]):6.3f}", flush=True)

    print("\n   seconds (one run each, dev papers not seen above: token states, then both MaxSim matrices)")
    rng = np.random.default_rng(seed)
    fresh = [t for t in texts if t not in at]
    for n in (25, 50, 100):
        picked = [fresh[i] for i in sorted(rng.choice(len(fresh), n, replace=False))]
        t0 = time.perf_counter()
        s, m = late_states(picked, None)
        t1 = time.perf_counter()
        maxsim(s, m)
        t2 = time.perf_counter()
        print(f"   {n:4d} papers ({sum(map(len, s)):6d} pieces): token states {t1 - t0:6.2f} s, MaxSim {t2 - t1:6.2f} s",
              flush=True)


def seed_late(index: Path, names: list[str], seed: int) -> None:
    """Part 0e on a built index (the seeds, looked at once per final candidate): each named
    variant's themes with their members and c-TF-IDF labels."""
    from semsearch import Index
    from semsearch.embed.base import paper_text

    variants = late_variants()
    with Index.open(index) as idx:
        papers = idx.papers()
        x = idx.vectors(list(range(len(papers))))
        texts = [paper_text(p) for p in papers]
    states, masks = late_states(texts, None)
    late = maxsim(states, masks)
    for name in names:
        labels = variants[name](x, texts, late, seed)
        order = sorted(range(labels.max() + 1), key=lambda c: (-(labels == c).sum(), int(np.argmax(labels == c))))
        words = label_clusters(texts, labels.tolist())
        print(f"\n   {index.name}, {name}: {len(order)} themes")
        for c in order:
            titles = [papers[i].title or papers[i].abstract[:50] + " …" for i in np.flatnonzero(labels == c)]
            print(f"   - \"{' · '.join(words[c][:3])}\" ({len(titles)}): " + "; ".join(titles))


def main() -> None:
    import sklearn
    from sklearn.metrics import normalized_mutual_info_score, v_measure_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="papers (JSONL with title, abstract, primary_category)")
    ap.add_argument("--cache", type=Path, default=cache_dir() / "bench" / "clustering.npy", help="precomputed paper vectors (.npy)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N papers")
    ap.add_argument("--wait", type=float, default=600, help="seconds to wait for --cache to appear")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-criteria", action="store_true", help="skip part 1 (k criteria on category subsets)")
    ap.add_argument("--bertopic", metavar="PYTHON", help="an interpreter with bertopic installed (a separate venv)")
    ap.add_argument("--dev", action="store_true", help="also part 0: the tolerance of the choice of k on the dev sets")
    ap.add_argument("--small", action="store_true", help="also part 0b: small corpora (small_theme_sets.json)")
    ap.add_argument("--communities", action="store_true",
                    help="also part 0c: kNN-graph communities vs k-means on the small draws and dev sets")
    ap.add_argument("--graphs", action="store_true",
                    help="also part 0d: variants of the small-corpus communities on the small and dev draws")
    ap.add_argument("--late", action="store_true",
                    help="also part 0e: small-corpus communities of late-interaction (MaxSim) graphs")
    ap.add_argument("--late-cache", type=Path, default=None, help="folder keeping part 0e's token states (.npz)")
    ap.add_argument("--late-seeds", type=Path, metavar="INDEX", help="part 0e's --late-variant themes on a built index")
    ap.add_argument("--late-variant", action="append", default=[], help="a part 0e variant name (repeatable)")
    ap.add_argument("--small-sets", type=Path, default=ROOT / "benchmarks" / "data" / "small_theme_sets.json")
    ap.add_argument("--sets", type=Path, default=ROOT / "benchmarks" / "data" / "theme_sets.json",
                    help="dev theme sets (JSON) for --dev")
    args = ap.parse_args()

    papers = [json.loads(line) for line in args.data.open(encoding="utf-8")][: args.limit]
    texts = [f"{p['title']}. {p['abstract']}" for p in papers]
    truth = np.array([p["primary_category"] for p in papers])
    true_k = len(set(truth))
    vectors, origin = load_vectors(args.cache, len(papers), args.wait, texts)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs; python "
          f"{platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}")
    print(f"corpus: {len(papers)} papers, {true_k} primary categories; vectors {vectors.shape} from {origin}")
    print(f"runs: 1 per method, same vectors; k-means n_init={N_INIT}, random_state={args.seed}")

    if args.dev:
        dev_tolerance(args.data, args.sets, args.seed)
    if args.small:
        dev_small(args.data, args.small_sets, args.seed)
    if args.communities:
        dev_communities(args.data, args.small_sets, args.sets, args.seed)
    if args.graphs:
        dev_graphs(args.data, args.small_sets, args.sets, args.seed)
    if args.late:
        dev_late(args.data, args.small_sets, args.sets, args.seed, args.late_cache)
    if args.late_seeds:
        seed_late(args.late_seeds, args.late_variant, args.seed)
        return
    if not args.no_criteria:
        criteria(vectors, truth, args.seed)

    print(f"\n2. whole corpus ({len(papers)} papers, true k = {true_k})")
    print(f"{'method':48} {'V-measure':>9} {'NMI':>6} {'k':>4} {'seconds':>8} {'V / base':>9} {'NMI / base':>10} "
          f"{'time / base':>11}")
    runs, auto = compare(vectors, texts, true_k, args.seed, args.bertopic)
    results = [(name, v_measure_score(truth, labels), normalized_mutual_info_score(truth, labels),
                len(set(labels.tolist())), seconds) for name, labels, seconds in runs]
    base = results[1]
    for name, v, nmi, k, seconds in results:
        print(f"{name:48} {v:9.3f} {nmi:6.3f} {k:4d} {seconds:8.2f} {v / base[1]:9.2f} {nmi / base[2]:10.2f} "
              f"{seconds / max(base[4], 1e-9):11.2f}")

    print("\n   AutoThemes' modularity (kNN graph of smoothed vectors) per candidate k: "
          + (", ".join(f"{k}: {s:.3f}" for k, s in auto.selection_.items()) or "none (fewer than 3 papers)"))
    print(f"\n3. AutoThemes' {auto.n_themes_} themes (score = mean cosine of a paper to its theme's center)")
    print(f"{'#':>3} {'size':>5} {'score':>6} {'majority category':>22}  name / words")
    for c in range(auto.n_themes_):
        rows = auto.labels_ == c
        cat, count = Counter(truth[rows].tolist()).most_common(1)[0]
        print(f"{c:>3} {rows.sum():>5} {auto.scores_[rows].mean():6.3f} {cat:>12} ({count / rows.sum():4.0%})  "
              f"{auto.names_[c]}   [{', '.join(auto.words_[c])}]")
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    plain = label_clusters(texts, auto.labels_.tolist(), auto.n_words, stop_words=ENGLISH_STOP_WORDS)
    generic = Counter(t for words in plain for t in words if set(t.split()) & GENERIC_WORDS)
    print("\n   with scikit-learn's stop words only, GENERIC_WORDS would appear in these theme labels: "
          + (", ".join(f"{t} ({n})" for t, n in generic.most_common()) or "none"))


if __name__ == "__main__":
    main()
