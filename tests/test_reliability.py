"""Odd but valid input: huge abstracts, duplicate ids, empty fields, non-UTF-8 bytes."""

from __future__ import annotations

import json

import pytest

from semsearch import CorpusError, Index, build

from .conftest import FakeEmbedder
from .test_ingest import ABSTRACT, OTHER


def test_a_one_megabyte_abstract_builds_and_is_found(tmp_path):
    big = (ABSTRACT + " ") * (1_000_000 // len(ABSTRACT))
    (tmp_path / "big.jsonl").write_text(json.dumps({"title": "Huge", "abstract": big}) + "\n"
                                        + json.dumps({"title": "Other", "abstract": OTHER}) + "\n")
    build([tmp_path / "big.jsonl"], tmp_path / "idx", embedder=FakeEmbedder(), cache=False)
    with Index.open(tmp_path / "idx", embedder=FakeEmbedder()) as idx:
        assert len(idx) == 2
        assert len(idx.papers()[0].abstract) > 900_000
        assert idx.search("partitioning embedding tables", k=1, mode="lexical")[0].title == "Huge"


def test_one_id_given_to_two_texts_is_one_paper_keeping_both_versions(tmp_path):
    f = tmp_path / "dup.jsonl"
    f.write_text(json.dumps({"id": "p1", "abstract": ABSTRACT}) + "\n" + json.dumps({"id": "p1", "abstract": OTHER}) + "\n")
    s = build([f], tmp_path / "idx", embedder=FakeEmbedder(), cache=False)
    # one id given to two texts: the merge rule treats them as one paper with two versions
    assert s.papers == 1
    with Index.open(tmp_path / "idx", embedder=FakeEmbedder()) as idx:
        assert set(idx.papers()[0].versions) == {ABSTRACT, OTHER}


def test_empty_abstracts_are_reported_not_indexed(tmp_path):
    f = tmp_path / "some-empty.jsonl"
    f.write_text(json.dumps({"abstract": ""}) + "\n" + json.dumps({"abstract": "   "}) + "\n"
                 + json.dumps({"abstract": ABSTRACT}) + "\n")
    s = build([f], tmp_path / "idx", embedder=FakeEmbedder(), cache=False)
    assert s.papers == 1 and [(x.line, x.reason) for x in s.skipped] == [
        (1, "field 'abstract' is missing or empty"), (2, "field 'abstract' is missing or empty")]


def test_non_utf8_bytes_name_the_line_and_write_nothing(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes(("Abstract:" + ABSTRACT + "\n").encode() + "Abstract: caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1.txt:2: not UTF-8 text"):
        build([f], tmp_path / "idx", embedder=FakeEmbedder(), cache=False)
    assert not (tmp_path / "idx").exists()
