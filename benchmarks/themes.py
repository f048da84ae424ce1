"""Named themes against judged data: the membership rule (`NamedThemes`) and alternatives, side by side.

Development (the rule and its settings were chosen here only): the theme sets of
benchmarks/data/theme_sets.json, papers of ../shared/data/arxiv/abstracts.jsonl.gz not in the
clustering subset, truth = the theme's category is among the paper's categories. Three
scenarios per set: *closed* (every theme of the set named), *open* (every other theme named:
papers of the others belong to none) and *small* (20 draws of 25 papers and 3 named themes,
like the seed corpus). Small-corpus dev sets (`--small`, third round): the 20 draws of
benchmarks/data/small_theme_sets.json (20-60 papers of 3-5 related categories of one field,
3 named; drawn by benchmarks/small_theme_sets.py), pooled.

Test (run once the rule was fixed, `--test`): nine themes named as a user would on
../shared/data/arxiv/clustering_subset.jsonl, and the seed corpus (corpus/) against the hand
labels of benchmarks/data/seed_themes.json, through `Index.themes` on a fresh index.

    PYTHONPATH=. python benchmarks/themes.py [--small] [--test] [--per-theme 100]

Vectors come from the default embedder with the embedding cache (re-runs embed nothing).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from semsearch.themes import NamedThemes, term_counts, word_evidence

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "arxiv"
SETS = ROOT / "benchmarks" / "data" / "theme_sets.json"
SEED_LABELS = ROOT / "benchmarks" / "data" / "seed_themes.json"
SMALL_SETS = ROOT / "benchmarks" / "data" / "small_theme_sets.json"
#: The nine test themes: the clustering subset's primary categories, named as a user would.
NINE = {
    "astro-ph.GA": "galaxies",
    "cs.CL": "natural language processing",
    "cs.CR": "computer security",
    "cs.CV": "computer vision",
    "cs.GT": "game theory",
    "cs.RO": "robotics",
    "hep-ph": "particle physics",
    "math.RT": "representation theory",
    "quant-ph": "quantum physics",
}
SMALL_DRAWS, SMALL_PAPERS, SMALL_THEMES = 20, 25, 3


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    tp, fp, fn = (pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()
    per_tp, per_fp, per_fn = ((pred & truth).sum(0), (pred & ~truth).sum(0), (~pred & truth).sum(0))
    return {
        "micro": 2 * tp / max(2 * tp + fp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(tp + fn, 1),
        "macro": float(np.mean(2 * per_tp / np.maximum(2 * per_tp + per_fp + per_fn, 1))),
        "unassigned": float((~pred.any(axis=1)).mean()),
        "tp": int(tp), "fp": int(fp), "fn": int(fn),
    }


def previous_rule(x, q, ev, counts=None):
    """The rule before NamedThemes: cosine >= 0.15 and within 0.10 of the paper's best theme."""
    s = x @ q.T
    return (s >= 0.15) & (s >= s.max(axis=1, keepdims=True) - 0.10)


def zscore_rule(x, q, ev, counts=None):
    """Per-theme standardised cosine >= 1 (no expansion, no words)."""
    s = x @ q.T
    return (s - s.mean(0)) / (s.std(0) + 1e-9) >= 1.0


def best_by_cosine(margin: float):
    """NamedThemes (no word rule) with the best theme and the margin on the raw cosine to the
    expanded themes instead of the standard score (tried in the third round, not adopted)."""
    def rule(x, q, ev, counts=None):
        m = NamedThemes(lexical_min=None).fit(x, q, ev)
        s = m.scores_
        best = s.argmax(axis=1)
        th = np.array([s[best != j, j].mean() if (best != j).any() else s[:, j].mean() for j in range(s.shape[1])])
        near = s >= s.max(axis=1, keepdims=True) - margin
        return near & (s >= th) & (m.first_z_ >= m.first_pass_min)
    return rule


def named(**params):
    return lambda x, q, ev, counts: NamedThemes(**params).fit(x, q, ev, counts).members_


#: (name, rule(vectors, theme vectors, word evidence, term counts) -> (n, t) bool); the first
#: NamedThemes entry with default parameters is semsearch's rule. Rows below it vary one setting
#: from the defaults (lexical expansion included unless the row says otherwise).
RULES = [
    ("previous: cos >= 0.15 and within 0.10 of best", previous_rule),
    ("per-theme z-score >= 1", zscore_rule),
    ("NamedThemes defaults (semsearch)", named()),
    ("  no lexical expansion (3rd round)", named(expansion_weight=0.0)),
    ("  expansion_terms=3", named(expansion_terms=3)),
    ("  expansion_terms=5", named(expansion_terms=5)),
    ("  expansion_terms=20", named(expansion_terms=20)),
    ("  expansion_weight=0.5", named(expansion_weight=0.5)),
    ("  expansion_weight=2", named(expansion_weight=2.0)),
    ("  without words (word_weight=0)", named(word_weight=0.0)),
    ("  without expansion (query_weight=1e6)", named(query_weight=1e6)),
    ("  query_weight=0.5", named(query_weight=0.5)),
    ("  query_weight=2", named(query_weight=2.0)),
    ("  z_margin=0 (single best theme)", named(z_margin=0.0)),
    ("  z_margin=0.5", named(z_margin=0.5)),
    ("  z_margin=1", named(z_margin=1.0)),
    ("  first_pass_min=-inf (no gate; first version)", named(first_pass_min=-np.inf)),
    ("  first_pass_min=0", named(first_pass_min=0.0)),
    ("  first_pass_min=1", named(first_pass_min=1.0)),
    ("  lexical_min=None (no word rule; 2nd round)", named(lexical_min=None)),
    ("  lexical_min=-0.5", named(lexical_min=-0.5)),
    ("  lexical_min=0.5", named(lexical_min=0.5)),
    ("  no word rule, best by cosine, margin 0.02", best_by_cosine(0.02)),
    ("  no word rule, best by cosine, margin 0.05", best_by_cosine(0.05)),
]


