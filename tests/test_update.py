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


# --- in place, for every index type ---------------------------------------------------------


def _synthetic(path, n: int, seed: int, start: int = 0):
    """n JSONL papers of random words (ids p<start>..), distinct enough for the fake embedder."""
    import random

    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(400)]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(start, start + n):
            words = " ".join(rng.choice(vocab) for _ in range(30))
            f.write(json.dumps({"id": f"p{i}", "title": f"Paper {i}", "abstract": f"About {i}: {words}."}) + "\n")
    return path


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("synthetic")
    return _synthetic(d / "base.jsonl", 400, seed=1), _synthetic(d / "new.jsonl", 30, seed=2, start=400)


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "ivf-pq", "hnsw"])
def test_add_and_remove_change_every_index_type_in_place(kind, synthetic_files, tmp_path):
    base, new = synthetic_files
    path = tmp_path / "idx"
    build([base], path, embedder=FakeEmbedder(), cache=False, index_type=kind, target_recall=0.9)
    built = Manifest.read(path)
    assert built.index_type == kind

    s = add([new], path, embedder=FakeEmbedder(), cache=False)
    assert s.index_choice["update"] == "updated in place" and s.embedded == 30 and s.papers == 430
    m = Manifest.read(path)
    assert (m.count, m.rows, m.retired, m.index_type, m.index_params) == (430, 430, 0, kind, built.index_params)

    s = remove(["p3", "p401"], path, embedder=FakeEmbedder())
    assert s.index_choice["update"] == "updated in place" and s.removed == ["p3", "p401"]
    m = Manifest.read(path)
    assert (m.count, m.rows, m.retired) == (428, 430, 2)

    fake = FakeEmbedder()
    with Index.open(path, embedder=fake) as idx:
        rows = {p.id: r for r, p in idx._store.rows_and_papers()}
        # every new paper is found by its own text; removed ones are never returned
        for i in (400, 415, 429):
            hits = idx.search(f"About {i}", k=5, mode="dense")
            assert all(h.paper.id not in ("p3", "p401") for h in hits)
        own = idx.embed([json.loads(line)["title"] + ". " + json.loads(line)["abstract"]
                         for line in new.read_text().splitlines()])
        found = idx.search_vectors(own, k=1).rows[:, 0].tolist()
        expected = [rows.get(f"p{i}", -2) for i in range(400, 430)]
        hits_own = sum(f == e for f, e in zip(found, expected))
        assert hits_own >= 28 and rows.get("p401") is None and 401 not in found  # approximate: allow 1 miss
        everything = idx.search_vectors(own, k=428).rows
        assert not set(everything.ravel().tolist()) & {3, 401}  # retired FAISS rows (p3 is row 3)
        assert "p3" not in {h.paper.id for h in idx.search("About 3", k=20, mode="lexical")}
        assert len(idx.discover_themes(n=3)) == 3  # groups every live paper


def test_in_place_flat_update_answers_like_a_fresh_build(synthetic_files, tmp_path):
    base, new = synthetic_files
    path, fresh = tmp_path / "idx", tmp_path / "fresh"
    build([base], path, embedder=FakeEmbedder(), cache=False)
    add([new], path, embedder=FakeEmbedder(), cache=False)
    remove(["p7"], path, embedder=FakeEmbedder())
    kept = tmp_path / "kept.jsonl"
    kept.write_text("".join(l + "\n" for f in (base, new) for l in f.read_text().splitlines()
                            if json.loads(l)["id"] != "p7"))
    build([kept], fresh, embedder=FakeEmbedder(), cache=False)
    for mode in ("dense", "lexical", "hybrid"):
        with Index.open(path, embedder=FakeEmbedder()) as a, Index.open(fresh, embedder=FakeEmbedder()) as b:
            for q in ("About 7", "About 405 w12 w99", "w1 w2 w3"):
                ours = [(h.paper.id, round(h.score, 5)) for h in a.search(q, k=10, mode=mode)]
                theirs = [(h.paper.id, round(h.score, 5)) for h in b.search(q, k=10, mode=mode)]
                assert ours == theirs, (mode, q)


