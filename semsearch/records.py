"""Records: raw abstracts from many files -> one canonical `Paper` per paper.

Explicit ids are identity (README "Merging"; thresholds measured in benchmarks/dedup_threshold.py):
  * records with the same explicit id (arXiv id, or the input's own id: its `id`, `doi:…`,
    `bibtex:KEY`) are one paper; records with different explicit ids are never one paper;
  * text may only join a record with no explicit id to another record (or two id-less ones):
    when their normalised word sequences are equal, or they share at least
    NEAR_IDENTICAL_CONTAINMENT of the word 3-grams of the shorter one whatever their titles say,
    or at least REWORDED_CONTAINMENT when their titles do not disagree (one is missing, or they
    share at least TITLE_AGREEMENT of their words).
Pairs kept apart by an id or a title that the text rule would otherwise call one paper (at least
NEAR_DUPLICATE_CONTAINMENT, or REWORDED_CONTAINMENT with agreeing titles) are reported as
`Merged.likely_duplicates`. A paper's id is its arXiv id, else its explicit id, else a content id
of its normalised title (of its longest text when untitled), so the same records give the same
ids in any order; ids it had before an update and explicit ids besides `id` still resolve
(`given_id`, `aliases`). Distinct texts of one paper are kept as its `versions`, the longest first.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from .ingest import RawRecord

#: Shared fraction of word 3-grams (of the shorter text) at which two id-less abstracts are one
#: paper whatever their titles say: near-identical texts (one word changed gives 0.98).
NEAR_IDENTICAL_CONTAINMENT = 0.9
#: Containment at which two abstracts are reported as likely duplicates whatever their titles
#: say. Measured (benchmarks/dedup_threshold.py, docs/benchmarks.md): versions of one paper in
#: the seeds share 0.21-1.00 and distinct seed papers at most 0.10, but companion papers (distinct
#: ids, different titles) reach 0.3-1.0, so between this and NEAR_IDENTICAL a title
#: disagreement keeps them apart.
NEAR_DUPLICATE_CONTAINMENT = 0.5
#: Lower containment at which a reworded version is accepted when titles do not disagree.
REWORDED_CONTAINMENT = 0.18
#: Titles "agree" when they share at least this fraction of the shorter title's words.
TITLE_AGREEMENT = 0.5
#: A 3-gram found in more abstracts than this is boilerplate ("in this paper we") and is not
#: used to propose candidate pairs; containment itself is computed on all 3-grams.
_COMMON_SHINGLE_POSTINGS = 200
SHINGLE = 3


@dataclass(frozen=True)
class Paper:
    """One paper, merged from every place it was seen.

    `abstract` is the primary (longest) version and `versions` holds every distinct text,
    primary first. `title` is None when no source gave one: it is never invented. `given_id` is
    the input's own id (`id`, `doi:…`, `bibtex:KEY`) when a source gave one; `aliases` are ids
    the paper had before an update changed it (e.g. it gained a title): both still resolve.
    """

    id: str
    title: str | None
    abstract: str
    versions: tuple[str, ...]
    arxiv_id: str | None = None
    date: str | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    given_id: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def year(self) -> int | None:
        return int(self.date[:4]) if self.date and self.date[:4].isdigit() else None

    @property
    def names(self) -> tuple[str, ...]:
        """Every id this paper answers to: `id`, arXiv id, given id, aliases."""
        return tuple(dict.fromkeys(n for n in (self.id, self.arxiv_id, self.given_id, *self.aliases) if n))

    def display_title(self, width: int = 80) -> str:
        """The title, or an abstract excerpt marked as such when the paper has none."""
        if self.title:
            return self.title
        excerpt = self.abstract if len(self.abstract) <= width else self.abstract[: width - 3].rstrip() + "..."
        return f"[no title] {excerpt}"


@dataclass(frozen=True)
class StoredRecord(RawRecord):
    """A version of a paper already in an index (see `as_records`): `paper` is its id there and
    glues its versions together; `aliases` are the paper's earlier ids. `id` is its given id."""

    paper: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class MergeGroup:
    """How one paper was assembled: its sources and why they were joined."""

    paper_id: str
    sources: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class LikelyDuplicate:
    """Two papers whose texts look like one paper's versions but were kept apart, and why."""

    papers: tuple[str, str]
    sources: tuple[str, str]
    containment: float
    reason: str  # "different arXiv ids", "different ids" or "titles disagree"


