"""`semsearch build` of SciFact abstracts against a plain sentence-transformers + FAISS script, side by side.

Default: the first --n abstracts of SciFact's corpus.jsonl are written to a temporary JSONL; then,
in turn for --rounds rounds, `semsearch build FILE --index TMP` runs in a new process with
SEMSEARCH_CACHE=off (so every text is embedded), and so does a plain script (sentence-transformers
fp32, batch 32, into a FAISS IndexFlatIP, written to disk). Wall and CPU seconds of each process
and their ratio per round are printed, then nDCG@10 (dense, cosine) of SciFact's test queries
restricted to those documents, on the index semsearch built and on the plain script's vectors.

--levers instead times the int8 encoder alone in this process under each setting, interleaved:
batches run side by side on single-threaded sessions (the default) vs one session with two
threads, onnxruntime thread spinning, batch sizes; with docs/s, CPU seconds and the largest
|1 - cosine| against the default's vectors.

    PYTHONPATH=. python benchmarks/build_speed.py [--n 1000] [--rounds 3] [--data ../shared/data/scifact]
        [--compare OTHER_CHECKOUT]   # also that checkout's `semsearch build`, in the same turns
    PYTHONPATH=. python benchmarks/build_speed.py --levers [--n 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from encode_speed import machine  # this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]

PLAIN = r'''
import json, sys
import faiss
from sentence_transformers import SentenceTransformer
source, out = sys.argv[1], sys.argv[2]
texts = []
for line in open(source, encoding="utf-8"):
    o = json.loads(line)
    texts.append(f"{o['title']}. {o['abstract']}" if o.get("title") else o["abstract"])
model = SentenceTransformer(sys.argv[3], device="cpu")
vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
index = faiss.IndexFlatIP(vectors.shape[1])
index.add(vectors)
faiss.write_index(index, out + ".faiss")
import numpy as np
np.save(out + ".npy", vectors)
'''


def docs(data: Path, n: int) -> list[dict]:
    with open(data / "corpus.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line, _ in zip(fh, range(n))]


def text(o: dict) -> str:
    return f"{o['title']}. {o['text']}" if o.get("title") else o["text"]


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of a command run to completion in a new process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{cmd[:4]} failed: {done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ndcg10(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    scores = []
    for q, rel in qrels.items():
        gains = [rel.get(d, 0) for d in ranked.get(q, [])[:10]]
        dcg = sum(g / np.log2(i + 2) for i, g in enumerate(gains))
        ideal = sum(g / np.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:10]))
        scores.append(dcg / ideal if ideal else 0.0)
    return float(np.mean(scores))


def test_queries(data: Path, ids: set[str]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """SciFact test queries with a judged-relevant document among `ids`, judgements restricted to `ids`."""
    qrels: dict[str, dict[str, int]] = {}
    with open(data / "qrels" / "test.tsv", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            q, d, score = line.rstrip("\n").split("\t")
            if d in ids and int(score) > 0:
                qrels.setdefault(q, {})[d] = int(score)
    queries = {}
    with open(data / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            o = json.loads(line)
            if o["_id"] in qrels:
                queries[o["_id"]] = o["text"]
    return queries, qrels


def quality(data: Path, index_dir: Path, plain_vectors: Path, corpus: list[dict]) -> None:
    from semsearch.query import Index

    queries, qrels = test_queries(data, {o["_id"] for o in corpus})
    with Index.open(index_dir) as idx:
        hits = idx.search_batch(list(queries.values()), 10, mode="dense")  # queries embedded together as one call
        ranked = {q: [h.paper.id for h in hs] for q, hs in zip(queries, hits)}
        alone = {q: [h.paper.id for h in idx.search(t, 10, mode="dense")] for q, t in queries.items()}
    from sentence_transformers import SentenceTransformer

    from semsearch.embed.base import resolve_model

    model = SentenceTransformer(resolve_model(None)[1], device="cpu")
    vectors = np.load(plain_vectors)
    qv = model.encode(list(queries.values()), normalize_embeddings=True, convert_to_numpy=True)
    top = np.argsort(-(qv @ vectors.T), axis=1)[:, :10]
    plain = {q: [corpus[i]["_id"] for i in row] for q, row in zip(queries, top)}
    print(f"\nnDCG@10 (dense, cosine) on {len(queries)} SciFact test queries with a relevant document among the "
          f"{len(corpus)}: semsearch int8 {ndcg10(alone, qrels):.4f} (each query alone, as `search` runs), "
          f"{ndcg10(ranked, qrels):.4f} (queries in one batch); plain fp32 {ndcg10(plain, qrels):.4f}")


def builds(args) -> None:
    data = Path(args.data)
    corpus = docs(data, args.n)
    work = Path(tempfile.mkdtemp(prefix="semsearch-build-speed-"))
    source = work / "corpus.jsonl"
    source.write_text("".join(json.dumps({"id": o["_id"], "title": o["title"], "abstract": o["text"]}) + "\n"
                              for o in corpus), encoding="utf-8")
    plain_script = work / "plain.py"
    plain_script.write_text(PLAIN, encoding="utf-8")
    from semsearch.embed.base import resolve_model

    env = {**os.environ, "SEMSEARCH_CACHE": "off", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    semsearch = [sys.executable, "-m", "semsearch.cli", "build", str(source), "--index", str(work / "index"), "--json"]
    plain = [sys.executable, str(plain_script), str(source), str(work / "plain"), resolve_model(None)[1]]
    other = [*semsearch[:-2], str(work / "other"), "--json"]
    other_env = {**env, "PYTHONPATH": os.pathsep.join([str(Path(args.compare or ".").resolve()), os.environ.get("PYTHONPATH", "")])}
    print(machine())
    print(f"{len(corpus)} SciFact abstracts, {args.rounds} rounds in turn after one warm-up of each; SEMSEARCH_CACHE=off")
    rows, others = [], []
    for r in range(args.rounds + 1):
        a, b = timed(semsearch, env), timed(plain, env)
        c = timed(other, other_env) if args.compare else None
        if r:
            rows.append((a, b))
            print(f"round {r}: semsearch {a[0]:.1f} s wall ({a[1]:.1f} CPU), plain {b[0]:.1f} s wall ({b[1]:.1f} CPU), "
                  f"plain / semsearch {b[0] / a[0]:.2f} wall, {b[1] / a[1]:.2f} CPU; load {os.getloadavg()[0]:.1f}",
                  flush=True)
            if c:
                others.append((c, b))
                print(f"         {args.compare}: {c[0]:.1f} s wall ({c[1]:.1f} CPU), plain / it {b[0] / c[0]:.2f} wall, "
                      f"{b[1] / c[1]:.2f} CPU", flush=True)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print(f"\nmedian: semsearch {med([a[0] for a, _ in rows]):.1f} s, plain {med([b[0] for _, b in rows]):.1f} s; "
          f"ratio plain / semsearch: wall {med([b[0] / a[0] for a, b in rows]):.2f} "
          f"(min {min(b[0] / a[0] for a, b in rows):.2f}, max {max(b[0] / a[0] for a, b in rows):.2f}), "
          f"CPU {med([b[1] / a[1] for a, b in rows]):.2f}")
    if others:
        print(f"median {args.compare}: {med([c[0] for c, _ in others]):.1f} s; ratio plain / it: wall "
              f"{med([b[0] / c[0] for c, b in others]):.2f}, CPU {med([b[1] / c[1] for c, b in others]):.2f}")
    quality(data, work / "index", work / "plain.npy", corpus)
    if others:
        print(f"(index of {args.compare}:)", end="")
        quality(data, work / "other", work / "plain.npy", corpus)


def levers(args) -> None:
    from semsearch.embed import onnx

    texts = [text(o) for o in docs(Path(args.data), args.n)]
    settings = {  # name -> (sessions, threads each, batch size, spinning, batches of similar length)
        "2 sessions x 1 thread, batch 32 (default)": (2, 1, 32, True, True),
        "1 session x 2 threads, batch 32 (before)": (1, 2, 32, True, True),
        "1 session x 2 threads, batch 32, no spinning": (1, 2, 32, False, True),
        "2 sessions x 1 thread, batch 16": (2, 1, 16, True, True),
        "2 sessions x 1 thread, batch 64": (2, 1, 64, True, True),
        "1 session x 1 thread, batch 32": (1, 1, 32, True, True),
        "2 sessions x 1 thread, batch 32, input order (no length sort)": (2, 1, 32, True, False),
    }
    embedders = {}
    for name, (sessions, threads, batch, spinning, _) in settings.items():
        e = onnx.OnnxEmbedder(quantized=True, batch_size=batch, threads=sessions)
        e._load(onnx.FEW_TEXTS + 1)  # the tokenizer; then this setting's sessions
        e._sessions[sessions, False] = [_session(e.path, threads, spinning) for _ in range(sessions)]
        embedders[name] = e
    print(machine())
    print(f"{len(texts)} SciFact texts, int8, {args.rounds} rounds in turn")
    seconds = {name: [] for name in [*settings, "tokenising alone (encode_batch)"]}
    cpu = {name: [] for name in seconds}
    vectors = {}
    for _ in range(args.rounds):
        for name, e in embedders.items():
            w, c = time.perf_counter(), time.process_time()
            vectors[name] = e.encode(texts) if settings[name][4] else _in_input_order(e, texts)
            seconds[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
        w, c = time.perf_counter(), time.process_time()
        e._tokenizer.encode_batch(texts)
        seconds["tokenising alone (encode_batch)"].append(time.perf_counter() - w)
        cpu["tokenising alone (encode_batch)"].append(time.process_time() - c)
    base = vectors[next(iter(settings))]
    print("| setting | docs/s (best) | docs/s (median) | CPU s (min) | max abs(1 - cos) vs default |\n|---|---|---|---|---|")
    for name in seconds:
        drift = f"{float(np.abs(1 - (vectors[name] * base).sum(axis=1)).max()):.1e}" if name in vectors else ""
        print(f"| {name} | {len(texts) / min(seconds[name]):.1f} | {len(texts) / statistics.median(seconds[name]):.1f} "
              f"| {min(cpu[name]):.1f} | {drift} |")


def _in_input_order(e, texts: list[str]) -> np.ndarray:
    """`e.encode(texts)` with batches cut in input order instead of by length (more padding)."""
    from semsearch.embed import onnx

    tok, sessions = e._load(len(texts))
    encodings = tok.encode_batch(texts)
    lengths = np.array([len(x.ids) for x in encodings])
    batches = [np.arange(s, min(s + e.batch_size, len(texts))) for s in range(0, len(texts), e.batch_size)]
    return np.vstack(list(onnx._run_batches(sessions, batches, encodings, lengths, e.config["inputs"], e.config)))


def _session(path: Path, threads: int, spinning: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="SciFact abstracts (the first N of corpus.jsonl)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "scifact"), help="BEIR SciFact folder")
    ap.add_argument("--levers", action="store_true", help="time the int8 encoder's settings instead")
    ap.add_argument("--compare", help="another semsearch checkout whose build runs in the same turns (e.g. main's)")
    args = ap.parse_args()
    levers(args) if args.levers else builds(args)


if __name__ == "__main__":
    main()
