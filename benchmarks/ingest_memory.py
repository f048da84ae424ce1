"""Peak memory and time of `read_paths` on a large file: the whole-file reader vs streaming.

The reader before streaming is taken from git (`--before`, by default the last commit with the
whole-file reader) and the current one from this checkout; each reads the file in a fresh
process, and the records both return are compared. Peak RSS is that process's ru_maxrss,
interpreter and imports included (their share is printed as the baseline).

    PYTHONPATH=. .venv/bin/python benchmarks/ingest_memory.py [--data FILE] [--runs 1] [--before REV]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARXIV = ROOT.parent / "shared" / "data" / "arxiv" / "abstracts.jsonl.gz"
#: The last commit whose semsearch/ingest.py reads each file whole (bytes -> text -> lines).
WHOLE_FILE_READER = "dec3c0fe041c9678b00f79a17c8a18735f6e5ecc"

# Run in a fresh interpreter: import the reader module from a file, read, report as JSON.
CHILD = r"""
import dataclasses, hashlib, importlib.util, json, resource, sys, time
import semsearch  # the package first (it imports semsearch.ingest): both readers start alike
name, file, data = sys.argv[1:4]
module = sys.modules.get(name)
if module is None or module.__file__ != file:
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
results = module.read_paths([data])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
digest = hashlib.sha256()
kept = 0
for r in results:
    for rec in r.records:
        digest.update(repr(dataclasses.astuple(rec)).encode())
        kept += sum(sys.getsizeof(v) for v in (rec.abstract, rec.title) if v is not None)
    for s in r.skipped:
        digest.update(repr(dataclasses.astuple(s)).encode())
print(json.dumps({"seconds": seconds, "base_kb": base, "peak_kb": peak, "digest": digest.hexdigest(),
                  "records": sum(len(r.records) for r in results), "skipped": sum(len(r.skipped) for r in results),
                  "formats": sorted({r.format for r in results}), "kept_bytes": kept}))
"""


def measure(name: str, module_file: Path, data: Path, root: Path = ROOT) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(module_file), str(data.resolve())],
                         check=False, capture_output=True, text=True, env=env, cwd=root)
    if out.returncode != 0:
        sys.exit(f"{name}: reading failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def text_bytes(path: Path) -> int:
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if not gz:
        return path.stat().st_size
    size = 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(2**20):
            size += len(chunk)
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ARXIV, help="a JSONL/CSV/BibTeX file, plain or gzip")
    ap.add_argument("--runs", type=int, default=1, help="runs per reader (time: median; RSS: max)")
    ap.add_argument("--before", default=WHOLE_FILE_READER, help="git revision of the reader to compare with")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        # The package as it was at --before, beside this one: each reader runs its own semsearch.
        archive = subprocess.run(["git", "archive", args.before, "semsearch"], check=False, capture_output=True, cwd=ROOT)
        if archive.returncode != 0:
            sys.exit(f"git archive {args.before} semsearch failed: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        before = Path(tmp) / "semsearch" / "ingest.py"  # one module until the layout by stage
        before = before if before.is_file() else before.with_suffix("") / "__init__.py"
        readers = {
            f"before ({args.before[:7]}, whole file)": ("semsearch.ingest", before.resolve(), Path(tmp)),
            "now (streaming)": ("semsearch.ingest", (ROOT / "semsearch" / "ingest" / "__init__.py").resolve(), ROOT),
        }
        runs: dict[str, list[dict]] = {label: [] for label in readers}
        for _ in range(args.runs):
            for label, (name, file, root) in readers.items():
                runs[label].append(measure(name, file, args.data, root))

    first = next(iter(runs.values()))[0]
    on_disk = args.data.stat().st_size
    print(f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"input: {args.data.name}, {on_disk / 1e6:.1f} MB on disk, {text_bytes(args.data) / 1e6:.1f} MB of text, "
          f"{first['records']:,} records ({', '.join(first['formats'])}), {first['skipped']:,} skipped")
    print(f"records kept (abstract + title strings): {first['kept_bytes'] / 2**20:.0f} MiB")
    print(f"runs: {args.runs} per reader, each in a fresh process; peak RSS = ru_maxrss, "
          f"baseline = after imports ({first['base_kb'] / 1024:.0f} MiB)\n")
    print(f"{'reader':<34} {'time s':>8} {'peak RSS MiB':>13} {'over baseline MiB':>18}")
    rows = {}
    for label, rs in runs.items():
        seconds = statistics.median(r["seconds"] for r in rs)
        peak = max(r["peak_kb"] for r in rs) / 1024
        over = max(r["peak_kb"] - r["base_kb"] for r in rs) / 1024
        rows[label] = (seconds, peak, over)
        print(f"{label:<34} {seconds:>8.2f} {peak:>13.0f} {over:>18.0f}")
    (b_s, b_peak, b_over), (n_s, n_peak, n_over) = rows.values()
    print(f"{'before / now':<34} {b_s / n_s:>7.2f}x {b_peak / n_peak:>12.2f}x {b_over / max(n_over, 1e-9):>17.2f}x")
    digests = {r["digest"] for rs in runs.values() for r in rs}
    print(f"\nsame records and skipped lines from both readers: {'yes' if len(digests) == 1 else 'NO'}")


if __name__ == "__main__":
    main()
