"""SciFact and the descriptive sets, issue 12's sixth try: whole-abstract vectors read with a longer
word-piece window (384 or 512, the model's position limit) instead of the bundled model's 256.

Same query sets, splits, indexes and hybrid as benchmarks/retrieval.py (cos + lam x BM25 / IDF mass,
title weight 4, FTS5's k1 / b); the dense score is (1 - mix) x the index's cosine + mix x the cosine
to the long-window vector of the same "title. abstract" text (the default int8 ONNX model, its
tokenizer truncating at the window). Candidates: the dense top 100 by the index's vectors and by
the mixed score, and the lexical top 100.

    PYTHONPATH=. python benchmarks/retrieval_window.py [--data ../shared/data] --work DIR [--cache DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.builder import paper_text
from semsearch.embed.onnx import TOKENIZER_FILE, OnnxEmbedder, _load_tokenizer
from semsearch.fusion import TITLE_WEIGHTS, lexical_mass

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import DATA, build_sets, by_half, print_halves  # noqa: E402

WINDOWS = (384, 512)
MIXES = (0.5, 1.0)
LAMS = (1.0, 1.5, 2.0)
K1, B = 1.2, 0.75


def long_vectors(texts: list[str], window: int, cache: Path | None) -> np.ndarray:
    if cache and cache.exists():
        return np.load(cache)
    emb = OnnxEmbedder(None, quantized=True)
    emb._tokenizer = _load_tokenizer(emb._export_dir() / TOKENIZER_FILE, window)
    v = emb.encode(texts)
    if cache:
        np.save(cache, v)
    return v


def lexical(idx: Index, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(normalised BM25 of every paper, lexical top 100) at FTS5's k1 / b, title weight 4."""
    post = idx.postings
    mass = lexical_mass(idx._store.connection, query, post).content()
    summed = np.zeros(len(post._lengths))
    for (rows, tf_title, tf_abstract), held in zip(post._postings(mass.tokens) if mass.tokens else [], mass.held):
        idf = max(math.log((post._papers - held + 0.5) / (held + 0.5)), 1e-6)
        f = TITLE_WEIGHTS[0] * tf_title.astype(np.float64) + TITLE_WEIGHTS[1] * tf_abstract
        summed[rows] += idf * f * (K1 + 1) / (f + K1 * (1 - B + B * post._lengths[rows] / post._avgdl))
    upper = sum(mass.idf) * (K1 + 1)
    held = np.flatnonzero(summed)
    top = held[np.lexsort((held, -summed[held]))][:100]
    return (summed[:n] / upper if upper > 0 else np.zeros(n)), top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, required=True, help="benchmark indexes (built once, as retrieval.py does)")
    ap.add_argument("--cache", type=Path, default=None, help="folder keeping the long-window vectors (.npy)")
    args = ap.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    table: dict = {}
    for name, (path, queries, judged, split) in build_sets(args.work, ["scifact", "arxiv", "seeds"], args.data).items():
        with Index.open(path) as idx:
            papers = idx.papers()
            ids, texts = [p.id for p in papers], [paper_text(p) for p in papers]
            base = idx.vectors(list(range(len(papers))))
            longs = {w: long_vectors(texts, w, args.cache and args.cache / f"{name.replace(' ', '_')}_{w}.npy")
                     for w in WINDOWS}
            qids = list(queries)
            qv = idx.embed([queries[q] for q in qids])
            idx.postings.bm25((), ())  # reads the papers' lengths
            runs: dict = {}
            for i, q in enumerate(qids):
                norm, ltop = lexical(idx, queries[q], len(papers))
                whole = base @ qv[i]
                dtop = np.argsort(-whole, kind="stable")[:100]
                settings = [("256 (index)", whole)] + [(f"{w} mix {m}", (1 - m) * whole + m * (longs[w] @ qv[i]))
                                                       for w in WINDOWS for m in MIXES]
                for key, d in settings:
                    top = np.argsort(-d, kind="stable")[:100]
                    runs.setdefault(f"dense {key}", {})[q] = [ids[r] for r in top]
                    cand = np.union1d(np.union1d(dtop, top), ltop).astype(np.int64)
                    for lam in LAMS:
                        order = np.lexsort((cand, -(d[cand] + lam * norm[cand])))
                        runs.setdefault(f"{key} lam {lam}", {})[q] = [ids[int(cand[j])] for j in order]
            for key, row in by_half(runs, judged, split, qids).items():
                table.setdefault(key, {})[name] = row
    print_halves(table, 26)


if __name__ == "__main__":
    main()
