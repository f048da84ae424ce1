"""Ingest: files of abstracts (scraped pages, JSONL, CSV, BibTeX) -> raw records, one per abstract seen.

Formats and page shapes are detected from content, never from file names. JSONL, CSV and
BibTeX files are streamed a line (an entry) at a time; scraped pages are read whole. Every
non-blank line a parser does not use is reported as `Skipped` with a reason, so nothing is
dropped silently.
"""

from __future__ import annotations

import codecs
import functools
import csv
import io
import itertools
import json
import re
import shlex
import sys
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Self

from .errors import CorpusError

#: An abstract has at least this many words; shorter lines are titles, venues or chrome.
MIN_ABSTRACT_WORDS = 20
#: A title is at most this many words (the longest seed title has 15).
MAX_TITLE_WORDS = 40
#: Scraped pages larger than this are refused rather than read into memory whole (the
#: record formats are streamed, whatever their size).
MAX_PAGE_BYTES = 256 * 1024 * 1024

_ARXIV_ID = r"(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?"
_ARXIV_PREFIX = re.compile(rf"^arXiv:\s*(?P<id>{_ARXIV_ID})(?P<rest>.*)$", re.IGNORECASE)
_ABSTRACT_LINE = re.compile(r"^Abstract:\s*(?P<text>.*)$", re.IGNORECASE)
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_CATEGORY_DATE = re.compile(
    rf"^(?P<cat>[A-Z]{{2,4}})(?P<date>(?:{_MONTHS})[a-z]* \d{{1,2}}, \d{{4}})(?:Code)?$"
)


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


# --- page shapes -------------------------------------------------------------------------
# Each parser takes the file's lines (already cleaned) and returns (records, skipped).

Parsed = tuple[list[RawRecord], list[Skipped]]


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
    best: tuple[str, Parsed] | None = None
    for shape, parser in PAGE_SHAPES.items():
        parsed = parser(path, lines)
        if best is None or len(parsed[0]) > len(best[1][0]):
            best = (shape, parsed)
    assert best is not None
    return best


# --- structured formats ------------------------------------------------------------------

_FIELDS = ("title", "abstract", "id", "arxiv_id", "authors", "date", "categories")


def _record_from_fields(path: str, line: int, row: dict) -> RawRecord:
    """Build a record from a JSON object or CSV row; raises CorpusError naming the field."""

    def text_field(name: str) -> str | None:
        value = row.get(name)
        if value is None:
            return None
        if not isinstance(value, (str, int, float)):
            raise CorpusError(path, f"field {name!r} must be text, got {type(value).__name__}", line)
        return clean_text(str(value)) or None

    def list_field(name: str, sep: str) -> tuple[str, ...]:
        value = row.get(name)
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            return tuple(clean_text(v) for v in value.split(sep) if clean_text(v))
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(clean_text(v) for v in value if clean_text(v))
        raise CorpusError(path, f"field {name!r} must be a string or a list of strings", line)

    abstract = text_field("abstract")
    if not abstract:
        raise CorpusError(path, "field 'abstract' is missing or empty", line)
    arxiv_id, user_id = text_field("arxiv_id"), text_field("id")
    if arxiv_id:
        try:
            arxiv_id = normalize_arxiv_id(arxiv_id)
        except ValueError as exc:
            raise CorpusError(path, f"field 'arxiv_id': {exc}", line) from None
    elif user_id and _maybe_arxiv(user_id):
        arxiv_id, user_id = _maybe_arxiv(user_id), None  # arXiv metadata: `id` is the arXiv id
    date = text_field("date") or text_field("update_date") or _first_version_date(row.get("versions"))
    authors = row.get("authors")
    if isinstance(authors, str) and ";" not in authors:
        authors = re.split(r",\s*|\s+and\s+", authors)  # arXiv metadata: "A, B and C"
    return RawRecord(
        abstract,
        path,
        line,
        title=text_field("title"),
        arxiv_id=arxiv_id,
        id=user_id,
        authors=list_field("authors", ";") if not isinstance(authors, list) else _names(authors, path, line),
        date=(_iso_date(date) or date) if date else None,
        categories=list_field("categories", " "),
    )


def _names(values: list, path: str, line: int) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in values):
        raise CorpusError(path, "field 'authors' must be a string or a list of strings", line)
    return tuple(clean_text(v) for v in values if clean_text(v))


def _maybe_arxiv(value: str) -> str | None:
    try:
        return normalize_arxiv_id(value)
    except ValueError:
        return None


