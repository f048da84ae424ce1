"""Ingest: files of abstracts (scraped pages, JSONL, CSV, BibTeX) -> raw records, one per abstract seen.

Formats and page shapes are detected from content, never from file names. JSONL, CSV and
BibTeX files are streamed a line (an entry) at a time; scraped pages are read whole. Every
non-blank line a parser does not use is reported as `Skipped` with a reason, so nothing is
dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import re
import sys
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
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


def stream_jsonl(path: str, lines: Iterable[str]) -> Iterator[RawRecord | Skipped]:
    """JSON lines -> a RawRecord per object with an `abstract`, a Skipped per other non-blank line.

    Args:
        path: the file name used in records and messages.
        lines: the file's lines (a trailing "\\n" is allowed); one is held at a time.
    Yields:
        RawRecord or Skipped, in file order; never raises on bad lines.
    """
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
        try:
            yield _record_from_fields(path, n, obj)
        except CorpusError as exc:
            yield Skipped(path, n, exc.reason, _short(line))


def parse_jsonl(path: str, text: str) -> Parsed:
    """JSON lines with `abstract` and optional `title`, `id`, `arxiv_id`, `authors`, `date`, `categories`."""
    return _collect(stream_jsonl(path, _text_lines(text)))


def stream_csv(path: str, lines: Iterable[str], columns: dict[str, str] | None = None) -> Iterator[RawRecord | Skipped]:
    """CSV or TSV with a header row naming at least `abstract` -> RawRecord / Skipped per row.

    Args:
        path: the file name used in records and messages.
        lines: the file's lines, each with its "\\n" (a quoted cell may span lines); the
            separator is a tab when the header has more tabs than commas.
        columns: our field names -> the file's column names (`{"abstract": "Summary"}`).
    Yields:
        RawRecord or Skipped, in file order; a malformed row ends the file with one Skipped.
    """
    lines = iter(lines)
    first = next(lines, "")
    header_line = first.split("\n", 1)[0]
    delimiter = "\t" if header_line.count("\t") > header_line.count(",") else ","
    reader = csv.DictReader(itertools.chain([first], lines), delimiter=delimiter)
    rename = {v.strip().lower(): k for k, v in (columns or {}).items()}
    start = 1
    try:
        reader.fieldnames = [rename.get(h.strip().lower(), h.strip().lower()) for h in reader.fieldnames or []]
        start = 2
        for row in reader:
            line, start = start, reader.line_num + 1
            if None in row:
                yield Skipped(path, line, "more cells than header columns")
                continue
            if not any((v or "").strip() for v in row.values()):
                continue
            try:
                yield _record_from_fields(path, line, {k: v for k, v in row.items() if v != ""})
            except CorpusError as exc:
                yield Skipped(path, line, exc.reason)
    except csv.Error as exc:
        yield Skipped(path, start, f"malformed CSV ({exc}); the rest of the file was not read")


def parse_csv(path: str, text: str, columns: dict[str, str] | None = None) -> Parsed:
    """CSV or TSV with a header row naming at least `abstract`.

    `columns` maps our field names to the file's column names (`{"abstract": "Summary"}`).
    """
    return _collect(stream_csv(path, _text_lines(text), columns))


def _looks_like_jsonl(text: str) -> bool:
    return text.lstrip().startswith("{")


def _looks_like_csv(text: str, columns: dict[str, str] | None = None) -> bool:
    first = text.split("\n", 1)[0].lower()
    cells = re.split(r"[,\t]", first)
    wanted = (columns or {}).get("abstract", "abstract").lower()
    return len(cells) > 1 and wanted in (c.strip().strip('"') for c in cells)


_BIB_ENTRY = re.compile(r"^[ \t]*@[ \t]*(\w+)\s*[{(]", re.MULTILINE)
_BIB_TYPE = re.compile(r"[ \t]*@[ \t]*\w+")  # a line that opens an entry if `{` or `(` follows
_BIB_OPEN = re.compile(r"\s*[{(]")
_BIB_KEY = re.compile(r"\s*([^,\s]*)\s*,")
_BIB_FIELD = re.compile(r"\s*(\w[\w-]*)\s*=\s*")
_BIB_SEP = re.compile(r"\s*(,|[})])")
_BIB_WORD = re.compile(r"[\w.:/-]+")


def _looks_like_bibtex(text: str) -> bool:
    return bool(_BIB_ENTRY.search(text[:65536])) and text.lstrip().startswith(("@", "%"))


def _bib_value(text: str, i: int) -> tuple[str, int]:
    """Read a BibTeX value at text[i] ({...} nested, "...", or a bare word); returns (value, next i)."""
    if text[i] == "{":
        depth, j = 0, i
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1 : j], j + 1
            j += 1
        raise ValueError("unbalanced braces")
    if text[i] == '"':
        j, depth = i + 1, 0
        while j < len(text) and not (text[j] == '"' and depth == 0):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if j >= len(text):
            raise ValueError("unterminated quote")
        return text[i + 1 : j], j + 1
    m = _BIB_WORD.match(text, i)
    if not m:
        raise ValueError(f"unexpected {text[i]!r}")
    return m.group(), m.end()


def _bib_clean(value: str) -> str:
    value = re.sub(r"\\[a-zA-Z]+\s*(?=\{)", "", value)  # \emph{x} -> {x}
    value = re.sub(r"\\[\"'`^~=.]\s*\{?([a-zA-Z])\}?", r"\1", value)  # accents: {\"o} -> o
    value = value.replace("\\&", "&").replace("~", " ").replace("{", "").replace("}", "")
    return clean_text(value)


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


def _bib_entry(path: str, line: int, text: str) -> RawRecord | Skipped | None:
    """One entry (`text` starts with its `@type{`) -> a RawRecord, a Skipped, or None for
    @comment, @string and @preamble."""
    m = _BIB_ENTRY.match(text)
    assert m is not None
    if m.group(1).lower() in ("comment", "string", "preamble"):
        return None
    fields: dict[str, str] = {}
    try:
        key = _BIB_KEY.match(text, m.end())
        if not key:
            raise ValueError("no citation key")
        i = key.end()
        while True:
            f = _BIB_FIELD.match(text, i)
            if not f:
                break
            value, i = _bib_value(text, f.end())
            fields[f.group(1).lower()] = _bib_clean(value)
            sep = _BIB_SEP.match(text, i)
            if not sep or sep.group(1) != ",":
                break
            i = sep.end()
    except ValueError as exc:
        return Skipped(path, line, f"malformed BibTeX entry ({exc})")
    if not fields.get("abstract") or not _is_prose(fields["abstract"]):
        return Skipped(path, line, "BibTeX entry without an abstract", _short(key.group(1)))
    eprint = fields.get("eprint")
    doi = fields.get("doi")
    year = fields.get("year", "")
    return RawRecord(
        fields["abstract"],
        path,
        line,
        title=fields.get("title") or None,
        arxiv_id=_maybe_arxiv(eprint) if eprint else None,
        id=f"doi:{doi.lower()}" if doi else (f"bibtex:{key.group(1)}" if key.group(1) and not eprint else None),
        authors=tuple(a.strip() for a in fields.get("author", "").split(" and ") if a.strip()),
        date=year[:4] if re.fullmatch(r"\d{4}.*", year) else None,
    )


def stream_bibtex(path: str, lines: Iterable[str]) -> Iterator[RawRecord | Skipped]:
    """BibTeX entries -> a RawRecord per entry with an `abstract`, else a Skipped.

    Args:
        path: the file name used in records and messages.
        lines: the file's lines, each with its "\\n"; one entry is held at a time.
    Yields:
        RawRecord (title, author, year, doi as id `doi:…`, eprint as arXiv id, the citation key
        as id `bibtex:KEY` when it has neither) or Skipped.
    """
    for line, text in _bib_entries(lines):
        item = _bib_entry(path, line, text)
        if item is not None:
            yield item


def parse_bibtex(path: str, text: str) -> Parsed:
    """BibTeX entries with an `abstract`; title, author, year, doi and eprint (arXiv) are kept."""
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
        return stream_jsonl(path, lines)
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
        raise CorpusError(path, "file is empty")
    if b"\x00" in data[:_BINARY_SNIFF]:
        raise CorpusError(path, "binary file (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        at = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise CorpusError(path, f"not UTF-8 text (byte {at}: {exc.reason})", data[:at].count(b"\n") + 1) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _result(path: str, fmt: str, records: list[RawRecord], skipped: list[Skipped]) -> FileResult:
    if not records:
        why = f"first problem: line {skipped[0].line}: {skipped[0].reason}" if skipped else "no text"
        raise CorpusError(path, f"no recognisable abstracts ({fmt}; {why})")
    return FileResult(path, fmt, records, skipped)


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
            raise CorpusError(self.path, "binary file (NUL bytes), not text")
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
                raise CorpusError(path, "file is empty")
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


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus the non-hidden files under directories named, in sorted order."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise CorpusError(str(p), "directory holds no files")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise CorpusError(str(p), "no such file or directory")
    return files


def read_paths(
    paths: Iterable[str | Path], columns: dict[str, str] | None = None, progress: bool = False
) -> list[FileResult]:
    """Read every file under `paths`; the first bad file raises CorpusError.

    Args:
        paths: files and directories (read recursively, hidden files skipped).
        columns: CSV/TSV column names for our fields, e.g. {"abstract": "Summary"}.
        progress: show a progress bar on stderr, by bytes on disk, when the files hold more
            than PROGRESS_MIN_BYTES.
    Returns:
        one FileResult per file, in `expand_paths` order.
    Raises:
        CorpusError: a missing path, or a file that is unreadable, empty, binary, not UTF-8 or
            holds no abstract (naming the file, and the line where it applies).
    """
    files = expand_paths(paths)
    sizes = [_size(f) for f in files] if progress else []
    if not progress or sum(sizes) <= PROGRESS_MIN_BYTES:
        return [_read(f, columns, None) for f in files]
    from tqdm import tqdm

    results = []
    with tqdm(total=sum(sizes), desc="reading", unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr) as bar:
        for f, size in zip(files, sizes):
            done = bar.n + size
            results.append(_read(f, columns, bar.update))
            bar.update(max(0, done - bar.n))
    return results


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
