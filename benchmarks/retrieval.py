"""Retrieval quality: dense, lexical and every fusion tried, side by side, on judged and descriptive queries.

Three query sets, each split into dev (where settings are chosen) and test (held out):
- SciFact (BEIR, 300 judged test claims; dev = even query ids' position, test = odd), lexical-heavy;
- benchmarks/data/descriptive_arxiv.jsonl: 44 known-item descriptions of arXiv papers written without
  their distinctive words, over the 4,500 papers of ../shared/data/arxiv/clustering_subset.jsonl;
- benchmarks/data/descriptive_seeds.jsonl: 30 such descriptions of the 25 seed papers (corpus/).

Every setting runs on one index per corpus with the same query vectors, so figures differ only by
ranking method. Indexes are built once under --work (default: a temporary directory).

    PYTHONPATH=. python benchmarks/retrieval.py [--data ../shared/data] [--work DIR] [--sets scifact,arxiv,seeds]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.builder import build, build_records
from semsearch.evaluate import load_beir, mrr, ndcg, recall
from semsearch.fusion import LEXICAL_WEIGHT, TITLE_WEIGHTS, lexical_mass, normalised_bm25, prf_query
from semsearch.query import ALPHA, fuse, rrf
from semsearch.store import lexical

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
N = 100  # candidates from each channel


@dataclass
class Features:
    """One query's candidates (union of both channels' top N) with every channel's evidence."""

    rows: np.ndarray  # (c,) int64
    cos: np.ndarray  # (c,) cosine to the query
    bm25: dict  # weights -> (c,) BM25 (0 where no term matched)
    norm: dict  # weights -> (c,) BM25 / IDF mass
    dense_top: list  # [(row, cos)] dense top N
    lex_top: dict  # weights -> [(row, bm25)] lexical top N
    qvec: np.ndarray
    vecs: np.ndarray  # (c, dim) candidate vectors
    sent: np.ndarray  # (c,) best cosine of the query with one sentence of the paper (top RERANK only, else -1)


WEIGHTS = ((1.0, 1.0), (2.0, 1.0), (4.0, 1.0))


RERANK = 30  # candidates whose sentences are compared with the query (sentence max-sim settings)


def collect(idx: Index, texts: list[str], sentences: bool = True) -> list[Features]:
    from semsearch.embed import CachedEmbedder, default_cache_path
    from semsearch.facets import split_sentences

    con = idx._store.connection
    cache = default_cache_path()
    embedder = CachedEmbedder(idx.embedder, cache) if cache else idx.embedder
    qv = idx.embed(texts)
    dense = idx.search_vectors(qv, N)
    out = []
    for i, q in enumerate(texts):
        dtop = [(int(r), float(s)) for r, s in zip(dense.rows[i], dense.scores[i]) if r >= 0]
        ltop = {w: lexical.search(con, q, N, weights=w) for w in WEIGHTS}
        rows = sorted({r for r, _ in dtop} | {r for w in WEIGHTS for r, _ in ltop[w]})
        vecs = idx.vectors(rows)
        mass = lexical_mass(con, q)
        bm, nm = {}, {}
        for w in WEIGHTS:
            got = dict(lexical.search(con, q, len(rows), rows=rows, weights=w))
            bm[w] = np.array([got.get(r, 0.0) for r in rows], dtype=np.float32)
            nm[w] = normalised_bm25(bm[w], mass)
        cos = vecs @ qv[i]
        sent = np.full(len(rows), -1.0, dtype=np.float32)
        if sentences:
            top = np.argsort(-(cos + nm[(1.0, 1.0)]), kind="stable")[:RERANK]
            papers = idx._store.by_rows([rows[j] for j in top])
            for j in top:
                ss = split_sentences(papers[rows[j]].abstract) or [papers[rows[j]].abstract]
                sent[j] = float((embedder.encode(ss) @ qv[i]).max())
        out.append(Features(np.array(rows), cos, bm, nm, dtop, ltop, qv[i], vecs, sent))
    return out


def ranked(rows, scores):
    order = np.lexsort((rows, -scores))
    return [int(rows[i]) for i in order]


def z(x):
    return (x - x.mean()) / (x.std() + 1e-9)


