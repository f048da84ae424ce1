"""Export papers to where researchers cite them: BibTeX, CSV, RIS or JSON lines.

BibTeX keys are stable (`lastname` `year` `firstword` of the title, from the paper alone; a
clash inside one export gets `b`, `c`… in id order); arXiv papers carry `eprint`,
`archivePrefix` and `primaryClass`; a title is never invented (an untitled paper has no `title`
field); text is LaTeX-escaped. Every format also carries the abstract, so a `.bib`, `.csv` or
`.jsonl` export builds back into the same papers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from .atomic import atomic_write_bytes
from .errors import ExportError
from .provenance import paper_doi, paper_url
from .records import Paper

CSV_COLUMNS = ("id", "title", "arxiv_id", "doi", "authors", "year", "date", "categories", "url", "abstract")
_LATEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "`": "{`}"}
_STOP = {"a", "an", "the", "on", "of", "for", "in", "to", "and", "with", "towards", "toward", "via", "is", "are"}


def _escape_text(text: str) -> str:
    out = "".join(_LATEX.get(c, c) for c in text)
    # "--", "---" and "''" are ligatures in LaTeX (dashes, a closing quote): break them up
    return re.sub(r"(?<=-)(?=-)", "{}", out).replace("''", "'{}'")


def latex_escape(text: str) -> str:
    """Text -> LaTeX that typesets as the same characters (`50% of C++ & R_2` stays that).

    Inline math (`$x^2$`, an even number of `$`) is already LaTeX, as arXiv titles carry it,
    and passes through unchanged; everything else is escaped."""
    parts = re.split(r"(?<!\\)(\$[^$]+\$)", text)
    if text.count("$") % 2:
        parts = [text]
    return "".join(p if p.startswith("$") and p.endswith("$") and len(p) > 1 else _escape_text(p) for p in parts)


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]", "", folded).lower()


def base_key(paper: Paper) -> str:
    """`dubey2024llama`: first author's last name, year, first significant title word; the
    paper's id (made key-safe) when it has neither author nor year."""
    last = _ascii_word(paper.authors[0].split()[-1]) if paper.authors and paper.authors[0].split() else ""
    year = str(paper.year or "")
    word = next((w for w in (_ascii_word(t) for t in (paper.title or "").split()) if w and w not in _STOP), "")
    if not (last or year):
        return re.sub(r"[^A-Za-z0-9:._-]", "", paper.id) or "paper"
    return f"{last or 'anon'}{year}{word}"


def bibtex_keys(papers: Sequence[Paper]) -> dict[str, str]:
    """Paper id -> key, unique within `papers`: clashes get b, c… in order of paper id."""
    groups: dict[str, list[str]] = defaultdict(list)
    for p in papers:
        groups[base_key(p)].append(p.id)
    keys = {}
    for base, ids in groups.items():
        for n, pid in enumerate(sorted(ids)):
            keys[pid] = base if n == 0 else f"{base}{chr(ord('a') + n) if n < 26 else n}"
    return keys


def to_bibtex(papers: Sequence[Paper]) -> str:
    keys = bibtex_keys(papers)
    out = []
    for p in papers:
        doi = paper_doi(p)
        fields: list[tuple[str, str]] = []
        if p.title:
            fields.append(("title", latex_escape(p.title)))
        if p.authors:
            fields.append(("author", " and ".join(latex_escape(a) for a in p.authors)))
        if p.year:
            fields.append(("year", str(p.year)))
        if p.date and re.match(r"\d{4}-\d{2}", p.date):
            fields.append(("month", str(int(p.date[5:7]))))
        if p.arxiv_id:
            fields += [("eprint", p.arxiv_id), ("archivePrefix", "arXiv")]
            if p.categories:
                fields.append(("primaryClass", latex_escape(p.categories[0])))
        if p.categories:
            fields.append(("keywords", latex_escape(", ".join(p.categories))))
        if doi:
            fields.append(("doi", latex_escape(doi)))
        url = paper_url(p)
        if url:
            fields.append(("url", url))
        fields.append(("abstract", latex_escape(p.abstract)))
        kind = "article" if doi and not p.arxiv_id else "misc"
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        out.append(f"@{kind}{{{keys[p.id]},\n{body}\n}}\n")
    return "\n".join(out)