def _first_version_date(versions) -> str | None:
    """arXiv metadata `versions`: [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}, ...]."""
    if not isinstance(versions, list) or not versions or not isinstance(versions[0], dict):
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(str(versions[0].get("created"))).date().isoformat()
    except (TypeError, ValueError):
        return None


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


def stream_jsonl(
    path: str, lines: Iterable[str], columns: dict[str, str] | None = None
) -> Iterator[RawRecord | Skipped]:
    """JSON lines -> a RawRecord per object with an abstract, a Skipped per other non-blank line.

    An object's abstract is its `abstract` field, the field `columns` names, or (a BEIR corpus)
    its `text` beside an `_id`, which becomes the id.

    Args:
        path: the file name used in records and messages.
        lines: the file's lines (a trailing "\\n" is allowed); one is held at a time.
        columns: our field names -> the file's field names (`{"abstract": "summary"}`).
    Yields:
        RawRecord or Skipped, in file order.
    Raises:
        CorpusError (at the end): a field `columns` names is in no record, or no record has a
            field known to hold the abstract (the message lists the fields seen and suggests
            --columns).
    """
    fields = _FieldsSeen()
    rename = {theirs: ours for ours, theirs in (columns or {}).items()}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        line = line.removesuffix("\n")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Skipped(path, n, f"invalid JSON ({exc.msg})", _short(line))
            continue
        except (ValueError, RecursionError) as exc:  # a number of over 4,300 digits, deep nesting
            yield Skipped(path, n, f"invalid JSON ({type(exc).__name__}: {_short(str(exc))})", _short(line))
            continue
        if not isinstance(obj, dict):
            yield Skipped(path, n, "a JSON line must be an object", _short(line))
            continue
        fields.add(obj)
        if columns:
            # A field we map to replaces the file's own field of that name.
            obj = {rename.get(k, k): v for k, v in obj.items() if k in rename or k not in columns}
        elif "abstract" not in obj and "_id" in obj and "text" in obj:  # a BEIR corpus
            obj = {**obj, "abstract": obj["text"], "id": obj["_id"]}
        try:
            yield _record_from_fields(path, n, obj)
        except CorpusError as exc:
            yield Skipped(path, n, exc.reason, _short(line))
    fields.check(path, columns)


def parse_jsonl(path: str, text: str, columns: dict[str, str] | None = None) -> Parsed:
    """JSON lines with `abstract` (or BEIR `_id`/`text`, or fields named by `columns`) and optional
    `title`, `id`, `arxiv_id`, `authors`, `date`, `categories`."""
    return _collect(stream_jsonl(path, _text_lines(text), columns))


#: Records (rows or objects) kept to guess which column holds the abstract.
_SAMPLE_ROWS = 20
#: Column or field names listed in a refusal, at most.
_MAX_NAMES_SHOWN = 20
_TITLE_HINTS = ("title", "name", "heading", "headline")


class _FieldsSeen:
    """The field names of a JSONL file's objects (in order of first sight) and a sample of their
    values: what a refusal lists and guesses --columns from."""

    def __init__(self) -> None:
        self.names: dict[str, None] = {}
        self.sample: list[dict[str, str]] = []

    def add(self, obj: dict) -> None:
        if len(self.names) < 1000:  # bounded, whatever the file
            self.names.update(dict.fromkeys(obj))
        if len(self.sample) < _SAMPLE_ROWS:
            self.sample.append({k: v for k, v in obj.items() if isinstance(v, str)})

    def check(self, path: str, columns: dict[str, str] | None) -> None:
        if not self.names:
            return
        names = list(self.names)
        if columns:
            missing = [f"{ours}={theirs}" for ours, theirs in columns.items() if theirs not in self.names]
            if missing:
                raise _refusal(path, f"no field {_named(missing)} in any record", "field",
                               names, self.sample, columns)
        elif "abstract" not in self.names and not {"_id", "text"} <= self.names.keys():
            raise _refusal(path, "cannot tell which field holds the abstract", "field", names, self.sample, None)


def _named(mappings: list[str]) -> str:
    """["abstract=Sumary"] -> "'Sumary' (from --columns abstract=Sumary)"."""
    names = ", ".join(m.split("=", 1)[1].join("''") for m in mappings)
    return f"{names} (from --columns {','.join(mappings)})"


def _mean_words(rows: list[dict[str, str]], name: str) -> float:
    values = [v for row in rows if isinstance(v := row.get(name), str) and v.strip()]
    return sum(_words(v) for v in values) / len(values) if values else 0.0


