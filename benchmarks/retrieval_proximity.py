"""SciFact and the descriptive sets, issue 12's fifth round: term proximity in the lexical channel, and a
linear fusion of the features known to help, its weights learned on the dev half.

Same indexes, query sets and dev / test splits as benchmarks/retrieval.py. Every variant below was
fixed in this file before any test figure was read; the test half is printed once per variant.

Features, for every paper of the corpus and every query (all numpy, from the index's postings):
- cos: the whole-abstract cosine (the stored vector); pgain: max(cos, best passage cosine) - cos, the
  passages of benchmarks/retrieval_bm25_passages.py (no overlap);
- uni: BM25 of the query's content words (held by at most half of the papers, as the hybrid does),
  title weight 4, at FTS5's k1 1.2 / b 0.75 and at k1 0.6 / b 1.0, each / its IDF mass
  sum(IDF) x (k1 + 1);
- proximity (sequential dependence): the query's consecutive content words (as FTS5's Porter
  tokenizer stems them; words between them that are not content words only widen the gap g) form
  pairs; "od": b follows a within g tokens in the same field (g = 1: an FTS5 phrase), "uw": a and b
  within 8 tokens in either order. A pair's frequency in a paper (title x 4 + abstract), its paper
  count n and IDF log((N - n + 0.5) / (n + 0.5)) give BM25 (k1 1.2, b 0.75, the paper's length), / the
  pairs' IDF mass; positions from FTS5's `fts5vocab` instance table;
- nb: the mean default-hybrid score of a candidate's 3 nearest (document cosine) among the default's
  10 best candidates (benchmarks/retrieval_graph.py's "mean, M=10, k=3").

Candidates, fixed for every variant: the dense top 100, the top 100 by cos + pgain x 0.75, the lexical
top 100 at each k1 / b. Proximity: cos + lam x (uni + gam x pair) / (mass + gam x pair mass)
("inside" the lexical channel), or cos + 1.5 x uni + gam x pair / pair mass ("beside"). Learned:
score = cos + sum of w_j x feature_j, fitted on the 150 dev claims only: coordinate ascent on dev
nDCG@10 (weights from a fixed grid, start at the default, fixed order, up to 5 passes) over two feature
sets, and a pairwise logistic model (relevant vs the default's non-relevant top 50, L2 1e-3, Newton)
over the larger set, divided by its cosine weight.

    PYTHONPATH=. python benchmarks/retrieval_proximity.py [--data ../shared/data] --work DIR [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.embed import CachedEmbedder, default_cache_path
from semsearch.fusion import TITLE_WEIGHTS, lexical_mass

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import DATA, build_sets, metrics  # noqa: E402
from retrieval_bm25_passages import passages, tokenizer  # noqa: E402

N = 100
FTS, LOW = (1.2, 0.75), (0.6, 1.0)
MU = 0.75  # the passage weight of the best third-round cell
UNORDERED = 8
SPAN = 1 << 20  # > any field's length in tokens: position keys are doc x 2 + field, then offset
FEATURES = ("cos", "pgain", "uni_fts", "uni_low", "od", "uw", "nb")
GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)
LEARNED = {  # name -> (method, features besides cos)
    "coordinate ascent: pgain, uni x2, od, uw": ("ca", ("pgain", "uni_fts", "uni_low", "od", "uw")),
    "coordinate ascent: + nb": ("ca", ("pgain", "uni_fts", "uni_low", "od", "uw", "nb")),
    "pairwise logistic: all 7": ("lr", ("pgain", "uni_fts", "uni_low", "od", "uw", "nb")),
}


def bm25(rows, freq, n, lengths, avgdl, papers, k1, b):
    idf = max(math.log((papers - n + 0.5) / (n + 0.5)), 1e-6)
    return idf, idf * freq * (k1 + 1) / (freq + k1 * (1 - b + b * lengths[rows] / avgdl))


class Positions:
    """Each token's occurrences as sorted keys (doc x 2 + field) x SPAN + offset, from fts5vocab."""

    def __init__(self, con):
        con.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.inst USING fts5vocab(main, papers_fts, instance)")
        self.con, self.cache = con, {}

    def __call__(self, token: str) -> np.ndarray:
        if token not in self.cache:
            got = np.array(self.con.execute("SELECT doc, col = 'abstract', offset FROM temp.inst WHERE term = ?",
                                            (token,)).fetchall(), dtype=np.int64).reshape(-1, 3)
            self.cache[token] = np.sort((got[:, 0] * 2 + got[:, 1]) * SPAN + got[:, 2])
        return self.cache[token]


