"""SciFact: re-ranking the fused candidates by their neighbours' scores (the cluster hypothesis).

Each candidate's fused score (cosine + 1.5 x BM25 / IDF mass, title weight 4: the default hybrid)
gets beta x its M-best neighbours' scores: the mean over its k nearest (by document cosine) of
the M best candidates ("mean"), or that mean weighted by the document cosine ("weighted").
Dev / test halves as in retrieval.py; nDCG@10. Every setting tried is printed.

    PYTHONPATH=. python benchmarks/retrieval_graph.py [--data ../shared/data] [--work DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import retrieval as R  # this script's folder is on sys.path

from semsearch.evaluate import ndcg
from semsearch.fusion import LEXICAL_WEIGHT, TITLE_WEIGHTS
from semsearch.query import Index


def smoothed(f: R.Features, m: int, k: int, beta: float, mode: str) -> list[int]:
    """Rows ranked by the fused score + beta x the neighbours' fused scores."""
    s = f.cos + LEXICAL_WEIGHT * f.norm[TITLE_WEIGHTS]
    top = np.argsort(-s, kind="stable")[:m]
    sims = f.vecs @ f.vecs[top].T  # (candidates, m)
    out = s.copy()
    for i in range(len(s)):
        row = sims[i].copy()
        row[top == i] = -9.0  # a candidate is not its own neighbour
        nn = np.argsort(-row, kind="stable")[:k]
        if mode == "mean":
            out[i] = s[i] + beta * s[top[nn]].mean()
        else:
            out[i] = s[i] + beta * float((row[nn] * s[top[nn]]).sum() / max(row[nn].sum(), 1e-9))
    return R.ranked(f.rows, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=R.DATA)
    ap.add_argument("--work", type=Path, default=None, help="retrieval.py's index directory (built once)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="semsearch-graph-"))
    path, queries, judged, split = R.build_sets(work, ["scifact"], args.data)["SciFact"]
    with Index.open(path) as idx:
        qids = list(queries)
        feats = R.collect(idx, [queries[q] for q in qids], sentences=False)
        rows = sorted({int(r) for f in feats for r in f.rows})
        ids = {r: p.id for r, p in idx._store.by_rows(rows).items()}

    def evaluate(rank) -> str:
        half = {s: statistics.mean(ndcg([ids[r] for r in rank(f)[:10]], judged[q])
                                   for q, f in zip(qids, feats) if split[q] == s) for s in ("dev", "test")}
        return f"{half['dev']:.4f} / {half['test']:.4f}"

    print("| setting | SciFact nDCG@10 dev / test |\n|---|---|")
    print(f"| default hybrid | {evaluate(lambda f: R.ranked(f.rows, f.cos + LEXICAL_WEIGHT * f.norm[TITLE_WEIGHTS]))} |")
    for mode in ("mean", "weighted"):
        for m in (10, 30):
            for k in (3, 5):
                for beta in (0.1, 0.25, 0.5):
                    result = evaluate(lambda f: smoothed(f, m, k, beta, mode))
                    print(f"| {mode}, M={m}, k={k}, beta={beta} | {result} |", flush=True)


if __name__ == "__main__":
    main()
