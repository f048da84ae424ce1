"""SciFact, issue 12's second round: lexical feedback (RM3-style), BM25 field weights, title vectors,
CombMNZ and query-dependent weights, each beside the default hybrid (cos + 1.5 x BM25/IDF-mass, title 4).

Same split as benchmarks/retrieval.py (the 300 judged test claims alternately dev / test; SciFact
ships no train qrels here); candidates: dense top 100, BM25 top 100, and each expansion query's
BM25 top 100. RM3-style: the F best papers of the default ranking give expansion words (sum of
in-paper frequency / length, times IDF; stopwords and query words out), the E best of them are one
more BM25 channel normalised by their IDF mass and added with weight mu. Title vectors: the bundled
model on titles alone. Settings are chosen on dev; none was shipped (docs/benchmarks.md).

    PYTHONPATH=. python benchmarks/retrieval_feedback.py [--data ../shared/data] [--work DIR]
"""

import argparse
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.embed import CachedEmbedder, default_cache_path
from semsearch.evaluate import load_beir, ndcg
from semsearch.fusion import lexical_mass
from semsearch.store import lexical

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import DATA, build_sets  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--data", type=Path, default=DATA)
ap.add_argument("--work", type=Path, required=True, help="benchmark indexes (built once, as retrieval.py does)")
args = ap.parse_args()
args.work.mkdir(parents=True, exist_ok=True)
path, _, _, _ = build_sets(args.work, ["scifact"], args.data)["SciFact"]
data = load_beir(args.data / "scifact")
qids = list(data.qrels)
split = {q: 'dev' if i % 2 == 0 else 'test' for i, q in enumerate(qids)}
idx = Index.open(path)
con = idx._store.connection
papers = idx.papers(); ids = [p.id for p in papers]
N = len(ids)
emb = CachedEmbedder(idx.embedder, default_cache_path())
t = time.time()
TV = emb.encode([p.title or '' for p in papers]); print('titles', time.time() - t, flush=True)
allv = idx.vectors(list(range(N)))
texts = {i: (p.title or '') + ' ' + p.abstract for i, p in enumerate(papers)}
STOP = lexical.STOPWORDS
idfc = {}
def idf(w):
    if w not in idfc:
        n = con.execute('SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?', (f'"{w}"',)).fetchone()[0]
        idfc[w] = max(math.log((N - n + 0.5) / (n + 0.5)), 1e-6)
    return idfc[w]
qtexts = [data.queries[q] for q in qids]
QV = idx.embed(qtexts)
dense = idx.search_vectors(QV, 100)
W = [(4.0, 1.0), (8.0, 1.0), (4.0, 2.0), (2.0, 1.0)]
feats = []
t = time.time()
for i, q in enumerate(qtexts):
    dtop = [int(r) for r in dense.rows[i] if r >= 0]
    ltop = [r for r, _ in lexical.search(con, q, 100, weights=(4.0, 1.0))]
    base_rows = sorted(set(dtop) | set(ltop))
    mass = lexical_mass(con, q)
    # first-stage default fused for feedback
    b = lexical.scores(con, q, base_rows, (4.0, 1.0))
    fused = allv[base_rows] @ QV[i] + 1.5 * np.array([b.get(r, 0) for r in base_rows]) / mass.upper
    order = np.argsort(-fused, kind='stable')
    fb = {}
    for F in (3, 5, 10):
        wts = {}
        for j in order[:F]:
            ws = [w.lower() for w in re.findall(r"[^\W_]+", texts[base_rows[j]])]
            L = max(len(ws), 1)
            for w in ws:
                if w in STOP or w.isdigit() or len(w) < 3: continue
                wts[w] = wts.get(w, 0) + 1.0 / L
        qterms = set(lexical.terms(q))
        cand = sorted((w for w in wts if w not in qterms), key=lambda w: -wts[w] * idf(w))
        fb[F] = cand
    exp_rows = {}
    for F in (3, 5, 10):
        for E in (10, 20):
            et = ' '.join(fb[F][:E])
            exp_rows[(F, E)] = [r for r, _ in lexical.search(con, et, 100, weights=(4.0, 1.0))] if et else []
    rows = sorted(set(base_rows) | {r for v in exp_rows.values() for r in v})
    cos = allv[rows] @ QV[i]
    tcos = TV[rows] @ QV[i]
    norm = {}
    for w in W:
        s = lexical.scores(con, q, rows, w)
        norm[w] = np.array([s.get(r, 0) for r in rows]) / mass.upper
    expn = {}
    for F in (3, 5, 10):
        for E in (10, 20):
            terms = fb[F][:E]
            if not terms: expn[(F, E)] = np.zeros(len(rows)); continue
            s = lexical.scores(con, ' '.join(terms), rows, (4.0, 1.0))
            m = sum(idf(x) for x in terms) * (lexical.BM25_K1 + 1)
            expn[(F, E)] = np.array([s.get(r, 0) for r in rows]) / m
    feats.append(dict(rows=np.array(rows), cos=cos, tcos=tcos, norm=norm, expn=expn,
                      indense=np.isin(rows, dtop), inlex=np.isin(rows, ltop)))
