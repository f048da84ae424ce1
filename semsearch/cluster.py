"""Discovered themes: kNN-graph communities (small corpora) or k-means with k by modularity, named by distinctive phrases."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Iterable, Sequence

from .errors import QueryError
from .results import take

if TYPE_CHECKING:
    import numpy as np

#: k-means restarts per candidate k (best inertia kept); fixed so results depend on random_state only.
N_INIT = 3
#: Each paper's vector is averaged with those of its nearest neighbours before clustering (at most
#: this many, and n // 10): a denoising step measured in benchmarks/clustering.py.
NEIGHBOURS = 10
#: Above this many papers, k-means runs on a random sample of this size (drawn with random_state)
#: and every paper then joins its nearest theme centre: the cost stays flat on large corpora.
FIT_SAMPLE = 8000
#: Candidate numbers of themes are compared on k-means of at most this many (sampled) papers.
SCAN_SAMPLE = 3000
#: k is the smallest candidate whose modularity is within this of the best one (parsimony, like a
#: one-standard-error rule): modularity barely moves past the true k while k-means keeps splitting
#: real topics (4,500 arXiv: k = 9 at 0.859, k = 10 at 0.860). Chosen on the dev theme sets only
#: (`benchmarks/clustering.py --dev`: mean V-measure 0.654 at 0, 0.654 at 0.002, 0.656 at 0.005,
#: 0.654 at 0.01, 0.650 at 0.02 — a small margin, within the noise of the small draws).
TOLERANCE = 0.005
#: Below this many papers (and with `n_themes=None`) themes are the Louvain communities of the
#: smoothed vectors' kNN graph (COMMUNITY_NEIGHBOURS, cosine weights, modularity resolution
#: COMMUNITY_RESOLUTION) instead of k-means with a chosen k. Chosen on dev only
#: (`benchmarks/clustering.py --communities`): mean V-measure on 20 small draws 0.504 vs 0.495,
#: on 100 / 60 dev draws of 25 / 50 papers 0.684 / 0.672 vs 0.678 / 0.674 — level within the
#: noise; at 200 papers and on the whole dev sets k-means is better (0.636 vs 0.622).
COMMUNITY_BELOW = 100
#: Neighbours per paper in that graph: sqrt(n), at most this many.
COMMUNITY_NEIGHBOURS = 10
#: Modularity resolution of the communities: 1 is plain modularity (dev: 0.5-1.25 within 0.007).
COMMUNITY_RESOLUTION = 1.0
#: Terms of `words_` joined into a theme's name.
NAME_TERMS = 3
#: A label term is used by at least this share of its theme's papers (and at least 2).
MIN_SHARE = 0.05
#: Longest phrase (in words) that can name a theme ("large language models").
MAX_PHRASE = 3
#: A phrase replaces the shorter terms it contains already chosen for a label when it holds at
#: least this share of the cluster's texts containing each: they are mostly used in that phrase.
PHRASE_SHARE = 0.5
#: Words that say what kind of paper it is, not what it is about, added to scikit-learn's English
#: stop words. Measured (benchmarks/clustering.py): the words that reached the 4-term labels of
#: arXiv categories and of k-means clusters with only scikit-learn's list, with their inflections.
GENERIC_WORDS = frozenset(
    """
    propose proposed proposes method methods study studies framework result results performance
    present presents problem problems introduce introduces experiments state-of-the-art
    demonstrate demonstrates existing using use used based approach approaches paper new novel work
    achieve achieves
    limited analysis compared compare applying apply applied discussion discuss leverage leverages
    effective effectively technique techniques significant significantly improve improves improved
    improvement show shows provide provides various different including challenge challenges
    prove proves proved extensive extensively
    """.split()
)

_MATH = re.compile(r"\$[^$]*\$|\\[a-zA-Z]+|https?://\S+")
_WORD = re.compile(r"\b[^\W\d_]{2,}(?:-[^\W\d_]+)*\b")


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS | GENERIC_WORDS


def terms(text: str, stop_words: frozenset[str] = frozenset()) -> set[str]:
    """The distinct label terms of a text: words and phrases of up to MAX_PHRASE words, lower-case.

    LaTeX (`$...$`, `\\command`), URLs and anything with a digit are dropped; a phrase is a run of
    words with only white space between them (never across punctuation, math or a number), none
    of them a stop word.
    """
    text = _MATH.sub(" . ", text)
    out: set[str] = set()
    run: list[str] = []
    end = 0
    for m in _WORD.finditer(text):
        w = m.group().lower()
        if w in stop_words or not text[end : m.start()].isspace():
            run = []
        end = m.end()
        if w in stop_words:
            continue
        run = (run + [w])[-MAX_PHRASE:]
        out.update(" ".join(run[i:]) for i in range(len(run)))
    return out


def label_clusters(
    texts: Sequence[str], labels: Sequence[int], n_words: int = 4, stop_words: Iterable[str] | None = None
) -> list[list[str]]:
    """The most distinctive terms of each cluster by class-based TF-IDF (c-TF-IDF, as in BERTopic).

    A term's weight in cluster c is tf(t, c) * log(1 + A / f(t)): tf(t, c) is the number of the
    cluster's texts containing t (counted once per text, so one paper repeating its acronym does
    not name a theme), f(t) its total over all clusters and A the mean number of terms per
    cluster. Terms are words and phrases without stop words (see `terms`). Going down the
    ranking, a term sharing a word stem (`_stem`: robot / robots / robotic / robotics) with one
    already kept is skipped, except that a phrase replaces the kept terms it contains when it
    holds at least PHRASE_SHARE of the cluster's texts containing each ("dark", "matter" ->
    "dark matter"). Each kept term is shown in the form of its stems that most of the cluster's
    texts use (theories -> theory). Measured in benchmarks/theme_labels.py.

    Args:
        texts: n documents (title + abstract).
        labels: n ints in 0..k-1, the cluster of each text.
        n_words: terms per cluster.
        stop_words: words never used; None = scikit-learn's English list plus GENERIC_WORDS.
    Returns:
        k lists of at most n_words terms, best first (empty for an empty cluster).
    """
    if len(texts) != len(labels):
        raise QueryError(f"label_clusters: {len(texts)} texts but {len(labels)} labels")
    if any(int(c) < 0 for c in labels):
        raise QueryError("label_clusters: labels must be cluster numbers 0..k-1 (no -1 for outliers)")
    k = max((int(c) for c in labels), default=-1) + 1
    stop = _stop_words() if stop_words is None else frozenset(stop_words)
    per_cluster: list[Counter[str]] = [Counter() for _ in range(k)]
    sizes = Counter(int(c) for c in labels)
    for text, c in zip(texts, labels):
        per_cluster[int(c)].update(terms(text, stop))
    total: Counter[str] = Counter()
    for counts in per_cluster:
        total.update(counts)
    n = len(texts)
    return [_top_terms(counts, total, sizes[c], n, n_words) for c, counts in enumerate(per_cluster)]


def _top_terms(counts: Counter[str], total: Counter[str], size: int, n: int, n_words: int) -> list[str]:
    """Terms ranked by p_in * log(p_in / p_all): frequent in the cluster and rarer in the corpus.

    A word common everywhere ("model" in a corpus of machine-learning papers) scores near zero
    however often the cluster uses it: corpus-level stop words without a list.
    """
    def weight(t: str) -> float:
        p_in, p_all = counts[t] / max(size, 1), total[t] / max(n, 1)
        return p_in * math.log(p_in / p_all) if p_in > p_all else 0.0

    least = max(2, math.ceil(MIN_SHARE * size)) if size > 3 else 1
    ranked = sorted((t for t in counts if counts[t] >= least), key=lambda t: (-weight(t), t))
    chosen: list[str] = []
    for term in ranked:
        if weight(term) <= 0:
            break
        if any(_acronym(term, c) or _acronym(c, term) for c in chosen):
            continue
        keys = {_stem(w) for w in term.split()}
        clash = [i for i, c in enumerate(chosen) if keys & {_stem(w) for w in c.split()}]
        if not clash:
            if len(chosen) == n_words:
                break
            chosen.append(term)
        elif all(f" {chosen[i]} " in f" {term} " and counts[term] >= PHRASE_SHARE * counts[chosen[i]] for i in clash):
            chosen[clash[0]] = term
            for i in reversed(clash[1:]):
                del chosen[i]
    # each part in the cluster's most frequent form of its stems (theories -> theory); that form
    # is used by at least as many texts as the chosen one, so it is among `ranked`
    wanted = {_stem_key(t) for t in chosen}
    forms: dict[str, tuple[int, str]] = {}
    for t in ranked:
        key = _stem_key(t)
        if key in wanted:
            forms[key] = min(forms.get(key, (0, t)), (-counts[t], t))
    return [forms[_stem_key(t)][1] for t in chosen]


def _acronym(term: str, phrase: str) -> bool:
    """`llms` / `llm` for `large language models`."""
    words = phrase.split()
    initials = "".join(w[0] for w in words)
    bare = term[:-1] if term.endswith("s") else term
    # "llms" also for "language models" when "large" was kept apart
    return len(words) > 1 and " " not in term and (bare == initials or bare.endswith(initials))


def _fold(word: str) -> str:
    """Crude singular for overlap checks only: galaxies/galaxy, robots/robot (never shown)."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


