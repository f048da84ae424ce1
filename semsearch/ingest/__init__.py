"""Ingest: files of abstracts (scraped pages, JSONL, CSV, BibTeX) -> raw records, one per abstract seen.

Formats and page shapes are detected from content, never from file names. JSONL, CSV and
BibTeX files are streamed a line (an entry) at a time; scraped pages are read whole. Every
non-blank line a parser does not use is reported as `Skipped` with a reason, so nothing is
dropped silently.

base.py: record types and text/arXiv-id helpers; pages.py: scraped page shapes; fields.py,
jsonl.py, delimited.py, bibtex.py: the record formats, listed in formats.FORMATS; files.py:
reading files and directories.
"""

from .base import (
    MAX_TITLE_WORDS,
    MIN_ABSTRACT_WORDS,
    FileResult,
    RawRecord,
    Skipped,
    arxiv_id_month,
    clean_text,
    maybe_arxiv,
    normalize_arxiv_id,
)
from .bibtex import stream_bibtex
from .delimited import stream_csv
from .fields import parse_columns
from .files import MAX_PAGE_BYTES, PROGRESS_MIN_BYTES, expand_paths, read_file, read_paths
from .formats import FORMATS, detect
from .jsonl import stream_jsonl
from .pages import PAGE_SHAPES, parse_page

__all__ = [
    "FORMATS",
    "MAX_PAGE_BYTES",
    "MAX_TITLE_WORDS",
    "MIN_ABSTRACT_WORDS",
    "PAGE_SHAPES",
    "PROGRESS_MIN_BYTES",
    "FileResult",
    "RawRecord",
    "Skipped",
    "arxiv_id_month",
    "clean_text",
    "detect",
    "expand_paths",
    "maybe_arxiv",
    "normalize_arxiv_id",
    "parse_columns",
    "parse_page",
    "read_file",
    "read_paths",
    "stream_bibtex",
    "stream_csv",
    "stream_jsonl",
]
