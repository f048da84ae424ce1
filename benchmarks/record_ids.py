"""Record identity on CSFCube: papers built from its papers (each with its own id) and how many
of its query ids `similar ID` resolves.

CSFCube (../shared/data/csfcube) gives 4,205 papers, each with an explicit `paper_id`, and 34
queries named by paper id. Merging must keep every one of them (explicit ids are identity), so
the expected figures are 4,205 papers and 34/34. Companion papers that the text rule finds
alike are listed as likely duplicates, not merged. Merging does not depend on the model:
`--embedder fake` (the test suite's hashing embedder) gives the same counts in seconds.

    PYTHONPATH=. python benchmarks/record_ids.py [--data ../shared/data/csfcube] [--embedder fake]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

from semsearch import Index, SemsearchError
from semsearch.builder import build_records
from semsearch.ingest import RawRecord

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "csfcube"


def read_csfcube(data: Path) -> tuple[list[RawRecord], list[str]]:
    """Its papers as records (`paper_id` as the input's id, sentences joined) and its query ids."""
    path = data / "abstracts-csfcube.reconstructed.jsonl"
    records = []
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, 1):
            obj = json.loads(text)
            abstract = obj["abstract"] if isinstance(obj["abstract"], str) else " ".join(obj["abstract"])
            records.append(RawRecord(abstract, path.name, line, title=obj.get("title") or None, id=str(obj["paper_id"])))
    with open(data / "queries-release.csv", encoding="utf-8", newline="") as fh:
        queries = list(dict.fromkeys(row["pid"] for row in csv.DictReader(fh)))
    return records, queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--embedder", default=None, help="'fake': the test suite's hashing embedder (no model)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    records, queries = read_csfcube(args.data)
    if args.embedder == "fake":
        import sys

        sys.path.insert(0, str(ROOT))
        from tests.conftest import FakeEmbedder

        embedder = FakeEmbedder()
    else:
        from semsearch.embed import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        s = build_records(records, Path(tmp) / "idx", embedder=embedder, cache=False)
        seconds = time.perf_counter() - t
        with Index.open(Path(tmp) / "idx", embedder=embedder) as idx:
            resolved = []
            for pid in queries:
                try:
                    idx.similar(pid, k=5)
                    resolved.append(pid)
                except SemsearchError as exc:
                    print(f"  not resolved: {pid}: {exc}")
    distinct = len({r.id for r in records})
    print(f"CSFCube: {len(records)} papers ({distinct} distinct ids) -> {s.papers} records, "
          f"{s.merged_records} merged into {len(s.merged_groups)} groups ({seconds:.1f} s, {embedder.name})")
    reasons = Counter(d.reason for d in s.likely_duplicates)
    print(f"likely duplicates listed, not merged: {len(s.likely_duplicates)} "
          f"({', '.join(f'{n} {why}' for why, n in reasons.most_common()) or 'none'})")
    for d in s.likely_duplicates[:5]:
        print(f"  {d.containment:.2f}  {d.papers[0]:>10} {d.papers[1]:>10}  {d.reason}")
    print(f"query ids resolved by `similar ID`: {len(resolved)}/{len(queries)}")


if __name__ == "__main__":
    main()
