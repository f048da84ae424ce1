"""export: BibTeX / CSV / JSONL / RIS of an index's papers; round trips through `build`; url and
--author in results."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from semsearch import Filters, Index, build
from semsearch.errors import ExportError
from semsearch.export import bibtex_keys, render, select, to_bibtex, to_csv, to_ris
from semsearch.records import Paper
from tests.conftest import FakeEmbedder

TRICKY = Paper(
    id="doi:10.1000/x_1", title="50% of C++ & R_2 {braces} $O(n)$ ~tilde^ #1 back\\slash",
    abstract="An abstract with 100% of the special characters & symbols: x_i, {a}, $y$, #tag, ~, -- and --- "
             "to check that escaping survives a round trip through BibTeX parsing as semsearch reads it.",
    versions=(), authors=("Paul Erdős", "Émilie du Châtelet"), date="2021-06-30",
)


def test_bibtex_round_trip_of_the_seed_corpus(seed_index, tmp_path):
    papers = list(seed_index.papers())
    bib = tmp_path / "seed.bib"
    bib.write_text(to_bibtex(papers), encoding="utf-8")
    back_path = tmp_path / "back"
    summary = build([bib], back_path, embedder=FakeEmbedder())
    with Index.open(back_path, embedder=FakeEmbedder()) as back:
        again = {p.arxiv_id or p.abstract: p for p in back.papers()}
    assert summary.papers == len(papers) == 25 and not summary.skipped
    for p in papers:
        q = again[p.arxiv_id or p.abstract]
        assert (q.title, q.abstract, q.authors, q.arxiv_id) == (p.title, p.abstract, p.authors, p.arxiv_id)
        assert (q.year, q.date and q.date[:7]) == (p.year, p.date and p.date[:7])  # BibTeX keeps year and month
    assert "title = " not in to_bibtex([p for p in papers if not p.title][:1])  # never an invented title


def test_bibtex_escapes_and_reads_back(tmp_path):
    text = to_bibtex([TRICKY])
    assert r"50\% of C++ \& R\_2 \{braces\} $O(n)$ \textasciitilde{}tilde\textasciicircum{} \#1" in text
    assert "@article{erdos202150," in text and "doi = {10.1000/x\\_1}" in text
    path = tmp_path / "t.bib"
    path.write_text(text, encoding="utf-8")
    build([path], tmp_path / "i", embedder=FakeEmbedder())
    with Index.open(tmp_path / "i", embedder=FakeEmbedder()) as idx:
        (back,) = idx.papers()
    assert (back.abstract, back.authors) == (TRICKY.abstract, TRICKY.authors)
    # semsearch's reader (pylatexenc) decodes \textasciicircum to U+02C6; every other character returns
    assert back.title == TRICKY.title.replace("^", "\u02c6")
    assert back.id == "doi:10.1000/x_1"


def test_bibtex_arxiv_fields_and_stable_keys(seed_index):
    llama = next(p for p in seed_index.papers() if p.arxiv_id == "2407.21783")
    text = to_bibtex([llama])
    assert "@misc{grattafiori2024llama," in text
    assert "eprint = {2407.21783}" in text and "archivePrefix = {arXiv}" in text and "primaryClass = {AI}" in text
    assert "url = {https://arxiv.org/abs/2407.21783}" in text
    twin = Paper(id="zzz", title=llama.title, abstract="x", versions=(), authors=llama.authors, date=llama.date)
    assert bibtex_keys([twin, llama]) == bibtex_keys([llama, twin]) == {
        "2407.21783": "grattafiori2024llama", "zzz": "grattafiori2024llamab"}


def test_csv_has_header_and_quotes_and_builds_back(seed_index, tmp_path):
    papers = list(seed_index.papers())[:6] + [TRICKY]
    text = to_csv(papers)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["id", "title", "arxiv_id", "doi", "authors", "year", "date", "categories", "url",
                             "abstract"]
    assert text.startswith('"id","title"') and len(rows) == 7
    assert rows[-1]["authors"] == "Paul Erdős; Émilie du Châtelet" and rows[-1]["url"] == "https://doi.org/10.1000/x_1"
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    build([path], tmp_path / "i", embedder=FakeEmbedder())
    with Index.open(tmp_path / "i", embedder=FakeEmbedder()) as idx:
        back = {p.id: p for p in idx.papers()}
    for p in papers:
        assert (back[p.id].title, back[p.id].abstract, back[p.id].authors) == (p.title, p.abstract, p.authors)


def test_ris_and_jsonl(tmp_path):
    ris = to_ris([TRICKY])
    assert ris.startswith("TY  - JOUR\r\n") and "AU  - Paul Erdős\r\n" in ris and ris.endswith("ER  -\r\n")
    assert "DO  - 10.1000/x_1\r\n" in ris and "PY  - 2021\r\n" in ris
    record = json.loads(render([TRICKY], "jsonl"))
    assert record["doi"] == "10.1000/x_1" and record["authors"] == list(TRICKY.authors)


def test_zero_papers_and_unknown_format():
    with pytest.raises(ExportError, match="no papers to export"):
        render([], "bibtex")
    with pytest.raises(ExportError, match="unknown format 'word': choose bibtex, csv, jsonl, ris"):
        render([TRICKY], "word")


def test_results_carry_url_and_authors_and_filter_by_author(seed_index):
    hits = seed_index.search("recommendation model training", k=25).as_dicts()
    by_id = {h["id"]: h for h in hits}
    assert by_id["2407.21783"]["url"] == "https://arxiv.org/abs/2407.21783"
    assert "authors" in hits[0]
    only = seed_index.search("recommendation", k=5, filters=Filters(authors=("grattafiori",)))
    assert [h.id for h in only] == ["2407.21783"]
    assert select(seed_index, ["arXiv:2407.21783v2"])[0].id == "2407.21783"


def test_cli_export_and_search_format(seed_index_path, tmp_path, monkeypatch):
    from semsearch import cli

    monkeypatch.setattr("semsearch.embed.query_embedder_for", lambda model, fingerprint: FakeEmbedder())
    runner = CliRunner()
    out = tmp_path / "refs.bib"
    done = runner.invoke(cli.app, ["export", "--query", "sharding", "-k", "3", "--format", "bibtex",
                                   "--output", str(out), "--index", str(seed_index_path)])
    assert done.exit_code == 0, done.output
    assert out.read_text(encoding="utf-8").count("@") == 3 and not list(tmp_path.glob(".refs.bib.*"))
    found = runner.invoke(cli.app, ["search", "sharding", "-k", "2", "--format", "csv", "--index",
                                    str(seed_index_path)])
    assert found.exit_code == 0 and found.stdout.startswith('"id","title"') and found.stdout.count("\n") == 3
    none = runner.invoke(cli.app, ["search", "sharding", "--author", "Nobody At All", "--index",
                                   str(seed_index_path)])
    assert none.exit_code == 1 and none.stderr.strip() == "error: no paper matches the filters (author Nobody At All)"
    missing = runner.invoke(cli.app, ["export", "9999.99999", "--index", str(seed_index_path)])
    assert missing.exit_code == 1 and "no paper with id '9999.99999'" in missing.stderr
