"""Files and directories -> FileResults: gzip or plain, decoded a line at a time, format by content."""

from __future__ import annotations

import codecs
import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Self

from ..errors import CorpusError
from .base import _SNIFF_CHARS, FileResult, RawRecord, Skipped, _collect, _NoAbstracts, _text_lines, arxiv_id_month
from .formats import detect, stream
from .pages import parse_page

#: Scraped pages larger than this are refused rather than read into memory whole (the
#: record formats are streamed, whatever their size).
MAX_PAGE_BYTES = 256 * 1024 * 1024

#: Bytes at a file's start searched for NUL bytes (a binary file).
_BINARY_SNIFF = 8192
#: Show a progress bar when reading more bytes than this (a second or two of work).
PROGRESS_MIN_BYTES = 16 * 2**20
_PROGRESS_STEP = 2**20


def _result(path: str, fmt: str, records: list[RawRecord], skipped: list[Skipped]) -> FileResult:
    if not records:
        why = f"first problem: line {skipped[0].line}: {skipped[0].reason}" if skipped else "no text"
        raise _NoAbstracts(path, f"no recognisable abstracts ({fmt}; {why})")
    return FileResult(path, fmt, [_dated(r) for r in records], skipped)


def _dated(record: RawRecord) -> RawRecord:
    """A record without a date takes the month of its arXiv id."""
    if record.date or not record.arxiv_id:
        return record
    month = arxiv_id_month(record.arxiv_id)
    return replace(record, date=month) if month else record


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
            fmt = detect("".join(head), columns)
            body = itertools.chain(head, lines)
            if fmt is None:
                if p.stat().st_size > MAX_PAGE_BYTES:
                    raise CorpusError(path, _too_big())
                fmt, (records, skipped) = parse_page(path, _page_text(path, body))
            else:
                records, skipped = _collect(stream(fmt, path, body, columns))
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
        from ..progress import bar as progress_bar

        results = []
        with progress_bar(sum(sizes), "reading", unit="B", unit_scale=True, unit_divisor=1024) as bar:
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
