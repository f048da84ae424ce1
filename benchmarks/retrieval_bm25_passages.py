"""SciFact and the descriptive sets, issue 12's third round: BM25 k1 / b of the hybrid's lexical channel,
and passage-level dense scores for abstracts longer than the model's 256-token window.

Same query sets, splits and indexes as benchmarks/retrieval.py (settings chosen on dev). The hybrid
is cos + lam x BM25 / IDF mass (title weight 4), BM25 computed in numpy from the index's postings
(`lexical.Postings`) with k1 and b as parameters (k1 1.2, b 0.75 is FTS5's own, the default hybrid);
the IDF mass is sum(IDF) x (k1 + 1). Passages: each paper whose "title. abstract" exceeds 254 word
pieces is cut into sentence-packed windows of at most 200 word pieces, each prefixed with the title
(--overlap: each window starts half-way through the previous one); the dense score is
(1 - mu) x whole-abstract cosine + mu x max(whole, best passage cosine). Candidates: the dense top
100 (whole abstract), the top 100 by the passage-aware score, the lexical top 100.

    PYTHONPATH=. python benchmarks/retrieval_bm25_passages.py [--data ../shared/data] --work DIR [--overlap]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.embed import CachedEmbedder, default_cache_path
from semsearch.facets import split_sentences
from semsearch.fusion import TITLE_WEIGHTS, lexical_mass

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import DATA, build_sets, by_half, print_halves  # noqa: E402

WINDOW = 200
K1_B = [(k1, b) for k1 in (0.6, 0.9, 1.2, 1.5, 2.0) for b in (0.3, 0.5, 0.75, 0.9, 1.0)]
MUS = (0.0, 0.25, 0.5, 0.75, 1.0)
LAMS = (1.0, 1.5, 2.0)
WITH_PASSAGES = ((1.2, 0.75), (0.6, 1.0), (0.9, 0.9), (0.6, 0.5))  # k1 / b tried with passages


def tokenizer():
    """The bundled model's word-piece tokenizer (the ONNX export's copy)."""
    from tokenizers import Tokenizer

    from semsearch.embed.onnx import ensure_onnx, model_folder

    tok = Tokenizer.from_file(str(ensure_onnx(model_folder(None)[1]) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()  # the saved tokenizer pads to 128: counts must be of the text itself
    return tok


def passages(tok, title: str | None, abstract: str, overlap: bool) -> list[str]:
    head = f"{title}. " if title else ""

    def ntok(texts):
        return [len(e.ids) - 2 for e in tok.encode_batch(texts)]

    if ntok([head + abstract])[0] <= 254:
        return []
    sents = split_sentences(abstract) or [abstract]
    lens, tl = ntok(sents), (ntok([head])[0] if head else 0)
    out, i = [], 0
    while i < len(sents):
        j, used = i, tl
        while j < len(sents) and (j == i or used + lens[j] <= WINDOW):
            used += lens[j]
            j += 1
        out.append(head + " ".join(sents[i:j]))
        if j >= len(sents):
            break
        if overlap:  # the next window starts half-way through this one
            k, back = j, 0
            while k - 1 > i and back + lens[k - 1] <= (used - tl) / 2:
                back += lens[k - 1]
                k -= 1
            j = max(k, i + 1)
        i = j
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, required=True, help="benchmark indexes (built once, as retrieval.py does)")
    ap.add_argument("--overlap", action="store_true", help="passages overlap by half a window")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    table: dict = {}
    for name, (path, queries, judged, split) in build_sets(args.work, ["scifact", "arxiv", "seeds"], args.data).items():
        with Index.open(path) as idx:
            papers = idx.papers()
            ids = [p.id for p in papers]
            owner, texts = [], []
            for r, p in enumerate(papers):
                got = passages(tok, p.title, p.abstract, args.overlap)
                owner += [r] * len(got)
                texts += got
            emb = CachedEmbedder(idx.embedder, default_cache_path())
            pv = emb.encode(texts) if texts else np.zeros((0, idx.manifest.dim), np.float32)
            owner = np.array(owner, dtype=np.int64)
            print(f"{name}: {len(papers)} papers, {len(set(owner.tolist()))} over the window, {len(texts)} passages")
            post, con = idx.postings, idx._store.connection
            post.bm25((), ())  # reads the papers' lengths
            lengths, avgdl, n_papers = post._lengths, post._avgdl, post._papers
            qids = list(queries)
            qv = idx.embed([queries[q] for q in qids])
            dense = idx.search_vectors(qv, 100)
            allv = idx.vectors(list(range(len(papers))))
            runs: dict = {}
            for i, q in enumerate(qids):
                whole = allv @ qv[i]
                best = np.full(len(papers), -9.0)
                np.maximum.at(best, owner, pv @ qv[i])
                mx = np.maximum(whole, best)
                dtop = [int(r) for r in dense.rows[i] if r >= 0]
                runs.setdefault("dense", {})[q] = [ids[r] for r in dtop]
                mass = lexical_mass(con, queries[q], post).content()
                lists = post._postings(mass.tokens) if mass.tokens else []
                for k1, b in K1_B:
                    summed = np.zeros(len(lengths))
                    for (rows, tf_title, tf_abstract), n in zip(lists, mass.held):
                        idf = max(math.log((n_papers - n + 0.5) / (n + 0.5)), 1e-6)
                        f = TITLE_WEIGHTS[0] * tf_title.astype(np.float64) + TITLE_WEIGHTS[1] * tf_abstract
                        summed[rows] += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * lengths[rows] / avgdl))
                    upper = sum(mass.idf) * (k1 + 1)
                    held = np.flatnonzero(summed)
                    ltop = held[np.lexsort((held, -summed[held]))][:100]
                    runs.setdefault(f"lexical k1 {k1} b {b}", {})[q] = [ids[r] for r in ltop]
                    norm = summed[: len(papers)] / upper if upper > 0 else np.zeros(len(papers))
                    for mu in MUS if (k1, b) in WITH_PASSAGES else (0.0,):
                        d = (1 - mu) * whole + mu * mx
                        ptop = np.argsort(-d, kind="stable")[:100]
                        if (k1, b) == (1.2, 0.75):
                            runs.setdefault(f"dense mu {mu}", {})[q] = [ids[r] for r in ptop]
                        cand = np.union1d(np.union1d(np.array(dtop), ptop), ltop).astype(np.int64)
                        for lam in LAMS:
                            order = np.lexsort((cand, -(d[cand] + lam * norm[cand])))
                            runs.setdefault(f"k1 {k1} b {b} mu {mu} lam {lam}", {})[q] = [ids[int(cand[j])] for j in order]
            for key, row in by_half(runs, judged, split, qids).items():
                table.setdefault(key, {})[name] = row
    print_halves(table, 36)
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