def pair_counts(pa: np.ndarray, pb: np.ndarray, lo: int, hi: int, size: int) -> np.ndarray:
    """(size, 2) occurrences of b at offset lo..hi from an a (same field), per paper and field."""
    c = np.searchsorted(pb, pa + hi, "right") - np.searchsorted(pb, pa + lo, "left")
    keys = pa // SPAN
    return np.bincount(keys, weights=c, minlength=2 * size).reshape(size, 2)


def proximity(text, post, pos, lengths, avgdl, papers, size):
    """(od, od mass, uw, uw mass): the query's pair BM25 over every paper, and each kind's IDF mass."""
    words = re.findall(r"[^\W_]+", text.lower())
    seq = []  # (position in the query, token) of content words
    for i, w in enumerate(words):
        tok = post.tokens([w])
        if tok and 0 < post.held(tok)[0] <= 0.5 * papers:
            seq.append((i, tok[0]))
    out = []
    for kind in ("od", "uw"):
        score, mass, seen = np.zeros(size), 0.0, set()
        for (i, a), (j, b) in zip(seq, seq[1:]):
            if a == b or (a, b) in seen:
                continue
            seen.add((a, b))
            lo, hi = (1, j - i) if kind == "od" else (-UNORDERED, UNORDERED)
            c = pair_counts(pos(a), pos(b), lo, hi, size)
            freq = TITLE_WEIGHTS[0] * c[:, 0] + TITLE_WEIGHTS[1] * c[:, 1]
            rows = np.flatnonzero(freq)
            idf, s = bm25(rows, freq[rows], len(rows), lengths, avgdl, papers, *FTS)
            score[rows] += s
            mass += idf * (FTS[0] + 1)
        out += [score, mass]
    return out


def collect(idx: Index, queries: list[str], tok) -> dict:
    """Every feature of every paper for every query: (Q, n) float32 arrays, masses (Q,), pool (Q, n) bool."""
    papers = idx.papers()
    n = len(papers)
    owner, texts = [], []
    for r, p in enumerate(papers):
        got = passages(tok, p.title, p.abstract, False)
        owner += [r] * len(got)
        texts += got
    pv = CachedEmbedder(idx.embedder, default_cache_path()).encode(texts) if texts else np.zeros((0, idx.manifest.dim))
    owner = np.array(owner, dtype=np.int64)
    post, con = idx.postings, idx._store.connection
    post.bm25((), ())
    lengths, avgdl, total = post._lengths, post._avgdl, post._papers
    pos = Positions(con)
    qv = idx.embed(queries)
    dense = idx.search_vectors(qv, N)
    allv = idx.vectors(list(range(n)))
    f = {k: np.zeros((len(queries), n), np.float32) for k in ("cos", "pgain", "uni_fts", "uni_low", "od", "uw")}
    masses = {k: np.zeros(len(queries)) for k in ("uni_fts", "uni_low", "od", "uw")}
    pool = np.zeros((len(queries), n), bool)
    own = np.zeros((len(queries), n), bool)  # the default hybrid's own candidates
    t_prox = 0.0
    for i, q in enumerate(queries):
        whole = allv @ qv[i]
        best = np.full(n, -9.0)
        np.maximum.at(best, owner, pv @ qv[i])
        f["cos"][i], f["pgain"][i] = whole, np.maximum(whole, best) - whole
        dtop = [int(r) for r in dense.rows[i] if r >= 0]
        pool[i, dtop] = own[i, dtop] = True
        pool[i, np.argsort(-(whole + MU * f["pgain"][i]), kind="stable")[:N]] = True
        mass = lexical_mass(con, q, post).content()
        lists = post._postings(mass.tokens) if mass.tokens else []
        for name, (k1, b) in (("uni_fts", FTS), ("uni_low", LOW)):
            summed = np.zeros(len(lengths))
            for (rows, tf_title, tf_abstract), held in zip(lists, mass.held):
                freq = TITLE_WEIGHTS[0] * tf_title.astype(np.float64) + TITLE_WEIGHTS[1] * tf_abstract
                summed[rows] += bm25(rows, freq, held, lengths, avgdl, total, k1, b)[1]
            held = np.flatnonzero(summed[:n])
            ltop = held[np.lexsort((held, -summed[held]))][:N]
            pool[i, ltop] = True
            if name == "uni_fts":
                own[i, ltop] = True
            f[name][i], masses[name][i] = summed[:n], sum(mass.idf) * (k1 + 1)
        t = time.perf_counter()
        od, od_mass, uw, uw_mass = proximity(q, post, pos, lengths, avgdl, total, len(lengths))
        t_prox += time.perf_counter() - t
        f["od"][i], masses["od"][i], f["uw"][i], masses["uw"][i] = od[:n], od_mass, uw[:n], uw_mass
    print(f"  proximity: {1000 * t_prox / len(queries):.1f} ms a query (positions read once a token)", flush=True)
    return {**f, **{f"mass_{k}": v for k, v in masses.items()}, "pool": pool, "own": own, "vecs": allv}


