"""Results: the plain types queries return (hits, papers, themes), as dicts, DataFrames and notebook tables.

Every type is a frozen dataclass or a read-only sequence of them; `as_dict()` gives JSON-ready
values, `to_pandas()` a DataFrame and `_repr_html_()` the table Jupyter shows (tables.py renders
both; nothing here ranks or embeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

from .errors import QueryError
from .provenance import field_sources, paper_url
from .records import Paper
from .tables import dataframe, html_table

if TYPE_CHECKING:
    import numpy as np

HIT_COLUMNS = ("rank", "score", "id", "title", "arxiv_id", "date", "abstract")
PAPER_COLUMNS = ("id", "title", "arxiv_id", "date", "sources", "versions")


@dataclass(frozen=True)
class Neighbours:
    """Array-level search result.

    rows: int64 array (n_queries, k) of index rows, -1 where fewer than k exist.
    scores: float32 array (n_queries, k), cosine similarity, descending along each row.
    """

    rows: "np.ndarray"
    scores: "np.ndarray"


@dataclass(frozen=True)
class Hit:
    """One ranked paper. `score` is what `score_kind` says: "cosine" (dense), "bm25" (lexical),
    "fused" (hybrid: cosine + weight x BM25 / the query's IDF mass), "related" (similar: cosine +
    weight x BM25 of the reference's most distinctive words / their IDF mass), "facet" or "svm";
    higher is always better. `match`: whether the paper's cosine with the query clears the
    calibrated bar of a real match (query.MATCH_COSINE); None where not computed (lexical, similar)."""

    rank: int
    score: float
    paper: Paper
    score_kind: str = "cosine"
    match: bool | None = None

    @property
    def id(self) -> str:
        return self.paper.id

    @property
    def title(self) -> str | None:
        return self.paper.title

    def as_dict(self) -> dict:
        p = self.paper
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "score_kind": self.score_kind,
            "match": self.match,
            "id": p.id,
            "title": p.title,
            "display_title": p.display_title(),
            "arxiv_id": p.arxiv_id,
            "date": p.date,
            "authors": list(p.authors),
            "url": paper_url(p),
            "abstract": p.abstract,
            "versions": len(p.versions),
            "sources": list(p.sources),
        }


@dataclass(frozen=True)
class Excluded:
    """A paper `similar` left out of its results, and why (`containment`: the 3-gram containment of
    a pasted text and the paper's closest version, None when the paper was the reference)."""

    paper: Paper
    reason: str
    containment: float | None = None

    @property
    def id(self) -> str:
        return self.paper.id

    def as_dict(self) -> dict:
        p = self.paper
        return {"id": p.id, "title": p.title, "display_title": p.display_title(), "reason": self.reason,
                "containment": self.containment}


class _Rows(Sequence):
    """A read-only list of dataclass rows that shows as a table and converts to pandas."""

    columns: tuple[str, ...] = ()
    caption = ""

    def __init__(self, items: Sequence):
        self._items = tuple(items)

    def __getitem__(self, i):
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} rows>"

    def as_dicts(self) -> list[dict]:
        return [item.as_dict() for item in self._items]

    def _table_rows(self) -> list[dict]:
        rows = self.as_dicts()
        for row in rows:
            row["title"] = row.get("display_title") or row.get("title")
        return rows

    def to_pandas(self):
        """A pandas DataFrame, one row per item (pandas imported lazily)."""
        return dataframe(self.as_dicts(), list(self.as_dicts()[0]) if self._items else self.columns)

    def _repr_html_(self) -> str:
        return html_table(self._table_rows(), self.columns, self.caption)


class Hits(_Rows):
    """Ranked hits for one query, best first. `excluded`: papers `similar` left out, and why."""

    columns = HIT_COLUMNS

    def __init__(
        self,
        items: Sequence[Hit],
        query: str = "",
        score_kind: str = "cosine",
        excluded: Sequence[Excluded] = (),
        score_meaning: str | None = None,
    ):
        super().__init__(items)
        self.query = query
        self.score_kind = score_kind
        self.excluded = tuple(excluded)
        self.caption = f"{len(items)} results for {query!r} (score = {score_meaning or score_kind})"
        if self._items and self._items[0].match is False:  # the notebook says it as the CLI does
            self.caption += "; no close match: the best paper's cosine with the query is below the bar"
        self.notes: tuple[str, ...] = ()  # fallbacks `similar` took (e.g. a one-sentence reference)

    @property
    def match(self) -> bool | None:
        """Whether the best hit is a real match (None: not computed for this kind of result)."""
        return self._items[0].match if self._items else False



class Papers(_Rows):
    """Papers of an index, in index order."""

    columns = PAPER_COLUMNS

    def as_dicts(self) -> list[dict]:
        return [paper_dict(p) for p in self._items]


def paper_dict(p: Paper) -> dict:
    return {
        "id": p.id,
        "title": p.title,
        "display_title": p.display_title(),
        "arxiv_id": p.arxiv_id,
        "aliases": [n for n in p.names if n not in (p.id, p.arxiv_id)],
        "date": p.date,
        "authors": list(p.authors),
        "categories": list(p.categories),
        "url": paper_url(p),
        "field_sources": field_sources(p),
        "sources": list(p.sources),
        "versions": len(p.versions),
        "abstract": p.abstract,
    }



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
        self.model = None  # the fitted NamedThemes or AutoThemes, when there is one

    def __iter__(self):
        return iter(self.themes)

    def __len__(self) -> int:
        return len(self.themes)

    def __getitem__(self, name: str) -> Theme:
        for t in self.themes:
            if t.name == name:
                return t
        raise KeyError(name)

    def explain(self, paper_id: str) -> list[dict]:
        """Named themes: for one paper, each theme's score, boundary, standard score and why the
        paper is or is not in it. Raises KeyError for an unknown id, QueryError for discovered themes."""
        if not hasattr(self.model, "explain"):  # the fitted themes.NamedThemes
            raise QueryError("explain() is for named themes")
        if not hasattr(self, "_position"):
            self._position = {p.id: i for i, p in enumerate(self.papers)}
        i = self._position[paper_id]
        return self.model.explain(i, [t.name for t in self.themes])

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
        import numpy as np

        coords = self.coordinates()
        index = {p.id: i for i, p in enumerate(self.papers)}
        best: dict[str, tuple[float, str]] = {}
        for t in self.themes:
            for m in t.papers:
                if m.paper.id not in best or m.score > best[m.paper.id][0]:
                    best[m.paper.id] = (m.score, t.name)
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 7))
        size = 28 if len(self.papers) <= 200 else max(2.0, 28 * (200 / len(self.papers)) ** 0.5)
        names = [t.name for t in self.themes] + ["unassigned"]
        labels: list[list] = []
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for j, name in enumerate(names):
            members = [index[pid] for pid, (_, n) in best.items() if n == name] if name != "unassigned" else [
                index[p.id] for p in self.unassigned
            ]
            if not members:
                continue
            color = "lightgrey" if name == "unassigned" else cmap(j % cmap.N)
            ax.scatter(coords[members, 0], coords[members, 1], s=size, color=color, alpha=0.6 if size < 28 else 1.0,
                       linewidths=0, label=f"{name} ({len(members)})")
            if annotate and name != "unassigned":
                labels.append([name, *np.median(coords[members], axis=0), color])
        for name, cx, cy, color in _spread(labels, coords):
            ax.annotate(name, (cx, cy), fontsize=9, weight="bold", ha="center", va="center",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color, "alpha": 0.85})
        ax.set_title(f"{len(self.papers)} papers by theme (PCA of embeddings)")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), markerscale=max(1.0, 28 / size) ** 0.5)
        if path is not None:
            ax.figure.savefig(path, dpi=120, bbox_inches="tight")
        return ax


def _spread(labels: list[list], coords: "np.ndarray") -> list[list]:
    """Label positions moved apart vertically where boxes would overlap (themes close in the map)."""
    import numpy as np

    if not labels:
        return labels
    span = np.ptp(coords, axis=0) + 1e-9
    gap, width = 0.045 * span[1], 0.012 * span[0]
    placed: list[list] = []
    for lab in sorted(labels, key=lambda lab: -lab[2]):
        name, x, y, color = lab
        for _ in range(len(labels) + 1):
            clash = [p for p in placed if abs(p[2] - y) < gap and abs(p[1] - x) < width * (len(p[0]) + len(name)) / 2]
            if not clash:
                break
            y = min(p[2] for p in clash) - gap
        placed.append([name, x, y, color])
    return placed