def settings() -> dict:
    """name -> f(Features) -> ranked rows. Every setting tried is here."""
    s = {
        "dense (cosine)": lambda f: [r for r, _ in f.dense_top],
        "lexical (BM25, title 1 abstract 1)": lambda f: [r for r, _ in f.lex_top[(1.0, 1.0)]],
        "lexical (BM25, title 2)": lambda f: [r for r, _ in f.lex_top[(2.0, 1.0)]],
        "old hybrid: min-max a=0.5 (main)": lambda f: [r for r, _ in fuse(f.dense_top, f.lex_top[(1.0, 1.0)], ALPHA)],
        "RRF k=60": lambda f: [r for r, _ in rrf([[r for r, _ in f.dense_top], [r for r, _ in f.lex_top[(1.0, 1.0)]]])],
    }
    # min-max over the union with full evidence (each candidate's real cosine and BM25)
    def mm(x):
        return (x - x.min()) / (x.max() - x.min() + 1e-9)

    for a in (0.5, 0.7):
        s[f"min-max over union a={a}"] = lambda f, a=a: ranked(f.rows, a * mm(f.cos) + (1 - a) * mm(f.bm25[(1.0, 1.0)]))
    for a in (0.5, 0.7):
        s[f"z-score over union a={a}"] = lambda f, a=a: ranked(f.rows, a * z(f.cos) + (1 - a) * z(f.bm25[(1.0, 1.0)]))
    for w in WEIGHTS:
        for lam in (0.5, 1.0, 1.5, 2.0, 3.0):
            chosen = " (semsearch hybrid)" if (w, lam) == (TITLE_WEIGHTS, LEXICAL_WEIGHT) else ""
            s[f"cos + {lam} x BM25/IDF-mass, title {w[0]:g}{chosen}"] = (
                lambda f, w=w, lam=lam: ranked(f.rows, f.cos + lam * f.norm[w]))
    for lam in (1.0, 1.5, 2.0):
        for beta in (0.5, 1.0):
            def prf(f, lam=lam, beta=beta):
                first = f.cos + lam * f.norm[(1.0, 1.0)]
                top = np.argsort(-first)[:3]
                q2 = prf_query(f.qvec, f.vecs[top], beta)
                return ranked(f.rows, f.vecs @ q2 + lam * f.norm[(1.0, 1.0)])

            s[f"cos + {lam} x BM25/mass, dense PRF b={beta} (top 3)"] = prf
    for lam in (1.0, 1.5):
        for mu in (0.5, 1.0):
            def sentence(f, lam=lam, mu=mu):
                base = f.cos + lam * f.norm[(1.0, 1.0)]
                top = f.sent > -1  # the RERANK best by base: re-ranked, the rest keep their order below
                score = np.where(top, base + mu * f.sent + 10.0, base)
                return ranked(f.rows, score)

            s[f"cos + {lam} x BM25/mass, top {RERANK} + {mu} x sentence max-sim"] = sentence
    return s


def metrics(runs: dict, judged: dict, qids: list) -> dict:
    """nDCG@10, Recall@100, MRR@10, found@10 (share of queries with a relevant paper in the top 10)."""
    n = len(qids)
    return {
        "ndcg@10": sum(ndcg(runs[q], judged[q], 10) for q in qids) / n,
        "recall@100": sum(recall(runs[q], judged[q], 100) for q in qids) / n,
        "mrr@10": sum(mrr(runs[q], judged[q], 10) for q in qids) / n,
        "found@10": sum(mrr(runs[q], judged[q], 10) > 0 for q in qids) / n,
        "n": n,
    }


def by_half(runs: dict, judged: dict, split: dict, qids: list) -> dict:
    """`metrics` of each run on the dev half, the test half and all queries: {run: {part: metrics}}."""
    return {key: {part: metrics(run, judged, [q for q in qids if part == "all" or split[q] == part])
                  for part in ("dev", "test", "all")} for key, run in runs.items()}


PRIMARY = (("SciFact", "ndcg@10"), ("descriptive arXiv", "mrr@10"), ("descriptive seeds", "mrr@10"))


