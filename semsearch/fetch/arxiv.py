"""arXiv: the search API (Atom feeds, `start`/`max_results` paging) and OAI-PMH bulk harvesting
(`ListRecords`, resumption tokens), both at arXiv's documented one call every 3 seconds.

Formats: https://info.arxiv.org/help/api/user-manual.html (Atom, arxiv: extensions, errors as an
entry titled "Error"), https://info.arxiv.org/help/oa/index.html and
https://www.openarchives.org/OAI/openarchivesprotocol.html (OAI-PMH 2.0; metadata formats
`arXiv` and `arXivRaw`; 503 + Retry-After flow control).
"""

from __future__ import annotations

import difflib
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from email.utils import parsedate_to_datetime

from ..errors import FetchError
from ._http import BadBody, Client, Refused
from ._run import Page

API = "http://export.arxiv.org/api/query"
OAI = "https://oaipmh.arxiv.org/oai"
#: arXiv's API etiquette: "no more than one request every three seconds".
INTERVAL = 3.0
PAGE_SIZE = 200  # the API allows 2000 a call; smaller pages lose less to a failed call
IDS_PER_CALL = 100

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "os": "http://a9.com/-/spec/opensearch/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
    "oai": "http://www.openarchives.org/OAI/2.0/",
    "ax": "http://arxiv.org/OAI/arXiv/",
    "raw": "http://arxiv.org/OAI/arXivRaw/",
}

#: arXiv's archives and their subject classes (https://arxiv.org/category_taxonomy); an archive
#: with no classes is itself a category (gr-qc). The "physics" group holds the physics archives.
TAXONOMY = {
    "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA NE NI OH OS PF PL "
          "RO SC SD SE SI SY",
    "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA RT SG SP ST",
    "stat": "AP CO ME ML OT TH",
    "eess": "AS IV SP SY",
    "econ": "EM GN TH",
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "astro-ph": "CO EP GA HE IM SR",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
    "nlin": "AO CD CG PS SI",
    "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an ed-ph flu-dyn gen-ph "
               "geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    "gr-qc": "", "hep-ex": "", "hep-lat": "", "hep-ph": "", "hep-th": "", "math-ph": "", "nucl-ex": "",
    "nucl-th": "", "quant-ph": "",
}
_PHYSICS_GROUP = {"astro-ph", "cond-mat", "nlin", "physics", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th",
                  "math-ph", "nucl-ex", "nucl-th", "quant-ph"}
_ARXIV_ID = re.compile(r"(?:\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?")


def api_base() -> str:
    return os.environ.get("SEMSEARCH_ARXIV_API") or API


def oai_base() -> str:
    return os.environ.get("SEMSEARCH_ARXIV_OAI") or OAI


def client(**kwargs) -> Client:
    return Client("arXiv", interval=INTERVAL, **kwargs)


