"""Index directories: round trip, atomic replacement, damaged files, model checks."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from semsearch import Index, build
from semsearch.errors import CorpusError, IndexFormatError, IndexNotFound, ModelMismatch, SemsearchError
from semsearch.store import FILES, MANIFEST, PAPERS, VECTORS, Manifest

from .conftest import CORPUS, FakeEmbedder, run_killed_while_writing


def test_build_writes_exactly_the_index_files(seed_index_path):
    assert sorted(os.listdir(seed_index_path)) == sorted(FILES)
    m = Manifest.read(seed_index_path)
    assert (m.model, m.dim, m.count, m.format_version) == ("fake-hash", 64, 25, 4)
    assert m.index_type == "flat" and m.metric == "inner_product"
    assert len(m.corpus_hash) == 16 and m.created


def test_round_trip_papers_and_vectors(seed_index_path, fake):
    with Index.open(seed_index_path, embedder=fake) as idx:
        papers = idx.papers()
        assert len(papers) == len(idx) == 25
        from semsearch.embed import paper_text

        stored = idx._vectors.reconstruct(range(len(idx)))
        expected = fake.encode([paper_text(p) for p in papers])
        np.testing.assert_allclose(stored, expected, atol=1e-6)


def test_rebuild_replaces_atomically_and_a_failed_build_keeps_the_old_index(tmp_path, fake):
    target = tmp_path / "idx"
    build([CORPUS], target, embedder=fake)
    before = Manifest.read(target)

    class Exploding(FakeEmbedder):
        def encode(self, texts, *, progress=False):
            raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        build([CORPUS], target, embedder=Exploding())
    assert Manifest.read(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temporary directory left behind
    with Index.open(target, embedder=fake) as idx:
        assert len(idx.search("embedding table sharding", k=3)) == 3


def test_killed_build_leaves_previous_index_usable(tmp_path, fake):
    target = tmp_path / "idx"
    build([CORPUS], target, embedder=fake)
    before = Manifest.read(target)
    # A real process killed with SIGKILL while it writes the new index's files.
    assert run_killed_while_writing(f"build([{str(CORPUS)!r}], {str(target)!r}, embedder=FakeEmbedder(seed='v2'))") == -9
    assert Manifest.read(target) == before
    with Index.open(target, embedder=fake) as idx:
        assert idx.search("quantization", k=1)[0].score > 0
    assert len(list(tmp_path.glob(".idx.tmp-*"))) == 1  # the dead build's staging directory
    build([CORPUS], target, embedder=fake)  # the next build removes it and succeeds
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]
    assert Manifest.read(target).corpus_hash == before.corpus_hash


def test_crash_between_the_two_renames_is_recovered(tmp_path, fake):
    target = tmp_path / "idx"
    build([CORPUS], target, embedder=fake)
    os.rename(target, tmp_path / ".idx.old-12345")  # as if killed right after moving it aside
    with Index.open(target, embedder=fake) as idx:
        assert len(idx) == 25


def test_unwritable_index_dir_fails_before_embedding(tmp_path, fake):
    if os.geteuid() == 0:  # root writes into read-only directories: a file in the path instead
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        target, message = blocker / "idx", "file is a file, not a directory"
    else:
        parent = tmp_path / "ro"
        parent.mkdir(mode=0o500)
        target, message = parent / "idx", "cannot write an index here"
    with pytest.raises(SemsearchError, match=message):
        build([CORPUS], target, embedder=fake)
    assert fake.calls == 0


def test_bad_corpus_writes_nothing(tmp_path, fake):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="empty.txt: file is empty"):
        build([CORPUS, tmp_path / "empty.txt"], tmp_path / "idx", embedder=fake)
    assert not (tmp_path / "idx").exists()
    assert fake.calls == 0


def test_query_model_must_match_the_build_model(seed_index_path):
    with pytest.raises(ModelMismatch) as exc:
        Index.open(seed_index_path, embedder=FakeEmbedder(dim=32))
    message = str(exc.value)
    assert "index built with fake-hash (dim 64" in message and "query model fake-hash (dim 32)" in message
    assert "semsearch build --model" in message
    with pytest.raises(ModelMismatch):
        Index.open(seed_index_path, embedder=FakeEmbedder(seed="other-weights"))


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexNotFound, match="semsearch build --index"):
        Index.open(tmp_path / "none")


def _copy(src, dst):
    dst.mkdir()
    for name in FILES:
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / VECTORS).write_bytes((d / VECTORS).read_bytes()[:100]), "vectors.faiss: damaged FAISS file"),
        (lambda d: (d / PAPERS).write_bytes(b"garbage" * 100), "papers.sqlite: not a readable papers database"),
        (lambda d: (d / MANIFEST).write_text("{"), "manifest.json: unreadable"),
        (lambda d: (d / MANIFEST).unlink(), "manifest.json: missing"),
        (
            lambda d: (d / MANIFEST).write_text(
                json.dumps({**json.loads((d / MANIFEST).read_text()), "count": 7, "rows": 7})
            ),
            "holds 25 vectors of dim 64, manifest says 7",
        ),
        (
            lambda d: (d / MANIFEST).write_text(json.dumps({**json.loads((d / MANIFEST).read_text()), "count": 7})),
            "manifest.json: 'rows' must be 'count' + 'retired'",
        ),
        (
            lambda d: (d / MANIFEST).write_text(
                json.dumps({**json.loads((d / MANIFEST).read_text()), "format_version": 99})
            ),
            "format version 99 is newer",
        ),
    ],
)
def test_damaged_index_gives_a_clear_error_naming_the_file(seed_index_path, tmp_path, fake, damage, message):
    d = _copy(seed_index_path, tmp_path / "idx")
    damage(d)
    with pytest.raises(IndexFormatError) as exc:
        Index.open(d, embedder=fake)
    assert message in str(exc.value)


def test_index_files_are_not_pickles(seed_index_path):
    assert json.loads((seed_index_path / MANIFEST).read_text())["model"] == "fake-hash"
    assert (seed_index_path / PAPERS).read_bytes().startswith(b"SQLite format 3\x00")
