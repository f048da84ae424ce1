"""What every input format shares: the record types, text clean-up and arXiv ids."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import CorpusError

#: An abstract has at least this many words; shorter lines are titles, venues or chrome.
MIN_ABSTRACT_WORDS = 20
#: A title is at most this many words (the longest seed title has 15).
MAX_TITLE_WORDS = 40
_ARXIV_ID = r"(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?"
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"

#: Characters at a file's start that format detection reads (whole lines, at least the first).
_SNIFF_CHARS = 65536


class _NoAbstracts(CorpusError):
    """A file that holds no abstracts (empty, binary, or none found): skipped, with its reason,
    when it is found in a directory; an error when it is named."""


@dataclass(frozen=True)
class RawRecord:
    """One abstract as found in one place of one file."""

    abstract: str
    source: str
    line: int
    title: str | None = None
    arxiv_id: str | None = None
    id: str | None = None
    authors: tuple[str, ...] = ()
    date: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A non-blank line (or input record) that was not used, and why."""

    source: str
    line: int
    reason: str
    text: str = ""


@dataclass
class FileResult:
    """What one file yielded: its detected format, its records and what was skipped."""

    path: str
    format: str
    records: list[RawRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def clean_text(text: str) -> str:
    """NFKC-normalise and collapse all whitespace (including NBSP) to single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def normalize_arxiv_id(value: str) -> str:
    """`arXiv:2104.05158v2` -> `2104.05158`; raises ValueError if it is not an arXiv id."""
    v = clean_text(value)
    v = re.sub(r"^(?:arxiv:|https?://arxiv\.org/(?:abs|pdf)/)", "", v, flags=re.IGNORECASE)
    v = re.sub(r"\.pdf$", "", v)
    if not re.fullmatch(_ARXIV_ID, v):
        raise ValueError(f"not an arXiv id: {value!r}")
    return re.sub(r"v\d+$", "", v)


def maybe_arxiv(value: str) -> str | None:
    """`normalize_arxiv_id(value)`, or None when `value` is not an arXiv id."""
    try:
        return normalize_arxiv_id(value)
    except ValueError:
        return None


def arxiv_id_month(arxiv_id: str) -> str | None:
    """The month an arXiv id was assigned: `2407.21783` -> `2024-07`, `hep-th/9901001` -> `1999-01`;
    None when the id holds no valid month."""
    m = re.fullmatch(r"(\d\d)(\d\d)\.\d{4,5}(?:v\d+)?|[a-z][a-z\-]*(?:\.[A-Z]{2})?/(\d\d)(\d\d)\d{3}(?:v\d+)?", arxiv_id)
    if not m:
        return None
    yy, mm = (m[1], m[2]) if m[1] else (m[3], m[4])
    year = 2000 + int(yy) if m[1] or int(yy) < 91 else 1900 + int(yy)  # old-style ids: 1991 to 2007
    return f"{year}-{mm}" if 1 <= int(mm) <= 12 else None



def _words(text: str) -> int:
    return len(text.split())


def _is_prose(text: str) -> bool:
    return _words(text) >= MIN_ABSTRACT_WORDS


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _iso_date(text: str) -> str | None:
    for fmt in ("%Y-%m-%d", "%b %d, %Y", "%B %d, %Y", "%Y-%m", "%Y"):
        try:
            parsed = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        return parsed.date().isoformat() if fmt not in ("%Y-%m", "%Y") else text.strip()
    return None


Parsed = tuple[list[RawRecord], list[Skipped]]


def _collect(items: Iterable[RawRecord | Skipped]) -> Parsed:
    records, skipped = [], []
    for item in items:
        (records if isinstance(item, RawRecord) else skipped).append(item)
    return records, skipped


def _text_lines(text: str) -> Iterator[str]:
    """The lines of `text` split at "\\n", each keeping its "\\n" (the last one may lack it)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start) + 1
        if not end:
            yield text[start:]
            return
        yield text[start:end]
        start = end