#: Derivational endings `_stem` strips (longest first), each only when 4 letters remain.
_ENDINGS = ("izations", "ization", "ations", "ation", "ically", "ical", "ally", "ics", "ing", "ity", "ive",
            "ness", "ment", "ic", "al", "ed", "er", "ly")


def _stem_key(term: str) -> str:
    return " ".join(_stem(w) for w in term.split())


def _stem(word: str, endings: tuple[str, ...] = _ENDINGS) -> str:
    """Crude stem for folding word forms into one label part: robot/robots/robotic/robotics -> robot.

    Plural first (galaxies -> galaxy), then up to two derivational `endings` (clustering ->
    cluster -> clust), then a final e (image / imaging -> imag). Never shown.
    """
    w = _fold(word)
    for _ in range(2):
        for end in endings:
            if w.endswith(end) and len(w) - len(end) >= 4:
                w = w[: -len(end)]
                break
        else:
            break
    return w[:-1] if w.endswith("e") and len(w) > 4 else w


class AutoThemes:
    """Themes discovered in paper vectors: k-means clusters named by their distinctive words.

    Clustering runs on the vectors minus their mean, re-normalised (sentence embeddings share a
    common direction that hides topic structure). With `n_themes=None`, below COMMUNITY_BELOW
    papers themes are the Louvain communities of the kNN graph (random_state seeds it), unless
    their number is outside min_themes..max_themes; otherwise k is the candidate in
    `min_themes..min(max_themes, sqrt(n))` whose k-means solution has the highest modularity on the
    papers' k-nearest-neighbour graph (NEIGHBOURS; on at most SCAN_SAMPLE papers), or the smallest
    k within TOLERANCE of it. Vectors are first smoothed (each averaged with its NEIGHBOURS nearest). Fewer than 3 papers are one
    theme. See benchmarks/clustering.py for the criteria compared.

    Args:
        n_themes: number of themes; None chooses it (see above). Clamped to the number of
            distinct vectors.
        max_themes, min_themes: the range of k tried when choosing.
        n_words: terms kept per theme in `words_`.
        random_state: seed of k-means and of the samples.

    Learned attributes (after `fit`), themes ordered by size, largest first:
        labels_: (n,) int64, the theme of each paper.
        n_themes_: int, the number of themes k.
        centers_: (k, dim) float32, L2-normalised mean vector of each theme (original space).
        scores_: (n,) float32, cosine of each paper to its theme's center.
        words_: k lists of terms (c-TF-IDF, see `label_clusters`).
        names_: k strings, the first NAME_TERMS terms joined by " · " (made unique).
        selection_: {k: modularity} of the candidates tried (of the communities found, on a
            small corpus); empty when k was not chosen.
    """

    def __init__(
        self,
        n_themes: int | None = None,
        max_themes: int = 20,
        min_themes: int = 2,
        n_words: int = 4,
        random_state: int = 0,
    ):
        self.n_themes = n_themes
        self.max_themes = max_themes
        self.min_themes = min_themes
        self.n_words = n_words
        self.random_state = random_state

    def fit(self, vectors: "np.ndarray", texts: Sequence[str]) -> "AutoThemes":
        """Learn themes.

        Args:
            vectors: (n, dim) float32, L2-normalised, one row per paper.
            texts: the n papers' texts (title + abstract), for naming; only those of the sampled
                papers are read (in one `texts.take(rows)` call where the sequence has one).
        Returns:
            self.
        Raises:
            QueryError: mismatched or empty inputs, or invalid parameters.
        """
        import numpy as np

        x = self._validate(vectors, texts)
        n = len(x)
        centred = x - x.mean(axis=0)
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        centred = np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0)
        rng = np.random.default_rng(self.random_state)
        fit_rows = np.sort(rng.choice(n, FIT_SAMPLE, replace=False)) if n > FIT_SAMPLE else np.arange(n)
        z = _smooth(centred[fit_rows], _smooth_neighbours(len(fit_rows)))
        distinct = len(np.unique(z, axis=0))
        self.selection_: dict[int, float] = {}
        if self.n_themes is not None:
            labels = self._kmeans(z, min(self.n_themes, distinct))
        elif len(z) < 3 or distinct < 2:
            labels = np.zeros(len(z), dtype=np.int64)
        else:
            labels = self._communities(z) if n < COMMUNITY_BELOW else None
            if labels is None:
                labels = self._choose(z, distinct)
        if len(fit_rows) < n:  # every paper joins the nearest centre of the sample's themes
            k = int(labels.max()) + 1
            sums = np.zeros((k, x.shape[1]), dtype=np.float64)
            np.add.at(sums, labels, centred[fit_rows])
            labels = (centred @ sums.T.astype(np.float32)).argmax(axis=1).astype(np.int64)
        self._learn(x, labels, texts, fit_rows)
        return self

    def _validate(self, vectors, texts) -> "np.ndarray":
        import numpy as np

        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise QueryError(f"vectors must have shape (n, dim) with n >= 1, got {x.shape}")
        if len(texts) != len(x):
            raise QueryError(f"{len(x)} vectors but {len(texts)} texts: give one text per vector")
        if not np.isfinite(x).all():
            raise QueryError("vectors contain NaN or infinity")
        if self.n_themes is not None and self.n_themes < 1:
            raise QueryError(f"n_themes must be at least 1, got {self.n_themes}")
        if not 2 <= self.min_themes <= self.max_themes:
            raise QueryError(f"need 2 <= min_themes <= max_themes, got {self.min_themes} and {self.max_themes}")
        if self.n_words < 1:
            raise QueryError(f"n_words must be at least 1, got {self.n_words}")
        return x

    def _kmeans(self, x: "np.ndarray", k: int) -> "np.ndarray":
        import numpy as np
        from sklearn.cluster import KMeans

        if k <= 1:
            return np.zeros(len(x), dtype=np.int64)
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        # one thread: on these sizes (<= FIT_SAMPLE x dim) thread start-up and contention cost more
        # than they save (3,000 x 384, k = 9: 1.06 s with the default threads, 0.18 s with one, on
        # a 2-core machine shared with other jobs); the result is the same
        with warnings.catch_warnings(), threadpool_limits(1):
            # k above the number of distinct points: fewer clusters, said by n_themes_
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=k, n_init=N_INIT, random_state=self.random_state).fit(x)
        return km.labels_.astype(np.int64)

    def _communities(self, x: "np.ndarray") -> "np.ndarray | None":
        """Louvain communities of the weighted kNN graph; None when their number is out of range."""
        import networkx as nx
        import numpy as np

        n = len(x)
        rows, cols = _knn_graph(x, max(1, min(COMMUNITY_NEIGHBOURS, int(n**0.5), n - 1)))
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        # cosine weights, never negative; each edge once (rows < cols), in a fixed order
        once = rows < cols
        weights = np.maximum((x[rows[once]] * x[cols[once]]).sum(axis=1), 0.0)
        graph.add_weighted_edges_from(zip(rows[once].tolist(), cols[once].tolist(), weights.tolist()))
        found = nx.community.louvain_communities(
            graph, weight="weight", resolution=COMMUNITY_RESOLUTION, seed=self.random_state
        )
        if not self.min_themes <= len(found) <= self.max_themes:
            return None
        labels = np.zeros(n, dtype=np.int64)
        for c, members in enumerate(sorted(found, key=min)):
            labels[sorted(members)] = c
        self.selection_[len(found)] = _modularity(rows, cols, labels)
        return labels

    def _choose(self, x: "np.ndarray", distinct: int) -> "np.ndarray":
        import numpy as np

        n = len(x)
        rng = np.random.default_rng(self.random_state)
        # candidates are clustered on SCAN_SAMPLE papers; only the chosen k is clustered on all
        scan = np.sort(rng.choice(n, SCAN_SAMPLE, replace=False)) if n > SCAN_SAMPLE else np.arange(n)
        xs = x[scan]
        rows, cols = _knn_graph(xs, _graph_neighbours(len(xs)))
        # at most sqrt(n) themes: on small corpora every criterion otherwise prefers many pairs
        high = min(self.max_themes, distinct, len(xs) - 1, max(self.min_themes, _max_k(n)))
        low = min(self.min_themes, high)
        found: dict[int, "np.ndarray"] = {}
        for k in range(low, high + 1):
            labels = self._kmeans(xs, k)
            if len(np.unique(labels)) < 2:
                continue
            self.selection_[k] = _modularity(rows, cols, labels)
            found[k] = labels
        if not found:
            return np.zeros(n, dtype=np.int64)
        top = max(self.selection_.values())
        best_k = min(k for k, q in self.selection_.items() if q >= top - TOLERANCE)
        return found[best_k] if len(scan) == n else self._kmeans(x, best_k)

    def _learn(self, x: "np.ndarray", labels: "np.ndarray", texts: Sequence[str], label_rows: "np.ndarray") -> None:
        import numpy as np

        # themes ordered by size (largest first), ties by first paper, so numbering is stable
        sizes = np.bincount(labels)
        used = [c for c in range(len(sizes)) if sizes[c]]
        first = {c: int(np.argmax(labels == c)) for c in used}
        order = sorted(used, key=lambda c: (-sizes[c], first[c]))
        remap = np.zeros(len(sizes), dtype=np.int64)
        remap[order] = np.arange(len(order))
        self.labels_ = remap[labels].astype(np.int64)
        self.n_themes_ = len(order)
        sums = np.zeros((self.n_themes_, x.shape[1]), dtype=np.float64)
        np.add.at(sums, self.labels_, x)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        self.centers_ = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0).astype(np.float32)
        self.scores_ = np.einsum("ij,ij->i", x, self.centers_[self.labels_]).astype(np.float32)
        # words from the sampled papers only: reading every text costs more than the clustering
        self.words_ = label_clusters(take(texts, label_rows.tolist()), self.labels_[label_rows].tolist(), self.n_words)
        self.words_ += [[] for _ in range(self.n_themes_ - len(self.words_))]
        self.names_ = _unique([" · ".join(w[:NAME_TERMS]) or f"theme {i + 1}" for i, w in enumerate(self.words_)])


