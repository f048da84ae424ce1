"""Measure when `similar --text` may leave a paper out: 3-gram containment of near-verbatim texts vs paraphrases.

Near-verbatim (must be left out): every stored version of a seed paper pasted back; each abstract
copied from a PDF (lines broken at 60 or, two-column, 40 characters, every word of 8+ letters that
crosses a line end hyphenated: worse than a real PDF); the other
revision of the papers with several versions. Paraphrases (must be shown): hand-written rewordings
of seed abstracts in benchmarks/data/paraphrases.jsonl, "free" (own words) and "close" (sentence by
sentence, keeping the technical phrases), each with the id of its paper. The threshold
(query.TEXT_VERSION_CONTAINMENT) must sit above every paraphrase and below the near-verbatim texts.
With --embedder, the seeds are also indexed and each paraphrase is run through `Index.similar(text=...)`
to show where its paper ranks.

    python benchmarks/similar_text.py [--embedder default|fake|none]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import tempfile
from pathlib import Path

from semsearch.ingest import read_paths
from semsearch.query import TEXT_VERSION_CONTAINMENT
from semsearch.records import REWORDED_CONTAINMENT, containment, merge, shingles

ROOT = Path(__file__).resolve().parents[1]
PARAPHRASES = ROOT / "benchmarks" / "data" / "paraphrases.jsonl"


def pdf_copy(text: str, width: int = 60) -> str:
    """`text` as copied out of a PDF: broken into lines, words of 8+ letters hyphenated across a break."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            room = width - len(line) - 2
            if len(word) >= 8 and room >= 3:
                cut = min(room, len(word) - 3)
                lines.append(f"{line} {word[:cut]}-")
                line = word[cut:]
                continue
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join(lines + [line])


def best(text: str, versions) -> float:
    grams = shingles(text)
    return max(containment(grams, shingles(v)) for v in versions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", default="default", help="default (the bundled model), fake (tests) or none")
    ap.add_argument("--paraphrases", type=Path, default=PARAPHRASES)
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    papers = merge(r for f in read_paths([ROOT / "corpus"]) for r in f.records).papers
    by_id = {p.id: p for p in papers}
    paraphrases = [json.loads(line) for line in args.paraphrases.read_text(encoding="utf-8").splitlines() if line]
    print(f"seed corpus: {len(papers)} papers, {sum(len(p.versions) for p in papers)} versions; "
          f"{len(paraphrases)} paraphrases ({args.paraphrases.name})\n")

    pasted = [best(v, p.versions) for p in papers for v in p.versions]
    pdf = {w: [best(pdf_copy(p.abstract, w), p.versions) for p in papers] for w in (60, 40)}
    pairs = [(a, b, p) for p in papers for a, b in itertools.combinations(p.versions, 2)]
    revisions = [(containment(shingles(a), shingles(b)), p) for a, b, p in pairs]
    print(f"stored version pasted back ({len(pasted)}): min {min(pasted):.3f}")
    for w, cs in pdf.items():
        print(f"PDF copy of each abstract, {w}-character lines ({len(cs)}): min {min(cs):.3f}, max {max(cs):.3f}")
    print("the other revision of a paper with several versions:")
    for c, p in sorted(revisions, key=lambda x: -x[0]):
        print(f"  {c:.3f}  {p.id:>13}  {(p.title or p.abstract)[:60]}")

    print("\nparaphrase -> its paper (and the closest other paper):")
    rows = []
    for x in paraphrases:
        c = best(x["text"], by_id[x["id"]].versions)
        other = max(best(x["text"], p.versions) for p in papers if p.id != x["id"])
        rows.append((c, x))
        before = "hidden" if c >= REWORDED_CONTAINMENT else "shown"
        print(f"  {c:.3f} ({other:.3f})  {x['style']:<5}  {x['id']:>13}  before: {before:<6}  {x['title'][:44]}")
    low = min([*pasted, *pdf[60], *pdf[40]])
    high = max(c for c, _ in rows)
    print(f"\nthreshold TEXT_VERSION_CONTAINMENT = {TEXT_VERSION_CONTAINMENT}: paraphrases max {high:.3f} < threshold "
          f"< near-verbatim min {low:.3f}: {'yes' if high < TEXT_VERSION_CONTAINMENT <= low else 'NO'}")
    hidden = sum(c >= REWORDED_CONTAINMENT for c, _ in rows)
    print(f"previous rule (records' near-duplicate rule, containment >= {REWORDED_CONTAINMENT} with no title): "
          f"{hidden}/{len(rows)} paraphrases hid their paper")
    if args.embedder != "none":
        near_verbatim = [(v, p.id) for p in papers for v in p.versions]
        near_verbatim += [(pdf_copy(p.abstract, w), p.id) for w in (60, 40) for p in papers]
        ranks(paraphrases, near_verbatim, args.embedder)


def ranks(paraphrases: list[dict], near_verbatim: list[tuple[str, str]], which: str) -> None:
    from semsearch import Index, build

    embedder = None
    if which == "fake":
        import sys

        sys.path.insert(0, str(ROOT))
        from tests.conftest import FakeEmbedder

        embedder = FakeEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        build([ROOT / "corpus"], Path(tmp) / "index", embedder=embedder)
        with Index.open(Path(tmp) / "index", embedder=embedder) as idx:
            print(f"\nIndex.similar(text=paraphrase), model {idx.manifest.model} ({idx.manifest.text}):")
            for x in paraphrases:
                hits = idx.similar(text=x["text"], k=len(idx) - 1)
                rank = next((h.rank for h in hits if h.id == x["id"]), None)
                left_out = ", ".join(e.id for e in hits.excluded) or "none"
                print(f"  rank {rank if rank else '-':>2}  {x['style']:<5}  {x['id']:>13}  left out: {left_out:<13}  "
                      f"{x['title'][:44]}")
            first = sum(next((h.rank for h in idx.similar(text=x["text"], k=1) if h.id == x["id"]), 0) == 1
                        for x in paraphrases)
            print(f"paraphrases whose paper ranks first: {first}/{len(paraphrases)}")
            only = sum([e.id for e in idx.similar(text=t, k=1).excluded] == [pid] for t, pid in near_verbatim)
            print(f"near-verbatim texts (stored versions, PDF copies) whose paper, and only it, is left out: "
                  f"{only}/{len(near_verbatim)}")


if __name__ == "__main__":
    main()