def embedder(kind: str | None):
    if kind == "fake":
        import sys

        sys.path.insert(0, str(ROOT))
        from tests.conftest import FakeEmbedder

        return FakeEmbedder(dim=384)
    from semsearch.embed import CachedEmbedder, default_cache_path, make_embedder

    inner = make_embedder()
    path = default_cache_path()
    return CachedEmbedder(inner, path) if path else inner


def text(p: dict) -> str:
    return f"{p['title']}. {p['abstract']}"


def dev_papers(path: Path, categories: set[str], per_theme: int, held_out: set[str]) -> list[dict]:
    """The first per_theme papers (by id) of each category as primary, none of held_out."""
    taken: dict[str, list[dict]] = {c: [] for c in categories}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            c = p["primary_category"]
            if c in taken and p["id"] not in held_out and len(taken[c]) < per_theme:
                taken[c].append(p)
    return [p for c in sorted(taken) for p in taken[c]]


def table(title: str, rows: list[tuple[str, dict]]) -> None:
    print(f"\n{title}")
    print(f"{'rule':44} {'micro-F1':>8} {'prec.':>6} {'recall':>6} {'macro-F1':>8} {'unassigned':>10}")
    for name, r in rows:
        print(f"{name:44} {r['micro']:8.3f} {r['precision']:6.3f} {r['recall']:6.3f} {r['macro']:8.3f} "
              f"{r['unassigned']:10.1%}")


def evaluate(x, texts, papers, themes: dict[str, str], q_all: dict[str, np.ndarray]) -> list[tuple[str, dict]]:
    names = list(themes.values())
    truth = np.array([[c in p["categories"] for c in themes] for p in papers], dtype=bool)
    q = np.vstack([q_all[n] for n in names])
    ev, counts = word_evidence(texts, names), term_counts(texts)
    return [(name, scores(rule(x, q, ev, counts), truth)) for name, rule in RULES]


def pooled(runs: list[list[tuple[str, dict]]]) -> list[tuple[str, dict]]:
    """Micro figures pooled over draws (macro and unassigned averaged)."""
    out = []
    for i, (name, _) in enumerate(runs[0]):
        rs = [run[i][1] for run in runs]
        tp, fp, fn = (sum(r[k] for r in rs) for k in ("tp", "fp", "fn"))
        out.append((name, {"micro": 2 * tp / max(2 * tp + fp + fn, 1), "precision": tp / max(tp + fp, 1),
                           "recall": tp / max(tp + fn, 1), "macro": float(np.mean([r["macro"] for r in rs])),
                           "unassigned": float(np.mean([r["unassigned"] for r in rs]))}))
    return out


def develop(args, emb) -> None:
    cfg = json.loads(args.sets.read_text(encoding="utf-8"))
    held_out = {json.loads(line)["id"] for line in (args.data / "clustering_subset.jsonl").open(encoding="utf-8")}
    rng = np.random.default_rng(0)
    for set_name, themes in cfg["sets"].items():
        papers = dev_papers(args.data / "abstracts.jsonl.gz", set(themes.values()), args.per_theme, held_out)
        texts = [text(p) for p in papers]
        t = time.perf_counter()
        x = emb.encode(texts)
        q_all = dict(zip(themes, emb.encode(list(themes))))
        print(f"\n== {set_name}: {len(papers)} papers, {len(themes)} themes; embedding {time.perf_counter() - t:.0f} s")
        by_cat = {cat: name for name, cat in themes.items()}
        table("closed (every theme named)", evaluate(x, texts, papers, by_cat, q_all))
        half = dict(list(by_cat.items())[::2])
        table(f"open ({len(half)} of {len(by_cat)} themes named)", evaluate(x, texts, papers, half, q_all))
        runs = []
        for _ in range(SMALL_DRAWS if len(papers) >= 2 * SMALL_PAPERS and len(by_cat) >= SMALL_THEMES else 0):
            rows = np.sort(rng.choice(len(papers), SMALL_PAPERS, replace=False))
            pick = rng.choice(list(by_cat), SMALL_THEMES, replace=False)
            runs.append(evaluate(x[rows], [texts[i] for i in rows], [papers[i] for i in rows],
                                 {c: by_cat[c] for c in pick}, q_all))
        if runs:
            table(f"small ({SMALL_DRAWS} draws of {SMALL_PAPERS} papers, {SMALL_THEMES} themes; pooled)", pooled(runs))


