"""Vector index structures at scale: Flat vs HNSW vs IVF-SQ8 vs IVF-PQ(+SQ8 refine), side by side.

For each corpus size: build time, bytes in RAM (the serialised index), recall@10 against exact
search for held-out queries (vectors not in the index), and warm single-query latency p50/p99
on one thread, each structure at the smallest search effort reaching the target recall (tuned
by semsearch.store.tune on the corpus, the way `build --index-type` does it; kind `auto` is
`build`'s default and prints the structure it chose). "tune r@10" is the recall the tuner
measured on its own sample (papers held out of the corpus, near-duplicates set aside), to set
beside the held-out queries' recall; --tried prints every setting it measured.

Vectors: real all-MiniLM-L6-v2 embeddings of ../shared/data/arxiv/abstracts.jsonl.gz (a .npy
given with --vectors, in file order). Sizes beyond the real count are a synthetic extension:
each extra vector is a random real vector plus isotropic Gaussian noise (sigma per dimension
--sigma), re-normalised, so it sits near a real paper the way a related paper does.

    PYTHONPATH=. python benchmarks/scale.py --vectors CACHE/bench/arxiv_titles.npy --sizes 10000,all,100000
    PYTHONPATH=. python benchmarks/scale.py --vectors CACHE/bench/arxiv_titles.npy --sizes 1000000 --kinds auto --tried --sweep
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np


def extend(real: np.ndarray, n: int, sigma: float, seed: int = 0) -> np.ndarray:
    """`real` plus synthetic neighbours up to n rows, float32, L2-normalised."""
    if n <= len(real):
        return real[:n]
    rng = np.random.default_rng(seed)
    extra = np.empty((n - len(real), real.shape[1]), dtype=np.float32)
    for start in range(0, len(extra), 100_000):
        stop = min(start + 100_000, len(extra))
        parents = real[rng.integers(0, len(real), stop - start)]
        block = parents + sigma * rng.standard_normal(parents.shape, dtype=np.float32)
        extra[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return np.vstack([real, extra])


def embed_titles(corpus: str, out: Path) -> None:
    """Write the int8 ONNX all-MiniLM-L6-v2 embeddings of the titles of `corpus`'s papers to `out`."""
    from semsearch.embed.backends import make_embedder
    from semsearch.ingest import read_paths
    from semsearch.records import merge

    papers = merge([r for f in read_paths([corpus]) for r in f.records]).papers
    t = time.perf_counter()
    vectors = make_embedder(None, "onnx-int8").encode([p.title or p.abstract for p in papers])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors.astype(np.float32))
    print(f"embedded {len(papers)} titles in {time.perf_counter() - t:.0f} s -> {out}", flush=True)


def latency_ms(index, queries: np.ndarray) -> tuple[float, float]:
    import faiss

    faiss.omp_set_num_threads(1)
    for q in queries[:20]:
        index.search(q[None, :], 10)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], 10)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    import faiss

    from semsearch.store.tune import _exact_neighbours, build_vector_index

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", required=True, help=".npy of real embeddings, float32 (n, dim)")
    ap.add_argument("--embed-titles", metavar="CORPUS",
                    help="when --vectors is missing, write it: the titles of CORPUS's papers (in build's order) "
                         "embedded by the default model, int8 ONNX")
    ap.add_argument("--sizes", default="10000,all", help="comma-separated sizes; 'all' = every real vector")
    ap.add_argument("--kinds", default="flat,hnsw,ivf-sq8,ivf-pq", help="index types, `auto` included")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--sigma", type=float, default=0.03)
    ap.add_argument("--skip", default="", help="kind@size pairs to skip, e.g. hnsw@1000000 (too slow here)")
    ap.add_argument("--tried", action="store_true", help="also print every setting the tuner measured")
    ap.add_argument("--sweep", action="store_true",
                    help="also report recall and latency of every nprobe/efSearch on the held-out queries")
    args = ap.parse_args()

    if args.embed_titles and not Path(args.vectors).exists():
        embed_titles(args.embed_titles, Path(args.vectors))
    real = np.load(args.vectors).astype(np.float32)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(real))
    held = real[order[: args.queries]]  # held-out queries: never in any index
    real = real[order[args.queries :]]
    print(f"machine: {platform.machine()} {platform.processor() or ''}, faiss {faiss.__version__}, "
          f"threads for build {faiss.omp_get_max_threads()}, 1 for latency; real vectors {len(real)} x {real.shape[1]}, "
          f"{len(held)} held-out queries, target recall@10 {args.target_recall}")
    print(f"{'size':>9} {'index':>15} {'params':>16} {'recall@10':>9} {'tune r@10':>9} {'MiB':>8} {'build s':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'p50 vs flat':>11}")
    skip = set(args.skip.split(",")) if args.skip else set()
    for size in args.sizes.split(","):
        n = len(real) if size == "all" else int(size)
        x = extend(real, n, args.sigma)
        queries = held
        _, truth = _exact_neighbours(x, queries, np.zeros(len(x), dtype=bool), 10)  # no second copy of x
        flat_p50 = None
        for kind in args.kinds.split(","):
            if f"{kind}@{n}" in skip:
                print(f"{n:>9} {kind:>15}  skipped (see docs/benchmarks.md)")
                continue
            faiss.omp_set_num_threads(2)
            t = time.perf_counter()
            index, choice = build_vector_index(x, kind, target_recall=args.target_recall)
            build_s = time.perf_counter() - t
            _, found = index.search(queries, 10)
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
            mib = index.nbytes() / 2**20
            p50, p99 = latency_ms(index, queries)
            flat_p50 = flat_p50 or (p50 if kind == "flat" else None)
            ratio = f"{p50 / flat_p50:.3f}" if flat_p50 else ""
            params = ",".join(f"{k}={v}" for k, v in choice.params.items()) or "exact"
            name = f"auto:{choice.type}" if kind == "auto" else kind
            print(f"{n:>9} {name:>15} {params:>16} {recall:9.4f} {choice.recall_at_10:9.4f} {mib:8.1f} {build_s:8.1f} "
                  f"{p50:7.2f} {p99:7.2f} {ratio:>11}", flush=True)
            if args.tried:
                print(f"{'':>9} tuned on {choice.tuned_on} papers, {choice.near_duplicate_queries} of them with "
                      f"near-duplicates set aside ({choice.near_duplicates_excluded} papers); tried: "
                      + ", ".join(f"{t['type']} {k}={v} {t['recall_at_10']}" for t in choice.tried
                                  for k, v in t.items() if k not in ("type", "recall_at_10")), flush=True)
            if args.sweep and choice.params:
                from semsearch.store.tune import _EF_SEARCH, _NPROBES

                name = next(iter(choice.params))
                values = _NPROBES if name == "nprobe" else _EF_SEARCH
                for v in values:
                    index.set_params({name: v})
                    _, found = index.search(queries, 10)
                    r = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
                    p50, p99 = latency_ms(index, queries)
                    print(f"{'':>9} {'':>15} {f'{name}={v}':>16} {r:9.4f} {'':>9} {'':>8} {'':>8} {p50:7.2f} {p99:7.2f}",
                          flush=True)
            del index


if __name__ == "__main__":
    main()
