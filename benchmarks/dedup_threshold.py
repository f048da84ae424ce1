"""Measure the near-duplicate threshold: 3-gram containment of versions vs distinct papers.

Seeds: every pair of distinct abstract texts in corpus/, highest first (the version pairs and
the closest pairs of different papers). arXiv: the closest pairs among distinct arXiv ids in
../shared/data/arxiv/abstracts.jsonl.gz, i.e. how high containment gets *without* being the
same paper. The threshold must sit above the second and below the first.

    python benchmarks/dedup_threshold.py [--arxiv N] [--top 12]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import platform
import time
from pathlib import Path

from semsearch.ingest import read_paths
from semsearch.records import REWORDED_CONTAINMENT, containment, near_duplicate_pairs, same_paper, shingles, words

ROOT = Path(__file__).resolve().parents[1]
ARXIV = ROOT.parent / "shared" / "data" / "arxiv" / "abstracts.jsonl.gz"


def seed_pairs(top: int) -> None:
    recs = [r for f in read_paths([ROOT / "corpus"]) for r in f.records]
    texts = {}
    for r in recs:
        texts.setdefault(tuple(words(r.abstract)), r)
    items = list(texts.values())
    rows = []
    for a, b in itertools.combinations(items, 2):
        rows.append((containment(shingles(a.abstract), shingles(b.abstract)), a, b))
    rows.sort(key=lambda x: -x[0])
    print(f"seed corpus: {len(recs)} abstracts, {len(items)} distinct texts; closest pairs:")
    for c, a, b in rows[:top]:
        name = lambda r: f"{Path(r.source).name[:3]}:{r.line}"
        print(f"  {c:.3f}  {name(a):>7} {name(b):>7}  {a.abstract[:38]!r} | {b.abstract[:38]!r}")


def arxiv_pairs(path: Path, limit: int, top: int) -> None:
    ids, texts, titles = [], [], []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in itertools.islice(fh, limit):
            obj = json.loads(line)
            ids.append(obj["id"])
            texts.append(obj["abstract"])
            titles.append(obj.get("title"))
    t = time.perf_counter()
    pairs = near_duplicate_pairs(texts, threshold=0.08)
    dt = time.perf_counter() - t
    distinct = [(c, i, j) for c, i, j in pairs if ids[i] != ids[j]]
    print(f"\narXiv: {len(texts)} abstracts, {len(distinct)} distinct-id pairs with containment >= 0.08 ({dt:.1f} s)")
    for c, i, j in distinct[:top]:
        print(f"  {c:.3f}  {ids[i]:>12} {ids[j]:>12}  {texts[i][:38]!r} | {texts[j][:38]!r}")
    low = sum(c >= REWORDED_CONTAINMENT for c, _, _ in distinct)
    rule = [(c, i, j) for c, i, j in distinct if same_paper(c, titles[i], titles[j])]
    per_k = 1000 * len(rule) / len(texts)
    print(f"distinct-id pairs >= {REWORDED_CONTAINMENT} (containment alone): {low}")
    print(f"distinct-id pairs the merge rule (with titles) would join if ids were unknown: {len(rule)}"
          f" ({per_k:.2f} per 1,000 papers; the arXiv-id guard blocks all of them when ids are known)")
    for c, i, j in rule[:top]:
        print(f"  {c:.3f}  {ids[i]:>12} {ids[j]:>12}  {titles[i][:38]!r} | {titles[j][:38]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arxiv", type=int, default=10**9, help="read at most this many arXiv abstracts")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--arxiv-path", type=Path, default=ARXIV, help="arXiv JSON lines (.gz or plain)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    seed_pairs(args.top)
    if args.arxiv_path.exists():
        arxiv_pairs(args.arxiv_path, args.arxiv, args.top)


if __name__ == "__main__":
    main()