def _guess_columns(names: list[str], rows: list[dict[str, str]]) -> dict[str, str]:
    """{"title": …, "abstract": …} as far as they can be told: the abstract is the column whose
    sampled values are prose (the most words on average), the title one named like a title."""
    words = {name: _mean_words(rows, name) for name in names if name}
    guess = {}
    prose = [n for n in words if words[n] >= MIN_ABSTRACT_WORDS]
    if prose:
        guess["abstract"] = max(prose, key=words.__getitem__)
    for hint in _TITLE_HINTS:
        titled = [n for n in words if hint in n.lower() and n not in guess.values() and words[n] < MIN_ABSTRACT_WORDS]
        if titled:
            guess["title"] = titled[0]
            break
    return guess


def _columns_option(mapping: dict[str, str]) -> str:
    ordered = sorted(mapping.items(), key=lambda kv: _FIELDS.index(kv[0]))
    return shlex.quote(",".join(f"{ours}={theirs}" for ours, theirs in ordered))


def _refusal(path: str, reason: str, noun: str, names: list[str], rows: list[dict[str, str]],
             columns: dict[str, str] | None) -> CorpusError:
    """The one-line error for a file whose columns (fields) cannot be mapped: it lists the names
    the file has and suggests the --columns to use. A file with no prose in any of them holds no
    abstracts (`_NoAbstracts`)."""
    shown = ", ".join(n or "(unnamed)" for n in names[:_MAX_NAMES_SHOWN])
    if len(names) > _MAX_NAMES_SHOWN:
        shown += f", … ({len(names) - _MAX_NAMES_SHOWN} more)"
    guess = _guess_columns(names, rows)
    lower = {n.lower(): n for n in names}
    kept = {ours: lower[theirs.lower()] for ours, theirs in (columns or {}).items() if theirs.lower() in lower}
    if "abstract" not in guess and "abstract" not in kept:
        return _NoAbstracts(path, f"{reason}, and no {noun} holds abstracts ({MIN_ABSTRACT_WORDS}+ words); "
                                  f"its {noun}s are: {shown}; if one does, use --columns abstract={noun.upper()}")
    suggestion = {**{k: v for k, v in guess.items() if k not in kept and v not in kept.values()}, **kept}
    return CorpusError(path, f"{reason}; its {noun}s are: {shown}; use --columns {_columns_option(suggestion)}")


