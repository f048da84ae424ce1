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
    "fused" (hybrid: cosine + weight x BM25 / the query's IDF mass), "related", "facet" or "svm" (similar);
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



#: Papers read from the index at a time when a lazy list of theme members is walked.
PAGE = 500


class PaperList(Sequence):
    """Papers of index rows, read from the index only when first asked for (a page at a time)
    and then kept: a theme over 75k papers costs the records of the papers that are shown.

    Args:
        rows: the index rows, in list order.
        load: rows -> {row: Paper} (`PaperStore.by_rows`).
        locate: paper id -> its row, or None (`explain` looks papers up by id without reading all).
    """

    def __init__(self, rows: Sequence[int], load, locate=None, _cache: dict | None = None):
        self.rows = [int(r) for r in rows]
        self._load = load
        self._locate = locate
        self._cache: dict[int, Paper] = {} if _cache is None else _cache

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(range(len(self.rows))[i])
        return self.take([i])[0]

    def __iter__(self) -> Iterator[Paper]:
        for start in range(0, len(self.rows), PAGE):
            yield from self.take(range(start, min(start + PAGE, len(self.rows))))

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def take(self, positions: Sequence[int]) -> list[Paper]:
        """The papers at these positions, reading the ones not yet read in one call."""
        n = len(self.rows)
        rows = [self.rows[p + n if p < 0 else p] for p in positions]
        missing = [r for r in dict.fromkeys(rows) if r not in self._cache]
        if missing:
            self._cache.update(self._load(missing))
        return [self._cache[r] for r in rows]

    def subset(self, positions: Sequence[int]) -> "PaperList":
        """The papers at these positions, as a lazy list sharing what this one has read."""
        return PaperList([self.rows[p] for p in positions], self._load, self._locate, self._cache)

    def index(self, paper_id: str, *args) -> int:  # type: ignore[override]
        """Position of the paper with this id (raises ValueError when it is not in the list):
        looked up in the index while papers remain unread, else among the papers read."""
        if self._locate is not None and not args and not all(r in self._cache for r in self.rows):
            if not hasattr(self, "_by_row"):
                self._by_row = {r: i for i, r in enumerate(self.rows)}
            row = self._locate(paper_id)
            if row in self._by_row:
                return self._by_row[row]
        else:
            if not hasattr(self, "_by_id"):
                self._by_id: dict[str, int] = {}
                for i, p in enumerate(self):
                    self._by_id.setdefault(p.id, i)
            if paper_id in self._by_id:
                return self._by_id[paper_id]
        raise ValueError(f"{paper_id!r} is not in the list")

    @property
    def loaded(self) -> int:
        """How many papers have been read from the index so far (for tests and benchmarks)."""
        return len(self._cache)

    def __repr__(self) -> str:
        return f"<PaperList: {len(self)} papers, {self.loaded} read>"


def take(papers: Sequence, positions: Sequence[int]) -> list:
    """papers[i] for each position: one read for a `PaperList`, plain indexing otherwise."""
    if hasattr(papers, "take"):
        return papers.take(positions)
    return [papers[i] for i in positions]


@dataclass(frozen=True)
class ThemeMember:
    paper: Paper
    score: float

    def as_dict(self) -> dict:
        return {"id": self.paper.id, "title": self.paper.title, "score": round(self.score, 6)}


class ThemeMembers(Sequence):
    """A theme's members, best first, as `ThemeMember`s made when asked for: the papers are
    `papers[positions[i]]` (read lazily when `papers` is a `PaperList`), scores `scores[i]`."""

    def __init__(self, papers: Sequence[Paper], positions: Sequence[int], scores: Sequence[float]):
        if len(positions) != len(scores):
            raise QueryError(f"{len(positions)} positions but {len(scores)} scores")
        self._papers = papers
        self.positions = [int(i) for i in positions]
        self.scores = [float(s) for s in scores]

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i):
        if isinstance(i, slice):
            picked = range(len(self.positions))[i]
            return [ThemeMember(p, self.scores[j]) for j, p in zip(picked, take(self._papers, [self.positions[j] for j in picked]))]
        return ThemeMember(take(self._papers, [self.positions[i]])[0], self.scores[i])

    def __iter__(self) -> Iterator[ThemeMember]:
        for start in range(0, len(self.positions), PAGE):
            yield from self[start : start + PAGE]

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    def __hash__(self) -> int:
        return hash((tuple(self.positions), tuple(self.scores)))

    def __repr__(self) -> str:
        return f"<ThemeMembers: {len(self)} papers>"


@dataclass(frozen=True)
class Theme:
    """A named or discovered theme and its papers, best first. `score`: cosine to the theme.
    `papers` is a sequence of `ThemeMember` (a tuple, or a `ThemeMembers` that reads lazily)."""

    name: str
    papers: Sequence[ThemeMember]
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
        # lazy lists stay lazy: a theme over a whole large index reads only what is shown
        self.unassigned = unassigned if isinstance(unassigned, PaperList) else tuple(unassigned)
        self.papers = papers if isinstance(papers, PaperList) else tuple(papers)
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
        if isinstance(self.papers, PaperList):
            try:
                i = self.papers.index(paper_id)
            except ValueError:
                raise KeyError(paper_id) from None
        else:
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
