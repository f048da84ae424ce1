"""OpenAlex works: search, filter (cursor paging) and DOI look-ups, abstracts rebuilt from
`abstract_inverted_index`.

Format: https://docs.openalex.org/api-entities/works/work-object (work fields),
https://docs.openalex.org/how-to-use-the-api/get-lists-of-entities/paging (`cursor=*`,
`meta.next_cursor`), https://developers.openalex.org/api-reference/authentication (API key as
`api_key`; a free key buys $1 of calls a day: unlimited singletons, 10,000 list/filter calls or
1,000 search calls; without a key $0.01 a day; at most 100 calls a second; 429 once spent).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from urllib.parse import quote

from ..errors import FetchError
from ._http import BadBody, Client, Refused
from ._run import Page

API = "https://api.openalex.org"
#: 100 calls/s is the documented ceiling; ten a second leaves room for other work on one key.
INTERVAL = 0.1
PER_PAGE = 100  # the documentation's advice: "per_page=100 ... makes your query budget go much further"
KEY_VARIABLE = "OPENALEX_API_KEY"


def base() -> str:
    return (os.environ.get("SEMSEARCH_OPENALEX_API") or API).rstrip("/")


def client(**kwargs) -> Client:
    return Client("OpenAlex", interval=INTERVAL, **kwargs)


def _auth() -> dict:
    """api_key from $OPENALEX_API_KEY, mailto from $SEMSEARCH_CONTACT_EMAIL (both optional)."""
    params = {}
    if os.environ.get(KEY_VARIABLE):
        params["api_key"] = os.environ[KEY_VARIABLE]
    if os.environ.get("SEMSEARCH_CONTACT_EMAIL"):
        params["mailto"] = os.environ["SEMSEARCH_CONTACT_EMAIL"]
    return params


def abstract_from_index(inverted: dict | None) -> str | None:
    """Rebuild an abstract from {word: [positions]}; None when absent or empty."""
    if not inverted or not isinstance(inverted, dict):
        return None
    at = {}
    for word, positions in inverted.items():
        for p in positions if isinstance(positions, list) else ():
            if isinstance(p, int):
                at[p] = word
    return " ".join(at[p] for p in sorted(at)) or None


def check_doi(value: str) -> str:
    doi = re.sub(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)", "", value.strip(), flags=re.IGNORECASE)
    if not re.fullmatch(r"10\.\d{4,9}/\S+", doi):
        raise FetchError(f"{value!r} is not a DOI (like 10.1145/3397271.3401075)")
    return doi.lower()


def work_record(work: dict) -> dict | str:
    """One OpenAlex work as a JSON-lines record, or the reason it is skipped."""
    if not isinstance(work, dict):
        return "a result that is not an object"
    wid = str(work.get("id") or "").rsplit("/", 1)[-1]
    abstract = abstract_from_index(work.get("abstract_inverted_index"))
    title = work.get("title") or work.get("display_name")
    if not abstract:
        return f"{wid or '(no id)'} ({title or 'untitled'}): no abstract in OpenAlex"
    doi = work.get("doi")
    doi = check_doi(doi) if isinstance(doi, str) and doi else None
    arxiv = None
    if doi and doi.startswith("10.48550/arxiv."):
        arxiv = doi.split("arxiv.", 1)[1]
    for loc in work.get("locations") or []:
        url = (loc or {}).get("landing_page_url") or ""
        m = re.search(r"arxiv\.org/abs/([\w./-]+?)(?:v\d+)?$", url)
        if m and not arxiv:
            arxiv = m.group(1)
    topics = [t.get("display_name") for t in work.get("topics") or [] if isinstance(t, dict) and t.get("display_name")]
    source = ((work.get("primary_location") or {}).get("source") or {}).get("display_name")
    return {k: v for k, v in {
        "id": f"doi:{doi}" if doi and not arxiv else (None if arxiv else f"openalex:{wid}"),
        "arxiv_id": arxiv,
        "title": " ".join(title.split()) if isinstance(title, str) else None,
        "abstract": abstract,
        "authors": [a["author"]["display_name"] for a in work.get("authorships") or []
                    if isinstance(a, dict) and (a.get("author") or {}).get("display_name")],
        "date": work.get("publication_date") or (str(work.get("publication_year") or "") or None),
        "doi": doi,
        "venue": source,
        "topics": topics,
        "openalex_id": wid or None,
        "url": f"https://doi.org/{doi}" if doi else work.get("id"),
        "fetched_from": "openalex",
    }.items() if v not in (None, [], "")}


def _json(response):
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise BadBody("not JSON; a truncated answer?") from None


def _parse(response):
    data = _json(response)
    if response.status_code == 429:
        message = str(data.get("message") or data.get("error") or "") if isinstance(data, dict) else ""
        if not re.search(r"budget|credit|daily|per day|usage|exceeded your", message, re.IGNORECASE):
            raise BadBody(f"rate limited ({message or 'HTTP 429'})")  # too many calls a second: retried
        keyed = bool(os.environ.get(KEY_VARIABLE))
        raise Refused(
            f"the daily budget is spent ({message or 'HTTP 429'}); it renews at midnight UTC"
            + ("" if keyed else f"; a free API key (set ${KEY_VARIABLE}) buys 100x more: openalex.org/settings/api")
        )
    if response.status_code == 404:
        raise Refused("not found")
    if response.status_code >= 400:
        message = data.get("message") or data.get("error") if isinstance(data, dict) else None
        raise Refused(f"HTTP {response.status_code}: {message or json.dumps(data)[:200]}")
    return data


def _list(response):
    data = _parse(response)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list) or "meta" not in data:
        raise BadBody("no 'results' list and 'meta' in the answer")
    return data


def pages(request: dict, position: dict | None, seen: set[str], http: Client, url: str) -> Iterator[Page]:
    """Pages of works for --search / --filter (cursor paging) or --doi (one free call each)."""
    if request.get("dois"):
        todo = [d for d in request["dois"] if f"doi:{d}" not in seen]
        done = (position or {}).get("done", 0)
        for i, doi in enumerate(todo[done:], start=done):
            try:
                work = http.get(f"{url}/works/doi:{quote(doi, safe='/')}", _auth(), _parse)
            except FetchError as exc:
                if str(exc).endswith(": not found"):
                    more = {"done": i + 1} if i + 1 < len(todo) else None
                    yield Page([], more, len(todo), [f"{doi}: not in OpenAlex"])
                    continue
                raise
            record = work_record(work)
            records, skipped = ([], [record]) if isinstance(record, str) else ([record], [])
            yield Page(records, {"done": i + 1} if i + 1 < len(todo) else None, len(todo), skipped)
        return
    cursor = (position or {}).get("cursor", "*")
    params = {"per_page": PER_PAGE, **_auth()}
    if request.get("search"):
        params["search"] = request["search"]
    if request.get("filter"):
        params["filter"] = ",".join(request["filter"])
    while True:
        data = http.get(f"{url}/works", {**params, "cursor": cursor}, _list)
        records, skipped = [], []
        for work in data["results"]:
            r = work_record(work)
            (skipped if isinstance(r, str) else records).append(r)
        cursor = (data.get("meta") or {}).get("next_cursor")
        total = (data.get("meta") or {}).get("count")
        last = not cursor or not data["results"]
        yield Page(records, None if last else {"cursor": cursor}, total if isinstance(total, int) else None, skipped)
        if last:
            return