@dataclass
class Merged:
    """Result of `merge`: papers in order of first appearance, the groups of >1 source, and the
    pairs the text rule would have joined but ids or titles kept apart (highest containment first)."""

    papers: list[Paper]
    groups: list[MergeGroup] = field(default_factory=list)
    likely_duplicates: list[LikelyDuplicate] = field(default_factory=list)


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words; hyphenated words are joined (`hardware-accelerated`)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\w)[-\u2010\u2011](?=\w)", "", text)
    return re.findall(r"[^\W_]+", text)


def shingles(text: str, n: int = SHINGLE) -> frozenset[tuple[str, ...]]:
    """Set of word n-grams of `text` (the whole word list when it is shorter than n)."""
    w = words(text)
    if len(w) < n:
        return frozenset([tuple(w)])
    return frozenset(tuple(w[i : i + n]) for i in range(len(w) - n + 1))


def containment(a: frozenset, b: frozenset) -> float:
    """|a & b| / min(|a|, |b|): 1.0 when one text is contained in the other."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def titles_agree(a: str | None, b: str | None) -> bool:
    """True unless both titles exist and share under TITLE_AGREEMENT of their words."""
    if not a or not b:
        return True
    wa, wb = set(words(a)), set(words(b))
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= TITLE_AGREEMENT


def same_paper(c: float, title_a: str | None, title_b: str | None) -> bool:
    """The text rule for records without conflicting ids: containment `c` of two abstracts plus
    their titles (titles that disagree need near-identical texts)."""
    return c >= NEAR_IDENTICAL_CONTAINMENT or (c >= REWORDED_CONTAINMENT and titles_agree(title_a, title_b))


def likely_same(c: float, title_a: str | None, title_b: str | None) -> bool:
    """Looks like one paper's versions (reported when ids or titles keep the two apart)."""
    return c >= NEAR_DUPLICATE_CONTAINMENT or (c >= REWORDED_CONTAINMENT and titles_agree(title_a, title_b))


def _text_key(text: str) -> bytes:
    """16-byte digest of a text's normalised words: equal for the same text scraped twice."""
    return hashlib.blake2b(" ".join(words(text)).encode(), digest_size=16).digest()


def content_id(text: str) -> str:
    """Stable id for a paper with no explicit id: 12 hex digits of SHA-256 of the words of
    `text` (its title, or its longest abstract when untitled)."""
    return hashlib.sha256(" ".join(words(text)).encode()).hexdigest()[:12]


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
        return min(ra, rb)