def _row(p: Paper) -> dict:
    return {
        "id": p.id, "title": p.title or "", "arxiv_id": p.arxiv_id or "", "doi": paper_doi(p) or "",
        "authors": "; ".join(p.authors), "year": p.year or "", "date": p.date or "",
        "categories": " ".join(p.categories), "url": paper_url(p) or "", "abstract": p.abstract,
    }


def to_csv(papers: Sequence[Paper]) -> str:
    """A header row and one quoted row per paper (authors joined by `; `, as semsearch reads them)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(_row(p) for p in papers)
    return buffer.getvalue()


def to_jsonl(papers: Sequence[Paper]) -> str:
    """One JSON object per line, in the fields `build` reads (plus doi and url)."""
    lines = []
    for p in papers:
        record = {"id": p.id, "arxiv_id": p.arxiv_id, "title": p.title, "abstract": p.abstract,
                  "authors": list(p.authors), "date": p.date, "categories": list(p.categories),
                  "doi": paper_doi(p), "url": paper_url(p)}
        lines.append(json.dumps({k: v for k, v in record.items() if v not in (None, [])}, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def to_ris(papers: Sequence[Paper]) -> str:
    """RIS (https://en.wikipedia.org/wiki/RIS_(file_format)): `TY  - ` … `ER  - ` per paper."""
    out = []
    for p in papers:
        doi = paper_doi(p)
        lines = [("TY", "JOUR" if doi and not p.arxiv_id else "GEN"), ("ID", p.id)]
        if p.title:
            lines.append(("TI", p.title))
        lines += [("AU", a) for a in p.authors]
        if p.year:
            lines.append(("PY", str(p.year)))
        if p.date:
            lines.append(("DA", p.date.replace("-", "/")))
        lines += [("KW", c) for c in p.categories]
        if doi:
            lines.append(("DO", doi))
        if paper_url(p):
            lines.append(("UR", paper_url(p)))
        if p.arxiv_id:
            lines.append(("M1", f"arXiv:{p.arxiv_id}"))
        lines.append(("AB", p.abstract))
        lines.append(("ER", ""))
        out.append("".join(f"{tag}  - {' '.join(value.split())}".rstrip() + "\r\n" for tag, value in lines))
    return "".join(out)


#: format name -> renderer; `--format` takes these names.
FORMATS: dict[str, Callable[[Sequence[Paper]], str]] = {
    "bibtex": to_bibtex, "csv": to_csv, "jsonl": to_jsonl, "ris": to_ris,
}


def render(papers: Sequence[Paper], fmt: str) -> str:
    """`papers` as text in `fmt`; raises ExportError for an unknown format or no papers."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose {', '.join(FORMATS)}")
    if not papers:
        raise ExportError("no papers to export: check the ids (`semsearch papers`) or the query")
    return FORMATS[fmt](papers)


def write(text: str, output: str | Path, fmt: str = "", *, overwrite: bool = False) -> None:
    """Write `text` to `output` atomically (a temporary sibling, then rename); CSV files get a
    UTF-8 byte-order mark so spreadsheets read accents right. An existing `output` is replaced only
    with `overwrite` (it may be the user's own file)."""
    path = Path(output)
    if os.path.lexists(path) and not (overwrite and path.is_file()):
        raise ExportError(
            f"{path}: exists; semsearch does not replace it: choose another --output"
            + (", or add --force to replace it" if path.is_file() else "")
        )
    data = (("\ufeff" if fmt == "csv" else "") + text).encode("utf-8")
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from None


def select(index, ids: Sequence[str] = (), query: str | None = None, k: int = 10, filters=None) -> list[Paper]:
    """Papers of an open `Index`: by record or arXiv id (in the order given), a query's top k, or all.

    Raises:
        QueryError: an id the index does not hold.
    """
    from .errors import QueryError
    from .ingest import normalize_arxiv_id

    if query:
        return [h.paper for h in index.search(query, k, filters=filters)]
    papers = list(index.papers())
    if not ids:
        return papers
    by_ref = {p.id: p for p in papers} | {p.arxiv_id: p for p in papers if p.arxiv_id}
    chosen = []
    for ref in ids:
        try:
            paper = by_ref.get(ref) or by_ref.get(normalize_arxiv_id(ref))
        except ValueError:
            paper = None
        if paper is None:
            raise QueryError(f"no paper with id {ref!r} in {index.path}: see `semsearch papers`")
        chosen.append(paper)
    return chosen
