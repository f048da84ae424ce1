"""Service answers in each service's documented format, built from a few fields so tests can page.

Provenance of each format:
* arXiv API Atom feed: the sample response in the arXiv API User's Manual,
  https://info.arxiv.org/help/api/user-manual.html#_output_format (feed `<link>`, `<title>`,
  `<id>`, `<updated>`, `opensearch:totalResults/startIndex/itemsPerPage`, then entries with
  `id`, `updated`, `published`, hard-wrapped `title` and `summary`, `author/name`,
  `arxiv:doi`, `arxiv:journal_ref`, `arxiv:comment`, `link rel=alternate|related`,
  `arxiv:primary_category`, `category`); its error answer, section 3.4 "Errors" (one entry whose
  id is http://arxiv.org/api/errors#..., title `Error`, the reason in `summary`).
* arXiv OAI-PMH: OAI-PMH 2.0, http://www.openarchives.org/OAI/openarchivesprotocol.html
  (ListRecords, header/metadata, resumptionToken with completeListSize and cursor, error codes),
  with the `arXiv` and `arXivRaw` metadata formats as served by https://oaipmh.arxiv.org/oai
  (schemas http://arxiv.org/OAI/arXiv.xsd and http://arxiv.org/OAI/arXivRaw.xsd).
* OpenAlex: the Work object, https://docs.openalex.org/api-entities/works/work-object
  (`id`, `doi`, `title`, `display_name`, `publication_year`, `publication_date`, `authorships[].author
  .display_name`, `abstract_inverted_index`, `locations[].landing_page_url`, `primary_location`), list
  answers `{"meta": {count, per_page, next_cursor}, "results": [...]}` from
  https://docs.openalex.org/how-to-use-the-api/get-lists-of-entities/paging.
* Zotero web API v3: https://www.zotero.org/support/dev/web_api/v3/basics (an array of
  `{key, version, library, links, meta, data}`; `Total-Results` header) with `data` fields from
  https://www.zotero.org/support/dev/web_api/v3/types_and_fields.
* zotero.sqlite: the tables described at
  https://www.zotero.org/support/dev/client_coding/direct_sqlite_database_access, reduced to the
  columns read.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from xml.sax.saxutils import escape

ABSTRACT = ("We study {topic} for scientific retrieval and show that a simple method improves ranking "
            "quality on several benchmarks while remaining efficient to train and to deploy at scale.")


def arxiv_entry(n: int, *, summary: bool = True, version: int = 2, aid: str | None = None) -> str:
    aid = aid or f"2401.{10000 + n}"
    abstract = ABSTRACT.format(topic=f"topic number {n}")
    half = len(abstract) // 2
    wrapped = abstract[:half] + "\n  " + abstract[half:]  # hard-wrapped, as the API sends it
    summary_xml = f"<summary>  {escape(wrapped)}\n</summary>" if summary else ""
    return f"""  <entry>
    <id>http://arxiv.org/abs/{aid}v{version}</id>
    <updated>2024-02-0{1 + n % 8}T10:00:00Z</updated>
    <published>2024-01-0{1 + n % 8}T09:00:00Z</published>
    <title>Paper {n}: a Study of
  Dense Retrieval</title>
    {summary_xml}
    <author>
      <name>Ada Lovelace</name>
    </author>
    <author>
      <name>Alan Turing{n}</name>
    </author>
    <arxiv:doi xmlns:arxiv="http://arxiv.org/schemas/atom">10.1000/test.{n}</arxiv:doi>
    <link title="doi" href="http://dx.doi.org/10.1000/test.{n}" rel="related"/>
    <arxiv:comment xmlns:arxiv="http://arxiv.org/schemas/atom">12 pages</arxiv:comment>
    <arxiv:journal_ref xmlns:arxiv="http://arxiv.org/schemas/atom">J. Test {n} (2024)</arxiv:journal_ref>
    <link href="http://arxiv.org/abs/{aid}v{version}" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/{aid}v{version}" rel="related" type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.IR" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.IR" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
"""


def arxiv_feed(entries: list[str], total: int, start: int = 0) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?search_query%3Dcat%3Acs.IR" rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: search_query=cat:cs.IR</title>
  <id>http://arxiv.org/api/cHxbiOdZaP56ODnBPIenZhzg5f8</id>
  <updated>2024-02-01T00:00:00-05:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{total}</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{start}</opensearch:startIndex>
  <opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{len(entries)}</opensearch:itemsPerPage>
{''.join(entries)}</feed>
"""


ARXIV_ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?id_list%3D1234.12345" rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: id_list=1234.12345</title>
  <id>http://arxiv.org/api/kvuntZ8c9a4Eq5CF7KY03nMug+Q</id>
  <updated>2007-10-12T00:00:00-04:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">1</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">0</opensearch:startIndex>
  <opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">1</opensearch:itemsPerPage>
  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.12345</id>
    <title>Error</title>
    <summary>incorrect id format for 1234.12345</summary>
    <updated>2007-10-12T00:00:00-04:00</updated>
    <link href="http://arxiv.org/api/errors#incorrect_id_format_for_1234.12345" rel="alternate" type="text/html"/>
    <author>
      <name>arXiv api core</name>
    </author>
  </entry>
