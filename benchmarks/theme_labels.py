"""Labels of discovered themes against the names a person gives them: label variants side by side.

Each arXiv category of a set is labelled as one cluster (the truth clusters, so the figures are
about labels, not clustering) against the rest of the set, and its label (the first `parts`
terms, as `AutoThemes.names_` shows them) is scored against the category's person-written name:

  cos      cosine between the embedded label (parts joined by ", ") and the embedded name
           (default embedder, embedding cache) -- the summary figure, fixed before any variant ran
  hit      share of the name's words found among the label's words ("same stem" below)
  redund.  share of labels with two parts sharing a stem (robot / robotic)
  generic  share of parts that are generic: every word of the part is in >= GENERIC_DF of the
           abstracts of the whole arXiv file (75,605; "model", "data", "learning", ...)

"Same stem" in the measure is a prefix rule independent of the labeller's folding: two words
share a stem when their common prefix is at least max(4, shorter length - 3) letters.

Dev (variants chosen here only): the two sets of benchmarks/data/theme_sets.json (papers as
benchmarks/themes.py's `dev_papers` draws them, none of the clustering subset; 22 labels) and
the 20 small draws of benchmarks/data/small_theme_sets.json (each draw's categories labelled
against each other, its 3 named ones scored; 60 labels). Summary: the mean of the two groups'
mean cosines; a variant is better when it is higher and neither the redundancy nor the
generic share rises by more than 0.02, nor the hit rate falls by more than 0.02.

Test (`--test`, once the choice was made): the nine categories of clustering_subset.jsonl as
truth clusters against the nine names; the labels of AutoThemes' own clusters of that subset
(`--vectors` .npy, else embedded) and of the seed corpus (corpus/), before and after.

    PYTHONPATH=. python benchmarks/theme_labels.py [--data ../shared/data/arxiv] [--test] [--vectors V.npy]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_theme_sets import read_draws  # noqa: E402
from themes import NINE, ROOT, SETS, SMALL_SETS, dev_papers, embedder, text  # noqa: E402

from semsearch import cluster  # noqa: E402
from semsearch.cluster import _MATH, _WORD, label_clusters, terms  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "arxiv"
#: A word held by at least this share of all arXiv abstracts is generic (fixed from the word list
#: before any variant ran: at 10% it is models, data, learning, tasks, training, systems, ...;
#: at 5% it already takes galaxies, formation, image).
GENERIC_DF = 0.10
ADJECTIVE_ENDINGS = ("al", "ic", "ive", "ous", "ar", "ary", "able", "ible", "ed")


# ---------------------------------------------------------------- the measure

def same_stem(a: str, b: str) -> bool:
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    return p >= max(4, min(len(a), len(b)) - 3)


def name_words(name: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [w for w in name.lower().replace("-", " ").split() if w not in ENGLISH_STOP_WORDS]


def part_words(part: str) -> list[str]:
    return part.lower().replace("-", " ").split()


def measure(parts: list[str], name: str, cos: float, bg: dict[str, float]) -> dict:
    words = [w for p in parts for w in part_words(p)]
    want = name_words(name)
    hit = sum(any(same_stem(w, v) for v in words) for w in want) / max(len(want), 1)
    redundant = any(same_stem(a, b) for i, p in enumerate(parts) for q in parts[i + 1:]
                    for a in part_words(p) for b in part_words(q))
    generic = sum(all(bg.get(w, 0.0) >= GENERIC_DF for w in part_words(p)) for p in parts) / max(len(parts), 1)
    return {"cos": cos, "hit": hit, "redund": float(redundant), "generic": generic}


def background(abstracts: Path) -> dict[str, float]:
    """Share of all abstracts holding each word (only words of >= 1%)."""
    df: Counter[str] = Counter()
    n = 0
    with gzip.open(abstracts, "rt", encoding="utf-8") as fh:
        for line in fh:
            p = json.loads(line)
            n += 1
            df.update({m.group().lower() for m in _WORD.finditer(_MATH.sub(" . ", text(p)))})
    return {w: c / n for w, c in df.items() if c >= 0.01 * n}


# ---------------------------------------------------------------- the labellers

def stem_key(term: str) -> str:
    return " ".join(cluster._stem(w) for w in term.split())


def variant(texts, labels, fold="plural", phrase_boost=1.0, generic=None, adjectives=True, mmr=None, emb=None,
            n_words=4, hyphens=False, endings=None):
    """label_clusters generalised by the options of the grid (fold="shipped" = cluster.label_clusters)."""
    if fold == "shipped":
        return label_clusters(texts, labels, n_words)
    stop = cluster._stop_words()
    k = max(labels) + 1
    counts = [Counter() for _ in range(k)]
    surface = [Counter() for _ in range(k)]
    key_of: dict[str, str] = {}
    for t, c in zip(texts, labels):
        ts = terms(t, stop)
        if fold in ("stem", "skip"):
            for term in ts:
                surface[c][term] += 1
        if fold == "stem":
            keys = set()
            for term in ts:
                if term not in key_of:
                    key_of[term] = stem_key(term)
                keys.add(key_of[term])
            counts[c].update(keys)
        else:
            counts[c].update(ts)
    total: Counter[str] = Counter()
    for cnt in counts:
        total.update(cnt)
    sizes = Counter(labels)
    n = len(texts)
    out = []
    for c in range(k):
        if fold == "stem":
            best: dict[str, tuple[int, str]] = {}  # most frequent surface form of each key
            for term, m in surface[c].items():
                key = key_of[term]
                best[key] = min(best.get(key, (0, "")), (-m, term)) if key in best else (-m, term)
            show = {key: t for key, (_, t) in best.items()}
        else:
            show = {t: t for t in counts[c]}
        skip = None
        if fold == "skip":  # ranking as before; a later form of a chosen stem is skipped
            skip = (surface[c], hyphens, endings)
        out.append(top(counts[c], total, sizes[c], n, n_words, show, phrase_boost, generic, adjectives, mmr, emb,
                       skip))
    return out


def top(counts, total, size, n, n_words, show, phrase_boost, generic, adjectives, mmr, emb, skip=None):
    def weight(t):
        p_in, p_all = counts[t] / max(size, 1), total[t] / max(n, 1)
        w = p_in * math.log(p_in / p_all) if p_in > p_all else 0.0
        return w * (phrase_boost if " " in t else 1.0)

    def allowed(t):
        if generic is not None and total[t] / n >= generic and counts[t] < 0.5 * total[t]:
            return False
        if not adjectives and " " not in t and show[t].endswith(ADJECTIVE_ENDINGS):
            return False
        return True

    least = max(2, math.ceil(cluster.MIN_SHARE * size)) if size > 3 else 1
    ranked = sorted((t for t in counts if counts[t] >= least and allowed(t)), key=lambda t: (-weight(t), t))
    ranked = [t for t in ranked if weight(t) > 0]
    if mmr is not None and ranked:
        pool = ranked[:20]
        vec = dict(zip(pool, emb.encode([show[t] for t in pool])))
        top_w = weight(pool[0])
        order, rest = [], list(pool)
        while rest:
            def score(t):
                sim = max((float(vec[t] @ vec[u]) for u in order), default=0.0)
                return mmr * weight(t) / top_w - (1 - mmr) * sim
            t = max(rest, key=lambda t: (score(t), -pool.index(t)))
            order.append(t)
            rest.remove(t)
        ranked = order + ranked[20:]
    fold = cluster._fold
    if skip is not None:
        fold = (lambda w: cluster._stem(w, skip[2])) if skip[2] else cluster._stem

    def words(t):
        return t.replace("-", " ").split() if skip is not None and skip[1] else t.split()

    chosen: list[str] = []
    for term in ranked:
        if any(cluster._acronym(show[term], show[c]) or cluster._acronym(show[c], show[term]) for c in chosen):
            continue
        keys = {fold(w) for w in words(term)}
        clash = [i for i, c in enumerate(chosen) if keys & {fold(w) for w in words(c)}]
        if not clash:
            if len(chosen) == n_words:
                break
            chosen.append(term)
        elif all(f" {chosen[i]} " in f" {term} " and counts[term] >= cluster.PHRASE_SHARE * counts[chosen[i]]
                 for i in clash):
            chosen[clash[0]] = term
            for i in reversed(clash[1:]):
                del chosen[i]
    if skip is not None:  # each part shown in the cluster's most frequent form of its stems
        forms = {}
        for t, m in skip[0].items():
            key = " ".join(fold(w) for w in t.split())
            forms[key] = min(forms.get(key, (0, t)), (-m, t))
        return [forms[" ".join(fold(w) for w in t.split())][1] for t in chosen]
    return [show[t] for t in chosen]


#: Round 2's longer list of endings (adds -ary, -ator, -ate, -ion, -or).
ENDINGS2 = tuple(sorted(set(cluster._ENDINGS) | {"ary", "ators", "ator", "ate", "ions", "ion", "ors", "or"},
                        key=lambda e: (-len(e), e)))


#: The grid, fixed before any figure was read: (name, options, parts shown).
GRID = [
    ("A  before (label_clusters until round 1)", dict(fold="plural"), 3),
    ("B  stem fold (robot/robotic one part)", dict(fold="stem"), 3),
    ("C  B + phrases x1.3", dict(fold="stem", phrase_boost=1.3), 3),
    ("D  B + phrases x1.6", dict(fold="stem", phrase_boost=1.6), 3),
    ("E  B + corpus generic >= 20%", dict(fold="stem", generic=0.2), 3),
    ("F  B + corpus generic >= 10%", dict(fold="stem", generic=0.1), 3),
    ("G  B + no lone adjectives", dict(fold="stem", adjectives=False), 3),
    ("H  B + MMR embeddings 0.7", dict(fold="stem", mmr=0.7), 3),
    ("I  C + E + G", dict(fold="stem", phrase_boost=1.3, generic=0.2, adjectives=False), 3),
    ("J  I + MMR embeddings 0.7", dict(fold="stem", phrase_boost=1.3, generic=0.2, adjectives=False, mmr=0.7), 3),
    ("K  A, 2 parts", dict(fold="plural"), 2),
    ("L  B, 2 parts", dict(fold="stem"), 2),
    ("M  B, 4 parts", dict(fold="stem"), 4),
    # round 2, fixed after reading round 1 only: fold at selection instead of in the counts
    ("N  A's ranking, skip a chosen stem's forms", dict(fold="skip"), 3),
    ("O  N + hyphen pieces clash (agents/multi-agent)", dict(fold="skip", hyphens=True), 3),
    ("P  O + more endings (-ary -ate -ion -or)", dict(fold="skip", hyphens=True, endings=ENDINGS2), 3),
    ("S  shipped: label_clusters now (= N)", dict(fold="shipped"), 3),
]


# ---------------------------------------------------------------- data

def dev_groups(data: Path, sets: Path, small_sets: Path) -> dict[str, list[tuple[list[str], list[int], dict[int, str]]]]:
    """{group: [(texts, cluster of each, {cluster: name scored})]}."""
    cfg = json.loads(sets.read_text(encoding="utf-8"))
    held_out = {json.loads(line)["id"] for line in (data / "clustering_subset.jsonl").open(encoding="utf-8")}
    large = []
    for themes in cfg["sets"].values():
        papers = dev_papers(data / "abstracts.jsonl.gz", set(themes.values()), cfg["per_theme"], held_out)
        cats = sorted(themes.values())
        by_cat = {c: name for name, c in themes.items()}
        large.append(([text(p) for p in papers], [cats.index(p["primary_category"]) for p in papers],
                      {i: by_cat[c] for i, c in enumerate(cats)}))
    small = []
    for d, papers in read_draws(small_sets, data / "abstracts.jsonl.gz"):
        cats = sorted(d["categories"])
        by_cat = {c: name for name, c in d["themes"].items()}
        small.append(([text(p) for p in papers], [cats.index(p["primary_category"]) for p in papers],
                      {i: by_cat[c] for i, c in enumerate(cats) if c in by_cat}))
    return {"dev sets": large, "small draws": small}


def score_group(sets, opts, parts, emb, bg, show=False) -> tuple[dict, float]:
    rows, secs = [], 0.0
    for texts, labels, names in sets:
        t = time.perf_counter()
        words = variant(texts, labels, emb=emb, **opts)
        secs += time.perf_counter() - t
        labs = {c: words[c][:parts] for c in names}
        vec = emb.encode([", ".join(labs[c]) or "-" for c in names] + [names[c] for c in names])
        m = len(names)
        for j, c in enumerate(names):
            rows.append(measure(labs[c], names[c], float(vec[j] @ vec[m + j]), bg))
            if show:
                print(f"     {names[c]:30} {' · '.join(labs[c])}")
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]} | {"cos_each": [r["cos"] for r in rows]}, secs


def interval(base: list[list[float]], other: list[list[float]], draws: int = 2000) -> tuple[float, float]:
    """95% paired bootstrap interval of the summary's change (labels resampled within each group)."""
    rng = np.random.default_rng(0)
    diffs = [np.array(o) - np.array(b) for b, o in zip(base, other)]
    out = [np.mean([d[rng.integers(0, len(d), len(d))].mean() for d in diffs]) for _ in range(draws)]
    return float(np.percentile(out, 2.5)), float(np.percentile(out, 97.5))


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"{'variant':42} {'summary':>7} | {'cos':>5} {'hit':>5} {'redund':>6} {'generic':>7} | "
          f"{'cos':>5} {'hit':>5} {'redund':>6} {'generic':>7} | {'s':>5} | change vs A (95%)")


