"""Record fields shared by JSONL and CSV: one record from a row of named fields, and column guessing."""

from __future__ import annotations

import re
import shlex

from ..errors import CorpusError
from .base import (
    MIN_ABSTRACT_WORDS,
    RawRecord,
    _iso_date,
    _NoAbstracts,
    _words,
    clean_text,
    maybe_arxiv,
    normalize_arxiv_id,
)

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
    elif user_id and maybe_arxiv(user_id):
        arxiv_id, user_id = maybe_arxiv(user_id), None  # arXiv metadata: `id` is the arXiv id
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


def _first_version_date(versions) -> str | None:
    """arXiv metadata `versions`: [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}, ...]."""
    if not isinstance(versions, list) or not versions or not isinstance(versions[0], dict):
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(str(versions[0].get("created"))).date().isoformat()
    except (TypeError, ValueError):
        return None


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
