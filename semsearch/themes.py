"""Themes: papers grouped by themes the user names (or discovered ones), with scores and a 2-D map.

Named themes, one general rule (chosen on judged data, benchmarks/themes.py; see `NamedThemes`):
a theme is embedded like a query (its name, or `name. description`), expanded by the papers
that fit it best, and each theme learns its own boundary from the corpus; a paper can carry
several themes (multi-label), a paper that fits none is `unassigned`, and no per-corpus or
per-theme threshold exists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Sequence

from .errors import QueryError
from .records import Paper
from .results import PaperList, Theme, ThemeGroups, ThemeMembers

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse

#: Weight of the theme's words in the first pass, in standard deviations of the query scores: a
#: paper containing every word of the theme's name gains this much over one containing none.
WORD_WEIGHT = 1.0
#: The expanded theme vector is the mean of its first-pass papers plus this weight times the query vector.
QUERY_WEIGHT = 1.0
#: A paper is never in a theme whose first-pass standard score (query + words) is below this: it
#: does not even look like the theme before expansion (keeps strays out of small corpora).
FIRST_PASS_MIN = 0.5
#: A paper also joins themes within this many standard deviations of its best theme.
Z_MARGIN = 0.25
#: A paper whose title and abstract contain every word of a theme's name also belongs to it when
#: its cosine to the theme's query is at least this many standard deviations from the corpus mean
#: (0 = not below average): in a small corpus a one-word theme ("sharding") is best told by the
#: word. Chosen on the small-corpus dev sets (benchmarks/data/small_theme_sets.json).
LEXICAL_MIN = 0.0
#: Lexical expansion (fourth round): the EXPANSION_TERMS words (FTS5 stems) most distinctive of a
#: theme's members against the rest of the corpus, and their BM25 / IDF mass standardised per theme
#: times EXPANSION_WEIGHT, join the first pass of a second fit; chosen on the dev sets
#: (benchmarks/themes.py, docs/benchmarks.md, issue 13 fourth round). 0 = off.
EXPANSION_TERMS = 10
EXPANSION_WEIGHT = 1.0
#: Longest theme name accepted (a description after the colon may be longer).
MAX_NAME = 200
#: Below this many papers scores cannot be standardised: each paper gets its closest theme.
MIN_PAPERS = 3


@dataclass(frozen=True)
class ThemeSpec:
    """A theme as the user wrote it: `name` or `name: description`."""

    name: str
    description: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "ThemeSpec":
        """`"sharding: partitioning tables across devices"` -> ThemeSpec; raises QueryError."""
        if not isinstance(spec, str) or not spec.strip():
            raise QueryError("empty theme: write a theme as NAME or 'NAME: description'")
        name, sep, description = spec.partition(":")
        name, description = " ".join(name.split()), " ".join(description.split())
        if not name or (sep and not description):
            raise QueryError(f"theme {spec!r}: write a theme as NAME or 'NAME: description'")
        if not re.search(r"\w", name):
            raise QueryError(f"theme {spec!r}: the name has no words")
        if len(name) > MAX_NAME:
            raise QueryError(f"theme name of {len(name)} characters: keep a name under {MAX_NAME} and put "
                             "details after a colon ('NAME: description')")
        return cls(name, description or None)

    @property
    def text(self) -> str:
        """The text embedded for this theme."""
        return f"{self.name}. {self.description}" if self.description else self.name


class NamedThemes:
    """Membership of papers in named themes, learned from the corpus itself (no fixed threshold).

    1. *First pass*: each paper's cosine to each theme's query vector, standardised per theme over
       the corpus (a one-word theme scores lower everywhere than a described one), plus
       WORD_WEIGHT times the share of the theme name's words the paper contains (`evidence`);
       each paper goes to its best theme.
    2. *Expanded theme*: the mean vector of a theme's first-pass papers plus QUERY_WEIGHT times
       its query vector, L2-normalised; a paper's `score` for the theme is the cosine to it.
    3. *Boundary*: per theme, the mean score of the papers whose best theme (by standardised
       score) is another one: the null of papers that match other themes or none.
    4. A paper belongs to its best theme and to every theme within Z_MARGIN standard deviations
       of it (multi-label), wherever its score reaches that theme's boundary and its first-pass
       standard score is at least FIRST_PASS_MIN.
    5. A paper also belongs to every theme whose name's words it all contains (evidence 1) where
       its standardised query score is at least LEXICAL_MIN; a paper in no theme is unassigned.
    6. *Lexical expansion* (with `counts`): each theme's EXPANSION_TERMS words most distinctive
       of its members (`distinctive_stems`) are scored on every paper as BM25 / their IDF mass
       (`expansion_bm25`); standardised per theme and times EXPANSION_WEIGHT, this joins the
       first pass, and steps 1-5 run again: a paper that says the theme in the words its papers
       use (not the name's) moves towards it.

    With fewer than MIN_PAPERS papers nothing can be standardised: each paper belongs to the
    theme whose query vector is closest.

    Args:
        word_weight, query_weight, z_margin, first_pass_min, lexical_min, expansion_terms,
            expansion_weight: see above (lexical_min=None: no membership by words alone;
            expansion_weight=0: no lexical expansion).
        random_state: unused (the procedure is deterministic); kept for the estimator convention.

    Learned attributes (after `fit`), for n papers and t themes:
        query_scores_: (n, t) float32, cosine of each paper to each theme's query vector.
        theme_vectors_: (t, dim) float32, the expanded theme vectors (L2-normalised).
        scores_: (n, t) float32, cosine of each paper to each expanded theme.
        first_z_: (n, t) float32, the first-pass standard scores (query + words).
        z_: (n, t) float32, scores_ standardised per theme.
        best_: (n,) int64, each paper's best theme by z_.
        thresholds_: (t,) float32, each theme's boundary on scores_.
        by_words_: (n, t) bool, members by step 5 only (the name's words).
        members_: (n, t) bool, the membership.
        expansion_words_: t lists of FTS5 stems, each theme's expansion words ([] without `counts`).
        expansion_: (n, t) float32 in [0, 1], BM25 of those words / their IDF mass (0 without).
    """

    def __init__(
        self,
        word_weight: float = WORD_WEIGHT,
        query_weight: float = QUERY_WEIGHT,
        z_margin: float = Z_MARGIN,
        first_pass_min: float = FIRST_PASS_MIN,
        lexical_min: float | None = LEXICAL_MIN,
        expansion_terms: int = EXPANSION_TERMS,
        expansion_weight: float = EXPANSION_WEIGHT,
        random_state: int = 0,
    ):
        self.word_weight = word_weight
        self.query_weight = query_weight
        self.z_margin = z_margin
        self.first_pass_min = first_pass_min
        self.lexical_min = lexical_min
        self.expansion_terms = expansion_terms
        self.expansion_weight = expansion_weight
        self.random_state = random_state

    def fit(
        self,
        vectors: "np.ndarray",
        theme_vectors: "np.ndarray",
        evidence: "np.ndarray | None" = None,
        counts: "TermCounts | None" = None,
    ) -> "NamedThemes":
        """Learn each theme's expanded vector and boundary, and the membership.

        Args:
            vectors: (n, dim) float32, L2-normalised paper vectors.
            theme_vectors: (t, dim) float32, L2-normalised query vectors of the themes.
            evidence: (n, t) float in [0, 1], share of each theme name's words found in each
                paper (`word_evidence`); None = no lexical evidence.
            counts: the papers' word counts (`term_counts`, n rows); None = no lexical expansion.
        Returns:
            self.
        Raises:
            QueryError: shapes that do not fit, or no themes.
        """
        import numpy as np

        x = np.asarray(vectors, dtype=np.float32)
        q = np.asarray(theme_vectors, dtype=np.float32)
        if x.ndim != 2 or q.ndim != 2 or x.shape[1] != q.shape[1] or len(q) == 0:
            raise QueryError(f"vectors {x.shape} and theme vectors {q.shape} must be (n, dim) and (t, dim) with t >= 1")
        n, t = len(x), len(q)
        ev = np.zeros((n, t), dtype=np.float32) if evidence is None else np.asarray(evidence, dtype=np.float32)
        if ev.shape != (n, t):
            raise QueryError(f"evidence must have shape {(n, t)}, got {ev.shape}")
        if counts is not None and counts.counts.shape[0] != n:
            raise QueryError(f"counts must have {n} rows, got {counts.counts.shape[0]}")
        self.expansion_words_ = [[] for _ in range(t)]
        self.expansion_ = np.zeros((n, t), dtype=np.float32)
        self.query_scores_ = (x @ q.T).astype(np.float32)
        if n < MIN_PAPERS:
            self.theme_vectors_ = q.copy()
            self.scores_ = self.query_scores_.copy()
            self.z_ = np.zeros((n, t), dtype=np.float32)
            self.first_z_ = np.zeros((n, t), dtype=np.float32)
            self.best_ = self.scores_.argmax(axis=1).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
            self.thresholds_ = np.full(t, -np.inf, dtype=np.float32)
            self.members_ = np.zeros((n, t), dtype=bool)
            self.members_[np.arange(n), self.best_] = True
            self.by_words_ = np.zeros((n, t), dtype=bool)
            return self
        query_z = _standardise(self.query_scores_)
        self._fit_from(x, q, query_z + self.word_weight * ev, query_z, ev, counts)
        return self

    def _fit_from(self, x, q, first_z, query_z, ev, counts) -> None:
        """Steps 1-6 from the first-pass standard scores `first_z` and the word rule's gate `query_z`."""
        self._steps(x, q, first_z, query_z, ev)
        if counts is not None and self.expansion_weight and self.expansion_terms > 0:
            for j in range(len(q)):
                own = self.members_[:, j]
                if 2 <= own.sum() < len(x):
                    self.expansion_words_[j] = distinctive_stems(counts, own, self.expansion_terms)
                    self.expansion_[:, j] = expansion_bm25(counts, self.expansion_words_[j])
            self._steps(x, q, first_z + self.expansion_weight * _standardise(self.expansion_), query_z, ev)

    def _steps(self, x, q, first_z, query_z, ev) -> None:
        """Steps 1-5 from the first-pass standard scores `first_z` (n, t)."""
        import numpy as np

        n, t = len(x), len(q)
        self.first_z_ = first_z.astype(np.float32)
        first = self.first_z_.argmax(axis=1)
        vecs = []
        for j in range(t):
            own = first == j
            v = (_unit(x[own].mean(axis=0)) if own.any() else 0) + self.query_weight * q[j]
            vecs.append(_unit(v))
        self.theme_vectors_ = np.vstack(vecs).astype(np.float32)
        self.scores_ = (x @ self.theme_vectors_.T).astype(np.float32)
        self.z_ = _standardise(self.scores_).astype(np.float32)
        self.best_ = self.z_.argmax(axis=1).astype(np.int64)
        self.thresholds_ = np.empty(t, dtype=np.float32)
        for j in range(t):
            null = self.scores_[self.best_ != j, j]
            self.thresholds_[j] = (null if len(null) else self.scores_[:, j]).mean()
        near = self.z_ >= self.z_.max(axis=1, keepdims=True) - self.z_margin
        self.members_ = near & (self.scores_ >= self.thresholds_) & (self.first_z_ >= self.first_pass_min)
        self.by_words_ = np.zeros((n, t), dtype=bool)
        if self.lexical_min is not None:
            self.by_words_ = (ev >= 1) & (query_z >= self.lexical_min) & ~self.members_
            self.members_ |= self.by_words_

    def explain(self, i: int, names: Sequence[str]) -> list[dict]:
        """Why paper row i is or is not in each theme: score, boundary, standard score, reason."""
        out = []
        b = int(self.best_[i])
        for j, name in enumerate(names):
            score, bound, z = float(self.scores_[i, j]), float(self.thresholds_[j]), float(self.z_[i, j])
            if self.by_words_[i, j]:
                reason = (f"in: it contains every word of the name and its cosine to the name is not below "
                          f"{self.lexical_min} sd from the corpus mean (score {score:.3f}, boundary {bound:.3f})")
            elif self.members_[i, j]:
                why = "its best theme" if j == b else f"within {self.z_margin} sd of its best theme ({names[b]})"
                reason = f"in: score {score:.3f} >= boundary {bound:.3f}, {why}"
            elif score < bound:
                reason = f"out: score {score:.3f} < boundary {bound:.3f}"
            elif self.first_z_[i, j] < self.first_pass_min:
                reason = (f"out: first-pass standard score {float(self.first_z_[i, j]):.2f} < {self.first_pass_min} "
                          "(the name and its words do not fit it)")
            else:
                gap = float(self.z_[i, b]) - z
                reason = f"out: {gap:.2f} sd behind its best theme ({names[b]}); margin {self.z_margin}"
            out.append({"theme": name, "score": round(score, 6), "boundary": round(bound, 6),
                        "z": round(z, 4), "member": bool(self.members_[i, j]), "reason": reason})
        return out


def _standardise(s: "np.ndarray") -> "np.ndarray":
    sd = s.std(axis=0)
    return (s - s.mean(axis=0)) / (sd + (sd == 0))


def _unit(v: "np.ndarray") -> "np.ndarray":
    import numpy as np

    return v / max(float(np.linalg.norm(v)), 1e-12)


class TermCounts(NamedTuple):
    """Word counts of n texts as FTS5 tokenises them (Porter stems), for lexical expansion."""

    #: (n, v) float32 sparse (CSC) counts of the v stems kept: no stopwords, numbers or one-letter words
    counts: "scipy.sparse.csc_matrix"
    #: (n,) float32, every token of each text (the BM25 document length)
    lengths: "np.ndarray"
    #: the v stems, column order
    stems: list[str]


def term_counts(texts: Sequence[str]) -> TermCounts:
    """`TermCounts` of `texts`, tokenised like the index's lexical channel (SQLite FTS5)."""
    import sqlite3

    import numpy as np
    from scipy.sparse import csr_matrix

    from .store.lexical import STOPWORDS, TOKENIZE

    con = sqlite3.connect(":memory:")
    try:
        for table in ("t", "s"):
            con.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(text, tokenize='{TOKENIZE}')")
        con.execute("CREATE VIRTUAL TABLE tv USING fts5vocab(t, 'instance')")
        con.execute("CREATE VIRTUAL TABLE sv USING fts5vocab(s, 'row')")
        con.executemany("INSERT INTO t(rowid, text) VALUES (?, ?)", enumerate(texts))
        con.execute("INSERT INTO s(text) VALUES (?)", (" ".join(sorted(STOPWORDS)),))
        stop = {w for (w,) in con.execute("SELECT term FROM sv")}
        found = con.execute("SELECT term, doc, count(*) FROM tv GROUP BY term, doc").fetchall()
    finally:
        con.close()
    vocab = sorted({w for w, _, _ in found})
    col = {w: i for i, w in enumerate(vocab)}
    c = csr_matrix(([k for _, _, k in found], ([d for _, d, _ in found], [col[w] for w, _, _ in found])),
                   shape=(len(texts), len(vocab)), dtype=np.float32)
    keep = [i for i, w in enumerate(vocab) if w not in stop and len(w) > 1 and not w.isdigit()]
    return TermCounts(c[:, keep].tocsc(), np.asarray(c.sum(axis=1), dtype=np.float32).ravel(), [vocab[i] for i in keep])


def distinctive_stems(counts: TermCounts, rows: "np.ndarray", m: int) -> list[str]:
    """The m stems most distinctive of the texts where `rows` ((n,) bool) is true against the rest:
    by p log(p / p_rest), p = the smoothed share of those texts holding the stem; a stem must be
    held by two of them and be commoner there than in the rest."""
    import numpy as np

    held = (counts.counts > 0).astype(np.float32)
    inside = np.asarray(held.T @ rows.astype(np.float32)).ravel()
    outside = np.asarray(held.sum(axis=0)).ravel() - inside
    p = (inside + 0.5) / (rows.sum() + 1)
    p_rest = (outside + 0.5) / ((~rows).sum() + 1)
    score = np.where((inside >= 2) & (p > p_rest), p * np.log(p / p_rest), -np.inf)
    best = np.argsort(-score, kind="stable")[:m]
    return [counts.stems[i] for i in best if np.isfinite(score[i])]


def expansion_bm25(counts: TermCounts, stems: Sequence[str]) -> "np.ndarray":
    """(n,) float32 in [0, 1]: BM25 of `stems` on each text (k1 1.2, b 0.75, FTS5's IDF) / their IDF
    mass, as the hybrid search normalises a query's BM25 (`fusion.normalised_bm25`)."""
    import numpy as np

    from .store.lexical import BM25_B, BM25_K1

    n = counts.counts.shape[0]
    col = {w: i for i, w in enumerate(counts.stems)}
    cols = [col[w] for w in stems if w in col]
    if not cols or not n:
        return np.zeros(n, dtype=np.float32)
    tf = counts.counts[:, cols].toarray()
    df = (tf > 0).sum(axis=0)
    idf = np.maximum(np.log((n - df + 0.5) / (df + 0.5)), 1e-6)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * counts.lengths / max(float(counts.lengths.mean()), 1e-9))
    bm25 = (idf * tf * (BM25_K1 + 1) / (tf + norm[:, None])).sum(axis=1)
    return (bm25 / (idf.sum() * (BM25_K1 + 1))).astype(np.float32)


def word_evidence(texts: Sequence[str], names: Sequence[str]) -> "np.ndarray":
    """(len(texts), len(names)) float32: the share of each name's words found in each text.

    Words are matched as the index's lexical channel matches them (SQLite FTS5, Porter stemming:
    "galaxies" finds "galaxy"); function words in names ("of", "and", ...) are ignored.
    """
    import sqlite3

    from .store.lexical import TOKENIZE

    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"CREATE VIRTUAL TABLE t USING fts5(text, tokenize='{TOKENIZE}')")
        con.executemany("INSERT INTO t(rowid, text) VALUES (?, ?)", enumerate(texts))
        return evidence_from(lambda w: [r for (r,) in con.execute("SELECT rowid FROM t WHERE t MATCH ?", (f'"{w}"',))],
                             len(texts), names)
    finally:
        con.close()