print('features', time.time() - t, flush=True)

def ev(fn):
    out = {}
    for part in ('dev', 'test', 'all'):
        vals = []
        for q, f in zip(qids, feats):
            if part != 'all' and split[q] != part: continue
            s = fn(f)
            o = np.lexsort((f['rows'], -s))
            vals.append(ndcg([ids[f['rows'][j]] for j in o[:100]], data.qrels[q], 10))
        out[part] = np.mean(vals)
    return out

S = {'default cos+1.5 norm t4': lambda f: f['cos'] + 1.5 * f['norm'][(4.0, 1.0)]}
for w in W[1:3]:
    for lam in (1.5, 2.0):
        S[f'cos+{lam} norm t{w}'] = lambda f, w=w, lam=lam: f['cos'] + lam * f['norm'][w]
for F in (3, 5, 10):
    for E in (10, 20):
        for mu in (0.25, 0.5, 1.0):
            S[f'RM3 F{F} E{E} mu{mu}'] = lambda f, F=F, E=E, mu=mu: f['cos'] + 1.5 * f['norm'][(4.0, 1.0)] + mu * f['expn'][(F, E)]
for a in (0.25, 0.5):
    S[f'cos + {a} title-cos + 1.5 norm'] = lambda f, a=a: f['cos'] + a * f['tcos'] + 1.5 * f['norm'][(4.0, 1.0)]
S['max(cos,title-cos) + 1.5 norm'] = lambda f: np.maximum(f['cos'], f['tcos']) + 1.5 * f['norm'][(4.0, 1.0)]
for lam in (1.5, 2.0):
    S[f'CombMNZ (cos+{lam} norm) x channels'] = lambda f, lam=lam: (f['cos'] + lam * f['norm'][(4.0, 1.0)]) * (f['indense'].astype(float) + f['inlex'])
def gapw(f, lam, kind):
    n = f['norm'][(4.0, 1.0)]; c = f['cos']
    sn, sc = np.sort(n)[::-1], np.sort(c)[::-1]
    if kind == 'gap':
        gl, gd = sn[0] - sn[min(9, len(sn)-1)], sc[0] - sc[min(9, len(sc)-1)]
        w = lam * 2 * gl / (gl + gd + 1e-9) if gl + gd > 0 else lam
    else:  # lexical confidence = best normalised bm25
        w = lam * sn[0] / (np.median([0.35]) )
    return c + w * n
for lam in (1.0, 1.5):
    S[f'gap-weighted lam{lam}'] = lambda f, lam=lam: gapw(f, lam, 'gap')
    S[f'topnorm-weighted lam{lam}'] = lambda f, lam=lam: gapw(f, lam, 'top')
for name, fn in S.items():
    r = ev(fn)
    print(f"{name:40} dev {r['dev']:.4f} test {r['test']:.4f} all {r['all']:.4f}", flush=True)