</feed>
"""


def oai_arxiv_record(n: int, categories: str = "cs.IR cs.LG") -> str:
    return f"""<record>
<header><identifier>oai:arXiv.org:2402.{20000 + n}</identifier><datestamp>2024-02-10</datestamp>
<setSpec>cs</setSpec></header>
<metadata>
<arXiv xmlns="http://arxiv.org/OAI/arXiv/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ http://arxiv.org/OAI/arXiv.xsd">
<id>2402.{20000 + n}</id><created>2024-02-0{1 + n % 8}</created><updated>2024-02-09</updated>
<authors><author><keyname>Hopper</keyname><forenames>Grace</forenames></author>
<author><keyname>Knuth</keyname><forenames>Donald E.</forenames><suffix>Jr</suffix></author></authors>
<title>Harvested Paper {n}:
 Retrieval at Scale</title>
<categories>{categories}</categories>
<comments>8 pages</comments>
<license>http://creativecommons.org/licenses/by/4.0/</license>
<abstract>  {ABSTRACT.format(topic=f"harvested topic {n}")}
</abstract>
</arXiv>
</metadata>
</record>
"""


def oai_raw_record(n: int) -> str:
    return f"""<record>
<header><identifier>oai:arXiv.org:2402.{30000 + n}</identifier><datestamp>2024-02-10</datestamp></header>
<metadata>
<arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/">
<id>2402.{30000 + n}</id><submitter>Kurt G\\"odel</submitter>
<version version="v1"><date>Thu, 1 Feb 2024 10:00:00 GMT</date><size>100kb</size><source_type>D</source_type></version>
<version version="v3"><date>Fri, 9 Feb 2024 10:00:00 GMT</date><size>120kb</size><source_type>D</source_type></version>
<title>Raw Paper {n}</title>
<authors>Kurt G\\"odel, Emmy Noether and Paul Erd\\H{{o}}s</authors>
<categories>cs.IR</categories>
<doi>10.1000/raw.{n}</doi>
<abstract>{ABSTRACT.format(topic=f"raw topic {n}")}</abstract>
</arXivRaw>
</metadata>
</record>
"""


def oai_page(records: list[str], token: str | None, size: int, cursor: int = 0) -> str:
    resumption = (f'<resumptionToken cursor="{cursor}" completeListSize="{size}">{token}</resumptionToken>'
                  if token is not None else f'<resumptionToken cursor="{cursor}" completeListSize="{size}"/>')
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">
<responseDate>2024-02-10T12:00:00Z</responseDate>
<request verb="ListRecords" metadataPrefix="arXiv" set="cs:cs:IR">http://oaipmh.arxiv.org/oai</request>
<ListRecords>
{''.join(records)}{resumption}
</ListRecords>
</OAI-PMH>
"""