def check_category(category: str) -> str:
    """`cs.IR` as given, or FetchError naming the closest categories."""
    archive, _, sub = category.partition(".")
    known = [f"{a}.{s}" if s else a for a, subs in TAXONOMY.items() for s in (subs.split() or [""])]
    if archive in TAXONOMY and ((not sub) or sub in TAXONOMY[archive].split()):
        return category
    close = difflib.get_close_matches(category, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see https://arxiv.org/category_taxonomy)"
    raise FetchError(f"unknown arXiv category {category!r}{hint}")


def check_dates(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    """Parse --from/--until (YYYY-MM-DD); FetchError when malformed or from > until."""
    parsed = []
    for name, value in (("--from", start), ("--until", end)):
        try:
            parsed.append(date.fromisoformat(value) if value else None)
        except ValueError:
            raise FetchError(f"{name} {value!r} is not a date: write it as YYYY-MM-DD") from None
    if parsed[0] and parsed[1] and parsed[0] > parsed[1]:
        raise FetchError(f"--from {start} is after --until {end}: swap them")
    return parsed[0], parsed[1]


def check_id(value: str) -> str:
    v = re.sub(r"^(?:arxiv:|https?://arxiv\.org/(?:abs|pdf)/)", "", value.strip(), flags=re.IGNORECASE)
    if not _ARXIV_ID.fullmatch(v):
        raise FetchError(f"{value!r} is not an arXiv id (like 2407.21783 or hep-th/9901001v2)")
    return v


def search_query(query: str | None, category: str | None, start: date | None, end: date | None) -> str:
    """The API's `search_query`: plain words are ANDed over all fields; `ti:`, `au:`… pass as given."""
    parts = []
    if query:
        parts.append(query if re.search(r"\b(?:ti|au|abs|co|jr|cat|rn|id|all):", query)
                     else " AND ".join(f"all:{w}" for w in query.split()))
    if category:
        parts.append(f"cat:{category}")
    if start or end:
        lo = (start or date(1991, 1, 1)).strftime("%Y%m%d") + "0000"
        hi = (end or date.today()).strftime("%Y%m%d") + "2359"
        parts.append(f"submittedDate:[{lo} TO {hi}]")
    return " AND ".join(f"({p})" if " " in p and not p.startswith("submittedDate") else p for p in parts)


def _text(el, path: str) -> str | None:
    found = el.find(path, NS)
    if found is None or found.text is None:
        return None
    return " ".join(found.text.split()) or None  # Atom titles and summaries arrive hard-wrapped


def _xml(response, what: str):
    body = response.content
    head = body.lstrip()[:200]
    if not head.startswith(b"<"):
        text = head.decode("utf-8", "replace").strip()
        raise BadBody(f"plain text {text[:60]!r} instead of {what}")
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadBody(f"not well-formed XML ({exc}); a truncated answer?") from None


def parse_feed(response) -> tuple[list[dict], list[str], int | None]:
    """An API Atom feed -> (records, skipped, totalResults). Raises Refused for an error entry,
    BadBody for anything that is not a feed."""
    root = _xml(response, "an Atom feed")
    if root.tag != f"{{{NS['atom']}}}feed":
        raise BadBody(f"<{root.tag}> instead of an Atom feed")
    entries = root.findall("atom:entry", NS)
    for entry in entries:
        if "/api/errors" in (_text(entry, "atom:id") or "") or _text(entry, "atom:title") == "Error":
            raise Refused(f"the query was refused: {_text(entry, 'atom:summary') or 'no reason given'}")
    total = _text(root, "os:totalResults")
    records, skipped = [], []
    for entry in entries:
        record = _entry(entry)
        if isinstance(record, str):
            skipped.append(record)
        else:
            records.append(record)
    return records, skipped, int(total) if total and total.isdigit() else None


def _entry(entry) -> dict | str:
    """One Atom entry as a JSON-lines record, or the reason it is skipped."""
    url = _text(entry, "atom:id") or ""
    match = re.search(r"arxiv\.org/abs/(.+)$", url)
    abstract = _text(entry, "atom:summary")
    if not match or not abstract:
        return f"entry {url or '(no id)'}: {'no arXiv id' if not match else 'no abstract'}"
    arxiv_id = match.group(1)
    links = {link.get("title") or link.get("rel"): link.get("href") for link in entry.findall("atom:link", NS)}
    primary = entry.find("arxiv:primary_category", NS)
    categories = [c.get("term") for c in entry.findall("atom:category", NS) if c.get("term")]
    if primary is not None and primary.get("term") in categories:
        categories.remove(primary.get("term"))
        categories.insert(0, primary.get("term"))
    return _clean({
        "arxiv_id": arxiv_id,
        "title": _text(entry, "atom:title"),
        "abstract": abstract,
        "authors": [n for a in entry.findall("atom:author", NS) if (n := _text(a, "atom:name"))],
        "date": (_text(entry, "atom:published") or "")[:10] or None,
        "updated": (_text(entry, "atom:updated") or "")[:10] or None,
        "categories": categories,
        "doi": _text(entry, "arxiv:doi"),
        "journal_ref": _text(entry, "arxiv:journal_ref"),
        "comment": _text(entry, "arxiv:comment"),
        "url": links.get("alternate") or f"https://arxiv.org/abs/{arxiv_id}",
        "fetched_from": "arxiv",
    })


def _clean(record: dict) -> dict:
    return {k: v for k, v in record.items() if v not in (None, [], "")}


def api_pages(request: dict, position: dict | None, seen: set[str], http: Client, base: str) -> Iterator[Page]:
    """Pages of the API for `request` (query/category/from/until, or ids), from `position`."""
    if request.get("ids"):
        todo = [i for i in request["ids"] if f"arxiv:{re.sub(r'v[0-9]+$', '', i).lower()}" not in seen]
        for at in range(0, len(todo), IDS_PER_CALL):
            batch = todo[at : at + IDS_PER_CALL]
            records, skipped, _ = http.get(base, {"id_list": ",".join(batch), "max_results": len(batch)}, parse_feed)
            found = {re.sub(r"v\d+$", "", r["arxiv_id"]) for r in records}
            skipped += [f"{i}: not found on arXiv" for i in batch if re.sub(r"v\d+$", "", i) not in found]
            yield Page(records, {"ids_done": at + len(batch)} if at + IDS_PER_CALL < len(todo) else None,
                       len(todo), skipped)
        return
    start, end = check_dates(request.get("from"), request.get("until"))
    query = search_query(request.get("query"), request.get("category"), start, end)
    sort = {"sortBy": "submittedDate", "sortOrder": "ascending"} if not request.get("query") else {}
    at = (position or {}).get("start", 0)
    size = request.get("page_size") or PAGE_SIZE
    while True:
        params = {"search_query": query, "start": at, "max_results": size, **sort}

        def parse(response, at=at):
            records, skipped, total = parse_feed(response)
            if not records and not skipped and total is not None and at < total:
                raise BadBody(f"an empty page at start={at} of {total} results")  # a known API hiccup
            return records, skipped, total

        records, skipped, total = http.get(base, params, parse)
        at += len(records) + len(skipped)
        last = not (records or skipped) or total is None or at >= total
        yield Page(records, None if last else {"start": at}, total, skipped)
        if last:
            return


def oai_set(category: str) -> str:
    """The OAI-PMH setSpec of a category: `cs.IR` -> `cs:cs:IR`, `hep-th` -> `physics:hep-th`."""
    archive, _, sub = category.partition(".")
    group = "physics" if archive in _PHYSICS_GROUP else archive
    if sub:
        return f"{group}:{archive}:{sub}"
    return archive if group == archive else f"{group}:{archive}"


def parse_oai(response, prefix: str) -> tuple[list[dict], list[str], str | None, int | None]:
    """A ListRecords answer -> (records, skipped, resumption token or None, completeListSize)."""
    root = _xml(response, "an OAI-PMH answer")
    if root.tag != f"{{{NS['oai']}}}OAI-PMH":
        raise BadBody(f"<{root.tag}> instead of an OAI-PMH answer")
    error = root.find("oai:error", NS)
    if error is not None:
        code = error.get("code", "")
        if code == "noRecordsMatch":
            return [], [], None, 0
        raise Refused(f"OAI-PMH error {code}: {' '.join((error.text or '').split())}")
    listing = root.find("oai:ListRecords", NS)
    if listing is None:
        raise BadBody("no ListRecords element")
    records, skipped = [], []
    for rec in listing.findall("oai:record", NS):
        header = rec.find("oai:header", NS)
        if header is not None and header.get("status") == "deleted":
            continue
        meta = rec.find(f"oai:metadata/{'ax:arXiv' if prefix == 'arXiv' else 'raw:arXivRaw'}", NS)
        record = _oai_record(meta, prefix) if meta is not None else "record without arXiv metadata"
        (skipped if isinstance(record, str) else records).append(record)
    token = listing.find("oai:resumptionToken", NS)
    size = token.get("completeListSize") if token is not None else None
    return (records, skipped, (token.text or "").strip() or None if token is not None else None,
            int(size) if size and size.isdigit() else None)


def _oai_record(meta, prefix: str) -> dict | str:
    ns = "ax" if prefix == "arXiv" else "raw"
    arxiv_id, abstract = _text(meta, f"{ns}:id"), _text(meta, f"{ns}:abstract")
    if not arxiv_id or not abstract:
        return f"record {arxiv_id or '(no id)'}: {'no abstract' if arxiv_id else 'no id'}"
    if prefix == "arXiv":
        authors = []
        for a in meta.findall("ax:authors/ax:author", NS):
            name = " ".join(x for x in (_text(a, "ax:forenames"), _text(a, "ax:keyname"), _text(a, "ax:suffix")) if x)
            if name:
                authors.append(name)
        first = _text(meta, "ax:created")
        version = ""
    else:
        authors = _raw_authors(_text(meta, "raw:authors") or "")
        versions = meta.findall("raw:version", NS)
        version = versions[-1].get("version", "") if versions else ""
        first = _rfc_date(_text(versions[0], "raw:date")) if versions else None
    categories = (_text(meta, f"{ns}:categories") or "").split()
    return _clean({
        "arxiv_id": arxiv_id + version,
        "title": _text(meta, f"{ns}:title"),
        "abstract": abstract,
        "authors": authors,
        "date": first,
        "updated": _text(meta, "ax:updated") if prefix == "arXiv" else None,
        "categories": categories,
        "doi": _text(meta, f"{ns}:doi"),
        "journal_ref": _text(meta, f"{ns}:journal-ref"),
        "comment": _text(meta, f"{ns}:comments"),
        "url": f"https://arxiv.org/abs/{arxiv_id}{version}",
        "fetched_from": "arxiv-oai",
    })


def _rfc_date(value: str | None) -> str | None:
    try:
        return parsedate_to_datetime(value).date().isoformat() if value else None
    except (TypeError, ValueError):
        return None


def _raw_authors(text: str) -> list[str]:
    """arXivRaw's author string ("A. B\\'ezout, C. D and E. F") -> names, LaTeX accents decoded."""
    from pylatexenc.latex2text import LatexNodes2Text

    decoded = LatexNodes2Text().latex_to_text(text)
    return [" ".join(n.split()) for n in re.split(r",\s*|\s+and\s+", decoded) if n.strip()]


def oai_pages(request: dict, position: dict | None, seen: set[str], http: Client, base: str) -> Iterator[Page]:
    """ListRecords pages for a category and datestamp range, following resumption tokens."""
    prefix = request.get("metadata_prefix") or "arXiv"
    category = request["category"]
    token = (position or {}).get("token")
    while True:
        if token:
            params = {"verb": "ListRecords", "resumptionToken": token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": prefix, "set": oai_set(category)}
            params.update({k: request[k] for k in ("from", "until") if request.get(k)})
        records, skipped, token, total = http.get(base, params, lambda r: parse_oai(r, prefix))
        if "." in category:  # a set can be wider than one category (older servers: the archive)
            records = [r for r in records if category in r.get("categories", [])]
        yield Page(records, {"token": token} if token else None, total, skipped)
        if not token:
            return
