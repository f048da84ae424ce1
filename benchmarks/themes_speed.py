"""Themes on a large index: seconds for named themes (`Index.themes`) and discovered ones (`--auto`).

Cold: a fresh Python process opens the index and groups (the query model loads, nothing of the
index is in memory yet but what the OS caches); warm: the same call again in one process. Both
then read the papers a page shows (the best `--shown` of each theme), as the CLI table or the
web page would, and report how many paper records were read from papers.sqlite.

    PYTHONPATH=. python benchmarks/themes_speed.py INDEX [--runs 3] [--auto] [--auto-runs 1]

The index is only read. Medians of `--runs` runs, each cold run its own process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from encode_speed import machine  # this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
#: The nine themes of benchmarks/themes.py's test, as a user names them.
NAMES = ["galaxies", "computer security", "robotics", "quantum physics", "representation theory",
         "game theory", "language models", "particle physics", "computer vision"]


def _open(index: Path, embedder: str | None):
    from semsearch import Index

    if embedder == "fake":
        sys.path.insert(0, str(ROOT))
        from tests.conftest import FakeEmbedder

        return Index.open(index, embedder=FakeEmbedder())
    return Index.open(index)


def once(idx, auto: bool, shown: int) -> dict:
    """One grouping plus reading what a page shows; seconds of each and records read."""
    t0 = time.perf_counter()
    groups = idx.discover_themes() if auto else idx.themes(NAMES)
    t1 = time.perf_counter()
    for t in groups.themes:
        _ = [m.paper.title for m in t.papers[:shown]]
    t2 = time.perf_counter()
    return {"group_s": t1 - t0, "show_s": t2 - t1, "themes": len(groups.themes),
            "papers": len(groups.papers), "read": getattr(groups.papers, "loaded", len(groups.papers))}


def child(index: Path, auto: bool, shown: int, embedder: str | None) -> None:
    t0 = time.perf_counter()
    idx = _open(index, embedder)
    opened = time.perf_counter() - t0
    result = once(idx, auto, shown)
    result["open_s"] = opened
    print(json.dumps(result))


def cold(index: Path, auto: bool, shown: int, embedder: str | None) -> dict:
    cmd = [sys.executable, __file__, str(index), "--child", "--shown", str(shown)]
    cmd += ["--auto"] * auto + (["--embedder", embedder] if embedder else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(label: str, runs: list[dict]) -> None:
    def med(key):
        return statistics.median(r[key] for r in runs)

    total = statistics.median(r.get("open_s", 0) + r["group_s"] + r["show_s"] for r in runs)
    last = runs[-1]
    opened = f"open {med('open_s'):.2f} s + " if "open_s" in last else ""
    print(f"{label}: {opened}group {med('group_s'):.2f} s + show {med('show_s'):.3f} s = {total:.2f} s "
          f"(median of {len(runs)}; {last['themes']} themes over {last['papers']:,} papers, "
          f"{last['read']:,} records read)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", type=Path)
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--shown", type=int, default=10, help="papers of each theme read, as a page shows them")
    ap.add_argument("--auto", action="store_true", help="also time discovered themes")
    ap.add_argument("--auto-runs", type=int, default=1, help="runs for discovered themes")
    ap.add_argument("--embedder", default=None, help="'fake': the test suite's hashing embedder (no model)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.index, args.auto, args.shown, args.embedder)
        return
    print(f"machine: {machine()}")
    print(f"index: {args.index}; named themes: {', '.join(NAMES)}; shown per theme: {args.shown}")
    report("named, cold (new process)", [cold(args.index, False, args.shown, args.embedder) for _ in range(args.runs)])
    idx = _open(args.index, args.embedder)
    once(idx, False, args.shown)
    report("named, warm (same process)", [once(idx, False, args.shown) for _ in range(args.runs)])
    if args.auto:
        report("discovered, cold (new process)",
               [cold(args.index, True, args.shown, args.embedder) for _ in range(args.auto_runs)])


if __name__ == "__main__":
    main()
