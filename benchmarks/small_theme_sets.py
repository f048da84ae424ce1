"""Draw the small-corpus dev sets for themes: a few dozen papers of related categories of one field.

The seed corpus is small and topical (25 ML-systems papers, three themes, some papers in none).
The theme sets of theme_sets.json are thousands of papers over broad categories; these draws
cover the seed regime instead. Each draw: one field, 3-5 of its fine-grained arXiv categories,
20-60 papers whose primary category is one of them (uneven shares, Dirichlet(1), at least 2
each), and 3 of the categories named as a user would type them (one or two words) — papers of
the others belong to none of the named themes unless cross-listed. Truth: the theme's
category is among the paper's categories (multi-label).

No paper of clustering_subset.jsonl (the held-out test) is drawn, and none of the nine test
categories (benchmarks/themes.py NINE) is used. Seeded: the same command writes the same file.

    PYTHONPATH=. python benchmarks/small_theme_sets.py [--out benchmarks/data/small_theme_sets.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "arxiv"
OUT = ROOT / "benchmarks" / "data" / "small_theme_sets.json"
DRAWS, MIN_PAPERS, MAX_PAPERS, NAMED = 20, 20, 60, 3
#: Fields and their categories, each with the name a user would type for it.
FIELDS = {
    "cs-systems": {
        "cs.DC": "distributed computing", "cs.DB": "databases", "cs.NI": "networking",
        "cs.AR": "hardware architecture", "cs.SE": "software engineering", "cs.PL": "programming languages",
    },
    "cs-learning": {
        "cs.IR": "information retrieval", "cs.SD": "audio", "cs.HC": "human-computer interaction",
        "cs.GR": "graphics", "cs.MA": "multi-agent systems", "cs.NE": "evolutionary algorithms", "cs.SI": "social networks",
    },
    "astro": {
        "astro-ph.CO": "cosmology", "astro-ph.SR": "stars", "astro-ph.EP": "exoplanets",
        "astro-ph.HE": "high-energy astrophysics", "astro-ph.IM": "instrumentation",
    },
    "math": {
        "math.AG": "algebraic geometry", "math.NT": "number theory", "math.CO": "combinatorics",
        "math.QA": "quantum groups", "math.OC": "optimization", "math.NA": "numerical analysis", "math.GR": "group theory",
    },
    "physics": {
        "physics.optics": "optics", "physics.flu-dyn": "fluid dynamics", "physics.plasm-ph": "plasma",
        "cond-mat.mtrl-sci": "materials", "physics.chem-ph": "chemical physics", "physics.ao-ph": "climate",
        "gr-qc": "gravitation",
    },
    "eess-bio": {
        "eess.SP": "signal processing", "eess.SY": "control", "eess.AS": "speech",
        "q-bio.NC": "neuroscience", "q-bio.GN": "genomics", "q-bio.BM": "proteins",
    },
}


def draw(data: Path, seed: int) -> dict:
    held_out = {json.loads(line)["id"] for line in (data / "clustering_subset.jsonl").open(encoding="utf-8")}
    wanted = {c for cats in FIELDS.values() for c in cats}
    pool: dict[str, list[str]] = {c: [] for c in wanted}
    with gzip.open(data / "abstracts.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            if p["primary_category"] in wanted and p["id"] not in held_out:
                pool[p["primary_category"]].append(p["id"])
    rng = np.random.default_rng(seed)
    fields = list(FIELDS)
    draws = []
    for d in range(DRAWS):
        field = fields[d % len(fields)]
        cats = list(FIELDS[field])
        m = int(rng.integers(3, 6))
        chosen = [str(c) for c in rng.choice(cats, m, replace=False)]
        n = int(rng.integers(MIN_PAPERS, MAX_PAPERS + 1))
        share = rng.dirichlet(np.ones(m))
        counts = np.maximum(2, np.round(share * n)).astype(int)
        ids = []
        for c, k in zip(chosen, counts):
            ids += [str(i) for i in rng.choice(pool[c], min(int(k), len(pool[c])), replace=False)]
        named = chosen[:NAMED]
        draws.append({"field": field, "categories": chosen, "themes": {FIELDS[field][c]: c for c in named},
                      "ids": sorted(ids)})
    return {
        "about": __doc__.split("\n\n")[1].replace("\n", " "),
        "seed": seed,
        "draws": draws,
    }


def read_draws(sets_path: Path, abstracts: Path) -> list[tuple[dict, list[dict]]]:
    """Each draw of a small_theme_sets.json with its papers' records from abstracts.jsonl.gz, in draw order."""
    draws = json.loads(sets_path.read_text(encoding="utf-8"))["draws"]
    want = {i for d in draws for i in d["ids"]}
    by_id = {}
    with gzip.open(abstracts, "rt", encoding="utf-8") as fh:
        for line in fh:
            p = json.loads(line)
            if p["id"] in want:
                by_id[p["id"]] = p
    return [(d, [by_id[i] for i in d["ids"]]) for d in draws]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with abstracts.jsonl.gz and clustering_subset.jsonl")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sets = draw(args.data, args.seed)
    args.out.write_text(json.dumps(sets, indent=1) + "\n", encoding="utf-8")
    sizes = [len(d["ids"]) for d in sets["draws"]]
    print(f"{len(sizes)} draws, {min(sizes)}-{max(sizes)} papers (total {sum(sizes)}) -> {args.out}")


if __name__ == "__main__":
    main()
