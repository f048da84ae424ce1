"""Adding papers to a built index vs rebuilding it, side by side: wall time and peak RSS.

The newest --new papers of --data (by update_date, then id) play "a new arXiv day"; the rest
is the base. The base index is built once (cold: every text embedded; its embeddings go to
--cache). Then, in one run:

  add      `semsearch add new.jsonl` on a copy of the base index, embedding cache off, so the
           new texts really are embedded (it changes the index in place);
  rebuild  `semsearch build base + new` into a fresh directory with the warm cache: only the new
           texts are embedded, but everything else (ingest, merge, index training and tuning,
           writing) is redone. A rebuild without the cache costs what the cold base build did.

Each step runs as its own `semsearch` process; peak RSS comes from wait4 of that process.

    PYTHONPATH=. python benchmarks/update.py --data ../shared/data/arxiv/abstracts.jsonl.gz \
        --new 1000 --work upd-bench
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SEMSEARCH = [str(Path(sys.executable).with_name("semsearch"))]  # the console script beside this Python


def split(data: Path, n_new: int, work: Path) -> tuple[Path, Path]:
    """work/base.jsonl.gz and work/new.jsonl: the newest n_new lines of `data` go to new."""
    base, new = work / "base.jsonl.gz", work / "new.jsonl"
    if base.exists() and new.exists():
        return base, new
    opener = gzip.open if data.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(data, "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    keys = sorted(range(len(lines)), key=lambda i: _age(lines[i]), reverse=True)
    newest = set(keys[:n_new])
    with gzip.open(base, "wt", encoding="utf-8") as f:
        f.writelines(line for i, line in enumerate(lines) if i not in newest)
    new.write_text("".join(line for i, line in enumerate(lines) if i in newest), encoding="utf-8")
    return base, new


def _age(line: str) -> tuple[str, str]:
    record = json.loads(line)
    return str(record.get("update_date") or ""), str(record.get("id") or "")


def timed(args: list[str], env: dict) -> dict:
    """Run a command; its wall seconds, peak RSS (MiB, from wait4) and parsed --json output."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{err.read()[-2000:]}")
        return {"seconds": seconds, "rss_mib": usage.ru_maxrss / 1024, "out": json.loads(out.read())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="JSON lines (arXiv metadata), plain or gzip")
    ap.add_argument("--new", type=int, default=1000, help="papers to add")
    ap.add_argument("--work", type=Path, required=True, help="scratch directory (reused between runs)")
    ap.add_argument("--cache", type=Path, help="embedding cache of the base build (default WORK/embeddings.sqlite)")
    ap.add_argument("--base-index", type=Path, help="an index already built from WORK/base.jsonl.gz")
    args = ap.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.work / "embeddings.sqlite"
    base, new = split(args.data, args.new, args.work)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMSEARCH_CACHE": str(cache)}
    base_index = args.base_index or args.work / "base-index"
    steps = {}
    if not (base_index / "manifest.json").exists():
        steps["base build (cold)"] = timed([*SEMSEARCH, "build", str(base), "--index", str(base_index), "--json"], env)
    added, rebuilt = args.work / "added", args.work / "rebuilt"
    for d in (added, rebuilt):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base_index, added)
    steps["add"] = timed([*SEMSEARCH, "add", str(new), "--index", str(added), "--json"], {**env, "SEMSEARCH_CACHE": "off"})
    steps["rebuild (warm cache)"] = timed(
        [*SEMSEARCH, "build", str(base), str(new), "--index", str(rebuilt), "--json"], env
    )

    print(f"{len(new.read_text().splitlines())} new papers onto {base.name}; {os.cpu_count()} cores")
    print(f"{'step':<22}{'wall s':>9}{'peak RSS MiB':>14}{'papers':>9}{'embedded':>10}  index")
    for name, s in steps.items():
        o = s["out"]
        choice = o.get("index_choice", {})
        how = o.get("update") or f"{choice.get('type')} {choice.get('params')}"
        print(f"{name:<22}{s['seconds']:>9.1f}{s['rss_mib']:>14.0f}{o['papers']:>9}{'-' if o.get('embedded') is None else o['embedded']:>10}  {how}")
    ratio = steps["rebuild (warm cache)"]["seconds"] / steps["add"]["seconds"]
    print(f"rebuild / add wall time: {ratio:.1f}x")
    a, b = steps["add"]["out"]["papers"], steps["rebuild (warm cache)"]["out"]["papers"]
    print(f"same paper count: {a == b} ({a} vs {b})")


if __name__ == "__main__":
    main()