def _numbered_rows(reader) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(line the row starts on, its cells) per CSV row; a csv.Error is yielded in place of the
    row it spoils, and ends the rows."""
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        yield start, exc


def _csv_fields(path: str, header: list[str], rows: Iterator, columns: dict[str, str] | None,
                delimiter: str) -> list[str]:
    """Our field name for each header column ("" = unused); raises CorpusError when the header
    cannot be mapped (reading a sample of `rows` to suggest --columns)."""
    lower = [h.lower() for h in header]
    reason = None
    if columns:
        missing = [f"{ours}={theirs}" for ours, theirs in columns.items() if theirs.lower() not in lower]
        if missing:
            reason = f"no column {_named(missing)}"
    elif "abstract" not in lower:
        reason = "cannot tell which column holds the abstract"
    if reason is not None:
        prose = [h for h in header if _is_prose(h)]
        if prose:
            example = delimiter.join(("title", "abstract")).replace("\t", "<TAB>")
            raise CorpusError(path, f"the first row is not a header (a cell holds {_words(prose[0])} words): "
                                    f"add a header row naming the columns, e.g. {example}", 1)
        sample = [dict(zip(header, row)) for _, row in itertools.islice(rows, _SAMPLE_ROWS) if isinstance(row, list)]
        raise _refusal(path, reason, "column", header, sample, columns)
    mapped = {theirs.lower(): ours for ours, theirs in (columns or {}).items()}
    # A column named like a field that --columns maps elsewhere is not used.
    return [mapped.get(name, "" if name in (columns or {}) else name) for name in lower]


def stream_csv(path: str, lines: Iterable[str], columns: dict[str, str] | None = None) -> Iterator[RawRecord | Skipped]:
    """CSV or TSV with a header row -> RawRecord / Skipped per row.

    Args:
        path: the file name used in records and messages.
        lines: the file's lines, each with its "\\n" (a quoted cell may span lines); the
            separator is a tab when the header has more tabs than commas.
        columns: our field names -> the file's column names (`{"abstract": "Summary"}`), matched
            case-insensitively; without it the header must name an `abstract` column.
    Yields:
        RawRecord or Skipped, in file order; a malformed row ends the file with one Skipped.
    Raises:
        CorpusError (before any row): the header has no `abstract` column and `columns` names
            none, or `columns` names a column the header lacks; the message lists the header's
            columns and suggests --columns.
    """
    lines = iter(lines)
    first = next(lines, "")
    delimiter = _csv_delimiter(first)
    rows = _numbered_rows(csv.reader(itertools.chain([first], lines), delimiter=delimiter))
    line, header = next(rows, (1, []))
    if isinstance(header, csv.Error):
        yield Skipped(path, line, f"malformed CSV ({header}); the rest of the file was not read")
        return
    header = [h.strip() for h in header]
    fields = _csv_fields(path, header, rows, columns, delimiter)
    for line, row in rows:
        if isinstance(row, csv.Error):
            yield Skipped(path, line, f"malformed CSV ({row}); the rest of the file was not read")
            return
        if len(row) > len(header):
            yield Skipped(path, line, "more cells than header columns")
            continue
        if not any(v.strip() for v in row):
            continue
        try:
            yield _record_from_fields(path, line, {f: v for f, v in zip(fields, row) if f and v != ""})
        except CorpusError as exc:
            yield Skipped(path, line, exc.reason)


def parse_csv(path: str, text: str, columns: dict[str, str] | None = None) -> Parsed:
    """CSV or TSV with a header row naming `abstract`, or the columns `columns` names."""
    return _collect(stream_csv(path, _text_lines(text), columns))


def _looks_like_jsonl(text: str) -> bool:
    return text.lstrip().startswith("{")


def _csv_delimiter(header: str) -> str:
    header = header.split("\n", 1)[0]
    return "\t" if header.count("\t") > header.count(",") else ","


#: Rows at a file's start whose cell counts tell a CSV/TSV file from a page.
_CSV_SNIFF_ROWS = 20


def _looks_like_csv(text: str, columns: dict[str, str] | None = None) -> bool:
    """A header naming a field we know (or one `columns` names), or the same number (2+) of
    cells in every row of the file's first _CSV_SNIFF_ROWS rows (within the first _SNIFF_CHARS)
    under a first row that reads as a header (no cell is prose) or has a quoted cell: lines of
    prose with one comma each are a page."""
    first = text.split("\n", 1)[0]
    delimiter = _csv_delimiter(first)
    if delimiter not in first:
        return False
    cells = {c.strip().strip('"').lower() for c in first.split(delimiter)}
    known = {c.lower() for c in (columns or {}).values()} | set(_FIELDS)
    if cells & known:
        return True
    sample = text[:_SNIFF_CHARS]
    cut = len(text) >= _SNIFF_CHARS  # the sample may end inside a row: do not count that row
    if cut:
        sample = sample[: sample.rfind("\n") + 1]
    counts, header_like = [], True
    for _, row in itertools.islice(_numbered_rows(csv.reader(io.StringIO(sample), delimiter=delimiter)),
                                   _CSV_SNIFF_ROWS + 1):
        if isinstance(row, csv.Error):
            break
        if any(c.strip() for c in row):
            header_like = header_like if counts else not any(_is_prose(c) for c in row)
            counts.append(len(row))
    if cut and len(counts) <= _CSV_SNIFF_ROWS:
        counts = counts[:-1]
    d = re.escape(delimiter)
    quoted = bool(re.search(rf'(?:^|{d})"', first) and re.search(rf'"(?:{d}|$)', first))
    return (header_like or quoted) and len(counts) >= 2 and counts[0] >= 2 and len(set(counts[:_CSV_SNIFF_ROWS])) == 1


_BIB_ENTRY = re.compile(r"^[ \t]*@[ \t]*(\w+)\s*[{(]", re.MULTILINE)
_BIB_TYPE = re.compile(r"[ \t]*@[ \t]*\w+")  # a line that opens an entry if `{` or `(` follows
_BIB_OPEN = re.compile(r"\s*[{(]")


def _looks_like_bibtex(text: str) -> bool:
    return bool(_BIB_ENTRY.search(text[:65536])) and text.lstrip().startswith(("@", "%"))


def _bib_entries(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of each stretch of BibTeX that opens with an entry (`@type{`, the
    brace perhaps on a later line), up to the next one; text before the first is dropped.

    An entry is bounded by the next entry, so a missing brace spoils one entry only.
    """
    stretch: list[str] = []  # lines of the current entry
    first = 0  # line number of stretch[0] when it opens an entry, 0 before the first entry
    pending: int | None = None  # index in stretch of a `@type` line still waiting for its brace
    for n, line in enumerate(lines, 1):
        opens = None
        if pending is not None:
            if not line.strip():
                stretch.append(line)
                continue
            if _BIB_OPEN.match(line):
                opens = pending
            pending = None
        if opens is None:
            m = _BIB_TYPE.match(line)
            if m:
                rest = line[m.end() :]
                if _BIB_OPEN.match(rest):
                    opens = len(stretch)
                elif not rest.strip():
                    pending = len(stretch)
        if opens is not None:
            if first:
                yield first, "".join(stretch[:opens])
            first, stretch = n - len(stretch) + opens, stretch[opens:]
        elif not first and pending is None:
            stretch.clear()  # before the first entry: nothing to keep
        stretch.append(line)
    if first:
        yield first, "".join(stretch)


