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
from .tables import dataframe, html_table

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


@dataclass(frozen=True)
class ThemeMember:
    paper: Paper
    score: float

    def as_dict(self) -> dict:
        return {"id": self.paper.id, "title": self.paper.title, "score": round(self.score, 6)}


@dataclass(frozen=True)
class Theme:
    """A named or discovered theme and its papers, best first. `score`: cosine to the theme."""

    name: str
    papers: tuple[ThemeMember, ...]
    description: str | None = None
    words: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        d = {"name": self.name, "papers": [m.as_dict() for m in self.papers]}
        if self.description:
            d["description"] = self.description
        if self.words:
            d["words"] = list(self.words)
        return d


class ThemeGroups:
    """Papers grouped into themes (multi-label) plus the unassigned ones.

    Shows as an HTML table in Jupyter, converts with `to_pandas()` (one row per paper and
    theme) and draws a 2-D map with `plot()`.
    """

    def __init__(
        self,
        themes: Sequence[Theme],
        unassigned: Sequence[Paper],
        papers: Sequence[Paper],
        vectors: "np.ndarray",
        method: str,
    ):
        self.themes = tuple(themes)
        self.unassigned = tuple(unassigned)
        self.papers = tuple(papers)
        self.vectors = vectors
        self.method = method

    def __iter__(self):
        return iter(self.themes)

    def __len__(self) -> int:
        return len(self.themes)

    def __getitem__(self, name: str) -> Theme:
        for t in self.themes:
            if t.name == name:
                return t
        raise KeyError(name)

    def as_dict(self) -> dict:
        return {
            "themes": [t.as_dict() for t in self.themes],
            "unassigned": [{"id": p.id, "title": p.title} for p in self.unassigned],
            "method": self.method,
        }

    def _rows(self) -> list[dict]:
        rows = [
            {"theme": t.name, "score": m.score, "id": m.paper.id, "title": m.paper.display_title()}
            for t in self.themes
            for m in t.papers
        ]
        rows += [{"theme": "unassigned", "score": None, "id": p.id, "title": p.display_title()} for p in self.unassigned]
        return rows

    def to_pandas(self):
        """One row per (theme, paper): theme, score, id, title; unassigned papers have theme 'unassigned'."""
        return dataframe(self._rows(), ["theme", "score", "id", "title"])

    def _repr_html_(self) -> str:
        caption = f"{len(self.themes)} themes over {len(self.papers)} papers ({self.method}; score = cosine)"
        return html_table(self._rows(), ["theme", "score", "id", "title"], caption)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{t.name}: {len(t.papers)}" for t in self.themes)
        return f"<ThemeGroups {sizes}; unassigned: {len(self.unassigned)}>"

    def coordinates(self) -> "np.ndarray":
        """(n_papers, 2) float32: the papers' vectors projected on their first two principal axes."""
        import numpy as np

        x = np.asarray(self.vectors, dtype=np.float64)
        if len(x) < 2:
            return np.zeros((len(x), 2), dtype=np.float32)
        x = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        coords = x @ vt[:2].T
        if coords.shape[1] < 2:
            coords = np.hstack([coords, np.zeros((len(x), 2 - coords.shape[1]))])
        return coords.astype(np.float32)

    def plot(self, path: str | None = None, *, ax=None, annotate: bool = True):
        """Draw a 2-D map (PCA of the embeddings) coloured by each paper's best theme.

        Args:
            path: save the figure here (PNG/SVG/PDF by extension); None = leave it to the caller.
            ax: a matplotlib Axes to draw on; default a new figure.
            annotate: label each theme at the centre of its papers.
        Returns:
            the matplotlib Axes.
        """
        try:
            import matplotlib

            if ax is None and path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise QueryError("plot() needs matplotlib: pip install 'semsearch[notebook]'") from None
        coords = self.coordinates()
        index = {p.id: i for i, p in enumerate(self.papers)}
        best: dict[str, tuple[float, str]] = {}
        for t in self.themes:
            for m in t.papers:
                if m.paper.id not in best or m.score > best[m.paper.id][0]:
                    best[m.paper.id] = (m.score, t.name)
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 6))
        names = [t.name for t in self.themes] + ["unassigned"]
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for j, name in enumerate(names):
            members = [index[pid] for pid, (_, n) in best.items() if n == name] if name != "unassigned" else [
                index[p.id] for p in self.unassigned
            ]
            if not members:
                continue
            color = "lightgrey" if name == "unassigned" else cmap(j % cmap.N)
            ax.scatter(coords[members, 0], coords[members, 1], s=28, color=color, label=f"{name} ({len(members)})")
            if annotate and name != "unassigned":
                cx, cy = coords[members].mean(axis=0)
                ax.annotate(name, (cx, cy), fontsize=9, weight="bold", ha="center")
        ax.set_title(f"{len(self.papers)} papers by theme (PCA of embeddings)")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="best")
        if path is not None:
            ax.figure.savefig(path, dpi=120, bbox_inches="tight")
        return ax


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
