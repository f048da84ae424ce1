"""The hybrid's lexical channel: FTS5 scans vs term postings kept in memory, and words left out.

Two parts, each optional:
- `--index INDEX`: time `Index.search` (hybrid, k=10) on serve_load.QUERIES over a large index,
  with the lexical channel from FTS5 scans (as before postings) and from in-memory postings,
  cold (new words) and warm, each with every word kept (share 1.0) and with words held by more
  than half the papers left out (`fusion.COMMON_SHARE`); checks both paths rank alike.
- `--work DIR`: quality of the share of papers above which a word is left out, on the retrieval
  benchmark's sets (SciFact nDCG@10, descriptive sets MRR@10; dev and test halves).

    PYTHONPATH=. python benchmarks/lexical_speed.py [--index INDEX] [--work DIR] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from serve_load import QUERIES  # this script's folder is on sys.path

from semsearch import fusion
from semsearch.evaluate import mrr, ndcg
from semsearch.query import Index

SHARES = (1.0, 0.5, 0.35, 0.25, 0.2, 0.15, 0.1)


def timing(path: Path) -> None:
    from semsearch.query import CANDIDATES
    from semsearch.serve.live import one_thread_per_query

    one_thread_per_query()
    print("| lexical channel | words kept | cold ms mean / max | warm ms mean / median / max |")
    print("|---|---|---|---|")
    rankings = {}
    for use_postings in (False, True):
        for share in (1.0, fusion.COMMON_SHARE):
            with Index.open(path) as idx:  # a fresh index: nothing in memory yet
                idx.embed(["warm up"])
                con = idx._store.connection
                runs = []
                for _ in range(3):
                    ms = []
                    for q in QUERIES:  # what Index.search does in hybrid mode, with the channel chosen here
                        t = time.perf_counter()
                        vector = idx.embed([q])[0]
                        found = idx.search_vectors(vector[None], CANDIDATES)
                        dense = [(int(r), float(c)) for r, c in zip(found.rows[0], found.scores[0]) if r >= 0]
                        ranked = fusion.hybrid(con, q, vector, dense, idx.vectors, n=CANDIDATES, common=share,
                                               postings=idx.postings if use_postings else None)[:10]
                        ms.append((time.perf_counter() - t) * 1000)
                        rankings[(use_postings, share, q)] = [r for r, _ in ranked]
                    runs.append(ms)
            cold, warm = runs[0], runs[1] + runs[2]
            kept = "all" if share >= 1 else f"held by <= {share:.0%} of the papers"
            print(f"| {'postings in memory' if use_postings else 'FTS5 scan'} | {kept} | "
                  f"{statistics.mean(cold):.1f} / {max(cold):.1f} | {statistics.mean(warm):.1f} / "
                  f"{statistics.median(warm):.1f} / {max(warm):.1f} |")
    same = sum(len({tuple(rankings[(p, s, q)]) for p in (False, True) for s in (1.0, fusion.COMMON_SHARE)}) == 1
               for q in QUERIES)
    print(f"\nthe same top 10 in all four: {same} of {len(QUERIES)} queries")


def quality(work: Path, data: Path) -> None:
    from retrieval import build_sets

    sets = build_sets(work, ["scifact", "arxiv", "seeds"], data)
    print("| words left out when held by more than | " + " | ".join(f"{n} dev / test" for n in sets) + " |")
    print("|---|" + "---|" * len(sets))
    for share in SHARES:
        fusion.hybrid.__kwdefaults__["common"] = share
        cells = []
        for name, (path, queries, judged, split) in sets.items():
            metric = ndcg if name == "SciFact" else mrr
            with Index.open(path) as idx:
                got = {q: [h.id for h in idx.search(queries[q], 10)] for q in queries}
            half = {s: [metric(got[q], judged[q]) for q in queries if split[q] == s] for s in ("dev", "test")}
            cells.append(" / ".join(f"{statistics.mean(half[s]):.4f}" for s in ("dev", "test")))
        label = "never (every word kept)" if share >= 1 else f"{share:.0%} of the papers"
        print(f"| {label} | " + " | ".join(cells) + " |")
    fusion.hybrid.__kwdefaults__["common"] = fusion.COMMON_SHARE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=None, help="a large index to time (read only)")
    ap.add_argument("--work", type=Path, default=None, help="the retrieval benchmark's index directory")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    if args.index:
        timing(args.index)
    if args.work:
        quality(args.work, args.data)


if __name__ == "__main__":
    main()