def oai_error(code: str, text: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">
<responseDate>2024-02-10T12:00:00Z</responseDate>
<request verb="ListRecords">http://oaipmh.arxiv.org/oai</request>
<error code="{code}">{text}</error>
</OAI-PMH>
"""


def inverted(text: str) -> dict:
    index: dict[str, list[int]] = {}
    for i, w in enumerate(text.split()):
        index.setdefault(w, []).append(i)
    return index


def openalex_work(n: int, *, abstract: bool = True, arxiv: bool = False) -> dict:
    doi = f"10.48550/arxiv.2403.{40000 + n}" if arxiv else f"10.1145/test.{n}"
    text = ABSTRACT.format(topic=f"openalex topic {n}")
    return {
        "id": f"https://openalex.org/W{1000 + n}",
        "doi": f"https://doi.org/{doi}",
        "title": f"OpenAlex Work {n}",
        "display_name": f"OpenAlex Work {n}",
        "publication_year": 2023,
        "publication_date": f"2023-05-0{1 + n % 8}",
        "type": "article",
        "authorships": [{"author_position": "first", "author": {"id": "https://openalex.org/A1",
                                                                  "display_name": "Grace Hopper"}}],
        "primary_location": {"landing_page_url": f"https://doi.org/{doi}", "source": {"display_name": "SIGIR"}},
        "locations": [{"landing_page_url": f"https://doi.org/{doi}"}],
        "topics": [{"display_name": "Information Retrieval"}],
        "abstract_inverted_index": inverted(text) if abstract else None,
    }


def openalex_list(works: list[dict], count: int, next_cursor: str | None) -> str:
    return json.dumps({"meta": {"count": count, "db_response_time_ms": 12, "page": None, "per_page": 100,
                                "next_cursor": next_cursor, "groups_count": None},
                       "results": works, "group_by": []})


def zotero_item(n: int, *, kind: str = "journalArticle", abstract: bool = True) -> dict:
    data = {"key": f"KEY{n:05d}", "version": 10 + n, "itemType": kind, "title": f"Zotero Paper {n}",
            "creators": [{"creatorType": "author", "firstName": "Emmy", "lastName": "Noether"},
                         {"creatorType": "editor", "firstName": "Ed", "lastName": "Itor"},
                         {"creatorType": "author", "name": "The Consortium"}],
            "abstractNote": ABSTRACT.format(topic=f"zotero topic {n}") if abstract else "",
            "publicationTitle": "Journal of Tests", "date": f"2022-03-0{1 + n % 8}", "DOI": f"10.1000/zot.{n}",
            "url": "", "extra": "", "tags": [], "collections": ["COLL1"], "relations": {}}
    if kind == "preprint":
        data.update({"archiveID": f"arXiv:2205.{50000 + n}", "DOI": "", "repository": "arXiv"})
    return {"key": data["key"], "version": data["version"],
            "library": {"type": "user", "id": 475425, "name": "tester"},
            "links": {"self": {"href": f"https://api.zotero.org/users/475425/items/{data['key']}"}},
            "meta": {"creatorSummary": "Noether", "numChildren": 0}, "data": data}


def zotero_sqlite(path: Path, items: list[dict]) -> None:
    """A minimal zotero.sqlite holding `items` (web-API `data` dicts) in the client's tables."""
    con = sqlite3.connect(path)
    con.executescript("""
    CREATE TABLE itemTypes (itemTypeID INTEGER PRIMARY KEY, typeName TEXT);
    CREATE TABLE fields (fieldID INTEGER PRIMARY KEY, fieldName TEXT, fieldFormatID INT);
    CREATE TABLE items (itemID INTEGER PRIMARY KEY, itemTypeID INT, dateAdded TEXT, libraryID INT, key TEXT);
    CREATE TABLE itemDataValues (valueID INTEGER PRIMARY KEY, value UNIQUE);
    CREATE TABLE itemData (itemID INT, fieldID INT, valueID INT, PRIMARY KEY (itemID, fieldID));
    CREATE TABLE creators (creatorID INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT, fieldMode INT);
    CREATE TABLE itemCreators (itemID INT, creatorID INT, creatorTypeID INT, orderIndex INT);
    CREATE TABLE collections (collectionID INTEGER PRIMARY KEY, collectionName TEXT, key TEXT);
    CREATE TABLE collectionItems (collectionID INT, itemID INT, orderIndex INT);
    CREATE TABLE creatorTypes (creatorTypeID INTEGER PRIMARY KEY, creatorType TEXT);
    INSERT INTO creatorTypes VALUES (1, 'author'), (2, 'editor');
    CREATE TABLE deletedItems (itemID INTEGER PRIMARY KEY, dateDeleted TEXT);
    INSERT INTO collections VALUES (1, 'Reading list', 'COLL1');
    """)
    types, fields = {}, {}
    for i, item in enumerate(items, 1):
        kind = item["itemType"]
        types.setdefault(kind, len(types) + 1)
        con.execute("INSERT OR IGNORE INTO itemTypes VALUES (?, ?)", (types[kind], kind))
        con.execute("INSERT INTO items VALUES (?, ?, '2024-01-01', 1, ?)", (i, types[kind], item["key"]))
        for name in ("title", "abstractNote", "date", "DOI", "url", "publicationTitle", "archiveID"):
            if item.get(name):
                fields.setdefault(name, len(fields) + 1)
                con.execute("INSERT OR IGNORE INTO fields VALUES (?, ?, NULL)", (fields[name], name))
                value = f"{item[name]} {item[name]}" if name == "date" else item[name]  # Zotero's multipart date
                con.execute("INSERT OR IGNORE INTO itemDataValues (value) VALUES (?)", (value,))
                (vid,) = con.execute("SELECT valueID FROM itemDataValues WHERE value = ?", (value,)).fetchone()
                con.execute("INSERT INTO itemData VALUES (?, ?, ?)", (i, fields[name], vid))
        for order, c in enumerate(item.get("creators", [])):
            cur = con.execute("INSERT INTO creators (firstName, lastName, fieldMode) VALUES (?, ?, ?)",
                              (c.get("firstName", ""), c.get("lastName") or c.get("name"), 1 if "name" in c else 0))
            kind = 2 if c.get("creatorType") == "editor" else 1
            con.execute("INSERT INTO itemCreators VALUES (?, ?, ?, ?)", (i, cur.lastrowid, kind, order))
        if item.get("collections"):
            con.execute("INSERT INTO collectionItems VALUES (1, ?, ?)", (i, i))
        if item.get("deleted"):
            con.execute("INSERT INTO deletedItems VALUES (?, '2024-01-02')", (i,))
    con.commit()
    con.close()
