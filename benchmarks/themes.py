"""Choose the named-theme membership rule on judged data: arXiv papers and their categories.

Each of the 12 largest categories of ../shared/data/arxiv/clustering_subset.jsonl becomes a
theme named as a user would name it ("computer vision", "cosmology", ...); a paper truly
belongs to a theme when the category is among its arXiv categories (multi-label). Rules are
compared side by side on the same embeddings by macro- and micro-F1 and the share of papers
left unassigned.

    PYTHONPATH=. python benchmarks/themes.py [--cache CACHE/bench/clustering.npy] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from semsearch.embed import cache_dir
from semsearch.themes import ABSOLUTE_MIN, RELATIVE_MARGIN, assign

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "arxiv" / "clustering_subset.jsonl"
THEMES = {
    "astro-ph.GA": "galaxies",
    "astro-ph.CO": "cosmology",
    "cs.AI": "artificial intelligence",
    "cs.CL": "natural language processing",
    "cs.CR": "computer security",
    "cs.CV": "computer vision",
    "cs.GT": "game theory",
    "cs.LG": "machine learning",
    "cs.RO": "robotics",
    "hep-ph": "particle physics",
    "math.RT": "representation theory",
    "quant-ph": "quantum physics",
}


def f1(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    tp = (pred & truth).sum(axis=0)
    fp = (pred & ~truth).sum(axis=0)
    fn = (~pred & truth).sum(axis=0)
    per = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    return float(per.mean()), float(micro)


def rules(scores: np.ndarray):
    """(name, membership) for each candidate rule family and setting."""
    for t in (0.15, 0.20, 0.25, 0.30, 0.35):
        yield f"absolute cos >= {t:.2f}", scores >= t
    best = scores.argmax(axis=1)
    top1 = np.zeros_like(scores, dtype=bool)
    top1[np.arange(len(scores)), best] = True
    yield "top-1 theme only (no floor)", top1
    for floor in (0.15, 0.20, 0.25):
        for margin in (0.02, 0.05, 0.10):
            yield f"cos >= {floor:.2f} and within {margin} of best", assign(scores, floor, margin)
    mu, sd = scores.mean(axis=0), scores.std(axis=0) + 1e-9
    for z in (0.5, 1.0, 1.5):
        yield f"per-theme z-score >= {z}", (scores - mu) / sd >= z


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="papers (JSONL with title, abstract, categories)")
    ap.add_argument("--cache", type=Path, default=cache_dir() / "bench" / "clustering.npy", help="precomputed paper vectors")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--embedder", default=None, help="'fake' for the test suite's tiny run")
    args = ap.parse_args()
    papers = [json.loads(line) for line in args.data.open(encoding="utf-8")][: args.limit]
    if args.embedder == "fake":
        from tests.conftest import FakeEmbedder

        embedder = FakeEmbedder(dim=384)
    else:
        from semsearch.embed import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
    t = time.perf_counter()
    if args.cache.exists():
        vectors = np.load(args.cache)[: len(papers)]
    else:
        vectors = embedder.encode([f"{p['title']}. {p['abstract']}" for p in papers], progress=True)
    theme_vectors = embedder.encode(list(THEMES.values()))
    seconds = time.perf_counter() - t
    truth = np.array([[c in p["categories"] for c in THEMES] for p in papers], dtype=bool)
    scores = vectors @ theme_vectors.T
    print(f"machine: {platform.machine()} python {platform.python_version()}; {len(papers)} papers, "
          f"{len(THEMES)} themes, {truth.sum()} true memberships; embedding {seconds:.1f} s")
    print(f"{'rule':45} {'macro-F1':>9} {'micro-F1':>9} {'unassigned':>11} {'labels/paper':>13}")
    results = []
    for name, pred in rules(scores):
        macro, micro = f1(pred, truth)
        results.append((macro, name))
        chosen = " <- semsearch" if name == f"cos >= {ABSOLUTE_MIN:.2f} and within {RELATIVE_MARGIN:g} of best" else ""
        print(f"{name:45} {macro:9.3f} {micro:9.3f} {(~pred.any(axis=1)).mean():11.1%} "
              f"{pred.sum(axis=1).mean():13.2f}{chosen}")
    best_macro, best_name = max(results)
    print(f"best macro-F1: {best_name} ({best_macro:.3f})")


if __name__ == "__main__":
    main()
