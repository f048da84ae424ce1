"""Records: raw abstracts from many files -> one canonical `Paper` per paper.

Merge rule (documented in README, threshold measured in benchmarks/dedup_threshold.py):
two abstracts belong to one paper when
  * their normalised word sequences are equal (the same text, scraped twice), or
  * they carry the same arXiv id, or
  * they share at least NEAR_DUPLICATE_CONTAINMENT of the word 3-grams of the shorter one
    (a reworded or extended version), or at least REWORDED_CONTAINMENT when their titles do
    not disagree (one is missing, or they share at least half their words),
and never when that would join two different arXiv ids. Distinct texts of one paper are kept
as its `versions`, the longest first.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from .ingest import RawRecord

#: Shared fraction of word 3-grams (of the shorter text) at which two abstracts are one paper
#: whatever their titles say. Measured (benchmarks/dedup_threshold.py, docs/benchmarks.md):
#: versions of one paper in the seeds share 0.21-1.00 and distinct seed papers at most 0.10,
#: but companion papers on arXiv (distinct ids) reach 0.3-0.9, so below this value a title
#: disagreement vetoes the merge.
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
    primary first. `title` is None when no source gave one: it is never invented.
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

    @property
    def year(self) -> int | None:
        return int(self.date[:4]) if self.date and self.date[:4].isdigit() else None

    def display_title(self, width: int = 80) -> str:
        """The title, or an abstract excerpt marked as such when the paper has none."""
        if self.title:
            return self.title
        excerpt = self.abstract if len(self.abstract) <= width else self.abstract[: width - 3].rstrip() + "..."
        return f"[no title] {excerpt}"


@dataclass(frozen=True)
class MergeGroup:
    """How one paper was assembled: its sources and why they were joined."""

    paper_id: str
    sources: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass
class Merged:
    """Result of `merge`: papers in order of first appearance, plus the groups of >1 source."""

    papers: list[Paper]
    groups: list[MergeGroup] = field(default_factory=list)


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
    """The near-duplicate rule: containment `c` of two abstracts plus their titles."""
    return c >= NEAR_DUPLICATE_CONTAINMENT or (c >= REWORDED_CONTAINMENT and titles_agree(title_a, title_b))


def _text_key(text: str) -> bytes:
    """16-byte digest of a text's normalised words: equal for the same text scraped twice."""
    return hashlib.blake2b(" ".join(words(text)).encode(), digest_size=16).digest()


def content_id(text: str) -> str:
    """Stable id for a paper with no arXiv id: 12 hex digits of SHA-256 of its words."""
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
    """Join raw records into papers by the module's merge rule; order = first appearance.

    `known`: the first `known` records were merged together before (an index's papers, see
    index.add); their texts are only compared with the later ones, which gives the same papers
    as comparing all of them again, in time that grows with the new records.
    """
    records = list(records)
    uf = _UnionFind(len(records))
    arxiv: dict[int, str | None] = {i: r.arxiv_id for i, r in enumerate(records)}
    reasons: dict[int, list[str]] = defaultdict(list)

    def join(a: int, b: int, why: str) -> None:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            return
        ida, idb = arxiv[ra], arxiv[rb]
        if ida and idb and ida != idb:
            return
        reasons_ab = reasons.pop(ra, []) + reasons.pop(rb, []) + [why]
        root = uf.union(ra, rb)
        arxiv[root] = ida or idb
        reasons[root] = reasons_ab

    text_keys = [_text_key(r.abstract) for r in records]
    first_by_key: dict[object, int] = {}
    for i, r in enumerate(records):
        for key, why in (
            (("text", text_keys[i]), "same text"),
            (("arxiv", r.arxiv_id), "same arXiv id"),
            (("id", r.id), "same id"),
        ):
            if key[1] is None:
                continue
            if key in first_by_key:
                join(first_by_key[key], i, why)
            else:
                first_by_key[key] = i

    distinct = [i for i in range(len(records)) if first_by_key[("text", text_keys[i])] == i]
    since = sum(1 for i in distinct if i < known)
    for c, x, y in near_duplicate_pairs([records[i].abstract for i in distinct], REWORDED_CONTAINMENT, since):
        a, b = records[distinct[x]], records[distinct[y]]
        if same_paper(c, a.title, b.title):
            join(distinct[x], distinct[y], f"near-duplicate text (3-gram containment {c:.2f})")

    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        members[uf.find(i)].append(i)
    groups = [[records[i] for i in members[root]] for root in sorted(members)]
    papers = _unique_ids([_paper_from(group) for group in groups])
    explained = [
        MergeGroup(paper.id, paper.sources, tuple(dict.fromkeys(reasons[root])))
        for paper, root in zip(papers, sorted(members))
        if len(paper.sources) > 1
    ]
    return Merged(papers, explained)


def unmerged(records: Iterable[RawRecord]) -> Merged:
    """One paper per record, nothing merged (for judged benchmarks whose ids must survive)."""
    return Merged(_unique_ids([_paper_from([r]) for r in records]))


def _unique_ids(papers: list[Paper]) -> list[Paper]:
    """Two papers given one id by their sources are both kept: the second gets `id~2`."""
    seen: Counter[str] = Counter()
    out = []
    for paper in papers:
        seen[paper.id] += 1
        out.append(paper if seen[paper.id] == 1 else replace(paper, id=f"{paper.id}~{seen[paper.id]}"))
    return out


def _paper_from(group: list[RawRecord]) -> Paper:
    versions: dict[tuple[str, ...], RawRecord] = {}
    for r in group:
        versions.setdefault(tuple(words(r.abstract)), r)
    ordered = sorted(versions.values(), key=lambda r: -len(words(r.abstract)))
    primary = ordered[0]
    primary_key = tuple(words(primary.abstract))
    titles = Counter(r.title for r in group if r.title)
    primary_titles = [r.title for r in group if r.title and tuple(words(r.abstract)) == primary_key]
    title = primary_titles[0] if primary_titles else (titles.most_common(1)[0][0] if titles else None)
    arxiv_id = next((r.arxiv_id for r in group if r.arxiv_id), None)
    user_id = next((r.id for r in group if r.id), None)
    dates = sorted(r.date for r in group if r.date)
    return Paper(
        id=arxiv_id or user_id or content_id(primary.abstract),
        title=title,
        abstract=primary.abstract,
        versions=tuple(r.abstract for r in ordered),
        arxiv_id=arxiv_id,
        date=dates[0] if dates else None,
        authors=max((r.authors for r in group), key=len),
        categories=tuple(dict.fromkeys(c for r in group for c in r.categories)),
        sources=tuple(f"{r.source}:{r.line}" for r in group),
    )