def print_halves(table: dict, width: int) -> None:
    """One line per setting: each set's primary metric, dev / test / all ({setting: {set: by_half row}})."""
    print(f"{'setting':{width}} | SciFact nDCG@10 dev/test/all | descriptive arXiv MRR@10 | descriptive seeds MRR@10")
    for key, row in table.items():
        print(f"{key:{width}}" + "".join(f" | {'/'.join(format(row[n][p][m], '.4f') for p in ('dev', 'test', 'all'))}"
                                         for n, m in PRIMARY))


EMBEDDER = None  # None: the bundled model; the test suite passes --embedder fake


def build_sets(work: Path, which: list[str], data_dir: Path = DATA) -> dict:
    """name -> (index path, {qid: text}, {qid: {doc id: grade}}, {qid: split})."""
    sets = {}
    if "scifact" in which:
        data = load_beir(data_dir / "scifact")
        path = work / "scifact_idx"
        if not path.exists():
            build_records(data.records, path, dedupe=False, index_type="flat", embedder=EMBEDDER)
        qids = list(data.qrels)
        split = {q: "dev" if i % 2 == 0 else "test" for i, q in enumerate(qids)}
        sets["SciFact"] = (path, {q: data.queries[q] for q in qids}, data.qrels, split)
    if "arxiv" in which:
        path = work / "arxiv4500_idx"
        if not path.exists():
            build([data_dir / "arxiv" / "clustering_subset.jsonl"], path, dedupe=False, index_type="flat",
                  embedder=EMBEDDER)
        sets["descriptive arXiv"] = _descriptive(path, ROOT / "benchmarks" / "data" / "descriptive_arxiv.jsonl")
    if "seeds" in which:
        path = work / "seed_idx"
        if not path.exists():
            build([ROOT / "corpus"], path, index_type="flat", embedder=EMBEDDER)
        sets["descriptive seeds"] = _descriptive(path, ROOT / "benchmarks" / "data" / "descriptive_seeds.jsonl")
    return sets


def _descriptive(path: Path, file: Path):
    items = [json.loads(line) for line in file.open()]
    queries = {f"d{i}": it["query"] for i, it in enumerate(items)}
    judged = {f"d{i}": {it["id"]: 1} for i, it in enumerate(items)}
    split = {f"d{i}": it["split"] for i, it in enumerate(items)}
    return path, queries, judged, split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="keep the benchmark indexes here (built once)")
    ap.add_argument("--sets", default="scifact,arxiv,seeds")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data directory (scifact/, arxiv/)")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    ap.add_argument("--chosen", type=float, default=LEXICAL_WEIGHT, help="lexical weight of the fused score calibrated")
    ap.add_argument("--calibration-only", action="store_true", help="skip the ranking table")
    ap.add_argument("--embedder", default=None, help="'fake' for the test suite's tiny run")
    args = ap.parse_args()
    if args.embedder == "fake":
        global EMBEDDER
        from tests.conftest import FakeEmbedder

        EMBEDDER = FakeEmbedder()
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory()
        args.work = Path(tmp.name)
    args.work.mkdir(parents=True, exist_ok=True)
    sets = build_sets(args.work, args.sets.split(","), args.data)
    table = {}
    for name, (path, queries, judged, split) in ({} if args.calibration_only else sets).items():
        with Index.open(path, embedder=EMBEDDER) as idx:
            ids = [p.id for p in idx.papers()]
            qids = list(queries)
            t = time.perf_counter()
            feats = collect(idx, [queries[q] for q in qids])
            print(f"{name}: {len(ids)} papers, {len(qids)} queries; features in {time.perf_counter() - t:.1f} s")
        for setting, f in settings().items():
            runs = {q: [ids[r] for r in f(x)] for q, x in zip(qids, feats)}
            table.setdefault(setting, {})[name] = {
                part: metrics(runs, judged, [q for q in qids if part == "all" or split[q] == part])
                for part in ("dev", "test", "all")
            }
    print(f"machine: {platform.machine()} python {platform.python_version()}")
    names = list(sets)
    head = f"{'setting':62}" + "".join(f" | {n[:22]:>22} dev/test" for n in names) + " | mean of dev"
    print(head)
    for setting, row in table.items():
        cells, devs = [], []
        for n in names:
            key = "ndcg@10" if n == "SciFact" else "mrr@10"
            cells.append(f" | {key} {row[n]['dev'][key]:.4f}/{row[n]['test'][key]:.4f}")
            devs.append(row[n]["dev"][key])
        print(f"{setting:62}" + "".join(cells) + f" | {np.mean(devs):.4f}")
    print("\nall queries (dev + test): nDCG@10 / Recall@100 / MRR@10 / found@10")
    for setting, row in table.items():
        if setting.startswith(("dense", "lexical (BM25, title 1", "old hybrid")) or "semsearch hybrid" in setting:
            print(f"{setting:62}" + "".join(
                f" | {n[:12]:>12} "
                + " / ".join(f"{row[n]['all'][m]:.4f}" for m in ("ndcg@10", "recall@100", "mrr@10", "found@10"))
                for n in names))
    calibration = calibrate(sets, args.chosen) if len(sets) > 1 else {}
    if args.json:
        args.json.write_text(json.dumps({"ranking": table, "calibration": calibration}, indent=1))


