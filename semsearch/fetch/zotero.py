"""Zotero: a library or collection through the web API, or offline from a copy of zotero.sqlite.

Formats: https://www.zotero.org/support/dev/web_api/v3/basics (`/users/{id}/items`,
`/collections/{key}/items`, `Zotero-API-Key`, `start`/`limit`, `Total-Results`, `Backoff` and
`Retry-After`, 403 for a refused key), item JSON as in
https://www.zotero.org/support/dev/web_api/v3/types_and_fields, and the local database as in
https://www.zotero.org/support/dev/client_coding/direct_sqlite_database_access (items,
itemData/itemDataValues/fields, creators/itemCreators, collections/collectionItems, deletedItems).
The API key comes from $ZOTERO_API_KEY and is sent only as a header: never printed or stored.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import FetchError
from ._http import BadBody, Client, Refused
from ._run import Page

API = "https://api.zotero.org"
#: Zotero documents no fixed rate, only Backoff/Retry-After; one call a second is gentle.
INTERVAL = 1.0
LIMIT = 100  # the most the API returns per call
KEY_VARIABLE = "ZOTERO_API_KEY"
_NOT_PAPERS = {"attachment", "note", "annotation"}


def base() -> str:
    return (os.environ.get("SEMSEARCH_ZOTERO_API") or API).rstrip("/")


def client(**kwargs) -> Client:
    headers = {"Zotero-API-Version": "3"}
    if os.environ.get(KEY_VARIABLE):
        headers["Zotero-API-Key"] = os.environ[KEY_VARIABLE]
    return Client("Zotero", interval=INTERVAL, headers=headers, **kwargs)


def _arxiv(fields: dict) -> str | None:
    for name in ("archiveID", "extra", "url", "DOI", "number"):
        m = re.search(r"(?:arxiv[:.\s]*|arxiv\.org/abs/)\s*(\d{4}\.\d{4,5}(?:v\d+)?|[a-z-]+/\d{7}(?:v\d+)?)",
                      str(fields.get(name) or ""), re.IGNORECASE)
        if m:
            return m.group(1)
    return None


def item_record(fields: dict, creators: list[str], key: str) -> dict | str:
    """Zotero item fields (web API `data` names) -> a JSON-lines record, or why it is skipped."""
    title = " ".join(str(fields.get("title") or "").split()) or None
    abstract = " ".join(str(fields.get("abstractNote") or "").split())
    if not abstract:
        return f"{key} ({title or 'untitled'}): no abstract"
    doi = str(fields.get("DOI") or "").strip().lower() or None
    arxiv = _arxiv(fields)
    date = str(fields.get("date") or "")
    m = re.match(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", date)
    iso = "-".join(x for x in m.groups() if x and x != "00") if m else None
    return {k: v for k, v in {
        "id": None if arxiv else (f"doi:{doi}" if doi else f"zotero:{key}"),
        "arxiv_id": arxiv,
        "title": title,
        "abstract": abstract,
        "authors": creators,
        "date": iso,
        "doi": doi,
        "venue": fields.get("publicationTitle") or fields.get("proceedingsTitle") or None,
        "url": fields.get("url") or None,
        "zotero_key": key,
        "fetched_from": "zotero",
    }.items() if v not in (None, [], "")}


def _names(creators) -> list[str]:
    out = []
    for c in creators or []:
        if not isinstance(c, dict) or c.get("creatorType", "author") not in ("author", "contributor"):
            continue
        name = c.get("name") or " ".join(x for x in (c.get("firstName"), c.get("lastName")) if x)
        if name:
            out.append(" ".join(name.split()))
    return out


def _parse(response):
    if response.status_code == 403:
        raise Refused(f"the API key was refused (HTTP 403): check ${KEY_VARIABLE} and that it may read this library")
    if response.status_code == 404:
        raise Refused("no such library or collection (HTTP 404): check --user/--group and --collection")
    try:
        items = response.json()
    except (ValueError, UnicodeDecodeError):
        raise BadBody("not JSON; a truncated answer?") from None
    if not isinstance(items, list):
        raise BadBody("not a JSON list of items")
    total = response.headers.get("Total-Results")
    return items, int(total) if total and total.isdigit() else None


def pages(request: dict, position: dict | None, seen: set[str], http: Client, url: str) -> Iterator[Page]:
    """Items of a user or group library (or one collection), `LIMIT` a call."""
    if not (request.get("user") or request.get("group")):
        raise FetchError("zotero: give --user ID or --group ID (your user id is at zotero.org/settings/keys), "
                         "or --sqlite PATH for a local library")
    library = f"users/{request['user']}" if request.get("user") else f"groups/{request['group']}"
    path = f"{url}/{library}" + (f"/collections/{request['collection']}" if request.get("collection") else "")
    start = (position or {}).get("start", 0)
    while True:
        items, total = http.get(f"{path}/items", {"format": "json", "start": start, "limit": LIMIT}, _parse)
        records, skipped = [], []
        for item in items:
            data = (item or {}).get("data") if isinstance(item, dict) else None
            if not isinstance(data, dict):
                skipped.append("an item without data")
                continue
            if data.get("itemType") in _NOT_PAPERS:
                continue
            r = item_record(data, _names(data.get("creators")), str(item.get("key") or data.get("key")))
            (skipped if isinstance(r, str) else records).append(r)
        start += len(items)
        last = not items or (total is not None and start >= total)
        yield Page(records, None if last else {"start": start}, total, skipped)
        if last:
            return


def _copy(path: Path, into: Path) -> Path:
    """Copy the database (and its journal or WAL) so Zotero's file is never opened by us."""
    copy = into / "zotero.sqlite"
    for suffix in ("", "-journal", "-wal"):
        source = Path(str(path) + suffix)
        if source.exists():
            shutil.copyfile(source, Path(str(copy) + suffix))
    return copy


