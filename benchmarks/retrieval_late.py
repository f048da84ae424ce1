"""SciFact and the descriptive sets, issue 12's seventh try: late interaction (ColBERT-style MaxSim)
over the bundled model's own token states, alone and fused with the cosine and BM25.

Same query sets, splits, indexes and candidates as benchmarks/retrieval.py (the dense top 100 and
the lexical top 100 of the default hybrid). Each text ("title. abstract", and each query) is run
through the default int8 ONNX model; its token states (word pieces, [CLS] / [SEP] left out, each
L2-normalised) stand for it. MaxSim = the mean over the query's tokens of their best cosine to one
of the paper's tokens: over every query token ("all"), or over its content tokens only (word
pieces that are alphanumeric and not an FTS5 stopword, "content"). Every setting
a x cos + b x MaxSim + c x BM25 / IDF mass (title weight 4, FTS5's k1 / b) of the grid below
was fixed before the run.

    PYTHONPATH=. python benchmarks/retrieval_late.py [--data ../shared/data] --work DIR [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.builder import paper_text
from semsearch.embed.onnx import OnnxEmbedder
from semsearch.store.lexical import STOPWORDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import DATA, PRIMARY, build_sets, by_half, print_halves  # noqa: E402
from retrieval_window import lexical  # noqa: E402

A, B, C = (0.0, 0.5, 1.0), (0.5, 1.0, 2.0, 3.0), (0.5, 1.0, 1.5, 2.0)
BATCH = 32


def token_states(emb: OnnxEmbedder, texts: list[str]) -> tuple[list[np.ndarray], list[list[str]]]:
    """Each text's (tokens, dim) float16 L2-normalised token states and its word pieces."""
    texts = [t.lower() for t in texts] if emb.config["do_lower_case"] else list(texts)
    tok, sessions = emb._load(len(texts))
    encodings = tok.encode_batch(texts)
    lengths = np.array([len(e.ids) for e in encodings])
    order = np.argsort(-lengths, kind="stable")
    out: list = [None] * len(texts)
    for start in range(0, len(order), BATCH):
        rows = order[start : start + BATCH]
        ids = np.zeros((len(rows), int(lengths[rows].max())), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : lengths[r]], mask[i, : lengths[r]] = encodings[r].ids, 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = sessions[0].run(None, {k: feed[k] for k in emb.config["inputs"]})[0].astype(np.float32)
        for i, r in enumerate(rows):
            t = hidden[i, 1 : lengths[r] - 1]
            out[r] = (t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)).astype(np.float16)
    return out, [e.tokens[1:-1] for e in encodings]


def paper_states(emb: OnnxEmbedder, texts: list[str], cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """All papers' token states concatenated, and each paper's offsets into them."""
    if cache and cache.exists():
        z = np.load(cache)
        return z["flat"], z["offsets"]
    states, _ = token_states(emb, texts)
    flat, offsets = np.concatenate(states), np.cumsum([0] + [len(s) for s in states])
    if cache:
        np.savez(cache, flat=flat, offsets=offsets)
    return flat, offsets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, required=True, help="benchmark indexes (built once, as retrieval.py does)")
    ap.add_argument("--cache", type=Path, default=None, help="folder keeping the papers' token states (.npz)")
    args = ap.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    emb = OnnxEmbedder(None, quantized=True)
    settings = [("default: cos + 1.5 x BM25", (1.0, 0.0, 1.5, "all")), ("MaxSim alone (all tokens)", (0.0, 1.0, 0.0, "all")),
                ("MaxSim alone (content tokens)", (0.0, 1.0, 0.0, "content"))]
    settings += [(f"{a} cos + {b} MaxSim[{kind}] + {c} BM25", (a, b, c, kind))
                 for kind in ("all", "content") for a in A for b in B for c in C]
    table: dict = {}
    for name, (path, queries, judged, split) in build_sets(args.work, ["scifact", "arxiv", "seeds"], args.data).items():
        with Index.open(path) as idx:
            papers = idx.papers()
            ids = [p.id for p in papers]
            flat, offsets = paper_states(emb, [paper_text(p) for p in papers],
                                         args.cache and args.cache / f"{name.replace(' ', '_')}_tokens.npz")
            qids = list(queries)
            qv = idx.embed([queries[q] for q in qids])
            q_states, q_pieces = token_states(emb, [queries[q] for q in qids])
            vectors = idx.vectors(list(range(len(papers))))
            idx.postings.bm25((), ())  # reads the papers' lengths
            runs: dict = {}
            for i, q in enumerate(qids):
                norm, ltop = lexical(idx, queries[q], len(papers))
                cos = vectors @ qv[i]
                cand = np.union1d(np.argsort(-cos, kind="stable")[:100], ltop).astype(np.int64)
                content = np.array([p.isalnum() and p not in STOPWORDS for p in q_pieces[i]]) if len(q_pieces[i]) else np.ones(0, bool)
                content = content if content.any() else np.ones(len(q_pieces[i]), bool)
                best = [(flat[offsets[r] : offsets[r + 1]].astype(np.float32) @ q_states[i].astype(np.float32).T).max(axis=0)
                        for r in cand]
                late = {"all": np.array([b.mean() for b in best]), "content": np.array([b[content].mean() for b in best])}
                for key, (a, b, c, kind) in settings:
                    score = a * cos[cand] + b * late[kind] + c * norm[cand]
                    order = np.lexsort((cand, -score))
                    runs.setdefault(key, {})[q] = [ids[int(cand[j])] for j in order]
            for key, row in by_half(runs, judged, split, qids).items():
                table.setdefault(key, {})[name] = row
    print_halves(table, 38)
    dev = {k: r["SciFact"]["dev"]["ndcg@10"] for k, r in table.items() if k != settings[0][0]}
    mean_dev = {k: np.mean([r[n]["dev"][m] for n, m in PRIMARY]) for k, r in table.items()}
    print(f"best SciFact dev: {max(dev, key=dev.get)}; best mean of the three dev figures: {max(mean_dev, key=mean_dev.get)}")


if __name__ == "__main__":
    main()
