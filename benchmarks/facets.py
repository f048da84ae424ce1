"""Related papers by facet on CSFCube (official protocol): every ranking tried, side by side.

Each of the 50 queries (paper, facet) re-ranks its judged pool; NDCG@20 on the adjudicated grades
(0-3, linear gains, log2 discount, ideal from the whole pool) and MAP counting grade >= 2 relevant,
per facet and for all; dev = the official fold1_dev queries, test = fold1_test (evaluation_splits.json; fold2 is the
same two halves swapped). Settings are chosen on dev; test is reported beside it, and all 50.

Sentences are split and labelled by semsearch.facets (what the product does); the release's own
sentence split and labels (hand-corrected for query papers) are reported as an oracle reference.
The index is built once (no merging: one paper per record) with the bundled model.

    PYTHONPATH=. python benchmarks/facets.py [--work DIR] [--data ../shared/data/csfcube]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from semsearch import Index
from semsearch.builder import build_records
from semsearch.embed import CachedEmbedder, default_cache_path
from semsearch.facets import (
    DOC_WEIGHT,
    FACETS,
    LEXICAL_WEIGHT,
    label_roles,
    maxsim,
    predict_roles,
    split_sentences,
)
from semsearch.fusion import distinctive_terms, normalised_bm25
from semsearch.ingest import RawRecord
from semsearch.store import lexical

ROOT = Path(__file__).resolve().parents[1]
LABEL = {"background_label": "background", "objective_label": "background", "method_label": "method",
         "result_label": "result", "other_label": "other"}


def ndcg_at(grades: list[int], ideal: list[int], k: int = 20) -> float:
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(grades[:k]))
    best = sorted(ideal, reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(best))
    return dcg / idcg if idcg else 0.0


def average_precision(grades: list[int]) -> float | None:
    rel = [g >= 2 for g in grades]
    if not any(rel):
        return None
    hits, total = 0, 0.0
    for i, r in enumerate(rel):
        if r:
            hits += 1
            total += hits / (i + 1)
    return total / sum(rel)


def role_features(vectors: np.ndarray) -> np.ndarray:
    n = len(vectors)
    pos = np.array([[i / max(n - 1, 1), i == 0, i == n - 1, min(n, 20) / 20] for i in range(n)], dtype=np.float32)
    return np.hstack([vectors, pos])


def crossfit_roles(papers, sents, vec, query_ids):
    """Roles from a logistic regression on sentence vector + position, trained on the release's labels
    of the *other* half of the papers (query papers never trained on): what a classifier shipped
    with the product would do on an unseen corpus."""
    import hashlib

    from sklearn.linear_model import LogisticRegression

    half = {p: int(hashlib.sha1(p.encode()).hexdigest(), 16) % 2 for p in papers}
    data = {0: ([], []), 1: ([], [])}
    for pid, p in papers.items():
        if pid in query_ids:
            continue
        x = role_features(np.vstack([vec[s] for s in p["abstract"]]))
        for xi, lab in zip(x, p["pred_labels"]):
            if LABEL[lab] != "other":
                data[half[pid]][0].append(xi)
                data[half[pid]][1].append(FACETS.index(LABEL[lab]))
    models = {h: LogisticRegression(C=1.0, max_iter=2000).fit(np.array(data[1 - h][0]), data[1 - h][1]) for h in (0, 1)}
    out = {}
    for pid in papers:
        x = role_features(np.vstack([vec[s] for s in sents[pid]]))
        out[pid] = [FACETS[i] for i in models[half[pid]].predict(x)]
    return out


def load(data: Path):
    papers = {p["paper_id"]: p for p in map(json.loads, (data / "abstracts-csfcube.reconstructed.jsonl").open())}
    queries = []
    for line in (data / "queries-release.csv").open().read().splitlines()[1:]:
        pid, facet = line.split(",")[:2]
        queries.append((pid, facet))
    qrels = {f: json.load((data / f"test-pid2anns-csfcube-{f}.json").open()) for f in FACETS}
    splits = json.load((data / "evaluation_splits.json").open())
    return papers, queries, qrels, splits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "csfcube")
    ap.add_argument("--work", type=Path, default=None, help="keep the index here (built once)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory()
        args.work = Path(tmp.name)
    papers, queries, qrels, splits = load(args.data)
    ids = list(papers)
    path = args.work / "csfcube_idx"
    if not path.exists():
        recs = [RawRecord(" ".join(p["abstract"]), "csfcube", i + 1, title=p["title"], id=pid)
                for i, (pid, p) in enumerate(papers.items())]
        build_records(recs, path, dedupe=False, index_type="flat")
    t = time.perf_counter()
    with Index.open(path) as idx:
        row_of = {p.id: i for i, p in enumerate(idx.papers())}
        doc = idx.vectors([row_of[i] for i in ids])
        cache = default_cache_path()
        embedder = CachedEmbedder(idx.embedder, cache) if cache else idx.embedder
        # two sentence sets: ours (split + labelled by semsearch.facets) and the release's (oracle)
        ours = {pid: split_sentences(" ".join(p["abstract"])) for pid, p in papers.items()}
        ours_roles = {pid: label_roles(s) for pid, s in ours.items()}
        theirs = {pid: p["abstract"] for pid, p in papers.items()}
        theirs_roles = {pid: [LABEL[x] for x in p["pred_labels"]] for pid, p in papers.items()}
        texts = sorted({s for v in ours.values() for s in v} | {s for v in theirs.values() for s in v})
        vec = dict(zip(texts, embedder.encode(texts, progress=True)))
    print(f"{len(ids)} papers, {len(texts)} distinct sentences, vectors in {time.perf_counter() - t:.0f} s")
    doc_of = dict(zip(ids, doc))
    clf_roles = crossfit_roles(papers, ours, vec, {q for q, _ in queries})
    model = Index.open(path).manifest.model
    shipped_roles = {pid: predict_roles(np.vstack([vec[s] for s in ss]), model) or label_roles(ss)
                     for pid, ss in ours.items()}
    con = Index.open(path)._store.connection
    mlt_cache: dict = {}

    def mlt(qpid, cands, n_terms, text=None):
        """"More like this": BM25 of the reference's n_terms most distinctive words / their IDF mass."""
        key = (qpid, n_terms, text, tuple(cands))  # each facet of a paper has its own pool
        if key not in mlt_cache:
            p = papers[qpid]
            mass = distinctive_terms(con, text or p["title"] + ". " + " ".join(p["abstract"]), n_terms)
            got = lexical.scores(con, " ".join(mass.terms), [row_of[c] for c in cands], (1.0, 1.0))
            mlt_cache[key] = normalised_bm25(np.array([got.get(row_of[c], 0.0) for c in cands]), mass)
        return mlt_cache[key]

    def cosine(q, cands, vector=None):
        return np.array([doc_of[x] @ (doc_of[q] if vector is None else vector) for x in cands])

    def smoothed(q, m, beta):
        """Neighbourhood smoothing: the reference's vector moved towards the mean of its m nearest papers."""
        sims = doc @ doc_of[q]
        sims[ids.index(q)] = -9
        moved = doc_of[q] + beta * doc[np.argsort(-sims)[:m]].mean(axis=0)
        return moved / np.linalg.norm(moved)

    def facet_text(q, facet):
        return " ".join([s for s, r in zip(ours[q], ours_roles[q]) if r == facet] or ours[q])

    def pool_scores(qpid, facet, cands, sents, roles, doc_weight, cand_roles_only=False, all_sentences=False):
        qs = [s for s, r in zip(sents[qpid], roles[qpid]) if all_sentences or r == facet]
        fallback = not qs
        if fallback:
            qs = sents[qpid]
        q = np.vstack([vec[s] for s in qs])
        owner, cvecs = [], []
        for j, c in enumerate(cands):
            keep = [s for s, r in zip(sents[c], roles[c]) if not cand_roles_only or r == facet] or sents[c]
            owner += [j] * len(keep)
            cvecs += [vec[s] for s in keep]
        facet_sim = maxsim(q, np.vstack(cvecs), np.asarray(owner), len(cands))
        cos = np.array([doc_of[c] @ doc_of[qpid] for c in cands])
        return (1 - doc_weight) * facet_sim + doc_weight * cos

    settings = {"plain MiniLM cosine (whole abstract)": lambda q, f, c: np.array([doc_of[x] @ doc_of[q] for x in c])}
    for w in (0.0, 0.3, 0.5, 0.7):
        settings[f"facet max-sim (ours), doc weight {w}"] = (
            lambda q, f, c, w=w: pool_scores(q, f, c, ours, ours_roles, w))
    for w in (0.3, 0.5):
        settings[f"facet vs same-role sentences (ours), doc weight {w}"] = (
            lambda q, f, c, w=w: pool_scores(q, f, c, ours, ours_roles, w, cand_roles_only=True))
    for w in (0.3, 0.5, 0.7):
        settings[f"no facet: all-sentence max-sim, doc weight {w}"] = (
            lambda q, f, c, w=w: pool_scores(q, f, c, ours, ours_roles, w, all_sentences=True))
    for w in (0.5, 0.7):
        settings[f"classifier labels (cross-fitted), doc weight {w}"] = (
            lambda q, f, c, w=w: pool_scores(q, f, c, ours, clf_roles, w))
        settings[f"classifier labels vs same-role sentences, doc weight {w}"] = (
            lambda q, f, c, w=w: pool_scores(q, f, c, ours, clf_roles, w, cand_roles_only=True))
    for w in (0.3, 0.5):
        settings[f"oracle: release's labels, doc weight {w}"] = (
            lambda q, f, c, w=w: pool_scores(q, f, c, theirs, theirs_roles, w))

    # `similar` without a facet: the "more like this" lexical channel and neighbourhood smoothing
    for t_ in (10, 15, 20, 30, 45, 64):
        for lam in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0):
            mark = " (best on dev; not shipped: below cosine through the product)" if (t_, lam) == (10, 1.0) else ""
            settings[f"cos + {lam} x more-like-this BM25, {t_} terms{mark}"] = (
                lambda q, f, c, t_=t_, lam=lam: cosine(q, c) + lam * mlt(q, c, t_))
    for m in (3, 5, 10, 20):
        for beta in (0.5, 1.0):
            settings[f"neighbourhood smoothing m={m} b={beta}"] = (
                lambda q, f, c, m=m, beta=beta: cosine(q, c, smoothed(q, m, beta)))
    for m in (5, 10):
        for lam in (0.5, 1.0):
            settings[f"smoothing m={m} b=0.5 + {lam} x more-like-this, 30 terms"] = (
                lambda q, f, c, m=m, lam=lam: cosine(q, c, smoothed(q, m, 0.5)) + lam * mlt(q, c, 30))
    # `--facet`: facet max-sim + the lexical channel (terms of the whole reference or of its facet
    # sentences), rule labels, then the shipped classifier's labels
    for same in (True, False):
        for w in (0.5, 0.7):
            for src in ("whole", "facet"):
                for t_ in (10, 20):
                    for lam in (0.5, 1.0, 1.5):
                        settings[f"rules, {'same-role' if same else 'all cand.'} w{w} + {lam} x mlt[{src}] {t_} terms"] = (
                            lambda q, f, c, same=same, w=w, src=src, t_=t_, lam=lam:
                            pool_scores(q, f, c, ours, ours_roles, w, cand_roles_only=same)
                            + lam * mlt(q, c, t_, facet_text(q, f) if src == "facet" else None))
    for w in (0.5, 0.7):
        for lam in (0.0, 0.5, 1.0):
            mark = " (semsearch --facet)" if (w, lam) == (DOC_WEIGHT, LEXICAL_WEIGHT) else ""
            settings[f"shipped classifier, same-role w{w} + {lam} x mlt 10 terms{mark}"] = (
                lambda q, f, c, w=w, lam=lam: pool_scores(q, f, c, ours, shipped_roles, w, cand_roles_only=True)
                + lam * mlt(q, c, 10))

    product = Index.open(path)

    def through_product(qpid, facet, cands, use_facet):
        hits = product.similar(qpid, len(ids), facet=facet if use_facet else None)
        got = {h.id: -h.rank for h in hits}
        return np.array([got.get(c, -1e9) for c in cands], dtype=np.float64)

    settings["product path: Index.similar(ID, k=all, facet=F)"] = lambda q, f, c: through_product(q, f, c, True)
    settings["product path: Index.similar(ID, k=all)"] = lambda q, f, c: through_product(q, f, c, False)
    results = {}
    for name, fn in settings.items():
        per = {}
        for qpid, facet in queries:
            ann = qrels[facet][qpid]
            cands, grades = ann["cands"], ann["relevance_adju"]
            scores = fn(qpid, facet, cands)
            order = sorted(range(len(cands)), key=lambda i: (-scores[i], cands[i]))
            ranked = [grades[i] for i in order]
            per[f"{qpid}_{facet}"] = (ndcg_at(ranked, grades, 20), average_precision(ranked))
        results[name] = per

    def mean(keys, per, m):
        vals = [per[k][m] for k in keys if per[k][m] is not None]
        return sum(vals) / len(vals) if vals else float("nan")

    print(f"{'setting':72} {'dev NDCG@20':>11} {'test NDCG@20':>12} | NDCG@20 all: bg / method / result / all | MAP all"
          " | dev/test per facet")
    table = {}
    for name, per in results.items():
        row = {g: {m: mean([k for k in per if g == "all" or k.endswith(g)], per, i)
                   for i, m in enumerate(("ndcg@20", "map"))}
               for g in (*FACETS, "all")}
        row["dev"] = mean(splits["all"]["fold1_dev"], per, 0)
        row["test"] = mean(splits["all"]["fold1_test"], per, 0)
        for g in FACETS:
            row[g]["dev"] = mean(splits[g]["fold1_dev"], per, 0)
            row[g]["test"] = mean(splits[g]["fold1_test"], per, 0)
        table[name] = row
        print(f"{name:72} {row['dev']:11.4f} {row['test']:12.4f} | "
              + " / ".join(f"{row[g]['ndcg@20']:.4f}" for g in (*FACETS, "all"))
              + " | " + " / ".join(f"{row[g]['map']:.4f}" for g in (*FACETS, "all"))
              + " | " + " ".join(f"{row[g]['dev']:.3f}/{row[g]['test']:.3f}" for g in FACETS))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