def norm(F, name, i):
    m = F[f"mass_{name}"][i]
    return F[name][i] / m if m > 0 else np.zeros_like(F[name][i])


def neighbours(F, i, rows, base, m=10, k=3):
    """nb over `rows`: the mean base score of each one's k nearest among the m best by base."""
    top = np.argsort(-base, kind="stable")[:m]
    v = F["vecs"][rows]
    sims = v @ v[top].T
    sims[top, np.arange(len(top))] = -9.0  # not its own neighbour
    nn = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return base[top][nn].mean(axis=1)


def columns(F, i) -> tuple[np.ndarray, dict]:
    """(pool rows, {feature: (c,) values}): FEATURES (BM25 and proximity / their masses), the raw BM25
    and proximity ("raw_*") and their masses ("m_*", scalars)."""
    rows = np.flatnonzero(F["pool"][i])
    d = {"cos": F["cos"][i][rows], "pgain": F["pgain"][i][rows], "own": F["own"][i][rows]}
    for k in ("uni_fts", "uni_low", "od", "uw"):
        d[k], d[f"raw_{k}"], d[f"m_{k}"] = norm(F, k, i)[rows], F[k][i][rows], F[f"mass_{k}"][i]
    d["nb"] = neighbours(F, i, rows, d["cos"] + 1.5 * d["uni_fts"])
    return rows, d


def inside(d, kinds, lam, gam):
    raw = d["raw_uni_fts"] + gam * sum(d[f"raw_{k}"] for k in kinds) / len(kinds)
    mass = d["m_uni_fts"] + gam * sum(d[f"m_{k}"] for k in kinds) / len(kinds)
    return d["cos"] + lam * (raw / mass if mass > 0 else 0.0)


def settings() -> dict:
    """name -> f(columns dict) -> (c,) scores, for the fixed (non-learned) variants."""
    def r3(d):
        return d["cos"] + MU * d["pgain"] + d["uni_low"]

    s = {"default hybrid, its own candidates": lambda d: np.where(d["own"], d["cos"] + 1.5 * d["uni_fts"], -1e9),
         "default hybrid: cos + 1.5 x uni (FTS5 k1/b), title 4": lambda d: d["cos"] + 1.5 * d["uni_fts"],
         "round 3 best dev: k1 0.6 b 1.0, mu 0.75, lam 1.0": r3}
    for kind in ("od", "uw", "od+uw"):
        ks = kind.split("+")
        for lam in (1.5, 2.0):
            for gam in (0.25, 0.5, 1.0):
                s[f"inside: {kind}, lam {lam}, gam {gam}"] = lambda d, ks=ks, lam=lam, gam=gam: inside(d, ks, lam, gam)
        for gam in (0.1, 0.25, 0.5):
            s[f"beside: default + {gam} x {kind}"] = (
                lambda d, ks=ks, gam=gam: d["cos"] + 1.5 * d["uni_fts"] + gam * sum(d[k] for k in ks) / len(ks))
            s[f"beside: round 3 best + {gam} x {kind}"] = (
                lambda d, ks=ks, gam=gam: r3(d) + gam * sum(d[k] for k in ks) / len(ks))
    return s


def ranked(rows, scores):
    return rows[np.lexsort((rows, -scores))]


