"""Retrieval quality on a judged BEIR dataset: dense, lexical (FTS5 BM25) and fused rankings, side by side.

All settings run in one process on one index and the same query embeddings, so the figures
differ only by ranking method. Hybrid settings fuse the top CANDIDATES of each channel.

    PYTHONPATH=. python benchmarks/retrieval.py [--data ../shared/data/scifact] [--split test]
        [--vectors CACHE/bench/scifact_corpus.npy] [--limit N] [--embedder fake]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.builder import build_records
from semsearch.embed import cache_dir
from semsearch.evaluate import load_beir, score_run
from semsearch.query import ALPHA, CANDIDATES, fuse, rrf

ROOT = Path(__file__).resolve().parents[1]


class Precomputed:
    """Wraps an embedder; texts whose vectors were computed earlier (same model) are looked up."""

    def __init__(self, inner, texts, vectors):
        self.inner, self.name = inner, inner.name
        self.table = {" ".join(t.split()): v for t, v in zip(texts, vectors)}

    @property
    def dim(self):
        return self.inner.dim

    @property
    def fingerprint(self):
        return self.inner.fingerprint

    def encode(self, texts, *, progress=False):
        keys = [" ".join(t.split()) for t in texts]
        missing = [t for t, key in zip(texts, keys) if key not in self.table]
        if missing:
            for t, v in zip(missing, self.inner.encode(missing, progress=progress)):
                self.table[" ".join(t.split())] = v
        return np.vstack([self.table[key] for key in keys]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    ap.add_argument("--split", default="test")
    ap.add_argument("--vectors", type=Path, default=cache_dir() / "bench" / "scifact_corpus.npy",
                    help="corpus vectors computed earlier for title. text, in corpus order (optional)")
    ap.add_argument("--limit", type=int, default=None, help="first N documents only (for a quick run)")
    ap.add_argument("--embedder", default=None, help="'fake' for the test suite's tiny run")
    args = ap.parse_args()

    data = load_beir(args.data, args.split)
    records = data.records[: args.limit]
    if args.embedder == "fake":
        from tests.conftest import FakeEmbedder

        inner = FakeEmbedder()
    else:
        from semsearch.embed import SentenceTransformerEmbedder

        inner = SentenceTransformerEmbedder()
    texts = [f"{r.title}. {r.abstract}" if r.title else r.abstract for r in records]
    embedder = inner
    if args.vectors.exists() and args.embedder != "fake":
        embedder = Precomputed(inner, texts, np.load(args.vectors)[: len(records)])
    queries = {q: data.queries[q] for q in data.qrels}
    qids = list(queries)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        build_records(records, Path(tmp) / "idx", embedder=embedder, dedupe=False, cache=False)
        build_s = time.perf_counter() - t
        with Index.open(Path(tmp) / "idx", embedder=embedder) as idx:
            ids = [p.id for p in idx.papers()]
            t = time.perf_counter()
            qvec = idx.embed([queries[q] for q in qids])
            dense = idx.search_vectors(qvec, CANDIDATES)
            dense_runs = [[(int(r), float(s)) for r, s in zip(dense.rows[i], dense.scores[i]) if r >= 0] for i in range(len(qids))]
            from semsearch.store import lexical

            lex_runs = [lexical.search(idx._store.connection, queries[q], CANDIDATES) for q in qids]
            search_s = time.perf_counter() - t

    settings = {
        "dense (cosine)": dense_runs,
        "lexical (FTS5 BM25)": lex_runs,
        f"hybrid RRF k=60 (top {CANDIDATES} each)": [rrf([[r for r, _ in d], [r for r, _ in l]]) for d, l in zip(dense_runs, lex_runs)],
    }
    for alpha in (0.3, 0.5, 0.7):
        chosen = " (semsearch hybrid)" if alpha == ALPHA else ""
        settings[f"hybrid convex min-max alpha={alpha}{chosen}"] = [fuse(d, l, alpha) for d, l in zip(dense_runs, lex_runs)]
    try:
        import bm25s
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        corpus_tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(corpus_tokens, show_progress=False)
        q_tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
        docs, scores = retriever.retrieve(q_tokens, k=min(CANDIDATES, len(texts)), show_progress=False)
        settings["lexical (bm25s, for comparison)"] = [list(zip(map(int, d), map(float, s))) for d, s in zip(docs, scores)]
    except ImportError:
        pass

    print(f"machine: {platform.machine()} python {platform.python_version()}; dataset {args.data.name} "
          f"({len(records)} docs, {len(qids)} judged {args.split} queries); build {build_s:.1f} s, "
          f"all channel searches {search_s:.1f} s")
    print(f"{'setting':45} {'nDCG@10':>8} {'R@100':>8} {'MRR@10':>8}  vs dense")
    base = None
    results = {}
    for name, runs in settings.items():
        run = {q: [ids[r] for r, _ in ranked] for q, ranked in zip(qids, runs)}
        m = score_run(run, data.qrels)
        base = base or m["ndcg@10"]
        results[name] = m
        print(f"{name:45} {m['ndcg@10']:8.4f} {m['recall@100']:8.4f} {m['mrr@10']:8.4f}  {m['ndcg@10'] / base:6.3f}x")
    print(json.dumps({k: round(v["ndcg@10"], 4) for k, v in results.items()}))


if __name__ == "__main__":
    main()
