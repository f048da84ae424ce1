"""Where a paper lives and where its fields came from: its URL and DOI, and the sources that
`enrich` added (`enrich:SERVICE:REF[field,field]:0`) beside the user's own `file:line` sources."""

from __future__ import annotations

import re

from .records import Paper

#: Metadata fields `enrich` may fill, in the order they are shown.
FIELDS = ("title", "authors", "date", "categories")
_ENRICHED = re.compile(r"^enrich:(?P<service>[\w-]+):(?P<ref>.+)\[(?P<fields>[a-z,]+)\]:\d+$")


def paper_doi(paper: Paper) -> str | None:
    """The DOI a paper's id carries (`doi:10.…`, as BibTeX and fetched records give it), else None."""
    return paper.id[4:] if paper.id.lower().startswith("doi:") else None


def paper_url(paper: Paper) -> str | None:
    """The arXiv abstract page, else the DOI resolver link, else None."""
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    doi = paper_doi(paper)
    return f"https://doi.org/{doi}" if doi else None


def enriched_source(service: str, ref: str, fields: list[str]) -> str:
    """The source entry `enrich` adds to a paper for the fields it filled from `service`."""
    return f"enrich:{service}:{ref}[{','.join(fields)}]:0"


def field_sources(paper: Paper) -> dict[str, str | None]:
    """For each of FIELDS: `SERVICE:REF` when enrich filled it, "input" when the user's files gave
    it, None when the paper has no value."""
    filled = {}
    for source in paper.sources:
        m = _ENRICHED.match(source)
        if m:
            for name in m["fields"].split(","):
                filled[name] = f"{m['service']}:{m['ref']}"
    return {name: filled.get(name, "input") if getattr(paper, name) else None for name in FIELDS}


def user_sources(paper: Paper) -> tuple[str, ...]:
    """The paper's sources other than enrich's."""
    return tuple(s for s in paper.sources if not _ENRICHED.match(s))