def test_a_changed_text_retires_its_row_and_same_text_updates_in_place(seed_copy, tmp_path):
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        row, flex = idx.resolve("FlexShard")
    f = tmp_path / "v3.jsonl"
    f.write_text(json.dumps({"abstract": flex.abstract + " We also release the code."}) + "\n")
    add([f], seed_copy, embedder=FakeEmbedder(), cache=False)
    m = Manifest.read(seed_copy)
    assert (m.count, m.rows, m.retired) == (25, 26, 1)
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        new_row, updated = idx.resolve(flex.id)
        assert new_row == 25 and updated.abstract.endswith("release the code.")
        assert [h.paper.id for h in idx.search("FlexShard", k=25, mode="dense")].count(flex.id) == 1
        assert idx._store.retired() == [row]
    # the same text again from another file: a new source, no new row, nothing embedded
    g = tmp_path / "again.jsonl"
    g.write_text(json.dumps({"abstract": updated.abstract}) + "\n")
    fake = FakeEmbedder()
    s = add([g], seed_copy, embedder=fake, cache=False)
    assert s.embedded == 0 and fake.calls == 0
    assert (Manifest.read(seed_copy).rows, Manifest.read(seed_copy).retired) == (26, 1)
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        assert any(src.startswith(str(g)) for src in idx.resolve(flex.id)[1].sources)


def test_many_retired_rows_trigger_a_full_rebuild(seed_copy):
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        ids = [p.id for p in idx.papers()][:7]  # 7 of 25 > RETIRED_MAX
    s = remove(ids, seed_copy, embedder=FakeEmbedder())
    assert s.index_choice["update"].startswith("rebuilt: 7 of 25 rows would be retired")
    m = Manifest.read(seed_copy)
    assert (m.count, m.rows, m.retired) == (18, 18, 0)


def test_an_approximate_index_grown_past_its_tuning_is_rebuilt(synthetic_files, tmp_path):
    base, _ = synthetic_files
    path = tmp_path / "idx"
    small = _synthetic(tmp_path / "small.jsonl", 200, seed=1)
    build([small], path, embedder=FakeEmbedder(), cache=False, index_type="hnsw")
    s = add([_synthetic(tmp_path / "more.jsonl", 150, seed=3, start=200)], path, embedder=FakeEmbedder(), cache=False)
    assert s.index_choice["update"].startswith("rebuilt: 350 rows, 1.8x the 200")
    m = Manifest.read(path)
    assert (m.index_type, m.count, m.build["rows_at_build"]) == ("hnsw", 350, 350)


def test_a_version_2_index_is_read_and_updated(seed_copy, tmp_path):
    manifest = json.loads((seed_copy / "manifest.json").read_text())
    for key in ("rows", "retired"):
        manifest.pop(key)
    (seed_copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2}))
    with Index.open(seed_copy, embedder=FakeEmbedder()) as idx:
        assert len(idx.search("quantization", k=3)) == 3
    remove(["2407.21783"], seed_copy, embedder=FakeEmbedder())
    m = Manifest.read(seed_copy)
    assert (m.format_version, m.count, m.retired) == (3, 24, 1)


def test_a_full_disk_during_an_in_place_update_names_the_file(seed_copy, tmp_path, monkeypatch):
    import errno

    from semsearch import SemsearchError

    before = Manifest.read(seed_copy)
    f = tmp_path / "new.jsonl"
    f.write_text(json.dumps({"abstract": ABSTRACT}) + "\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("semsearch.index.shutil.copyfile", full)
    with pytest.raises(SemsearchError, match=r"papers\.sqlite: cannot write \(No space left on device\); the previous"):
        add([f], seed_copy, embedder=FakeEmbedder(), cache=False)
    assert Manifest.read(seed_copy) == before and sorted(p.name for p in seed_copy.parent.iterdir()) == ["idx", "new.jsonl"]