def near_duplicate_pairs(texts: Sequence[str], threshold: float, since: int = 0) -> list[tuple[float, int, int]]:
    """Pairs (containment, i, j), i < j, of texts sharing >= threshold of their 3-grams, and
    j >= since (pairs among the first `since` texts, compared before, are not searched again).

    3-grams are kept as sorted arrays of 64-bit hashes (Python's string hash, stable within the
    process), ~8 bytes each. For each text, candidates are the later texts sharing one of its
    3-grams that 2..COMMON texts contain (boilerplate 3-grams are skipped); only candidates
    sharing at least half the threshold are checked exactly. Memory grows with the corpus's
    3-grams (one pass, one text's candidates at a time), not with the number of pairs.
    """
    import numpy as np

    sets = [np.unique(np.fromiter((hash(g) for g in shingles(t)), dtype=np.int64)) for t in texts]
    n = len(sets)
    if n < 2:
        return []
    sizes = np.array([len(x) for x in sets], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(sizes)]
    grams = np.concatenate(sets)
    docs = np.repeat(np.arange(n, dtype=np.int64), sizes)
    order = np.argsort(grams, kind="stable")  # stable: docs stay ascending inside each 3-gram
    sorted_docs = docs[order]
    new_group = np.r_[True, grams[order][1:] != grams[order][:-1]]
    group_of_sorted = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.r_[starts, len(grams)])
    group_of = np.empty(len(grams), dtype=np.int64)
    group_of[order] = group_of_sorted  # the group of each doc's own 3-grams, doc-major
    useful = (counts > 1) & (counts <= _COMMON_SHINGLE_POSTINGS)
    pairs = []
    for a in range(since, n) if since else range(n):
        groups = group_of[offsets[a] : offsets[a + 1]]
        groups = groups[useful[groups]]
        if not len(groups):
            continue
        lengths = counts[groups]
        # positions of every member of these groups, without a Python loop over groups
        first = np.repeat(starts[groups] - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        members = sorted_docs[first + np.arange(lengths.sum())]
        members = members[(members > a) | ((members < since) & (members != a))]
        if not len(members):
            continue
        others, shared = np.unique(members, return_counts=True)
        for b in others[shared >= threshold * 0.5 * np.minimum(sizes[a], sizes[others])]:
            c = len(np.intersect1d(sets[a], sets[b], assume_unique=True)) / min(sizes[a], sizes[b])
            if c >= threshold:
                pairs.append((float(c), int(min(a, b)), int(max(a, b))))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return pairs


def merge(records: Iterable[RawRecord], known: int = 0) -> Merged:
    """Join raw records into papers by the module's rule; order = first appearance.

    Explicit ids join first; then text pairs, most similar first, join where no id keeps them
    apart. `known`: the first `known` records are an index's papers (`as_records`), merged
    before; their texts are only compared with the later ones, which gives the same papers as
    comparing all of them again, in time that grows with the new records.
    """
    records = list(records)
    n = len(records)
    uf = _UnionFind(n)
    arxiv: dict[int, str | None] = {i: r.arxiv_id for i, r in enumerate(records)}  # by root
    given: dict[int, str | None] = {i: r.id for i, r in enumerate(records)}
    reasons: dict[int, list[str]] = defaultdict(list)
    apart: dict[tuple[int, int], tuple[float, str]] = {}

    def keep_apart(a: int, b: int, c: float, why: str) -> None:
        if apart.get((a, b), (-1.0,))[0] < c:
            apart[(a, b)] = (c, why)

    def clash(ra: int, rb: int, by_text: bool) -> str | None:
        """Why the papers at roots ra and rb must stay apart (a text join needs one id-less side)."""
        if arxiv[ra] and arxiv[rb] and arxiv[ra] != arxiv[rb]:
            return "different arXiv ids"
        if (given[ra] and given[rb] and given[ra] != given[rb]) or (
            by_text and (arxiv[ra] or given[ra]) and (arxiv[rb] or given[rb])  # e.g. arXiv id vs DOI
        ):
            return "different ids"
        return None

    def join(a: int, b: int, why: str | None) -> None:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb or clash(ra, rb, False):
            return
        joined = reasons.pop(ra, []) + reasons.pop(rb, []) + ([why] if why else [])
        root = uf.union(ra, rb)
        arxiv[root], given[root] = arxiv[ra] or arxiv[rb], given[ra] or given[rb]
        reasons[root] = joined

    first_by_key: dict[tuple[str, str], int] = {}
    for i, r in enumerate(records):
        glue = r.paper if isinstance(r, StoredRecord) else None  # one stored paper: no new reason
        for kind, value, why in (("paper", glue, None), ("arxiv", r.arxiv_id, "same arXiv id"), ("id", r.id, "same id")):
            if value:
                first = first_by_key.setdefault((kind, value), i)
                if first != i:
                    join(first, i, why)

    text_keys = [_text_key(r.abstract) for r in records]
    by_text: dict[bytes, list[int]] = defaultdict(list)  # text -> one record per paper holding it
    seen: set[tuple[bytes, int]] = set()
    for i in range(n):
        if (text_keys[i], uf.find(i)) not in seen:
            seen.add((text_keys[i], uf.find(i)))
            by_text[text_keys[i]].append(i)
    texts = list(by_text)  # in order of first appearance: the stored ones first
    since = sum(1 for t in texts if by_text[t][0] < known)
    edges = []
    for members in by_text.values():
        pairs = zip(members, members[1:]) if len(members) > 20 else _combinations(members)
        edges.extend((1.0, a, b, "same text") for a, b in pairs)
    for c, x, y in near_duplicate_pairs([records[by_text[t][0]].abstract for t in texts], REWORDED_CONTAINMENT, since):
        why = f"near-duplicate text (3-gram containment {c:.2f})"
        edges.extend((c, a, b, why) for a in by_text[texts[x]] for b in by_text[texts[y]])
    # most similar first; ties by content, not position, so that input order does not matter
    edges.sort(key=lambda e: (-e[0], min(text_keys[e[1]], text_keys[e[2]]), max(text_keys[e[1]], text_keys[e[2]])))
    for c, a, b, why in edges:
        ra, rb = uf.find(a), uf.find(b)
        ta, tb = records[a].title, records[b].title
        if ra == rb or not likely_same(c, ta, tb):
            continue
        apart_why = clash(ra, rb, True) or (None if same_paper(c, ta, tb) else "titles disagree")
        if apart_why:
            keep_apart(a, b, c, apart_why)
        else:
            join(a, b, why)

    members: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        members[uf.find(i)].append(i)
    roots = sorted(members)
    papers = _final_ids([_paper_from([records[i] for i in members[root]]) for root in roots])
    id_of = {root: paper.id for root, paper in zip(roots, papers)}
    explained = [
        MergeGroup(paper.id, paper.sources, tuple(dict.fromkeys(reasons[root])))
        for paper, root in zip(papers, roots)
        if len(paper.sources) > 1
    ]
    likely: dict[tuple[int, int], LikelyDuplicate] = {}
    for (a, b), (c, why) in apart.items():
        ra, rb = uf.find(a), uf.find(b)
        key = (min(ra, rb), max(ra, rb))
        if ra != rb and (key not in likely or likely[key].containment < round(c, 3)):
            likely[key] = LikelyDuplicate(
                (id_of[ra], id_of[rb]), (_source(records[a]), _source(records[b])), round(c, 3), why
            )
    return Merged(papers, explained, sorted(likely.values(), key=lambda d: (-d.containment, d.papers)))


def unmerged(records: Iterable[RawRecord]) -> Merged:
    """One paper per record, nothing merged (for judged benchmarks whose ids must survive)."""
    return Merged(_final_ids([_paper_from([r]) for r in records]))


def as_records(paper: Paper) -> list[StoredRecord]:
    """A stored paper back as records (one per source, every version kept, its id as glue), so
    that `merge` treats it as one unit when new records arrive."""
    sources = list(paper.sources) or ["index:0"]
    out = []
    for k in range(max(len(sources), len(paper.versions))):
        path, _, line = sources[k % len(sources)].rpartition(":")
        out.append(
            StoredRecord(
                paper.versions[k % len(paper.versions)],
                path or sources[k % len(sources)],
                int(line) if line.isdigit() else 0,
                title=paper.title,
                arxiv_id=paper.arxiv_id,
                id=paper.given_id,
                authors=paper.authors,
                date=paper.date,
                categories=paper.categories,
                paper=paper.id,
                aliases=paper.aliases,
            )
        )
    return out


def _combinations(items: list[int]) -> list[tuple[int, int]]:
    return [(a, b) for k, a in enumerate(items) for b in items[k + 1 :]]


def _source(r: RawRecord) -> str:
    return f"{r.source}:{r.line}"


def _final_ids(papers: list[Paper]) -> list[Paper]:
    """Distinct papers with one title and no explicit id get a content id of title and text;
    two papers given one explicit id by their sources are both kept: the second gets `id~2`."""
    explicit = lambda p: p.arxiv_id or p.given_id  # noqa: E731
    clashes = Counter(p.id for p in papers if not explicit(p))
    out = []
    for p in papers:
        if not explicit(p) and clashes[p.id] > 1 and p.title:
            new = content_id(f"{p.title} {p.abstract}")
            p = replace(p, id=new, aliases=tuple(a for a in p.aliases if a != new))
        out.append(p)
    return _unique_ids(out)


def _unique_ids(papers: list[Paper]) -> list[Paper]:
    seen: Counter[str] = Counter()
    out = []
    for paper in papers:
        seen[paper.id] += 1
        out.append(paper if seen[paper.id] == 1 else replace(paper, id=f"{paper.id}~{seen[paper.id]}"))
    return out


def _most_common(counts: Counter) -> str | None:
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counts else None


def _paper_from(group: list[RawRecord]) -> Paper:
    versions: dict[tuple[str, ...], RawRecord] = {}
    for r in group:
        versions.setdefault(tuple(words(r.abstract)), r)
    ordered = sorted(versions.items(), key=lambda kv: (-len(kv[0]), kv[0]))  # ties: by text, not by arrival
    primary_key, primary = ordered[0]
    title = _most_common(Counter(r.title for r in group if r.title and tuple(words(r.abstract)) == primary_key))
    title = title or _most_common(Counter(r.title for r in group if r.title))
    arxiv_id = min((r.arxiv_id for r in group if r.arxiv_id), default=None)
    given_id = min((r.id for r in group if r.id), default=None)
    paper_id = arxiv_id or given_id or content_id(title or primary.abstract)
    former = (a for r in group if isinstance(r, StoredRecord) for a in (r.paper, *r.aliases))
    given = {r.date for r in group if r.date}
    # the earliest date, at the most precise any source gives it ("2024-07" from an arXiv id
    # yields to "2024-07-31" from a page)
    dates = sorted(d for d in given if not any(o != d and o.startswith(d) for o in given))
    return Paper(
        id=paper_id,
        title=title,
        abstract=primary.abstract,
        versions=tuple(r.abstract for _, r in ordered),
        arxiv_id=arxiv_id,
        date=dates[0] if dates else None,
        authors=max((r.authors for r in group), key=len),
        categories=tuple(dict.fromkeys(c for r in group for c in r.categories)),
        sources=tuple(_source(r) for r in group),
        given_id=given_id,
        aliases=tuple(sorted({a for a in former if a and a not in (paper_id, arxiv_id, given_id)})),
    )