#: Text that LaTeX decoding may change; a value without any is passed through as it is (fast).
_LATEX_SPECIAL = re.compile(r"[\\{}$~%&`]|--|''")
#: A bare `%` or `&`: not special in BibTeX, but LaTeX would drop the rest of the line (or a cell).
_BARE = re.compile(r"(?<!\\)([%&])")
_MONTHS_BY_NAME = {m: i for i, m in enumerate(_MONTHS.lower().split("|"), 1)}
_ARXIV_IN_TEXT = re.compile(rf"(?:arXiv:\s*|arxiv\.org/(?:abs|pdf)/)({_ARXIV_ID})", re.IGNORECASE)


@functools.cache
def _bib_middleware() -> list:
    """bibtexparser's LaTeX-to-Unicode middleware, its decoder set up as bibtexparser's own
    (`\\url{x}` -> x, math kept verbatim) with a bare `%`/`&` kept as text."""
    import logging

    import pylatexenc.latex2text as l2t
    from bibtexparser.middlewares import LatexDecodingMiddleware

    class Decoder(l2t.LatexNodes2Text):
        def latex_to_text(self, latex, **kwargs):
            if not _LATEX_SPECIAL.search(latex):
                return latex
            return super().latex_to_text(_BARE.sub(r"\\\1", latex), **kwargs)

    context = l2t.get_default_latex_context_db()
    context.add_context_category("semsearch", prepend=True, macros=[l2t.MacroTextSpec("url", simplify_repl="%s")])
    # Parse failures come back as blocks and are reported as Skipped; not also as log lines.
    logging.getLogger("bibtexparser").addHandler(logging.NullHandler())
    return [LatexDecodingMiddleware(decoder=Decoder(latex_context=context, math_mode="verbatim"))]


def _bib_failure(block) -> str:
    """Why bibtexparser could not parse a block, in one line."""
    error = block.error
    why = getattr(error, "abort_reason", None) or str(error) or type(error).__name__
    if "end of file" in why:  # each entry is parsed alone: it never closed
        return "unbalanced braces or quotes"
    return _short(clean_text(why.replace("`", "")))


def _bib_date(year: str, month: str) -> str | None:
    """BibTeX year (`2022`) and month (`jul`, `July`, `7`) -> `2022-07`, `2022`, or None."""
    if not re.fullmatch(r"\d{4}", year):
        return None
    m = month.strip().lower().rstrip(".")
    number = int(m) if m.isdigit() else _MONTHS_BY_NAME.get(m[:3]) if len(m) >= 3 else None
    return f"{year}-{number:02d}" if number and 1 <= number <= 12 else year


def _bib_arxiv(fields: dict[str, str]) -> str | None:
    for name in ("eprint", "arxiv", "arxivid"):
        if fields.get(name) and (arxiv_id := _maybe_arxiv(fields[name])):
            return arxiv_id
    for name in ("journal", "url", "note", "howpublished"):
        if m := _ARXIV_IN_TEXT.search(fields.get(name, "")):
            return normalize_arxiv_id(m[1])
    return None