_NAME_STOP_WORDS = frozenset("a an the of and or for in on to with by from at as via using into about".split())


def name_words(name: str) -> list[str]:
    """The words of a theme name that count as lexical evidence: lower-case, no stop words."""
    words = [w.lower() for w in re.findall(r"[^\W_]+", name)]
    kept = [w for w in dict.fromkeys(words) if w not in _NAME_STOP_WORDS and len(w) > 1]
    return kept or list(dict.fromkeys(words))


def evidence_from(rows_with, n: int, names: Sequence[str], rows: Sequence[int] | None = None) -> "np.ndarray":
    """(n, t) float32 word evidence from `rows_with(word) -> rows containing it`.

    `rows` maps position i to the row `rows_with` speaks of (default: position = row).
    """
    import numpy as np

    out = np.zeros((n, len(names)), dtype=np.float32)
    position = None if rows is None else {int(r): i for i, r in enumerate(rows)}
    for j, name in enumerate(names):
        words = name_words(name)
        for w in words:
            hit = [int(r) for r in rows_with(w)]
            idx = hit if position is None else [position[r] for r in hit if r in position]
            out[np.asarray(idx, dtype=np.int64), j] += 1.0 / len(words)
    return out


def group_named(
    papers: Sequence[Paper],
    paper_vectors: "np.ndarray",
    specs: Sequence[ThemeSpec],
    theme_vectors: "np.ndarray",
    evidence: "np.ndarray | None" = None,
    counts: TermCounts | None = None,
) -> ThemeGroups:
    """Group papers into named themes by `NamedThemes`.

    Args:
        papers: the n papers to group; a `PaperList` is read only where members are looked at.
        paper_vectors: (n, dim) float32, L2-normalised, row i for papers[i].
        specs: the t themes.
        theme_vectors: (t, dim) float32, L2-normalised, row j for specs[j].
        evidence: (n, t) share of each theme name's words in each paper (`word_evidence`).
        counts: the papers' word counts (`term_counts`) for lexical expansion; None = none.
    """
    import numpy as np

    model = NamedThemes().fit(paper_vectors, theme_vectors, evidence, counts)
    scores, member = model.scores_, model.members_
    themes = []
    for j, spec in enumerate(specs):
        rows = np.flatnonzero(member[:, j])
        rows = rows[np.argsort(-scores[rows, j], kind="stable")]
        # members are made (and, from a PaperList, read) only when asked for
        themes.append(Theme(spec.name, ThemeMembers(papers, rows.tolist(), scores[rows, j].tolist()), spec.description))
    none = np.flatnonzero(~member.any(axis=1)).tolist()
    unassigned = papers.subset(none) if isinstance(papers, PaperList) else [papers[i] for i in none]
    method = (f"named: cosine to each theme expanded from its papers; boundary per theme from the papers of "
              f"other themes; multi-label within {model.z_margin} sd of the best theme; or every word of the name"
              + ("; first pass with the words of each theme's papers" if counts is not None else ""))
    groups = ThemeGroups(themes, unassigned, papers, paper_vectors, method)
    groups.model = model
    return groups


def group_discovered(papers: Sequence[Paper], paper_vectors: "np.ndarray", model) -> ThemeGroups:
    """ThemeGroups from a fitted `cluster.AutoThemes` (every paper in exactly one theme)."""
    import numpy as np

    themes = []
    for j in range(model.n_themes_):
        rows = np.flatnonzero(model.labels_ == j)
        rows = rows[np.argsort(-model.scores_[rows], kind="stable")]
        members = ThemeMembers(papers, rows.tolist(), model.scores_[rows].tolist())
        themes.append(Theme(model.names_[j], members, words=tuple(model.words_[j])))
    themes.sort(key=lambda t: -len(t.papers))
    method = f"discovered: {model.n_themes_} clusters of the embeddings, labels by class-based TF-IDF"
    return ThemeGroups(themes, [], papers, paper_vectors, method)