def top_scores(f: Features, lam: float, w=TITLE_WEIGHTS) -> dict:
    """The best paper's score under each scoring whose cross-query meaning is compared."""
    mm = fuse(f.dense_top, f.lex_top[(1.0, 1.0)], ALPHA)
    return {
        "old hybrid (min-max)": mm[0][1] if mm else 0.0,
        "dense cosine": f.dense_top[0][1] if f.dense_top else 0.0,
        "new fused (semsearch hybrid)": float((f.cos + lam * f.norm[w]).max()),
    }


def calibrate(sets: dict, lam: float) -> dict:
    """Does the best score say whether the corpus holds an answer? Positives: in-domain queries whose
    best paper (new fused ranking) is judged relevant; negatives: every query run against the other
    corpora (biomedical claims on arXiv physics/CS/maths and on ML-systems seeds, and so on). The
    threshold is chosen on dev queries (max balanced accuracy) and scored on test queries."""
    pos = {"dev": [], "test": []}
    neg = {"dev": [], "test": []}
    for name, (path, queries, judged, split) in sets.items():
        with Index.open(path, embedder=EMBEDDER) as idx:
            ids = [p.id for p in idx.papers()]
            for other, (_, oq, ojudged, osplit) in sets.items():
                qids = list(oq)
                feats = collect(idx, [oq[q] for q in qids], sentences=False)
                for q, f in zip(qids, feats):
                    scores = top_scores(f, lam)
                    if other == name:
                        best = ids[int(f.rows[np.argmax(f.cos + lam * f.norm[TITLE_WEIGHTS])])]
                        if ojudged[q].get(best, 0) > 0:
                            pos[osplit[q]].append(scores)
                    else:
                        neg[osplit[q]].append(scores)
    out = {}
    print(f"\nscore calibration: positives (best paper judged relevant) dev {len(pos['dev'])} test {len(pos['test'])}; "
          f"negatives (queries with no answer in the corpus) dev {len(neg['dev'])} test {len(neg['test'])}")
    print(f"{'top-1 score':36} {'AUC test':>8} {'pos median':>10} {'neg median':>10} {'threshold':>9} "
          f"{'match|pos test':>14} {'no-match|neg test':>17}")
    for kind in pos["dev"][0]:
        pd_, nd = np.array([p[kind] for p in pos["dev"]]), np.array([n[kind] for n in neg["dev"]])
        pt, nt = np.array([p[kind] for p in pos["test"]]), np.array([n[kind] for n in neg["test"]])
        grid = np.unique(np.round(np.r_[pd_, nd], 3))
        bal = [((pd_ >= t).mean() + (nd < t).mean()) / 2 for t in grid]
        t = float(grid[int(np.argmax(bal))])
        auc = float((pt[:, None] > nt[None, :]).mean() + 0.5 * (pt[:, None] == nt[None, :]).mean())
        out[kind] = {"auc_test": auc, "threshold": t, "match_given_pos_test": float((pt >= t).mean()),
                     "nomatch_given_neg_test": float((nt < t).mean()), "pos_median": float(np.median(pt)),
                     "neg_median": float(np.median(nt))}
        print(f"{kind:36} {auc:8.3f} {np.median(pt):10.3f} {np.median(nt):10.3f} {t:9.3f} "
              f"{(pt >= t).mean():14.3f} {(nt < t).mean():17.3f}")
    return out


if __name__ == "__main__":
    main()
