"""Train the sentence-role classifier shipped as semsearch/roles.json, without any hand labels.

Weak supervision then self-training: computer-science arXiv abstracts (primary category cs.*,
2,000 drawn with seed 0 from ../shared/data/arxiv/abstracts.jsonl.gz, abstracts of 3+ sentences)
are split into sentences and labelled by the position and cue-phrase rules of
`semsearch.facets.label_roles`; a logistic regression (C=0.1) on each sentence's vector from the
bundled model plus its position learns them; a second regression learns the first one's confident
predictions (probability > 0.7). The classifier generalises the rules through the embedding: a
sentence without a cue word gets the role of sentences that read like it. CSFCube's labels are
never used (they are CC BY-NC); benchmarks/facets.py measures the result on CSFCube.

    PYTHONPATH=. python benchmarks/train_roles.py [--data ../shared/data/arxiv/abstracts.jsonl.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from semsearch.embed import DEFAULT_MODEL, CachedEmbedder, default_cache_path, make_embedder
from semsearch.facets import FACETS, ROLE_MODEL_FILE, label_roles, position_features, split_sentences

ROOT = Path(__file__).resolve().parents[1]
PAPERS, SEED, C, CONFIDENT = 2000, 0, 0.1, 0.7


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "arxiv" / "abstracts.jsonl.gz")
    ap.add_argument("--out", type=Path, default=ROLE_MODEL_FILE)
    args = ap.parse_args()
    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        cs = [r for r in map(json.loads, f) if (r.get("primary_category") or "").startswith("cs.")]
    random.Random(SEED).shuffle(cs)
    texts, labels, feats = [], [], []
    for r in cs[:PAPERS]:
        ss = split_sentences(r["abstract"])
        if len(ss) < 3:
            continue
        texts += ss
        labels += [FACETS.index(x) for x in label_roles(ss)]
        feats.append(position_features(len(ss)))
    embedder = make_embedder(DEFAULT_MODEL)
    cache = default_cache_path()
    t = time.perf_counter()
    vectors = (CachedEmbedder(embedder, cache) if cache else embedder).encode(texts, progress=True)
    print(f"{len(cs)} cs papers, {PAPERS} drawn, {len(texts)} sentences; vectors in {time.perf_counter() - t:.0f} s")
    x, y = np.hstack([vectors, np.vstack(feats)]), np.array(labels)
    first = LogisticRegression(C=C, max_iter=3000).fit(x, y)
    proba = first.predict_proba(x)
    keep = proba.max(axis=1) > CONFIDENT
    second = LogisticRegression(C=C, max_iter=3000).fit(x[keep], proba.argmax(axis=1)[keep])
    print(f"rule labels {np.bincount(y, minlength=3).tolist()}; round 1 agrees with them on "
          f"{(first.predict(x) == y).mean():.3f}; round 2 trained on {keep.sum()} confident sentences, agrees "
          f"{(second.predict(x) == y).mean():.3f}")
    args.out.write_text(json.dumps({
        "format": 1,
        "model": DEFAULT_MODEL,
        "dim": int(vectors.shape[1]),
        "classes": list(FACETS),
        "features": "sentence vector, then position: relative, is first, is last, relative squared",
        "coef": [[round(float(v), 6) for v in row] for row in second.coef_],
        "intercept": [round(float(v), 6) for v in second.intercept_],
        "trained_on": f"{len(texts)} sentences of {PAPERS} cs arXiv abstracts (seed {SEED}), rule labels, "
                      f"self-trained (C={C}, confident > {CONFIDENT})",
        "sklearn": sklearn.__version__,
    }) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
