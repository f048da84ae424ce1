"""Incremental add/remove: merged against existing records, only new texts embedded, atomic."""

from __future__ import annotations

import json

import pytest

from semsearch import Index, QueryError, add, build, remove
from semsearch.index import Manifest

from .conftest import CORPUS, FakeEmbedder, run_killed_while_writing
from .test_ingest import ABSTRACT, OTHER


@pytest.fixture
def seed_copy(tmp_path):
    path = tmp_path / "idx"
    build([CORPUS], path, embedder=FakeEmbedder(), cache=False)
    return path


def test_add_new_papers_embeds_only_them_and_keeps_ids(seed_copy, tmp_path):
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        before = {p.id: p for p in idx.papers()}
    f = tmp_path / "new.jsonl"
    f.write_text(json.dumps({"title": "New one", "abstract": ABSTRACT}) + "\n" + json.dumps({"abstract": OTHER}) + "\n")
    fake = FakeEmbedder()
    s = add([f], seed_copy, embedder=fake, cache=False)
    assert s.embedded == 2 and s.papers == 27 and s.merged_records == 0
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        after = {p.id: p for p in idx.papers()}
        assert set(before) < set(after)
        assert all(after[i].sources == before[i].sources and after[i].versions == before[i].versions for i in before)
        assert idx.resolve("New one")[1].abstract == ABSTRACT


def test_a_new_version_of_a_known_paper_updates_that_record(seed_copy, tmp_path):
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        _, flex = idx.resolve("FlexShard")
    f = tmp_path / "v3.jsonl"
    f.write_text(json.dumps({"abstract": flex.abstract + " We also release the code."}) + "\n")
    s = add([f], seed_copy, embedder=FakeEmbedder(), cache=False)
    assert s.papers == 25 and s.embedded == 1 and s.merged_records == 1  # joined the stored FlexShard
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        _, updated = idx.resolve(flex.id)
    assert len(updated.versions) == len(flex.versions) + 1 and updated.abstract.endswith("release the code.")
    assert any(src.startswith(str(f)) for src in updated.sources)


def test_remove_by_id_and_arxiv_id(seed_copy):
    s = remove(["arXiv:2407.21783v1"], seed_copy, embedder=FakeEmbedder())
    assert s.removed == ["2407.21783"] and s.papers == 24
    with pytest.raises(QueryError, match="no paper with id 'nope'"):
        remove(["nope"], seed_copy, embedder=FakeEmbedder())
    assert Manifest.read(seed_copy).count == 24


def test_an_update_with_another_model_is_refused(seed_copy, tmp_path):
    from semsearch import SemsearchError

    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"abstract": ABSTRACT}) + "\n")
    with pytest.raises(SemsearchError, match="update it with the same model"):
        add([f], seed_copy, embedder=FakeEmbedder(seed="other"), cache=False)


def test_killed_add_leaves_the_previous_index_usable(seed_copy, tmp_path):
    before = Manifest.read(seed_copy)
    f = tmp_path / "new.jsonl"
    f.write_text(json.dumps({"abstract": ABSTRACT}) + "\n")
    assert run_killed_while_writing(f"add([{str(f)!r}], {str(seed_copy)!r}, embedder=FakeEmbedder(), cache=False)") == -9
    assert Manifest.read(seed_copy) == before
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        assert len(idx.search("quantization", k=3)) == 3
