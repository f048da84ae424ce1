"""fetch: each source against a local stand-in server answering in the service's documented
format (see tests/fetch_fixtures.py for where each format comes from); no network, no real waits."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from semsearch import Index
from semsearch.errors import FetchError
from semsearch.fetch import fetch
from tests.conftest import FakeEmbedder
from tests.fetch_fixtures import (
    ARXIV_ERROR,
    arxiv_entry,
    arxiv_feed,
    oai_arxiv_record,
    oai_error,
    oai_page,
    oai_raw_record,
    openalex_list,
    openalex_work,
    zotero_item,
    zotero_sqlite,
)
from tests.standin import Answer, StandIn, scripted


@pytest.fixture
def waits():
    """Injected sleep: records every wait instead of sleeping."""
    return []


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def arxiv_pages(n: int, size: int, broken_at: int | None = None, state: dict | None = None):
    """A route serving n entries in pages of `size`; `state["fail"]` makes start=broken_at a 503."""
    def route(req):
        start = int(req.query.get("start", 0))
        if broken_at is not None and start == broken_at and (state or {}).get("fail"):
            return Answer(503, "busy", {"Retry-After": "1"}, "text/plain")
        return Answer(body=arxiv_feed([arxiv_entry(i) for i in range(start, min(n, start + size))], n, start))
    return route


def test_arxiv_api_pages_and_cleans_records(tmp_path, monkeypatch, waits):
    out = tmp_path / "cs-ir.jsonl"
    with StandIn(arxiv_pages(5, 2)) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url + "/api/query")
        summary = fetch("arxiv", {"category": "cs.IR", "from": "2024-01-01", "until": "2024-01-31",
                                  "page_size": 2}, output=out, sleep=waits.append)
    assert [r.query["start"] for r in s.requests] == ["0", "2", "4"]
    assert s.requests[0].query["search_query"] == "cat:cs.IR AND submittedDate:[202401010000 TO 202401312359]"
    assert len(waits) == 2 and all(2.5 < w <= 3.0 for w in waits)  # arXiv's 3 s between calls
    records = lines(out)
    assert summary.records == 5 and summary.complete and len(records) == 5
    first = records[0]
    assert first["arxiv_id"] == "2401.10000v2"  # the version is kept
    assert first["title"] == "Paper 0: a Study of Dense Retrieval"  # one line, not hard-wrapped
    assert "\n" not in first["abstract"] and first["abstract"].startswith("We study topic number 0")
    assert first["authors"] == ["Ada Lovelace", "Alan Turing0"]
    assert first["categories"] == ["cs.IR", "cs.CL"]  # primary first
    assert first["doi"] == "10.1000/test.0" and first["journal_ref"] == "J. Test 0 (2024)"
    assert first["url"] == "http://arxiv.org/abs/2401.10000v2"  # the entry's link, not the feed's
    assert first["date"] == "2024-01-01"
    assert not out.with_name("cs-ir.jsonl.part").exists()


def test_arxiv_error_entry_is_one_line(tmp_path, monkeypatch):
    with StandIn(scripted(Answer(body=ARXIV_ERROR))) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        with pytest.raises(FetchError, match="the query was refused: incorrect id format for 1234.12345"):
            fetch("arxiv", {"query": "ti:x"}, output=tmp_path / "o.jsonl", sleep=lambda s: None)
    assert len(s.requests) == 1  # a refusal is not retried


def test_rate_exceeded_text_truncation_and_retry_after_are_retried(tmp_path, monkeypatch, waits):
    feed = arxiv_feed([arxiv_entry(0)], 1)
    script = scripted(
        Answer(body="Rate exceeded.", content_type="text/plain"),      # arXiv throttling, not a feed
        Answer(503, "", {"Retry-After": "7"}),                           # documented flow control
        Answer(body=feed, truncate=True),                                # the transfer is cut short
        Answer(body=feed[: len(feed) // 2]),                             # a 200 with half a feed
        Answer(body=feed),
    )
    with StandIn(script) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        summary = fetch("arxiv", {"query": "retrieval"}, output=tmp_path / "o.jsonl", sleep=waits.append,
                        backoff=0.5)
    assert summary.records == 1 and len(s.requests) == 5
    assert 7.0 in waits  # Retry-After honoured
    assert s.requests[0].query["search_query"] == "all:retrieval"


def test_malformed_record_is_skipped_and_reported(tmp_path, monkeypatch):
    feed = arxiv_feed([arxiv_entry(0), arxiv_entry(1, summary=False), arxiv_entry(2)], 3)
    with StandIn(scripted(Answer(body=feed))) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        summary = fetch("arxiv", {"query": "x"}, output=tmp_path / "o.jsonl", sleep=lambda s: None)
    assert summary.records == 2
    assert summary.skipped == ["entry http://arxiv.org/abs/2401.10001v2: no abstract"]


def test_unreachable_after_retries_keeps_partial_and_resumes(tmp_path, monkeypatch, waits):
    out = tmp_path / "o.jsonl"
    state = {"fail": True}
    with StandIn(arxiv_pages(5, 2, broken_at=2, state=state)) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        request = {"category": "cs.IR", "page_size": 2}
        with pytest.raises(FetchError) as info:
            fetch("arxiv", request, output=out, sleep=waits.append, retries=2)
        message = str(info.value)
        assert "\n" not in message and "failed after 3 tries (HTTP 503" in message
        assert "2 records fetched so far are kept in" in message and "run the same command again" in message
        assert not out.exists() and len(lines(out.with_name("o.jsonl.part"))) == 2
        # another request cannot take over the interrupted file
        with pytest.raises(FetchError, match="holds an interrupted `semsearch fetch arxiv --category cs.IR"):
            fetch("arxiv", {"category": "cs.LG"}, output=out, sleep=waits.append)
        state["fail"] = False
        s.requests.clear()
        summary = fetch("arxiv", request, output=out, sleep=waits.append)
    assert [r.query["start"] for r in s.requests] == ["2", "4"]  # continues, fetches nothing twice
    assert summary.records == 5 and [r["arxiv_id"] for r in lines(out)] == [f"2401.{10000 + i}v2" for i in range(5)]
    # a finished file fetched again: only new records are added
    with StandIn(arxiv_pages(6, 3)) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        again = fetch("arxiv", {"category": "cs.IR", "page_size": 3}, output=out, sleep=waits.append)
    assert again.records == 1 and again.kept == 5 and len(lines(out)) == 6


def test_arxiv_ids_in_batches(tmp_path, monkeypatch):
    def route(req):
        ids = req.query["id_list"].split(",")
        numbers = [int(i.split(".")[1][:5]) - 10000 for i in ids if not i.startswith("2401.10099")]
        return Answer(body=arxiv_feed([arxiv_entry(n) for n in numbers], len(ids)))
    with StandIn(route) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        summary = fetch("arxiv", {"ids": ["arXiv:2401.10003", "2401.10004v1", "2401.10099"]},
                        output=tmp_path / "o.jsonl", sleep=lambda s: None)
    assert s.requests[0].query["id_list"] == "2401.10003,2401.10004v1,2401.10099"
    assert summary.records == 2 and summary.skipped == ["2401.10099: not found on arXiv"]


@pytest.mark.parametrize("request_, message", [
    ({"category": "cs.XX"}, "unknown arXiv category 'cs.XX' (did you mean"),
    ({"category": "cs.IR", "from": "2024-05-01", "until": "2024-01-01"}, "--from 2024-05-01 is after --until"),
    ({"category": "cs.IR", "from": "May 2024"}, "--from 'May 2024' is not a date"),
    ({"ids": ["not-an-id"]}, "'not-an-id' is not an arXiv id"),
    ({}, "arxiv: give --query Q, --category CAT"),
])
def test_arxiv_bad_input(tmp_path, request_, message):
    with pytest.raises(FetchError, match=message.replace("(", r"\(").replace("[", r"\[")):
        fetch("arxiv", request_, output=tmp_path / "o.jsonl")


def test_unknown_source(tmp_path):
    with pytest.raises(FetchError, match="unknown source 'pubmed': choose arxiv, openalex, zotero"):
        fetch("pubmed", {}, output=tmp_path / "o.jsonl")


def test_oai_pmh_resumption_tokens_and_flow_control(tmp_path, monkeypatch, waits):
    busy = [True]

    def route(req):
        if "resumptionToken" not in req.query:
            return Answer(body=oai_page([oai_arxiv_record(0), oai_arxiv_record(1, "cs.LG")], "tok-1", 3))
        if busy.pop() if busy else False:
            return Answer(503, "", {"Retry-After": "30"})  # arXiv's OAI flow control
        return Answer(body=oai_page([oai_arxiv_record(2)], None, 3, cursor=2))
    with StandIn(route) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_OAI", s.url + "/oai")
        out = tmp_path / "h.jsonl"
        summary = fetch("arxiv", {"category": "cs.IR", "oai": True, "from": "2024-02-01", "until": "2024-02-29"},
                        output=out, sleep=waits.append)
    first = s.requests[0].query
    assert first == {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs:cs:IR",
                     "from": "2024-02-01", "until": "2024-02-29"}
    assert s.requests[1].query == s.requests[2].query == {"verb": "ListRecords", "resumptionToken": "tok-1"}
    assert 30.0 in waits
    records = lines(out)
    assert summary.records == 2 and [r["arxiv_id"] for r in records] == ["2402.20000", "2402.20002"]  # cs.LG-only left out
    assert records[0]["authors"] == ["Grace Hopper", "Donald E. Knuth Jr"]
    assert records[0]["title"] == "Harvested Paper 0: Retrieval at Scale" and records[0]["date"] == "2024-02-01"


def test_oai_arxivraw_keeps_version_and_decodes_authors(tmp_path, monkeypatch):
    with StandIn(scripted(Answer(body=oai_page([oai_raw_record(1)], None, 1)))) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_OAI", s.url)
        fetch("arxiv", {"category": "cs.IR", "oai": True, "metadata_prefix": "arXivRaw"},
              output=tmp_path / "r.jsonl", sleep=lambda s: None)
    (record,) = lines(tmp_path / "r.jsonl")
    assert record["arxiv_id"] == "2402.30001v3" and record["date"] == "2024-02-01"
    assert record["authors"] == ["Kurt Gödel", "Emmy Noether", "Paul Erdős"]


def test_oai_no_records_and_errors(tmp_path, monkeypatch):
    with StandIn(scripted(Answer(body=oai_error("noRecordsMatch", "nothing")),
                          Answer(body=oai_error("badArgument", "Illegal set")))) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_OAI", s.url)
        assert fetch("arxiv", {"category": "cs.IR", "oai": True}, output=tmp_path / "a.jsonl",
                     sleep=lambda s: None).records == 0
        with pytest.raises(FetchError, match="OAI-PMH error badArgument: Illegal set"):
            fetch("arxiv", {"category": "cs.IR", "oai": True}, output=tmp_path / "b.jsonl", sleep=lambda s: None)


def test_openalex_cursor_paging_and_abstracts(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENALEX_API_KEY", "secret-key")
    def route(req):
        if req.query["cursor"] == "*":
            return Answer(body=openalex_list([openalex_work(0), openalex_work(1, abstract=False)], 3, "c2"),
                          content_type="application/json")
        return Answer(body=openalex_list([openalex_work(2, arxiv=True)], 3, None), content_type="application/json")
    with StandIn(route) as s:
        monkeypatch.setenv("SEMSEARCH_OPENALEX_API", s.url)
        out = tmp_path / "oa.jsonl"
        summary = fetch("openalex", {"search": "dense retrieval", "filter": ["publication_year:2023"]},
                        output=out, sleep=lambda s: None)
    assert [r.query["cursor"] for r in s.requests] == ["*", "c2"]
    assert s.requests[0].query["api_key"] == "secret-key" and s.requests[0].query["per_page"] == "100"
    assert s.requests[0].query["filter"] == "publication_year:2023"
    records = lines(out)
    assert summary.records == 2 and summary.skipped == ["W1001 (OpenAlex Work 1): no abstract in OpenAlex"]
    assert records[0]["abstract"].startswith("We study openalex topic 0 for scientific retrieval")
    assert records[0]["id"] == "doi:10.1145/test.0" and records[0]["authors"] == ["Grace Hopper"]
    assert records[1]["arxiv_id"] == "2403.40002" and "id" not in records[1]


def test_openalex_budget_spent_is_one_clear_line(tmp_path, monkeypatch):
    body = json.dumps({"error": "Rate limit exceeded", "message": "You have exceeded your daily budget of $1."})
    with StandIn(scripted(Answer(429, body, {"Retry-After": "3600"}, "application/json"))) as s:
        monkeypatch.setenv("SEMSEARCH_OPENALEX_API", s.url)
        monkeypatch.setenv("OPENALEX_API_KEY", "secret-key")
        with pytest.raises(FetchError) as info:
            fetch("openalex", {"search": "x"}, output=tmp_path / "o.jsonl", sleep=lambda s: None)
    assert "OpenAlex: the daily budget is spent (You have exceeded your daily budget of $1.)" in str(info.value)
    assert "secret-key" not in str(info.value) and len(s.requests) == 1


def test_openalex_dois_are_free_singletons(tmp_path, monkeypatch):
    def route(req):
        if req.path.endswith("10.1145/test.0"):
            return Answer(body=json.dumps(openalex_work(0)), content_type="application/json")
        return Answer(404, json.dumps({"error": "Not found"}), content_type="application/json")
    with StandIn(route) as s:
        monkeypatch.setenv("SEMSEARCH_OPENALEX_API", s.url)
        summary = fetch("openalex", {"dois": ["https://doi.org/10.1145/TEST.0", "10.1145/missing"]},
                        output=tmp_path / "o.jsonl", sleep=lambda s: None)
    assert [r.path for r in s.requests] == ["/works/doi:10.1145/test.0", "/works/doi:10.1145/missing"]
    assert summary.records == 1 and summary.skipped == ["10.1145/missing: not in OpenAlex"]


def test_zotero_web_paging_backoff_and_key(tmp_path, monkeypatch, waits):
    items = [zotero_item(0), zotero_item(1, kind="attachment"), zotero_item(2, kind="preprint"),
             zotero_item(3, abstract=False)]
    def route(req):
        start = int(req.query["start"])
        headers = {"Total-Results": "4", **({"Backoff": "5"} if start == 0 else {})}
        return Answer(body=json.dumps(items[start : start + 2]), headers=headers, content_type="application/json")
    monkeypatch.setattr("semsearch.fetch.zotero.LIMIT", 2)
    with StandIn(route) as s:
        monkeypatch.setenv("SEMSEARCH_ZOTERO_API", s.url)
        monkeypatch.setenv("ZOTERO_API_KEY", "zkey-secret")
        out = tmp_path / "z.jsonl"
        summary = fetch("zotero", {"user": "475425", "collection": "COLL1"}, output=out, sleep=waits.append)
    assert [r.path for r in s.requests] == ["/users/475425/collections/COLL1/items"] * 2
    assert [r.query["start"] for r in s.requests] == ["0", "2"]
    assert s.requests[0].headers["Zotero-API-Key"] == "zkey-secret"
    assert max(waits) > 4.9  # Backoff: 5 honoured before the next call
    records = lines(out)
    assert [r.get("arxiv_id") or r["id"] for r in records] == ["doi:10.1000/zot.0", "2205.50002"]
    assert records[0]["authors"] == ["Emmy Noether", "The Consortium"] and records[0]["date"] == "2022-03-01"
    assert summary.skipped == ["KEY00003 (Zotero Paper 3): no abstract"]
    assert "zkey-secret" not in out.read_text()


def test_zotero_refused_key(tmp_path, monkeypatch):
    with StandIn(scripted(Answer(403, "Forbidden", content_type="text/plain"))) as s:
        monkeypatch.setenv("SEMSEARCH_ZOTERO_API", s.url)
        monkeypatch.setenv("ZOTERO_API_KEY", "zkey-secret")
        with pytest.raises(FetchError) as info:
            fetch("zotero", {"user": "1"}, output=tmp_path / "z.jsonl", sleep=lambda s: None)
    assert str(info.value).startswith("Zotero: the API key was refused (HTTP 403): check $ZOTERO_API_KEY")
    assert "zkey-secret" not in str(info.value)


def test_zotero_sqlite_read_from_a_copy_while_locked(tmp_path):
    db = tmp_path / "zotero.sqlite"
    items = [zotero_item(0)["data"], zotero_item(1, kind="note")["data"], zotero_item(2, kind="preprint")["data"],
             {**zotero_item(4)["data"], "collections": []}, {**zotero_item(5)["data"], "deleted": True}]
    zotero_sqlite(db, items)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    zotero_app = sqlite3.connect(db)  # a running Zotero holds its database exclusively
    zotero_app.execute("PRAGMA locking_mode = EXCLUSIVE")
    zotero_app.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0).execute("SELECT 1 FROM items").fetchall()
        out = tmp_path / "z.jsonl"
        summary = fetch("zotero", {"sqlite": str(db), "collection": "Reading list"}, output=out)
    finally:
        zotero_app.rollback()
        zotero_app.close()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # never written
    records = lines(out)
    assert summary.records == 2 and [r["title"] for r in records] == ["Zotero Paper 0", "Zotero Paper 2"]
    assert records[0]["date"] == "2022-03-01" and records[0]["authors"] == ["Emmy Noether", "The Consortium"]
    assert records[1]["arxiv_id"] == "2205.50002"


def test_zotero_sqlite_not_a_database(tmp_path):
    bad = tmp_path / "zotero.sqlite"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(FetchError, match="cannot be read as a Zotero database"):
        fetch("zotero", {"sqlite": str(bad)}, output=tmp_path / "z.jsonl")


def test_fetch_into_an_index_builds_then_adds(tmp_path, monkeypatch):
    index = tmp_path / "idx"
    with StandIn(arxiv_pages(3, 3)) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        first = fetch("arxiv", {"category": "cs.IR"}, index=index, embedder=FakeEmbedder(), sleep=lambda s: None)
    with StandIn(arxiv_pages(5, 5)) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        second = fetch("arxiv", {"category": "cs.IR"}, index=index, embedder=FakeEmbedder(), sleep=lambda s: None)
    assert first.index["papers"] == 3 and second.index["papers"] == 5
    with Index.open(index, embedder=FakeEmbedder()) as idx:
        papers = list(idx.papers())
    assert sorted(p.arxiv_id for p in papers) == [f"2401.{10000 + i}" for i in range(5)]
    assert papers[0].title == "Paper 0: a Study of Dense Retrieval" and papers[0].categories == ("cs.IR", "cs.CL")
    assert not list(tmp_path.glob(".idx.fetch-*"))  # the staging file is gone


def test_cli_fetch_and_bad_input(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from semsearch.cli import app

    monkeypatch.setenv("SEMSEARCH_FETCH_TIME_SCALE", "0")
    runner = CliRunner()
    bad = runner.invoke(app, ["fetch", "arxiv", "--category", "cs.IR", "--from", "2024-05-01", "--until",
                              "2024-01-01", "-o", str(tmp_path / "x.jsonl")])
    assert bad.exit_code == 1 and bad.output.strip().splitlines() == [
        "error: --from 2024-05-01 is after --until 2024-01-01: swap them"]
    with StandIn(arxiv_pages(3, 2)) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url)
        ok = runner.invoke(app, ["fetch", "arxiv", "--category", "cs.IR", "--max", "2", "-o",
                                 str(tmp_path / "x.jsonl"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["records"] == 2 and len(lines(tmp_path / "x.jsonl")) == 2
