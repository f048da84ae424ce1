"""enrich: missing metadata filled from arXiv / OpenAlex stand-ins, never over the user's fields,
through the index's writer lock; `papers` says where each field came from."""

from __future__ import annotations

import json

import pytest

from semsearch import Index, build
from semsearch.enrich import enrich
from semsearch.provenance import field_sources
from tests.conftest import CORPUS, FakeEmbedder
from tests.fetch_fixtures import arxiv_entry, arxiv_feed, openalex_work
from tests.standin import Answer, StandIn

TEXTS = [
    "Sparse lexical retrieval with learned term weights narrows the gap to dense encoders on long documents.",
    "Graph neural networks propagate user preferences along purchase edges to recommend rarely bought items.",
    "Quantising transformer weights to four bits keeps perplexity close to full precision with rotations.",
    "Sharding embedding tables across accelerators balances memory and communication in recommendation training.",
    "Protein structure prediction benefits from multiple sequence alignments combined with attention layers.",
]


def service(req):
    """arXiv API (/api/query, id_list) and OpenAlex (/works/doi:...) on one stand-in."""
    if req.path == "/api/query":
        ids = [i for i in req.query["id_list"].split(",") if not i.startswith("9999")]
        return Answer(body=arxiv_feed([arxiv_entry(k, aid=i, version=1) for k, i in enumerate(ids)], len(ids)))
    if req.path == "/works/doi:10.1145/test.0":
        return Answer(body=json.dumps(openalex_work(0)), content_type="application/json")
    return Answer(404, json.dumps({"error": "Not found"}), content_type="application/json")


@pytest.fixture
def services(monkeypatch):
    with StandIn(service) as s:
        monkeypatch.setenv("SEMSEARCH_ARXIV_API", s.url + "/api/query")
        monkeypatch.setenv("SEMSEARCH_OPENALEX_API", s.url)
        yield s


def test_enrich_fills_only_missing_fields(tmp_path, services):
    rows = [
        {"arxiv_id": "2401.00001", "abstract": TEXTS[0] * 2},
        {"arxiv_id": "2401.00002", "title": "My Own Title", "abstract": TEXTS[1] * 2},
        {"id": "doi:10.1145/test.0", "abstract": TEXTS[2] * 2, "date": "2020"},
        {"arxiv_id": "9999.00001", "abstract": TEXTS[3] * 2},
        {"abstract": TEXTS[4] * 2},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    build([src], tmp_path / "idx", embedder=FakeEmbedder())
    summary = enrich(tmp_path / "idx", embedder=FakeEmbedder(), sleep=lambda s: None)
    assert summary.candidates == 4 and summary.not_found == ["9999.00001"]
    with Index.open(tmp_path / "idx", embedder=FakeEmbedder()) as idx:
        papers = {p.id: p for p in idx.papers()}
        hits = idx.search("Dense Retrieval", k=1, mode="lexical")
    one, two, three = papers["2401.00001"], papers["2401.00002"], papers["doi:10.1145/test.0"]
    assert one.title == "Paper 0: a Study of Dense Retrieval" and one.authors == ("Ada Lovelace", "Alan Turing0")
    assert one.categories == ("cs.IR", "cs.CL") and one.date == "2024-01"  # the month ingest read from the id stays
    assert two.title == "My Own Title"  # the user's title stays
    assert three.title == "OpenAlex Work 0" and three.date == "2020"  # the user's date stays
    assert field_sources(one) == {**dict.fromkeys(("title", "authors", "categories"), "arxiv:2401.00001v1"),
                                  "date": "input"}
    assert field_sources(two)["title"] == "input" and field_sources(three) == {
        "title": "openalex:10.1145/test.0", "authors": "openalex:10.1145/test.0", "date": "input",
        "categories": None}
    assert hits[0].id in ("2401.00001", "2401.00002")  # new titles are searchable (FTS and vectors updated)
    again = enrich(tmp_path / "idx", embedder=FakeEmbedder(), sleep=lambda s: None)
    assert again.filled == [] or all(f["id"] == "doi:10.1145/test.0" for f in again.filled)


def test_enrich_seed_corpus_titles_seven_of_eight(tmp_path, services):
    build([CORPUS], tmp_path / "seed", embedder=FakeEmbedder())
    summary = enrich(tmp_path / "seed", embedder=FakeEmbedder(), sleep=lambda s: None)
    with Index.open(tmp_path / "seed", embedder=FakeEmbedder()) as idx:
        papers = list(idx.papers())
    untitled = [p for p in papers if not p.title]
    assert len(untitled) == 1 and untitled[0].arxiv_id is None  # the one without an arXiv id
    titled = [f for f in summary.filled if "title" in f["fields"]]
    assert len(titled) == 7 and len(papers) == 25


def test_cli_papers_shows_filled_fields_and_unreachable_service_is_one_line(tmp_path, services, monkeypatch):
    from typer.testing import CliRunner

    from semsearch import cli

    monkeypatch.setattr("semsearch.embed.query_embedder_for", lambda model, fingerprint: FakeEmbedder())
    monkeypatch.setenv("SEMSEARCH_FETCH_TIME_SCALE", "0")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"arxiv_id": "2401.00001", "abstract": TEXTS[0] * 2}) + "\n")
    build([src], tmp_path / "idx", embedder=FakeEmbedder())
    runner = CliRunner()
    monkeypatch.setenv("SEMSEARCH_ARXIV_API", "http://127.0.0.1:9/api/query")  # nothing listens there
    down = runner.invoke(cli.app, ["enrich", "--index", str(tmp_path / "idx")])
    assert down.exit_code == 1 and len(down.stderr.strip().splitlines()) == 1
    assert "arXiv: http://127.0.0.1:9/api/query failed after 6 tries (network error: ConnectError" in down.stderr
    monkeypatch.setenv("SEMSEARCH_ARXIV_API", services.url + "/api/query")
    ok = runner.invoke(cli.app, ["enrich", "--index", str(tmp_path / "idx"), "--json"])
    assert ok.exit_code == 0, ok.output
    rows = json.loads(runner.invoke(cli.app, ["papers", "--index", str(tmp_path / "idx"), "--json"]).stdout)
    assert rows[0]["field_sources"]["title"] == "arxiv:2401.00001v1"
    assert rows[0]["url"] == "https://arxiv.org/abs/2401.00001"
