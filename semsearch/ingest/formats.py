"""The record formats, one table: name -> how to recognise a file's start and how to stream it.

Formats are tried in table order; a file none of them recognises is a scraped page (pages.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from .base import RawRecord, Skipped
from .bibtex import _looks_like_bibtex, stream_bibtex
from .delimited import _looks_like_csv, stream_csv
from .jsonl import _looks_like_jsonl, stream_jsonl

Columns = dict[str, str] | None


class Format(NamedTuple):
    """sniff(text of a file's start, columns) -> bool; stream(path, lines, columns) -> records and skips."""

    sniff: Callable[[str, Columns], bool]
    stream: Callable[[str, Iterable[str], Columns], Iterator[RawRecord | Skipped]]


FORMATS: dict[str, Format] = {
    "jsonl": Format(lambda text, columns: _looks_like_jsonl(text), stream_jsonl),
    "bibtex": Format(lambda text, columns: _looks_like_bibtex(text), lambda path, lines, columns: stream_bibtex(path, lines)),
    "csv": Format(_looks_like_csv, stream_csv),
}


def detect(text: str, columns: Columns) -> str | None:
    """The record format `text` (a file's start) is in, or None for a scraped page."""
    return next((name for name, fmt in FORMATS.items() if fmt.sniff(text, columns)), None)


def stream(fmt: str, path: str, lines: Iterable[str], columns: Columns) -> Iterator[RawRecord | Skipped]:
    """The records and skipped lines of a file in record format `fmt` (a FORMATS name)."""
    return FORMATS[fmt].stream(path, lines, columns)
