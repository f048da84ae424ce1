"""A cold `semsearch search` (a new process) against the imports it cannot avoid, side by side.

Builds the seed corpus (corpus/) into a temporary index unless --index is given, then runs in
turn, --runs times after one warm-up each: `python -m semsearch search QUERY --index …` and
`python -c "import numpy, onnxruntime, tokenizers, faiss"`. Prints wall and CPU seconds of each
(median, min, max) and the ratio search / imports pair by pair. Run it with bytecode compiled
(as an installed package is): the first run writes it unless PYTHONDONTWRITEBYTECODE is set, so
this script compiles semsearch first.

    PYTHONPATH=. python benchmarks/cold_query.py [--runs 11] [--index DIR] [--query "…"]
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from build_speed import timed  # this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--index", help="an index to search (default: the seed corpus, built now)")
    ap.add_argument("--query", default="how do I shard embedding tables?")
    args = ap.parse_args()
    compileall.compile_dir(ROOT / "semsearch", quiet=1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    index = args.index
    if index is None:
        index = str(Path(tempfile.mkdtemp(prefix="semsearch-cold-")) / "index")
        subprocess.run([sys.executable, "-m", "semsearch", "build", str(ROOT / "corpus"), "--index", index, "--json"],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    search = [sys.executable, "-m", "semsearch", "search", args.query, "--index", index]
    imports = [sys.executable, "-c", "import numpy, onnxruntime, tokenizers, faiss"]
    pairs = []
    for run in range(args.runs + 1):
        a, b = timed(search, env), timed(imports, env)
        if run:
            pairs.append((a, b))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; Python {platform.python_version()}")
    print(f"{args.runs} runs of each in turn after one warm-up; index {index}")
    print("| process | wall s median (min–max) | CPU s median (min–max) |\n|---|---|---|")
    for label, k in ((" ".join(["semsearch", *search[3:5]]) + " …", 0), ("import numpy, onnxruntime, tokenizers, faiss", 1)):
        wall, cpu = [p[k][0] for p in pairs], [p[k][1] for p in pairs]
        print(f"| `{label}` | {statistics.median(wall):.3f} ({min(wall):.3f}–{max(wall):.3f}) | "
              f"{statistics.median(cpu):.3f} ({min(cpu):.3f}–{max(cpu):.3f}) |")
    wall = [a[0] / b[0] for a, b in pairs]
    cpu = [a[1] / b[1] for a, b in pairs]
    print(f"| ratio search / imports, pair by pair | {statistics.median(wall):.2f} ({min(wall):.2f}–{max(wall):.2f}) | "
          f"{statistics.median(cpu):.2f} ({min(cpu):.2f}–{max(cpu):.2f}) |")


if __name__ == "__main__":
    main()