def _bib_entry(path: str, line: int, text: str) -> RawRecord | Skipped | None:
    """One entry (`text` starts with its `@type{`) -> a RawRecord, a Skipped, or None for
    @comment, @string and @preamble."""
    import bibtexparser
    from bibtexparser.model import Entry, ParsingFailedBlock

    m = _BIB_ENTRY.match(text)
    assert m is not None
    if m.group(1).lower() in ("comment", "string", "preamble"):
        return None
    blocks = bibtexparser.parse_string(text, append_middleware=_bib_middleware()).blocks
    failed = [b for b in blocks if isinstance(b, ParsingFailedBlock)]
    entries = [b for b in blocks if isinstance(b, Entry)]
    if failed or len(entries) != 1:
        why = _bib_failure(failed[0]) if failed else "not one entry"
        return Skipped(path, line, f"malformed BibTeX entry ({why})", _short(clean_text(text)))
    entry = entries[0]
    fields = {f.key.lower(): clean_text(f.value) for f in entry.fields if isinstance(f.value, str)}
    if not fields.get("abstract") or not _is_prose(fields["abstract"]):
        return Skipped(path, line, "BibTeX entry without an abstract", _short(entry.key))
    arxiv_id = _bib_arxiv(fields)
    doi = fields.get("doi")
    return RawRecord(
        fields["abstract"],
        path,
        line,
        title=fields.get("title") or None,
        arxiv_id=arxiv_id,
        id=f"doi:{doi.lower()}" if doi else (f"bibtex:{entry.key}" if entry.key and not arxiv_id else None),
        authors=tuple(a.strip() for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip()),
        date=_bib_date(fields.get("year", ""), fields.get("month", "")),
    )


def stream_bibtex(path: str, lines: Iterable[str]) -> Iterator[RawRecord | Skipped]:
    """BibTeX entries -> a RawRecord per entry with an `abstract`, else a Skipped.

    Args:
        path: the file name used in records and messages.
        lines: the file's lines, each with its "\\n"; one entry is held at a time.
    Yields:
        RawRecord (title, author, year and month, doi as id `doi:…`, the arXiv id from
        eprint/arxiv or an arXiv:ID in journal/url/note, the citation key as id `bibtex:KEY` when
        it has neither) or Skipped. Each entry is parsed on its own by bibtexparser, LaTeX decoded
        to Unicode; a malformed one is one Skipped.
    """
    for line, text in _bib_entries(lines):
        item = _bib_entry(path, line, text)
        if item is not None:
            yield item


def parse_bibtex(path: str, text: str) -> Parsed:
    """BibTeX entries with an `abstract`; see `stream_bibtex`."""
    return _collect(stream_bibtex(path, _text_lines(text)))


def _detect(text: str, columns: dict[str, str] | None) -> str | None:
    """The record format `text` (a file's start) is in, or None for a scraped page."""
    if _looks_like_jsonl(text):
        return "jsonl"
    if _looks_like_bibtex(text):
        return "bibtex"
    if _looks_like_csv(text, columns):
        return "csv"
    return None


def _stream(fmt: str, path: str, lines: Iterable[str], columns: dict[str, str] | None) -> Iterator[RawRecord | Skipped]:
    if fmt == "jsonl":
        return stream_jsonl(path, lines, columns)
    if fmt == "bibtex":
        return stream_bibtex(path, lines)
    return stream_csv(path, lines, columns)


# --- files -------------------------------------------------------------------------------

#: Bytes at a file's start searched for NUL bytes (a binary file).
_BINARY_SNIFF = 8192
#: Characters at a file's start that format detection reads (whole lines, at least the first).
_SNIFF_CHARS = 65536
#: Show a progress bar when reading more bytes than this (a second or two of work).
PROGRESS_MIN_BYTES = 16 * 2**20
_PROGRESS_STEP = 2**20


