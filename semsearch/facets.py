"""Facets: an abstract's sentences, each labelled by the role it plays (background, method, result),
and related-paper scores that compare papers facet to facet.

A paper is related *by its method* when what it does resembles what the reference does, even if
the two study different problems; whole-abstract vectors mix the three roles, so they cannot tell.
Here each sentence gets its own vector and a role, and the facet score of a candidate is how well
its sentences of that role cover the reference's sentences of that role (mean over those of the
best cosine, "max-sim"), blended with the whole-abstract cosine and the "more like this" BM25 of
the reference's most distinctive words (semsearch.fusion). Roles come from a small classifier on
each sentence's vector and position (`predict_roles`, roles.json) trained without hand labels on
arXiv abstracts labelled by position and cue-phrase rules (`label_roles`, the fallback for other
models; benchmarks/train_roles.py); every variant tried is in docs/benchmarks.md (benchmarks/facets.py).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    import numpy as np

FACETS = ("background", "method", "result")
#: Blend of the facet max-sim and the whole-abstract cosine: score = (1 - DOC_WEIGHT) * facet +
#: DOC_WEIGHT * cosine; chosen on CSFCube's dev fold (docs/benchmarks.md, benchmarks/facets.py).
DOC_WEIGHT = 0.7
#: Weight of the "more like this" BM25 / IDF mass (fusion.distinctive_terms) added to the facet score.
LEXICAL_WEIGHT = 0.5
#: The shipped role classifier (benchmarks/train_roles.py): logistic regression weights, JSON.
ROLE_MODEL_FILE = Path(__file__).with_name("roles.json")
#: Blend for `similar` without a facet (all sentences of both papers count); same choice.
ALL_DOC_WEIGHT = 0.5
#: Candidates re-ranked by facet: the best this many by whole-abstract cosine (or k, if more).
CANDIDATES = 300

_ABBREVIATIONS = (
    "e.g", "i.e", "et al", "etc", "vs", "cf", "fig", "figs", "eq", "eqs", "sec", "no", "approx", "resp", "al",
)
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """An abstract's sentences, in order: split after . ! ? followed by a capital or digit, except
    after common abbreviations (e.g., et al., Fig.) and single initials. One-sentence text -> [text]."""
    text = " ".join(text.split())
    if not text:
        return []
    out, start = [], 0
    for m in _SPLIT.finditer(text):
        head = text[start : m.start()].rstrip("\"')]")
        last = head.rsplit(" ", 1)[-1].rstrip(".").lower()
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        out.append(text[start : m.start()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


_CUES = {
    "background": (
        r"\b(has|have) (been|become|shown|attracted|gained)\b", r"\b(recent(ly)?|increasingly|widely|popular|"
        r"important|challenging|challenge|crucial|essential|remains?|fundamental|long-standing|growing)\b",
        r"\bhowever\b", r"\b(is|are) (a|an|the|one|often|commonly|typically)\b",
        r"\b(little|limited) (work|attention)\b",
        r"\b(problem|task|goal|aim|motivat\w*|need)\b", r"\bprevious(ly)?|prior work|existing\b",
    ),
    "method": (
        r"\bwe (propose|present|introduce|describe|develop|design|use|employ|apply|adopt|train|model|formulate|"
        r"extend|combine|build|construct|define|learn|leverage|exploit|investigate|explore|study|cast)\b",
        r"\b(our|the proposed|this) (method|approach|model|system|framework|algorithm|technique|architecture)\b",
        r"\b(based on|by (using|learning|combining|modeling)|consists? of|relies on|in which|uses?|using)\b",
        r"\b(algorithm|network|encoder|decoder|objective|loss|features?|representation|graph|kernel|parser|"
        r"classifier|annotat\w+|corpus|dataset)\b",
    ),
    "result": (
        r"\b(results?|experiments?|experimental|evaluation|evaluate[sd]?|empirical(ly)?)\b",
        r"\b(show|shows|showed|demonstrate[sd]?|find|found|observe[sd]?|indicate[sd]?|reveal[sd]?|confirm[sd]?)\b",
        r"\b(outperform\w*|improve[sd]?|improvements?|achiev\w+|gains?|better|superior|significant(ly)?|"
        r"state[- ]of[- ]the[- ]art|competitive|accuracy|f1|f-score|bleu|error rate|reduc\w+|increase[sd]?)\b",
        r"\d+(\.\d+)?\s?%", r"\b(compared (to|with)|than)\b",
    ),
}
_CUE_RE = {role: [re.compile(p, re.I) for p in pats] for role, pats in _CUES.items()}
#: Prior of each role by relative position (first, middle, last third); weights of the cue counts.
_POSITION_PRIOR = {
    "background": (1.5, 0.0, -1.0),
    "method": (0.0, 0.6, 0.0),
    "result": (-1.0, 0.0, 1.2),
}


def label_roles(sentences: Sequence[str]) -> list[str]:
    """A role (one of FACETS) for each sentence of one abstract, from its position and cue phrases.

    The first sentence leans to background and the last to result; cue phrases ("we propose",
    "results show", "outperforms", "however", ...) add evidence. Ties go to method.
    """
    n = len(sentences)
    roles = []
    for i, s in enumerate(sentences):
        third = 0 if n == 1 else min(2, int(3 * i / n))
        if n > 1 and i == 0:
            third = 0
        if n > 1 and i == n - 1:
            third = 2
        best, best_score = "method", None
        for role in ("method", "background", "result"):
            score = _POSITION_PRIOR[role][third] + sum(len(p.findall(s)) > 0 for p in _CUE_RE[role])
            if best_score is None or score > best_score:
                best, best_score = role, score
        roles.append(best)
    return roles


def maxsim(query: "np.ndarray", sentences: "np.ndarray", owner: "np.ndarray", n: int) -> "np.ndarray":
    """Per candidate, the mean over query sentences of the best cosine with that candidate's sentences.

    Args:
        query: (m, dim) float32 L2-normalised vectors of the reference's sentences that count (m >= 1).
        sentences: (s, dim) float32 L2-normalised vectors of all candidates' sentences.
        owner: (s,) int64, the candidate (0..n-1) each sentence belongs to, non-decreasing.
        n: number of candidates; one without sentences scores -1.
    Returns:
        (n,) float32.
    """
    import numpy as np

    out = np.full(n, -1.0, dtype=np.float32)
    if not len(sentences) or not len(query):
        return out
    sims = sentences @ query.T  # (s, m)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    best = np.maximum.reduceat(sims, starts, axis=0)  # (candidates with sentences, m)
    out[owner[starts]] = best.mean(axis=1)
    return out


def position_features(n: int) -> "np.ndarray":
    """(n, 4) float32 position features of an abstract's n sentences: relative position, is first,
    is last, relative position squared (the classifier's last four inputs)."""
    import numpy as np

    rel = np.arange(n, dtype=np.float32) / max(n - 1, 1)
    return np.c_[rel, np.arange(n) == 0, np.arange(n) == n - 1, rel**2].astype(np.float32)


@functools.cache
def _role_model() -> dict:
    return json.loads(ROLE_MODEL_FILE.read_text(encoding="utf-8"))


def predict_roles(vectors: "np.ndarray", model: str | None) -> list[str] | None:
    """Roles of one abstract's sentences, in order, from the shipped classifier; None when it cannot
    read these vectors (`model` is not the model it was trained on, or the dimension differs).

    Args:
        vectors: (n, dim) float32 L2-normalised vectors of the abstract's sentences, in order.
        model: the name of the model that made them (the index's manifest model).
    """
    import numpy as np

    clf = _role_model()
    if model != clf["model"] or vectors.shape[1] != clf["dim"]:
        return None
    x = np.hstack([vectors, position_features(len(vectors))])
    logits = x @ np.asarray(clf["coef"], dtype=np.float32).T + np.asarray(clf["intercept"], dtype=np.float32)
    return [clf["classes"][i] for i in logits.argmax(axis=1)]


def facet_scores(
    ref_sentences: Sequence[str],
    facet: str | None,
    ref_vector: "np.ndarray",
    abstracts: Sequence[str],
    cosine: "np.ndarray",
    encode: Callable[[list[str]], "np.ndarray"],
    *,
    model: str | None = None,
    lexical: "np.ndarray | None" = None,
) -> tuple["np.ndarray", str | None]:
    """Scores of candidate papers against a reference, by `facet` (None: all its sentences).

    score = (1 - w) x facet max-sim + w x cosine + LEXICAL_WEIGHT x lexical, w = DOC_WEIGHT
    (ALL_DOC_WEIGHT without a facet).

    Args:
        ref_sentences: the reference abstract's sentences (split_sentences).
        facet: one of FACETS, or None.
        ref_vector: (dim,) float32, the reference's whole-abstract vector.
        abstracts: the candidates' abstracts.
        cosine: (n,) float32 whole-abstract cosine of each candidate with the reference.
        encode: texts -> (len, dim) float32 L2-normalised sentence vectors.
        model: the model `encode` runs: roles come from the shipped classifier when it was trained
            on this model (predict_roles), else from the rules (label_roles).
        lexical: (n,) float32 "more like this" BM25 / IDF mass of each candidate (None: 0).
    Returns:
        (n,) float32 scores, and a note when the ranking fell back (None otherwise).
    """
    import numpy as np

    weight = ALL_DOC_WEIGHT if facet is None else DOC_WEIGHT
    extra = 0.0 if lexical is None else LEXICAL_WEIGHT * lexical
    if len(ref_sentences) < 2:
        return cosine, "the reference's abstract is one sentence: ranked by the whole abstract"
    cand = [split_sentences(a) or [a] for a in abstracts]
    texts = list(dict.fromkeys(list(ref_sentences) + [s for c in cand for s in c]))
    vectors = encode(texts)
    row = {t: i for i, t in enumerate(texts)}

    def roles(sentences: Sequence[str]) -> list[str]:
        return predict_roles(vectors[[row[s] for s in sentences]], model) or label_roles(sentences)

    chosen = [s for s, r in zip(ref_sentences, roles(ref_sentences)) if facet is None or r == facet]
    note = None
    if not chosen:
        chosen = list(ref_sentences)
        note = f"no sentence of the reference reads as {facet}: compared all its sentences"
    if facet is not None:  # a candidate's sentences of the same role; all of them when it has none
        cand = [[s for s, r in zip(c, roles(c)) if r == facet] or c for c in cand]
    flat = [s for c in cand for s in c]
    owner = np.repeat(np.arange(len(cand)), [len(c) for c in cand])
    sims = maxsim(vectors[[row[s] for s in chosen]], vectors[[row[s] for s in flat]], owner, len(cand))
    return ((1 - weight) * sims + weight * cosine + extra).astype(np.float32), note