def _smooth_neighbours(n: int) -> int:
    """Neighbours each of n vectors is averaged with (0 = no smoothing)."""
    return min(NEIGHBOURS, n // 10)


def _graph_neighbours(n: int) -> int:
    """Neighbours per paper in the kNN graph whose modularity chooses k."""
    return max(1, min(NEIGHBOURS, n // 10))


def _max_k(n: int) -> int:
    """Most themes tried for n papers: on small corpora every criterion otherwise prefers many pairs."""
    return int(n**0.5)


def _knn_graph(x: "np.ndarray", neighbours: int) -> tuple["np.ndarray", "np.ndarray"]:
    """Edges (rows, cols) of the symmetric k-nearest-neighbour graph (cosine), each listed both ways."""
    import numpy as np

    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    near = np.argpartition(-sims, neighbours - 1, axis=1)[:, :neighbours]
    pairs = {(int(i), int(j)) if i < j else (int(j), int(i)) for i, row in enumerate(near) for j in row if i != j}
    edges = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return np.concatenate([edges[:, 0], edges[:, 1]]), np.concatenate([edges[:, 1], edges[:, 0]])


def _modularity(rows: "np.ndarray", cols: "np.ndarray", labels: "np.ndarray") -> float:
    """Newman's modularity of a partition of an unweighted graph given as directed edge lists."""
    import numpy as np

    m2 = len(rows)
    if m2 == 0:
        return 0.0
    within = np.bincount(labels[rows][labels[rows] == labels[cols]], minlength=labels.max() + 1)
    degree = np.bincount(labels[rows], minlength=labels.max() + 1)
    return float((within / m2 - (degree / m2) ** 2).sum())


def _smooth(x: "np.ndarray", neighbours: int) -> "np.ndarray":
    """Each row averaged with its `neighbours` nearest rows (cosine), re-normalised."""
    import numpy as np

    if neighbours < 1:
        return x
    sims = x @ x.T
    near = np.argpartition(-sims, neighbours, axis=1)[:, : neighbours + 1]
    z = x[near].mean(axis=1)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)


def _unique(names: list[str]) -> list[str]:
    """Names with repeats suffixed ` (2)`, ` (3)`, ... so each theme can be looked up by name."""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out
