"""Scraped pages: the page shapes seen in the seed corpus, each a parser of cleaned lines."""

from __future__ import annotations

import re
from collections.abc import Callable

from .base import (
    _ARXIV_ID,
    _MONTHS,
    MAX_TITLE_WORDS,
    Parsed,
    RawRecord,
    Skipped,
    _is_prose,
    _iso_date,
    _short,
    _words,
    clean_text,
    normalize_arxiv_id,
)

_ARXIV_PREFIX = re.compile(rf"^arXiv:\s*(?P<id>{_ARXIV_ID})(?P<rest>.*)$", re.IGNORECASE)
_ABSTRACT_LINE = re.compile(r"^Abstract:\s*(?P<text>.*)$", re.IGNORECASE)
_CATEGORY_DATE = re.compile(
    rf"^(?P<cat>[A-Z]{{2,4}})(?P<date>(?:{_MONTHS})[a-z]* \d{{1,2}}, \d{{4}})(?:Code)?$"
)



# --- page shapes -------------------------------------------------------------------------
# Each parser takes the file's lines (already cleaned) and returns (records, skipped).


def _skip_unused(path: str, lines: list[str], used: set[int], reason: str) -> list[Skipped]:
    return [
        Skipped(path, i + 1, reason, _short(text))
        for i, text in enumerate(lines)
        if text and i not in used
    ]


def parse_abstract_lines(path: str, lines: list[str]) -> Parsed:
    """Shape (a): each `Abstract:` line is one abstract; the page gives no titles."""
    records, used = [], set()
    for i, text in enumerate(lines):
        m = _ABSTRACT_LINE.match(text)
        if m and _is_prose(m["text"]):
            records.append(RawRecord(m["text"], path, i + 1))
            used.add(i)
    return records, _skip_unused(path, lines, used, "page chrome (not an Abstract: line)")


def parse_collaborator_page(path: str, lines: list[str]) -> Parsed:
    """Shape (b): blocks of title, venue and abstract, each separated by blank lines."""
    blocks = [(i, t) for i, t in enumerate(lines) if t]
    records, used = [], set()
    for k in range(2, len(blocks)):
        (ti, title), (vi, venue), (ai, abstract) = blocks[k - 2], blocks[k - 1], blocks[k]
        separated = lines[ai - 1] == "" and lines[vi - 1] == ""
        if (
            separated
            and _is_prose(abstract)
            and not _is_prose(title)
            and not _is_prose(venue)
            and _words(title) <= MAX_TITLE_WORDS
            and not {ti, vi} & used
            and not _ARXIV_PREFIX.match(abstract)
        ):
            records.append(RawRecord(abstract, path, ai + 1, title=title))
            used.update((ti, vi, ai))
    return records, _skip_unused(path, lines, used, "page chrome")


def parse_author_page(path: str, lines: list[str]) -> Parsed:
    """Shape (d): `LGJun 1, 2022[Code]`, title, `authors et al. · affiliations`, abstract."""
    blocks = [(i, t) for i, t in enumerate(lines) if t]
    records, used = [], set()
    for k, (ci, text) in enumerate(blocks):
        m = _CATEGORY_DATE.match(text)
        if not m or k + 2 >= len(blocks):
            continue
        (ti, title), (bi, following) = blocks[k + 1], blocks[k + 2]
        if _is_prose(title) or _CATEGORY_DATE.match(title):
            continue
        authors: tuple[str, ...] = ()
        if _is_prose(following):
            ai, abstract, taken = bi, following, (ci, ti, bi)
        elif k + 3 < len(blocks) and _is_prose(blocks[k + 3][1]):
            (ai, abstract), taken = blocks[k + 3], (ci, ti, bi, blocks[k + 3][0])
            authors = _parse_author_line(following)
        else:
            continue
        records.append(
            RawRecord(
                abstract,
                path,
                ai + 1,
                title=title,
                authors=authors,
                date=_iso_date(m["date"]),
                categories=(m["cat"],),
            )
        )
        used.update(taken)
    return records, _skip_unused(path, lines, used, "page chrome")


def _parse_author_line(text: str) -> tuple[str, ...]:
    names = text.split(" · ")[0]
    names = re.sub(r"\s+et al\.?$", "", names.strip())
    return tuple(n.strip() for n in names.split(",") if n.strip())


def parse_arxiv_listing(path: str, lines: list[str]) -> Parsed:
    """Shape (c): abstracts with `arXiv:ID` markers; plain prose lines without ids also count.

    Two layouts exist. In the scraped one the id printed at the start of a line belongs to the
    abstract on the line *before* it (the page starts with an unmarked abstract and ends with a
    bare id). Otherwise an id belongs to the text that follows it on the same line. An id is
    attached only to the nearest abstract it can belong to; lines in between that are not
    abstracts (e.g. `12 pages`) do not break the pairing, but another abstract does.
    """
    content = [(i, t) for i, t in enumerate(lines) if t]
    if not content:
        return [], []
    first, last = content[0][1], content[-1][1]
    last_m = _ARXIV_PREFIX.match(last)
    id_after = (not _ARXIV_PREFIX.match(first) and _is_prose(first)) or bool(
        last_m and not last_m["rest"].strip()
    )
    records: list[RawRecord] = []
    skipped: list[Skipped] = []
    pending: tuple[int, str] | None = None  # (line index, abstract) still waiting for its id

    def emit(index: int, abstract: str, arxiv_id: str | None) -> None:
        records.append(RawRecord(abstract, path, index + 1, arxiv_id=arxiv_id))

    for i, text in content:
        m = _ARXIV_PREFIX.match(text)
        if m is None:
            if not _is_prose(text):
                skipped.append(Skipped(path, i + 1, "not an abstract", _short(text)))
            elif not id_after:
                emit(i, text, None)
            else:
                if pending is not None:
                    emit(*pending, None)
                pending = (i, text)
            continue
        arxiv_id, rest = normalize_arxiv_id(m["id"]), m["rest"].strip()
        if not id_after:
            if _is_prose(rest):
                emit(i, rest, arxiv_id)
            else:
                skipped.append(Skipped(path, i + 1, "arXiv id without an abstract", _short(text)))
            continue
        if pending is not None:
            emit(*pending, arxiv_id)
            pending = None
        else:
            skipped.append(Skipped(path, i + 1, "arXiv id with no abstract before it", _short(text)))
        if _is_prose(rest):
            pending = (i, rest)
        elif rest:
            skipped.append(Skipped(path, i + 1, "text after the id is not an abstract", _short(rest)))
    if pending is not None:
        emit(*pending, None)
    return records, skipped


#: Page parsers in order of preference when two explain the same number of abstracts.
PAGE_SHAPES: dict[str, Callable[[str, list[str]], Parsed]] = {
    "author-page": parse_author_page,
    "abstract-lines": parse_abstract_lines,
    "collaborator-page": parse_collaborator_page,
    "arxiv-listing": parse_arxiv_listing,
}


def parse_page(path: str, text: str) -> tuple[str, Parsed]:
    """Detect the page shape that explains the most abstracts and parse with it."""
    lines = [clean_text(line) for line in text.split("\n")]
    parsed = [(shape, parser(path, lines)) for shape, parser in PAGE_SHAPES.items()]
    return max(parsed, key=lambda found: len(found[1][0]))  # the first of equals: PAGE_SHAPES order
