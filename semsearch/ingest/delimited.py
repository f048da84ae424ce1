"""CSV and TSV with a header row: one record per row, streamed a row at a time."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator

from ..errors import CorpusError
from .base import _SNIFF_CHARS, RawRecord, Skipped, _is_prose, _words
from .fields import _FIELDS, _SAMPLE_ROWS, _named, _record_from_fields, _refusal


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