class Fit:
    """Dev-half nDCG@10 of `cos + X @ w` over the fixed candidates, fast enough for a search."""

    def __init__(self, cols: list, gains: list, ideal: list, feats: tuple):
        self.X = [np.column_stack([d[k] for k in feats]) for _, d in cols]
        self.cos = [d["cos"] for _, d in cols]
        self.rows = [r for r, _ in cols]
        self.gains, self.ideal = gains, ideal
        self.disc = 1 / np.log2(np.arange(2, 12))

    def ndcg(self, w) -> float:
        out = 0.0
        for rows, X, cos, g, ideal in zip(self.rows, self.X, self.cos, self.gains, self.ideal):
            top = np.lexsort((rows, -(cos + X @ w)))[:10]
            out += float(g[top] @ self.disc[: len(top)]) / ideal if ideal else 0.0
        return out / len(self.rows)

    def ascend(self, start, passes=5):
        w, best = np.array(start, float), self.ndcg(np.array(start, float))
        for _ in range(passes):
            moved = False
            for j in range(len(w)):
                for v in GRID:
                    trial = w.copy()
                    trial[j] = v
                    got = self.ndcg(trial)
                    if got > best + 1e-9:
                        w, best, moved = trial, got, True
            if not moved:
                break
        return w, best

    def logistic(self, feats, depth=50, l2=1e-3):
        diffs = []
        for rows, X, cos, g in zip(self.rows, self.X, self.cos, self.gains):
            Z = np.column_stack([cos, X])
            rel = np.flatnonzero(g > 0)
            default = Z[:, 0] + 1.5 * Z[:, 1 + feats.index("uni_fts")]
            non = [j for j in np.lexsort((rows, -default))[:depth] if g[j] <= 0]
            diffs += [Z[a] - Z[b] for a in rel for b in non]
        D = np.array(diffs)
        w = np.zeros(D.shape[1])
        for _ in range(50):  # Newton on mean log(1 + exp(-D w)) + l2 / 2 |w|^2
            p = 1 / (1 + np.exp(D @ w))
            grad = -(D * p[:, None]).mean(axis=0) + l2 * w
            hess = (D * (p * (1 - p))[:, None]).T @ D / len(D) + l2 * np.eye(len(w))
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return w[1:] / w[0], len(D)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--work", type=Path, required=True, help="benchmark indexes (built once, as retrieval.py does)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the features here (.npz per set), reuse them")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--sets", default="scifact,arxiv,seeds", help="SciFact is needed for the learned variants")
    args = ap.parse_args()
    tok = tokenizer()
    sets, feats = build_sets(args.work, args.sets.split(","), args.data), {}
    for name, (path, queries, judged, split) in sets.items():
        cached = args.cache / f"{name.replace(' ', '_')}.npz" if args.cache else None
        with Index.open(path) as idx:
            ids = np.array([p.id for p in idx.papers()])
            if cached and cached.exists():
                F = dict(np.load(cached, allow_pickle=False))
            else:
                t = time.perf_counter()
                print(f"{name}: {len(ids)} papers, {len(queries)} queries", flush=True)
                F = collect(idx, [queries[q] for q in queries], tok)
                print(f"  features in {time.perf_counter() - t:.0f} s", flush=True)
                if cached:
                    args.cache.mkdir(parents=True, exist_ok=True)
                    np.savez(cached, **F)
        qids = list(queries)
        cols = [columns(F, i) for i in range(len(qids))]
        dense = [np.argsort(-F["cos"][i], kind="stable")[:N] for i in range(len(qids))]
        feats[name] = (qids, judged, split, ids, cols, dense)

    variants = dict(settings())
    if "SciFact" in feats:
        qids, judged, split, ids, cols, _ = feats["SciFact"]
        dev = [i for i, q in enumerate(qids) if split[q] == "dev"]
        gains = [np.array([judged[qids[i]].get(d, 0) for d in ids[cols[i][0]]], float) for i in dev]
        ideal = [sum(g / math.log2(j + 2) for j, g in enumerate(sorted(judged[qids[i]].values(), reverse=True)[:10]) if g > 0)
                 for i in dev]
        print("\nlearned on the 150 SciFact dev claims (cos weight 1):")
        for label, (method, fs) in LEARNED.items():
            fit = Fit([cols[i] for i in dev], gains, ideal, fs)
            if method == "ca":
                w, got = fit.ascend([1.5 if k == "uni_fts" else 0.0 for k in fs])
                print(f"  {label}: dev nDCG@10 {got:.4f}")
            else:
                w, pairs = fit.logistic(fs)
                print(f"  {label}: {pairs} pairs, dev nDCG@10 {fit.ndcg(w):.4f}")
            print("    " + ", ".join(f"{k} {v:.3g}" for k, v in zip(fs, w)))
            variants[f"learned, {label}"] = lambda d, fs=fs, w=w: d["cos"] + np.column_stack([d[k] for k in fs]) @ w

    table = {"dense (cosine)": {}}
    for name, (qids, judged, split, ids, cols, dense) in feats.items():
        def score(run):
            return {p: metrics(run, judged, [q for q in qids if p == "all" or split[q] == p]) for p in ("dev", "test", "all")}

        table["dense (cosine)"][name] = score({q: list(ids[dense[i]]) for i, q in enumerate(qids)})
        for label, f in variants.items():
            run = {q: list(ids[ranked(rows, f(d))[:N]]) for q, (rows, d) in zip(qids, cols)}
            table.setdefault(label, {})[name] = score(run)
    metric = {"SciFact": "ndcg@10"}
    print(f"\n{'setting':52}" + "".join(f" | {n} {metric.get(n, 'mrr@10')} dev/test" + ("/all" if n == "SciFact" else "")
                                      for n in feats))
    for label, row in table.items():
        print(f"{label:52}" + "".join(
            " | " + "/".join(f"{row[n][p][metric.get(n, 'mrr@10')]:.4f}" for p in ("dev", "test", "all")[: 3 if n == "SciFact" else 2])
            for n in feats))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
