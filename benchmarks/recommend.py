"""Several papers in, recommendations out: per-request SVM vs centroid and max-sim, side by side.

Protocol (arXiv, categories as ground truth): for each fine-grained category with 25-400 papers in
the corpus, TRIALS times: 5 random papers of the category are "liked"; every other paper is ranked;
P@20 = share of the top 20 that carry the category. Then a second round as a user would do it:
of the first round's top 20 (by centroid), up to 5 that lack the category are marked "unlike",
and the ranking is redone without them; P@20 again. Categories alternate dev/test in name order:
settings (C, unlike weight) are chosen on dev, test is held out.

    PYTHONPATH=. python benchmarks/recommend.py [--index DIR] [--trials 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.builder import build
from semsearch.recommend import recommend_scores

ROOT = Path(__file__).resolve().parents[1]
LIKED = 5


def top(scores, exclude, k=20):
    s = scores.copy()
    s[list(exclude)] = -np.inf
    return np.argsort(-s, kind="stable")[:k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=None, help="an index of arXiv papers with categories")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--min", type=int, default=25)
    ap.add_argument("--max", type=int, default=400)
    args = ap.parse_args()
    tmp = None
    if args.index is None:
        tmp = tempfile.TemporaryDirectory()
        args.index = Path(tmp.name) / "idx"
    if not args.index.exists():
        build([ROOT.parent / "shared" / "data" / "arxiv" / "clustering_subset.jsonl"], args.index, dedupe=False)
    with Index.open(args.index) as idx:
        papers = list(idx.papers())
        vectors = idx.vectors(list(range(len(papers))))  # rows are 0..n-1 in a fresh build
    cats = [set(p.categories) for p in papers]
    count = Counter(c for cs in cats for c in cs)
    chosen = sorted(c for c, n in count.items() if args.min <= n <= args.max)
    split = {c: "dev" if i % 2 == 0 else "test" for i, c in enumerate(chosen)}
    members = {c: np.array([i for i, cs in enumerate(cats) if c in cs]) for c in chosen}
    has = {c: np.array([c in cs for cs in cats]) for c in chosen}

    def maxsim(liked, unliked):
        return (vectors @ vectors[liked].T).max(axis=1)

    methods = {"centroid (cosine to mean of liked)": lambda l, u: recommend_scores(vectors, l, u, method="centroid"),
               "max-sim (cosine to nearest liked)": maxsim}
    for c in (0.1, 1.0):
        for w in (1.0, 10.0):
            methods[f"SVM C={c} unlike weight {w}"] = (
                lambda l, u, c=c, w=w: recommend_scores(vectors, l, u, method="svm", c=c, unlike_weight=w))
    rows = {m: {"dev": [[], []], "test": [[], []]} for m in methods}
    t = time.perf_counter()
    for cat in chosen:
        rng = np.random.default_rng(sum(map(ord, cat)))
        for _ in range(args.trials):
            liked = rng.choice(members[cat], LIKED, replace=False)
            first = top(recommend_scores(vectors, liked, method="centroid"), liked)
            unliked = [int(r) for r in first if not has[cat][r]][:5]
            for name, fn in methods.items():
                p1 = has[cat][top(fn(liked, []), liked)].mean()
                p2 = has[cat][top(fn(liked, unliked), set(liked) | set(unliked))].mean()
                rows[name][split[cat]][0].append(p1)
                rows[name][split[cat]][1].append(p2)
    ndev = sum(v == "dev" for v in split.values())
    print(f"{len(papers)} papers, {len(chosen)} categories ({ndev} dev, {len(chosen) - ndev} test) x {args.trials} "
          f"trials, {LIKED} liked; {time.perf_counter() - t:.0f} s")
    print(f"{'method':40} {'P@20 dev':>9} {'P@20 test':>9} | {'+unlike dev':>11} {'+unlike test':>12}")
    for name, r in rows.items():
        print(f"{name:40} {np.mean(r['dev'][0]):9.4f} {np.mean(r['test'][0]):9.4f} | "
              f"{np.mean(r['dev'][1]):11.4f} {np.mean(r['test'][1]):12.4f}")


if __name__ == "__main__":
    main()
