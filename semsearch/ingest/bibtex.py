"""BibTeX: one record per entry with an abstract, streamed an entry at a time."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

from .base import _ARXIV_ID, _MONTHS, RawRecord, Skipped, _is_prose, _short, clean_text, maybe_arxiv, normalize_arxiv_id

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
        if fields.get(name) and (arxiv_id := maybe_arxiv(fields[name])):
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
    if m is None:  # _bib_entries yields only text that opens an entry; never reached otherwise
        return Skipped(path, line, "not a BibTeX entry", _short(text))
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
