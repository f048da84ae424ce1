"""Embedding arXiv abstracts locally vs on Ray actors (`build --engine ray`), side by side in one run.

The same texts (title. abstract) are encoded by the local encoder (one process, onnxruntime with
BATCH_THREADS threads) and by RayEmbedder on a local Ray with `--workers` actors of one CPU each,
in interleaved rounds after a warm-up (the machine may be shared: all rounds are printed, the best
counts). A Ray round is one `encode` call, as a build makes: it includes starting the actor pool
and loading the model in each actor. That fixed cost is also measured alone (one unit of a few
texts), so the steady rate of the actors can be told apart from it. Every Ray result is checked
bit for bit against the local vectors.

    PYTHONPATH=. python benchmarks/ray_engine.py [--n 4096] [--workers 2] [--rounds 2]
        [--data ../shared/data/arxiv/abstracts.jsonl.gz] [--backend auto] [--unit-size N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
from encode_speed import machine  # this script's folder is on sys.path

from semsearch.embed import make_embedder, resolve_backend
from semsearch.embed import onnx as onnx_backend
from semsearch.embed.ray import RayEmbedder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "arxiv" / "abstracts.jsonl.gz"


def arxiv_texts(path: Path, n: int) -> list[str]:
    """The first n papers of an arXiv JSONL file (.gz or plain) as semsearch embeds them: title. abstract."""
    texts = []
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            o = json.loads(line)
            texts.append(" ".join(f"{o['title']}. {o['abstract']}".split()))
            if len(texts) == n:
                break
    return texts


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096, help="texts (default: 2 units of 2048, one per worker)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--unit-size", type=int, default=None,
                    help="texts per Ray unit; the local encoder is given the same ENCODE_CHUNK (default 2048)")
    args = ap.parse_args()
    if args.unit_size:  # the local encoder tokenises and batches units of the same size: same vectors
        onnx_backend.ENCODE_CHUNK = args.unit_size
    unit = args.unit_size or onnx_backend.ENCODE_CHUNK

    texts = arxiv_texts(args.data, args.n)
    backend = resolve_backend(None, args.backend)
    print(f"machine: {machine()}")
    print(f"data: {len(texts)} texts from {args.data} (mean {np.mean([len(t) for t in texts]):.0f} chars); "
          f"backend {backend}; units of {unit} texts; {args.workers} Ray workers x 1 CPU; {args.rounds} round(s)")

    local = make_embedder(None, backend)
    _, warm = timed(local.encode, texts[:32])  # the ONNX export too, when not cached yet
    print(f"local: model loaded and warmed up in {warm:.1f} s")

    import ray

    _, started = timed(lambda: ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False))
    print(f"ray: local Ray started in {started:.1f} s (ray {ray.__version__})")
    remote = RayEmbedder(None, backend, workers=args.workers, unit_size=args.unit_size)
    _, fixed = timed(remote.encode, texts[: min(16, len(texts))])
    print(f"ray: fixed cost of one encode call (actor pool start + model load + {min(16, len(texts))} texts): "
          f"{fixed:.1f} s")

    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    want, identical = None, []
    for _ in range(args.rounds):
        vectors, s = timed(local.encode, texts)
        seconds["local"].append(s)
        want = vectors if want is None else want
        vectors, s = timed(remote.encode, texts)
        seconds["ray"].append(s)
        identical.append(bool(np.array_equal(vectors, want)))
    ray.shutdown()

    best = {k: min(v) for k, v in seconds.items()}
    print("\n| engine | docs/s (best round) | s per call, all rounds | ratio vs local |\n|---|---|---|---|")
    for k, threads in (("local", f"{onnx_backend.BATCH_THREADS} threads"), ("ray", f"{args.workers} workers")):
        print(f"| {k} ({threads}) | {len(texts) / best[k]:.1f} | {', '.join(f'{s:.1f}' for s in seconds[k])} | "
              f"{best['local'] / best[k]:.2f}x |")
    per_thread = len(texts) / best["local"] / onnx_backend.BATCH_THREADS
    if best["ray"] - fixed > 0.1 * best["ray"]:
        steady = len(texts) / (best["ray"] - fixed)
        print(f"\nray without the fixed cost ({fixed:.1f} s): {steady:.1f} docs/s = {steady / args.workers:.1f} per "
              f"worker (1 CPU each); local {per_thread:.1f} per thread")
    else:
        print(f"\nray: too few texts to tell the actors' rate from the fixed cost ({fixed:.1f} s); "
              f"local {per_thread:.1f} docs/s per thread")
    verdict = "yes" if all(identical) else "NO"
    print(f"bit-identical to the local vectors: {verdict} ({sum(identical)}/{len(identical)} rounds)")


if __name__ == "__main__":
    main()