def develop(args, emb, bg) -> None:
    groups = dev_groups(args.data, args.sets, args.small_sets)
    header("dev: summary = mean of the two groups' cos; then dev sets | small draws; s = labelling time")
    base = None
    for name, opts, parts in GRID:
        figs, secs = zip(*(score_group(sets, opts, parts, emb, bg) for sets in groups.values()))
        (a, b) = figs
        each = [a["cos_each"], b["cos_each"]]
        base = base or each
        lo, hi = interval(base, each)
        print(f"{name:42} {(a['cos'] + b['cos']) / 2:7.4f} | {a['cos']:5.3f} {a['hit']:5.2f} {a['redund']:6.2f} "
              f"{a['generic']:7.2f} | {b['cos']:5.3f} {b['hit']:5.2f} {b['redund']:6.2f} {b['generic']:7.2f} | "
              f"{sum(secs):5.1f} | {lo:+.4f}..{hi:+.4f}")
    if args.show:
        for name, opts, parts in GRID[: args.show]:
            print(f"\n  {name}")
            for sets in groups.values():
                score_group(sets, opts, parts, emb, bg, show=True)


def test(args, emb, bg) -> None:
    papers = [json.loads(line) for line in (args.data / "clustering_subset.jsonl").open(encoding="utf-8")]
    texts = [text(p) for p in papers]
    cats = sorted({p["primary_category"] for p in papers})
    NINE.update({c: c for c in cats if c not in NINE})
    truth = [([*texts], [cats.index(p["primary_category"]) for p in papers], {i: NINE[c] for i, c in enumerate(cats)})]
    header("test: nine categories of clustering_subset.jsonl as truth clusters (same measure; one group)")
    for name, opts, parts in [g for g in GRID if g[0][0] in args.test_variants]:
        f, secs = score_group(truth, opts, parts, emb, bg, show=True)
        print(f"{name:42} {f['cos']:7.3f} | {f['cos']:5.3f} {f['hit']:5.2f} {f['redund']:6.2f} {f['generic']:7.2f} | "
              f"{'':5} {'':5} {'':6} {'':7} | {secs:5.1f}")

    from semsearch.cluster import AutoThemes

    x = np.load(args.vectors) if args.vectors else emb.encode(texts)
    t = time.perf_counter()
    model = AutoThemes().fit(x, texts)
    print(f"\nAutoThemes on the subset: {model.n_themes_} themes, fit {time.perf_counter() - t:.2f} s; "
          "majority category, size, label before (A) -> shipped:")
    labels = model.labels_.tolist()
    before = variant(texts, labels, fold="plural")
    for c, nm in enumerate(model.names_):
        maj = Counter(p["primary_category"] for p, l in zip(papers, model.labels_) if l == c).most_common(1)[0][0]
        print(f"   {NINE[maj]:28} {int((model.labels_ == c).sum()):5}  {' · '.join(before[c][:3]):45} -> {nm}")
    for _ in range(2):  # second run timed
        t = time.perf_counter()
        label_clusters(texts, labels, model.n_words)
    print(f"   labelling {len(texts)} papers: {time.perf_counter() - t:.2f} s")

    from semsearch import Index, build

    with tempfile.TemporaryDirectory() as tmp:
        build([ROOT / "corpus"], Path(tmp) / "seed", embedder=emb)
        with Index.open(Path(tmp) / "seed", embedder=emb) as idx:
            groups = idx.discover_themes()
    print("\nseed corpus, discovered themes (labels shipped):")
    for g in groups:
        print(f"   ({len(g.papers)}) {g.name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with abstracts.jsonl.gz and clustering_subset.jsonl")
    ap.add_argument("--sets", type=Path, default=SETS, help="dev theme sets (JSON)")
    ap.add_argument("--small-sets", type=Path, default=SMALL_SETS, help="small-corpus dev draws (JSON)")
    ap.add_argument("--test", action="store_true", help="also the held-out test (nine categories, AutoThemes, seeds)")
    ap.add_argument("--test-only", action="store_true", help="only the held-out test")
    ap.add_argument("--test-variants", default="AS", help="grid letters scored on the test")
    ap.add_argument("--vectors", type=Path, default=None, help="clustering_subset vectors (.npy) for AutoThemes")
    ap.add_argument("--show", type=int, default=0, help="print every dev label of the first N variants")
    ap.add_argument("--embedder", default=None, help="'fake' for the test suite's tiny run")
    args = ap.parse_args()
    emb = embedder(args.embedder)
    print(f"machine: {platform.machine()} python {platform.python_version()}; embedder {emb.name}; one run per variant")
    t = time.perf_counter()
    bg = background(args.data / "abstracts.jsonl.gz")
    print(f"background: word shares of all abstracts ({time.perf_counter() - t:.0f} s); generic at >= {GENERIC_DF:.0%}")
    if not args.test_only:
        develop(args, emb, bg)
    if args.test or args.test_only:
        test(args, emb, bg)


if __name__ == "__main__":
    main()
