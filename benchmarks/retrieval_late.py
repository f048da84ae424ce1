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
from tokenizers import Tokenizer

from semsearch import Index
from semsearch.builder import paper_text
from semsearch.embed.onnx import OnnxEmbedder
from semsearch.store.lexical import STOPWORDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import DATA, PRIMARY, build_sets, by_half, print_halves  # noqa: E402
from retrieval_window import lexical  # noqa: E402

A, B, C = (0.0, 0.5, 1.0), (0.5, 1.0, 2.0, 3.0), (0.5, 1.0, 1.5, 2.0)
BATCH = 32


def pieces(emb: OnnxEmbedder, texts: list[str], windows: bool) -> list[list[list[int]]]:
    """Each text's word-piece ids as model inputs ([CLS] ... [SEP]): its first window of the model's
    length (what the model reads today), or with `windows` every consecutive window of the text."""
    texts = [t.lower() for t in texts] if emb.config["do_lower_case"] else list(texts)
    tok, _ = emb._load(len(texts))
    tok = Tokenizer.from_str(tok.to_str())
    tok.no_truncation()
    tok.no_padding()
    cls, sep, width = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]"), emb.config["max_seq_length"] - 2
    out = []
    for e in tok.encode_batch(texts):
        ids = e.ids[1:-1]
        chunks = [ids[i : i + width] for i in range(0, max(len(ids), 1), width)]
        out.append([[cls, *c, sep] for c in (chunks if windows else chunks[:1])])
    return out


def token_states(emb: OnnxEmbedder, inputs: list[list[int]]) -> list[np.ndarray]:
    """Each input's (pieces, dim) float16 L2-normalised token states, [CLS] / [SEP] left out."""
    _, sessions = emb._load(len(inputs))
    lengths = np.array([len(x) for x in inputs])
    order = np.argsort(-lengths, kind="stable")
    out: list = [None] * len(inputs)
    for start in range(0, len(order), BATCH):
        rows = order[start : start + BATCH]
        ids = np.zeros((len(rows), int(lengths[rows].max())), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : lengths[r]], mask[i, : lengths[r]] = inputs[r], 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = sessions[0].run(None, {k: feed[k] for k in emb.config["inputs"]})[0].astype(np.float32)
        for i, r in enumerate(rows):
            t = hidden[i, 1 : lengths[r] - 1]
            out[r] = (t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)).astype(np.float16)
    return out


def paper_states(emb: OnnxEmbedder, texts: list[str], windows: bool, cache: Path | None):
    """All papers' token states concatenated, each paper's offsets into them, and its piece ids."""
    inputs = pieces(emb, texts, windows)
    ids = [np.concatenate([np.asarray(w[1:-1], dtype=np.int64) for w in ws]) for ws in inputs]
    if cache and cache.exists():
        z = np.load(cache)
        return z["flat"], z["offsets"], ids
    flat_inputs = [w for ws in inputs for w in ws]
    states = token_states(emb, flat_inputs)
    per_paper, k = [], 0
    for ws in inputs:
        per_paper.append(np.concatenate(states[k : k + len(ws)]))
        k += len(ws)
    flat, offsets = np.concatenate(per_paper), np.cumsum([0] + [len(s) for s in per_paper])
    if cache:
        np.savez(cache, flat=flat, offsets=offsets)
    return flat, offsets, ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, required=True, help="benchmark indexes (built once, as retrieval.py does)")
    ap.add_argument("--cache", type=Path, default=None, help="folder keeping the papers' token states (.npz)")
    ap.add_argument("--windows", action="store_true",
                    help="also MaxSim over every window of a long text, plain and IDF-weighted (second part)")
    args = ap.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    emb = OnnxEmbedder(None, quantized=True)
    kinds = ("all", "content") + (("windows", "windows-idf") if args.windows else ())
    settings = [("default: cos + 1.5 x BM25", (1.0, 0.0, 1.5, "all"))]
    settings += [(f"MaxSim alone [{kind}]", (0.0, 1.0, 0.0, kind)) for kind in kinds]
    settings += [(f"{a} cos + {b} MaxSim[{kind}] + {c} BM25", (a, b, c, kind))
                 for kind in kinds for a in A for b in B for c in C]
    table: dict = {}
    for name, (path, queries, judged, split) in build_sets(args.work, ["scifact", "arxiv", "seeds"], args.data).items():
        with Index.open(path) as idx:
            papers = idx.papers()
            ids = [p.id for p in papers]
            texts, stem = [paper_text(p) for p in papers], name.replace(" ", "_")
            states = {"first": paper_states(emb, texts, False, args.cache and args.cache / f"{stem}_tokens.npz")}
            if args.windows:
                states["windows"] = paper_states(emb, texts, True, args.cache and args.cache / f"{stem}_windows.npz")
                held = np.zeros(emb.config.get("vocab_size", 1 << 16), dtype=np.int64)
                for piece_ids in states["windows"][2]:
                    held[np.unique(piece_ids)] += 1
                idf = np.log((len(papers) - held + 0.5) / (held + 0.5)).clip(min=1e-6)
            qids = list(queries)
            qv = idx.embed([queries[q] for q in qids])
            q_inputs = [w[0] for w in pieces(emb, [queries[q] for q in qids], False)]
            q_states = token_states(emb, q_inputs)
            tok, _ = emb._load(1)
            vectors = idx.vectors(list(range(len(papers))))
            idx.postings.bm25((), ())  # reads the papers' lengths
            runs: dict = {}
            for i, q in enumerate(qids):
                norm, ltop = lexical(idx, queries[q], len(papers))
                cos = vectors @ qv[i]
                cand = np.union1d(np.argsort(-cos, kind="stable")[:100], ltop).astype(np.int64)
                q_ids = np.asarray(q_inputs[i][1:-1], dtype=np.int64)
                words = [tok.id_to_token(int(t)) for t in q_ids]
                content = np.array([w.isalnum() and w not in STOPWORDS for w in words], dtype=bool)
                content = content if content.any() else np.ones(len(words), bool)
                qs = q_states[i].astype(np.float32).T
                late = {}
                for part, (flat, offsets, _) in states.items():
                    best = [(flat[offsets[r] : offsets[r + 1]].astype(np.float32) @ qs).max(axis=0) for r in cand]
                    if part == "first":
                        late["all"] = np.array([b.mean() for b in best])
                        late["content"] = np.array([b[content].mean() for b in best])
                    else:
                        w = idf[q_ids] / idf[q_ids].sum()
                        late["windows"] = np.array([b.mean() for b in best])
                        late["windows-idf"] = np.array([b @ w for b in best])
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