def develop_small(args, emb) -> None:
    """The small-corpus dev sets: every rule on each draw, pooled; and recall split by whether
    the paper contains every word of the theme's name."""
    from small_theme_sets import read_draws  # this script's folder is on sys.path

    runs, split = [], {name: np.zeros((2, 2), dtype=int) for name, _ in RULES}
    drawn = read_draws(args.small_sets, args.data / "abstracts.jsonl.gz")
    for d, papers in drawn:
        texts = [text(p) for p in papers]
        x = emb.encode(texts)
        q_all = dict(zip(d["themes"], emb.encode(list(d["themes"]))))
        themes = {c: name for name, c in d["themes"].items()}
        runs.append(evaluate(x, texts, papers, themes, q_all))
        truth = np.array([[c in p["categories"] for c in themes] for p in papers], dtype=bool)
        q = np.vstack([q_all[n] for n in themes.values()])
        ev, counts = word_evidence(texts, list(themes.values())), term_counts(texts)
        for name, rule in RULES:
            pred = rule(x, q, ev, counts)
            for k, has in enumerate((ev >= 1, ev < 1)):
                split[name][k] += ((pred & truth & has).sum(), (truth & has).sum())
    sizes = [len(papers) for _, papers in drawn]
    table(f"small corpora ({len(drawn)} draws of {min(sizes)}-{max(sizes)} papers, 3 named themes; pooled)",
          pooled(runs))
    print(f"\n{'recall of the theme papers':44} {'with every word of the name':>28} {'without':>12}")
    for name, (has, lacks) in split.items():
        print(f"{name:44} {has[0] / max(has[1], 1):12.3f} ({has[0]}/{has[1]}) {lacks[0] / max(lacks[1], 1):8.3f} "
              f"({lacks[0]}/{lacks[1]})")


def test(args, emb) -> None:
    papers = [json.loads(line) for line in (args.data / "clustering_subset.jsonl").open(encoding="utf-8")]
    texts = [text(p) for p in papers]
    x = emb.encode(texts)
    names = list(NINE.values())
    q_all = dict(zip(names, emb.encode(names)))
    print(f"\n== test: clustering_subset.jsonl, {len(papers)} papers, nine themes: {', '.join(names)}")
    table("nine named themes", evaluate(x, texts, papers, NINE, q_all))

    from semsearch import Index, build

    labels = json.loads(SEED_LABELS.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        build([ROOT / "corpus"], Path(tmp) / "seed", embedder=emb)
        with Index.open(Path(tmp) / "seed", embedder=emb) as idx:
            groups = idx.themes(labels["themes"])
            ids = [p.id for p in idx.papers()]
    truth = np.array([[t in labels["labels"][i] for t in labels["themes"]] for i in ids], dtype=bool)
    pred = np.array([[any(m.paper.id == i for m in groups[t].papers) for t in labels["themes"]] for i in ids])
    table("seed corpus, Index.themes (semsearch's rule)", [("NamedThemes defaults (semsearch)", scores(pred, truth))])
    for t in groups:
        print(f"   {t.name} ({len(t.papers)}): " + ", ".join(f"{m.paper.display_title(30)} ({m.score:.2f})"
                                                        for m in t.papers))
    print(f"   unassigned ({len(groups.unassigned)}): " + ", ".join(p.display_title(30) for p in groups.unassigned))
    wrong = [(i, t) for k, i in enumerate(ids) for j, t in enumerate(labels["themes"]) if pred[k, j] != truth[k, j]]
    print("   disagreements with the hand labels: " + (", ".join(
        f"{i} {'+' if pred[ids.index(i), labels['themes'].index(t)] else '-'}{t}" for i, t in wrong) or "none"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with abstracts.jsonl.gz and clustering_subset.jsonl")
    ap.add_argument("--sets", type=Path, default=SETS, help="development theme sets (JSON)")
    ap.add_argument("--per-theme", type=int, default=None, help="dev papers per theme (default: theme_sets.json)")
    ap.add_argument("--small-sets", type=Path, default=SMALL_SETS, help="small-corpus dev sets (JSON)")
    ap.add_argument("--small", action="store_true", help="only the small-corpus dev sets (then --test if given)")
    ap.add_argument("--test", action="store_true", help="also run the held-out test (nine themes, seed corpus)")
    ap.add_argument("--embedder", default=None, help="'fake' for the test suite's tiny run")
    args = ap.parse_args()
    if args.per_theme is None:
        args.per_theme = json.loads(args.sets.read_text(encoding="utf-8"))["per_theme"]
    emb = embedder(args.embedder)
    print(f"machine: {platform.machine()} python {platform.python_version()}; embedder {emb.name}; one run per rule")
    if args.small:
        develop_small(args, emb)
    else:
        develop(args, emb)
    if args.test:
        test(args, emb)


if __name__ == "__main__":
    main()