def decode(path: str, data: bytes) -> str:
    """Bytes -> text; raises CorpusError for empty, binary or non-UTF-8 input (naming the line)."""
    if not data.strip():
        raise _NoAbstracts(path, "file is empty")
    if b"\x00" in data[:_BINARY_SNIFF]:
        raise _NoAbstracts(path, "binary file (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        at = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise CorpusError(path, f"not UTF-8 text (byte {at}: {exc.reason})", data[:at].count(b"\n") + 1) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _result(path: str, fmt: str, records: list[RawRecord], skipped: list[Skipped]) -> FileResult:
    if not records:
        why = f"first problem: line {skipped[0].line}: {skipped[0].reason}" if skipped else "no text"
        raise _NoAbstracts(path, f"no recognisable abstracts ({fmt}; {why})")
    return FileResult(path, fmt, [_dated(r) for r in records], skipped)


def arxiv_id_month(arxiv_id: str) -> str | None:
    """The month an arXiv id was assigned: `2407.21783` -> `2024-07`, `hep-th/9901001` -> `1999-01`;
    None when the id holds no valid month."""
    m = re.fullmatch(r"(\d\d)(\d\d)\.\d{4,5}(?:v\d+)?|[a-z][a-z\-]*(?:\.[A-Z]{2})?/(\d\d)(\d\d)\d{3}(?:v\d+)?", arxiv_id)
    if not m:
        return None
    yy, mm = (m[1], m[2]) if m[1] else (m[3], m[4])
    year = 2000 + int(yy) if m[1] or int(yy) < 91 else 1900 + int(yy)  # old-style ids: 1991 to 2007
    return f"{year}-{mm}" if 1 <= int(mm) <= 12 else None


def _dated(record: RawRecord) -> RawRecord:
    """A record without a date takes the month of its arXiv id."""
    if record.date or not record.arxiv_id:
        return record
    month = arxiv_id_month(record.arxiv_id)
    return replace(record, date=month) if month else record


def parse_text(path: str, text: str, columns: dict[str, str] | None = None) -> FileResult:
    """Detect the format of `text` and parse it; raises CorpusError if no abstract is found."""
    fmt = _detect(text, columns)
    if fmt is None:
        fmt, (records, skipped) = parse_page(path, text)
    else:
        records, skipped = _collect(_stream(fmt, path, _text_lines(text), columns))
    return _result(path, fmt, records, skipped)


def _byte_lines(first: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """The lines (split at b"\\n", kept) of `first` followed by the rest of `stream`."""
    *whole, tail = first.split(b"\n")
    for line in whole:
        yield line + b"\n"
    for line in stream:
        if tail:
            line, tail = tail + line, b""
        yield line
    if tail:
        yield tail


class _Lines:
    """The text lines of one file, plain or gzip (told by its magic bytes), read and decoded
    one line at a time: what `decode` does to a whole file, in bounded memory.

    Iterating yields lines with "\\r\\n" and "\\r" made "\\n", each ending in "\\n" but perhaps
    the last; raises CorpusError for a binary file or non-UTF-8 bytes (naming the line), and
    OSError / EOFError / zlib.error for unreadable or damaged files. `inked` tells whether any
    byte other than ASCII whitespace was read. `advance(n)` is called as n more bytes of the
    file on disk (compressed bytes for gzip) are read.
    """

    def __init__(self, path: Path, advance: Callable[[int], None] | None = None):
        self.path = str(path)
        self.inked = False
        self._advance = advance
        self._reported = 0
        self._files = ExitStack()

    def __enter__(self) -> Self:
        with ExitStack() as files:
            self._file = self._stream = files.enter_context(open(self.path, "rb"))
            if self._file.read(2) == b"\x1f\x8b":
                import gzip

                self._stream = files.enter_context(gzip.GzipFile(fileobj=self._file, mode="rb"))
            self._file.seek(0)
            self._files = files.pop_all()
        return self

    def __exit__(self, *exc) -> None:
        self._files.close()

    def _report(self) -> None:
        if self._advance is not None:
            position = self._file.tell()
            self._advance(position - self._reported)
            self._reported = position

    def __iter__(self) -> Iterator[str]:
        first = self._stream.read(_BINARY_SNIFF)
        if b"\x00" in first:
            raise _NoAbstracts(self.path, "binary file (NUL bytes), not text")
        offset, unreported, encoding = 0, 0, "utf-8-sig"
        for number, raw in enumerate(_byte_lines(first, self._stream), 1):
            if not self.inked and raw.strip():
                self.inked = True
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                at = offset + exc.start + (len(codecs.BOM_UTF8) if number == 1 and raw.startswith(codecs.BOM_UTF8) else 0)
                raise CorpusError(self.path, f"not UTF-8 text (byte {at}: {exc.reason})", number) from None
            encoding = "utf-8"
            offset += len(raw)
            unreported += len(raw)
            if unreported >= _PROGRESS_STEP:
                self._report()
                unreported = 0
            if "\r" in text:
                yield from _text_lines(text.replace("\r\n", "\n").replace("\r", "\n"))
            else:
                yield text
        self._report()


def _head(lines: Iterator[str]) -> list[str]:
    """The first lines of a file, enough for `_detect` to decide as on the whole text: the
    first line, the first non-blank character and at least _SNIFF_CHARS characters."""
    head: list[str] = []
    chars, inked = 0, False
    for line in lines:
        head.append(line)
        chars += len(line)
        inked = inked or bool(line.strip())
        if inked and chars >= _SNIFF_CHARS and head[0].endswith("\n"):
            break
    return head


def _page_text(path: str, lines: Iterable[str]) -> str:
    """The lines joined, refused past MAX_PAGE_BYTES characters (a gzip file may expand a lot)."""
    parts, size = [], 0
    for line in lines:
        size += len(line)
        if size > MAX_PAGE_BYTES:
            raise CorpusError(path, _too_big())
        parts.append(line)
    return "".join(parts)


def _too_big() -> str:
    return (f"file is larger than {MAX_PAGE_BYTES // 2**20} MiB and not JSONL, CSV or BibTeX "
            "(scraped pages are read whole): split it, or convert it to JSONL")


def _read(p: Path, columns: dict[str, str] | None, advance: Callable[[int], None] | None) -> FileResult:
    path = str(p)
    try:
        with _Lines(p, advance) as source:
            lines = iter(source)
            head = _head(lines)
            if not source.inked:
                raise _NoAbstracts(path, "file is empty")
            fmt = _detect("".join(head), columns)
            body = itertools.chain(head, lines)
            if fmt is None:
                if p.stat().st_size > MAX_PAGE_BYTES:
                    raise CorpusError(path, _too_big())
                fmt, (records, skipped) = parse_page(path, _page_text(path, body))
            else:
                records, skipped = _collect(_stream(fmt, path, body, columns))
    except (OSError, EOFError, zlib.error) as exc:
        raise CorpusError(path, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return _result(path, fmt, records, skipped)


def read_file(path: str | Path, columns: dict[str, str] | None = None) -> FileResult:
    """Read and parse one file, plain or gzip-compressed.

    JSONL, CSV and BibTeX files are streamed (memory: the records plus one line or entry);
    scraped pages are read whole, up to MAX_PAGE_BYTES.

    Raises:
        CorpusError: naming the file (and line) on bad input.
    """
    return _read(Path(path), columns, None)


def _expand(paths: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """(file, whether it was found in a directory) for each file `expand_paths` lists."""
    files: list[tuple[Path, bool]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise CorpusError(str(p), "directory holds no files")
            files.extend((f, True) for f in found)
        elif p.exists():
            files.append((p, False))
        else:
            raise CorpusError(str(p), "no such file or directory")
    return files


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus the non-hidden files under directories named, in sorted order."""
    return [f for f, _ in _expand(paths)]


def read_paths(
    paths: Iterable[str | Path], columns: dict[str, str] | None = None, progress: bool = False
) -> list[FileResult]:
    """Read every file under `paths`; the first bad file raises CorpusError.

    A file found in a directory that holds no abstracts (empty, binary, none recognised) is not
    an error: its FileResult has format "skipped", no records and one Skipped (line 0) saying why.

    Args:
        paths: files and directories (read recursively, hidden files skipped).
        columns: our field names -> the CSV/TSV columns or JSONL fields that hold them, e.g.
            {"abstract": "Summary"}.
        progress: show a progress bar on stderr, by bytes on disk, when the files hold more
            than PROGRESS_MIN_BYTES.
    Returns:
        one FileResult per file, in `expand_paths` order.
    Raises:
        CorpusError: a missing path, a file that is unreadable, not UTF-8 or whose columns
            cannot be mapped, a named file that holds no abstract, or no abstract in any file
            (naming the file, and the line where it applies).
    """
    files = _expand(paths)
    sizes = [_size(f) for f, _ in files] if progress else []
    if not progress or sum(sizes) <= PROGRESS_MIN_BYTES:
        results = [_read_or_skip(f, in_dir, columns, None) for f, in_dir in files]
    else:
        from tqdm import tqdm

        results = []
        with tqdm(total=sum(sizes), desc="reading", unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr) as bar:
            for (f, in_dir), size in zip(files, sizes):
                done = bar.n + size
                results.append(_read_or_skip(f, in_dir, columns, bar.update))
                bar.update(max(0, done - bar.n))
    if not any(r.records for r in results):
        first = results[0].skipped[0]
        raise CorpusError(first.source, f"no file holds abstracts ({len(results)} skipped; first: {first.reason})")
    return results


def _read_or_skip(f: Path, in_dir: bool, columns: dict[str, str] | None,
                  advance: Callable[[int], None] | None) -> FileResult:
    try:
        return _read(f, columns, advance)
    except _NoAbstracts as exc:
        if not in_dir:
            raise
        return FileResult(str(f), "skipped", [], [Skipped(str(f), 0, exc.reason)])


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def parse_columns(spec: str | None) -> dict[str, str] | None:
    """`"title=Title,abstract=Summary"` -> {"title": "Title", "abstract": "Summary"}; raises CorpusError."""
    if not spec:
        return None
    mapping = {}
    for part in spec.split(","):
        field, sep, column = part.partition("=")
        field, column = field.strip().lower(), column.strip()
        if not sep or not column or field not in _FIELDS:
            raise CorpusError("--columns", f"{part!r}: write FIELD=COLUMN with FIELD one of {', '.join(_FIELDS)}")
        mapping[field] = column
    return mapping