def sqlite_pages(request: dict, position: dict | None, seen: set[str]) -> Iterator[Page]:
    """The items of a local zotero.sqlite (read from a temporary copy), as one page."""
    path = Path(request["sqlite"]).expanduser()
    if not path.is_file():
        raise FetchError(f"{path}: no such file (Zotero keeps zotero.sqlite in its data directory, e.g. ~/Zotero)")
    with tempfile.TemporaryDirectory(prefix="semsearch-zotero-") as tmp:
        try:
            copy = _copy(path, Path(tmp))
        except OSError as exc:
            raise FetchError(f"{path}: cannot be copied ({exc.strerror or exc}); close Zotero and try again") from None
        try:
            con = sqlite3.connect(copy)
            try:
                records, skipped = _read_library(con, request.get("collection"))
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise FetchError(
                f"{path}: cannot be read as a Zotero database ({exc}); if Zotero was writing to it, close Zotero "
                "and try again"
            ) from None
    yield Page(records, None, len(records) + len(skipped), skipped)


def _read_library(con: sqlite3.Connection, collection: str | None) -> tuple[list[dict], list[str]]:
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    if not {"items", "itemData", "itemDataValues", "creators", "itemCreators"} <= tables:
        raise sqlite3.DatabaseError("no Zotero items tables")
    fields_table = "fieldsCombined" if "fieldsCombined" in tables else "fields"
    types_table = "itemTypesCombined" if "itemTypesCombined" in tables else "itemTypes"
    where, args = "", []
    if collection:
        row = con.execute("SELECT collectionID FROM collections WHERE key = ? OR collectionName = ?",
                          (collection, collection)).fetchone()
        if row is None:
            raise FetchError(f"no Zotero collection with key or name {collection!r} in this library")
        where, args = "AND i.itemID IN (SELECT itemID FROM collectionItems WHERE collectionID = ?)", [row[0]]
    deleted = "AND i.itemID NOT IN (SELECT itemID FROM deletedItems)" if "deletedItems" in tables else ""
    items = con.execute(
        f"SELECT i.itemID, i.key, t.typeName FROM items i JOIN {types_table} t ON t.itemTypeID = i.itemTypeID "
        f"WHERE 1 {deleted} {where} ORDER BY i.itemID", args).fetchall()
    authors_only = ("AND ic.creatorTypeID IN (SELECT creatorTypeID FROM creatorTypes WHERE creatorType IN "
                    "('author', 'contributor'))" if "creatorTypes" in tables else "")
    records, skipped = [], []
    for item_id, key, type_name in items:
        if type_name in _NOT_PAPERS:
            continue
        fields = dict(con.execute(
            f"SELECT f.fieldName, v.value FROM itemData d JOIN {fields_table} f ON f.fieldID = d.fieldID "
            "JOIN itemDataValues v ON v.valueID = d.valueID WHERE d.itemID = ?", (item_id,)).fetchall())
        creators = [
            " ".join(x for x in (first, last) if x) if not mode else last
            for first, last, mode in con.execute(
                "SELECT c.firstName, c.lastName, c.fieldMode FROM itemCreators ic JOIN creators c "
                f"ON c.creatorID = ic.creatorID WHERE ic.itemID = ? {authors_only} ORDER BY ic.orderIndex", (item_id,))
        ]
        r = item_record(fields, [c for c in creators if c], key)
        (skipped if isinstance(r, str) else records).append(r)
    return records, skipped
