"""Themes: papers grouped by themes the user names (or discovered ones), with scores and a 2-D map.

Named themes, one general rule (chosen on judged data, benchmarks/themes.py): a theme is
embedded like a query (its name, or `name. description`); a paper's score for a theme is the
cosine of the two vectors; a paper belongs to every theme where

    score >= ABSOLUTE_MIN   and   score >= best score of that paper - RELATIVE_MARGIN

so a paper can carry several themes when they fit it almost equally well (multi-label), a paper
that fits none well enough is `unassigned`, and no per-corpus or per-theme threshold exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .errors import QueryError
from .records import Paper
from .results import Theme, ThemeGroups, ThemeMember

if TYPE_CHECKING:
    import numpy as np

#: Lowest cosine between a paper and a theme for membership (see module doc and benchmarks).
ABSOLUTE_MIN = 0.15
#: A paper also joins themes within this cosine of its best theme.
RELATIVE_MARGIN = 0.10


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
        return cls(name, description or None)

    @property
    def text(self) -> str:
        """The text embedded for this theme."""
        return f"{self.name}. {self.description}" if self.description else self.name


def assign(scores: "np.ndarray", absolute_min: float = ABSOLUTE_MIN, margin: float = RELATIVE_MARGIN) -> "np.ndarray":
    """Membership by the module's rule.

    Args:
        scores: (n_papers, n_themes) float cosine scores.
    Returns:
        (n_papers, n_themes) bool; a row of all False is an unassigned paper.
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float32)
    if scores.size == 0:
        return np.zeros(scores.shape, dtype=bool)
    best = scores.max(axis=1, keepdims=True)
    return (scores >= absolute_min) & (scores >= best - margin)



def group_named(
    papers: Sequence[Paper],
    paper_vectors: "np.ndarray",
    specs: Sequence[ThemeSpec],
    theme_vectors: "np.ndarray",
) -> ThemeGroups:
    """Group papers into named themes by the module's rule.

    Args:
        papers: the n papers to group.
        paper_vectors: (n, dim) float32, L2-normalised, row i for papers[i].
        specs: the t themes.
        theme_vectors: (t, dim) float32, L2-normalised, row j for specs[j].
    """
    scores = paper_vectors @ theme_vectors.T
    member = assign(scores)
    themes = []
    for j, spec in enumerate(specs):
        rows = [i for i in range(len(papers)) if member[i, j]]
        rows.sort(key=lambda i: -scores[i, j])
        themes.append(Theme(spec.name, tuple(ThemeMember(papers[i], float(scores[i, j])) for i in rows), spec.description))
    unassigned = [papers[i] for i in range(len(papers)) if not member[i].any()]
    method = f"named: cosine >= {ABSOLUTE_MIN} and within {RELATIVE_MARGIN} of the paper's best theme"
    return ThemeGroups(themes, unassigned, papers, paper_vectors, method)


def group_discovered(papers: Sequence[Paper], paper_vectors: "np.ndarray", model) -> ThemeGroups:
    """ThemeGroups from a fitted `cluster.AutoThemes` (every paper in exactly one theme)."""
    themes = []
    for j in range(model.n_themes_):
        rows = sorted((i for i in range(len(papers)) if model.labels_[i] == j), key=lambda i: -model.scores_[i])
        themes.append(
            Theme(
                model.names_[j],
                tuple(ThemeMember(papers[i], float(model.scores_[i])) for i in rows),
                words=tuple(model.words_[j]),
            )
        )
    themes.sort(key=lambda t: -len(t.papers))
    method = f"discovered: {model.n_themes_} clusters of the embeddings, labels by class-based TF-IDF"
    return ThemeGroups(themes, [], papers, paper_vectors, method)
