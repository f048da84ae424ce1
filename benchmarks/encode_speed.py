"""Encoding speed of the embedding backends side by side: sentence-transformers (torch fp32), ONNX fp32, ONNX int8.

Every backend encodes the same texts (title. abstract of arXiv papers) in one process, after a
warm-up, in interleaved rounds (the machine may be shared: the best round counts, all are
printed). Single-query latency is the median of one-text calls (1 thread, as a query runs).
`--scifact` adds retrieval quality: nDCG@10, Recall@100, MRR@10 of dense brute-force search on
SciFact, corpus encoded in batches (title. text) and each query encoded alone, as at query time.

    PYTHONPATH=. python benchmarks/encode_speed.py [--n 1000] [--rounds 1] [--threads 2]
        [--backends torch,onnx,onnx-int8] [--scifact [--data ../shared/data/scifact]
        [--vectors CACHE/bench/scifact_corpus.npy]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from semsearch.embed import (
    cache_dir,  # noqa: E402
    make_embedder,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
QUERIES = ["sharding embedding tables across devices", "quantization of LLM weights", "video generation",
           "graph neural networks for molecules", "how do I speed up recommendation model training?"]


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} logical CPUs, load average {load}; {platform.platform()}, Python {platform.python_version()}"


def versions() -> str:
    import onnxruntime
    import sentence_transformers
    import torch

    return f"torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}, onnxruntime {onnxruntime.__version__}"


def arxiv_texts(n: int) -> list[str]:
    texts = []
    with open(DATA / "arxiv" / "clustering_subset.jsonl", encoding="utf-8") as fh:
        for line in fh:
            o = json.loads(line)
            texts.append(f"{o['title']}. {o['abstract']}")
            if len(texts) == n:
                break
    return texts


def make(backend: str, threads: int):
    e = make_embedder(None, backend)
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        e.threads = None if threads == 2 else threads  # None: 1 thread for <= 8 texts, else 2
    return e


def speed(backends: list[str], texts: list[str], rounds: int, threads: int) -> None:
    embedders = {}
    for b in backends:
        start = time.perf_counter()
        embedders[b] = make(b, threads)
        embedders[b].encode(texts[:32])  # warm-up (and the ONNX export, when not cached yet)
        print(f"{b}: loaded and warmed up in {time.perf_counter() - start:.1f} s (fingerprint {embedders[b].fingerprint})")
    rates: dict[str, list[float]] = {b: [] for b in backends}
    for _ in range(rounds):
        for b, e in embedders.items():
            start = time.perf_counter()
            e.encode(texts)
            rates[b].append(len(texts) / (time.perf_counter() - start))
    latency = {}
    for b, e in embedders.items():
        if b != "torch":
            e.threads = None
        times = []
        for q in QUERIES * 6:
            start = time.perf_counter()
            e.encode([q])
            times.append(time.perf_counter() - start)
        latency[b] = statistics.median(times) * 1000
    base = max(rates[backends[0]])
    print(f"\n{len(texts)} texts, {rounds} round(s), {threads} threads for batches; ratios vs {backends[0]}")
    print("| backend | docs/s (best) | all rounds | ratio | query ms (median, 1 thread) |\n|---|---|---|---|---|")
    for b in backends:
        print(f"| {b} | {max(rates[b]):.1f} | {', '.join(f'{r:.1f}' for r in rates[b])} | "
              f"{max(rates[b]) / base:.2f}x | {latency[b]:.1f} |")


def scifact(backends: list[str], data: Path, vectors: Path | None) -> None:
    from semsearch.embed import paper_text
    from semsearch.evaluate import load_beir, score_run

    ds = load_beir(data, "test")
    ids = [r.id for r in ds.records]
    texts = [paper_text(r) for r in ds.records]  # title. text, as semsearch embeds a paper (RawRecord fits)
    queries = {q: ds.queries[q] for q in ds.qrels}
    print(f"\nSciFact test: {len(texts)} documents, {len(queries)} judged queries; dense, exact inner product")
    print("| backend | nDCG@10 | Recall@100 | MRR@10 | corpus encode s | Δ nDCG@10 vs first |\n|---|---|---|---|---|---|")
    first = None
    for b in backends:
        e = make_embedder(None, b)
        start = time.perf_counter()
        corpus = None
        if b == "torch" and vectors is not None and vectors.is_file():
            corpus = np.load(vectors, allow_pickle=False)
            sample = [i for i in range(0, len(texts), len(texts) // 16)][:16]
            check = (e.encode([texts[i] for i in sample]) * corpus[sample]).sum(1)
            if corpus.shape[0] != len(texts) or check.min() < 0.999:
                print(f"({vectors} does not match the corpus texts (cos {check.min():.4f}): re-encoding)")
                corpus = None
        if corpus is None:
            corpus = e.encode(texts, progress=True)
        seconds = time.perf_counter() - start
        q = np.vstack([e.encode([queries[k]]) for k in queries])  # one at a time, as at query time
        top = np.argsort(-(q @ corpus.T), axis=1)[:, :100]
        run = {k: [ids[j] for j in row] for k, row in zip(queries, top)}
        m = score_run(run, ds.qrels)
        first = m["ndcg@10"] if first is None else first
        print(f"| {b} | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} | {seconds:.0f} | "
              f"{m['ndcg@10'] - first:+.4f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="arXiv abstracts to encode")
    ap.add_argument("--rounds", type=int, default=1, help="timed rounds per backend (interleaved)")
    ap.add_argument("--threads", type=int, default=2, help="threads for batch encoding (torch and onnxruntime)")
    ap.add_argument("--backends", default="torch,onnx,onnx-int8")
    ap.add_argument("--scifact", action="store_true", help="also nDCG@10 on SciFact per backend")
    ap.add_argument("--no-speed", action="store_true", help="only the --scifact part")
    ap.add_argument("--data", type=Path, default=DATA / "scifact")
    ap.add_argument("--vectors", type=Path, default=cache_dir() / "bench" / "scifact_corpus.npy",
                    help="torch corpus vectors computed earlier for title. text, in corpus order (optional)")
    args = ap.parse_args()
    backends = args.backends.split(",")
    print(f"machine: {machine()}\n{versions()}")
    if not args.no_speed:
        speed(backends, arxiv_texts(args.n), args.rounds, args.threads)
    if args.scifact:
        scifact(backends, args.data, args.vectors)


if __name__ == "__main__":
    main()
