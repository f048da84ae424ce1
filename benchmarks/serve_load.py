"""Load on `semsearch serve`, bounded and on loopback: concurrent clients sending mixed search / similar requests.

Starts `semsearch serve --index INDEX --port 0` (127.0.0.1 only), warms it up, then runs C client
threads, each sending N requests back to back (closed loop: a client sends its next request when the
last is answered), a share of them `/api/similar` and the rest `/api/search` (hybrid, k=10), in an
order drawn from a seeded RNG. `--queries fixed` (the default): searches from a list of 40 queries
and similar on the 200 papers they find, each asked once in the warm-up, so the run measures the
steady state of a server that has seen its words; `--queries titles`: each search a different paper
title of the index and similar on papers drawn from the index, none asked before (words the server
has not read yet). Prints throughput, CPU per request (server, clients), latency percentiles per
kind, errors (any status but 200, or a transport error), and the server's RSS sampled every 0.25 s
(after warm-up, peak, end, and the mean of the first and last tenth of the run, to show growth).
The server is stopped with Ctrl-C at the end; a deadline stops everything. The client threads run
on the same machine and share its CPUs with the server.

    PYTHONPATH=. python benchmarks/serve_load.py --index INDEX [--clients 16] [--requests 500]
        [--similar 0.2] [--mode hybrid|dense|lexical] [--queries fixed|titles] [--deadline 900]

Results and the command for the 75k-paper arXiv index: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from encode_speed import machine  # this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [
    "sharding embedding tables across devices", "quantization of large language model weights",
    "graph neural networks for molecular property prediction", "diffusion models for image generation",
    "reinforcement learning from human feedback", "dark matter detection experiments",
    "black hole thermodynamics and entropy", "topological insulators and edge states",
    "protein structure prediction with deep learning", "federated learning with differential privacy",
    "sparse attention for long documents", "contrastive self-supervised learning of visual features",
    "Bayesian optimisation of hyperparameters", "gravitational wave signals from binary mergers",
    "quantum error correction codes", "speech recognition with transformers", "neural machine translation",
    "adversarial examples and robustness", "recommendation systems at scale", "knowledge graph embeddings",
    "exoplanet atmospheres", "superconductivity in twisted bilayer graphene", "random matrix theory",
    "stochastic gradient descent convergence", "time series forecasting with neural networks",
    "causal inference from observational data", "galaxy formation simulations", "optimal transport",
    "mixture of experts language models", "retrieval augmented generation", "climate model downscaling",
    "community detection in networks", "autonomous driving perception", "cosmic microwave background",
    "point cloud segmentation", "prime numbers distribution", "program synthesis from examples",
    "how do I speed up training of recommendation models?", "meta-learning for few-shot classification",
    "zero-shot image classification with language supervision",
]


def start_server(index: str, cli: str, deadline: float) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", cli, "serve", "--index", index, "--port", "0"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode})")
        m = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        if m:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # drain its stderr
            return proc, m.group(1)
    proc.kill()
    raise SystemExit("server did not start before the deadline")


def drawn(index: str, column: str, n: int, seed: int) -> list[str]:
    """n values of `column` (title, id) of the index's papers, drawn with `seed` (read-only)."""
    con = sqlite3.connect(f"{(Path(index) / 'papers.sqlite').resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = [v for (v,) in con.execute(f"SELECT {column} FROM papers WHERE {column} IS NOT NULL ORDER BY row")]
    finally:
        con.close()
    return random.Random(seed).sample(found, min(n, len(found)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=500, help="per client")
    ap.add_argument("--similar", type=float, default=0.2, help="share of /api/similar requests")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "lexical"], help="of the searches")
    ap.add_argument("--deadline", type=float, default=900, help="seconds before everything is stopped")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", default="fixed", choices=["fixed", "titles"],
                    help="fixed: the 40 QUERIES and the 200 papers they find, each asked once in the warm-up "
                         "(the steady state); titles: a different paper title of the index per search and "
                         "papers drawn from the index for similar, none seen before (new words)")
    ap.add_argument("--cli", default="semsearch.cli", help="module run as `semsearch` (tests: tests.fake_cli)")
    args = ap.parse_args()
    deadline = time.monotonic() + args.deadline

    proc, url = start_server(args.index, args.cli, deadline)
    try:
        with httpx.Client(base_url=url, timeout=60) as c:
            info = c.get("/api/info").json()
            refs = []
            for q in QUERIES:  # warm-up: every query once; its hits are the similar requests' refs
                refs += [h["id"] for h in c.get("/api/search", params={"q": q, "k": 5}).json()]
            if args.queries == "fixed":  # every request of the run seen once: the steady state
                for ref in refs:
                    c.get("/api/similar", params={"ref": ref, "k": args.k}).raise_for_status()
            else:  # papers not seen: refs drawn from the index, none asked about before
                refs = drawn(args.index, "id", len(refs), args.seed + 1)
        print(f"machine: {machine()}")
        print(f"index: {info['count']:,} papers, {info['index_type']} {json.dumps(info['index_params'])}, "
              f"model {info['model']} ({info['model_fingerprint']})")
        print(f"load: {args.clients} clients x {args.requests} requests, {args.similar:.0%} similar, "
              f"search mode {args.mode}, k={args.k}, queries {args.queries}, closed loop on {url}")

        pool = QUERIES if args.queries == "fixed" else drawn(args.index, "title", args.clients * args.requests, args.seed)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append((time.monotonic(), rss_mb(proc.pid)))
                stop.wait(0.25)

        results: list[tuple[str, float, int | str]] = []
        lock = threading.Lock()

        def client(i: int):
            rng = random.Random(args.seed * 1000 + i)
            mine = []
            with httpx.Client(base_url=url, timeout=60) as c:
                for j in range(args.requests):
                    if time.monotonic() > deadline:
                        break
                    if rng.random() < args.similar:
                        kind, path, params = "similar", "/api/similar", {"ref": rng.choice(refs), "k": args.k}
                    else:
                        kind, path = "search", "/api/search"
                        q = rng.choice(pool) if args.queries == "fixed" else pool[(i * args.requests + j) % len(pool)]
                        params = {"q": q, "k": args.k, "mode": args.mode}
                    t = time.perf_counter()
                    try:
                        status: int | str = c.get(path, params=params).status_code
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    mine.append((kind, time.perf_counter() - t, status))
            with lock:
                results.extend(mine)

        rss_start = rss_mb(proc.pid)
        cpu_start, own_start = cpu_seconds(proc.pid), time.process_time()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(1.0, deadline - time.monotonic()))
        wall = time.perf_counter() - t0
        server_cpu, client_cpu = cpu_seconds(proc.pid) - cpu_start, time.process_time() - own_start
        stop.set()
        sampler.join()

        n = len(results)
        print(f"\n{n} requests in {wall:.1f} s: {n / wall:.0f} requests/s; CPU per request: server "
              f"{server_cpu / max(n, 1) * 1000:.2f} ms, clients {client_cpu / max(n, 1) * 1000:.2f} ms")
        print("| kind | requests | errors | p50 ms | p90 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for kind in ("search", "similar", "all"):
            rows = [r for r in results if kind in ("all", r[0])]
            if not rows:
                continue
            ms = [r[1] * 1000 for r in rows]
            errors = sum(r[2] != 200 for r in rows)
            print(f"| {kind} | {len(rows)} | {errors} | {statistics.median(ms):.1f} | {percentile(ms, 90):.1f} | "
                  f"{percentile(ms, 99):.1f} | {max(ms):.1f} |")
        bad = sorted({str(r[2]) for r in results if r[2] != 200})
        if bad:
            print(f"error statuses: {', '.join(bad)}")
        tenth = max(1, len(samples) // 10)
        first = statistics.mean(m for _, m in samples[:tenth])
        last = statistics.mean(m for _, m in samples[-tenth:])
        print(f"\nserver RSS (MB): after warm-up {rss_start:.0f}, peak {max(m for _, m in samples):.0f}, "
              f"end {samples[-1][1]:.0f}; mean of first tenth {first:.0f}, last tenth {last:.0f} "
              f"({len(samples)} samples)")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(f"server stopped (exit status {proc.returncode})")


if __name__ == "__main__":
    main()
