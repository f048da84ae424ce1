"""Incremental add/remove: merged against existing records, only new texts embedded, atomic."""

from __future__ import annotations

import json

import pytest

from semsearch import Index, QueryError, add, build, remove
from semsearch.store import Manifest

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
    assert s.update == "updated in place" and s.embedded == 30 and s.papers == 430
    m = Manifest.read(path)
    assert (m.count, m.rows, m.retired, m.index_type, m.index_params) == (430, 430, 0, kind, built.index_params)

    s = remove(["p3", "p401"], path, embedder=FakeEmbedder())
    assert s.update == "updated in place" and s.removed == ["p3", "p401"]
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
    assert s.update.startswith("rebuilt: 7 of 25 rows would be retired")
    m = Manifest.read(seed_copy)
    assert (m.count, m.rows, m.retired) == (18, 18, 0)


def test_an_approximate_index_grown_past_its_tuning_is_rebuilt(synthetic_files, tmp_path):
    base, _ = synthetic_files
    path = tmp_path / "idx"
    small = _synthetic(tmp_path / "small.jsonl", 200, seed=1)
    build([small], path, embedder=FakeEmbedder(), cache=False, index_type="hnsw")
    s = add([_synthetic(tmp_path / "more.jsonl", 150, seed=3, start=200)], path, embedder=FakeEmbedder(), cache=False)
    assert s.update.startswith("rebuilt: 350 rows, 1.8x the 200")
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
    assert (m.format_version, m.count, m.retired) == (4, 24, 1)


def test_a_full_disk_during_an_in_place_update_names_the_file(seed_copy, tmp_path, monkeypatch):
    import errno

    from semsearch import SemsearchError

    before = Manifest.read(seed_copy)
    f = tmp_path / "new.jsonl"
    f.write_text(json.dumps({"abstract": ABSTRACT}) + "\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("semsearch.update.shutil.copyfile", full)
    with pytest.raises(SemsearchError, match=r"papers\.sqlite: cannot write \(No space left on device\); the previous"):
        add([f], seed_copy, embedder=FakeEmbedder(), cache=False)
    assert Manifest.read(seed_copy) == before and sorted(p.name for p in seed_copy.parent.iterdir()) == ["idx", "new.jsonl"]


# --- ids and aliases through build, add and remove ----------------------------------------


def _ids(path) -> dict[str, tuple[str, ...]]:
    with Index.open(path, embedder=FakeEmbedder()) as idx:
        return {p.id: tuple(sorted(s.rsplit("/", 1)[-1] for s in p.sources)) for p in idx.papers()}


def test_build_three_pages_then_add_two_gives_the_ids_of_one_build(seed_index_path, tmp_path):
    pages = sorted(CORPUS.iterdir())
    path = tmp_path / "idx"
    build(pages[:3], path, embedder=FakeEmbedder(), cache=False)
    with Index.open(path, embedder=FakeEmbedder()) as idx:
        pu_before = next(p for p in idx.papers() if "puNCE" in p.abstract)
    add(pages[3:], path, embedder=FakeEmbedder(), cache=False)
    assert _ids(path) == _ids(seed_index_path)
    with Index.open(path, embedder=FakeEmbedder()) as idx:
        _, pu = idx.resolve(pu_before.id)  # the id it was given before still names it
        assert pu.title == "Positive Unlabeled Contrastive Learning" and pu.id != pu_before.id
        assert len(idx.similar(pu_before.id, k=3)) == 3
        [listed] = [p for p in idx.papers().as_dicts() if p["id"] == pu.id]
        assert listed["aliases"] == [pu_before.id]
    s = remove([pu_before.id], path, embedder=FakeEmbedder())
    assert s.removed == [pu.id] and pu.id not in _ids(path)


def test_every_id_of_merged_records_resolves(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text(
        json.dumps({"arxiv_id": "2101.00001", "title": "Sharding", "abstract": ABSTRACT}) + "\n"
        + json.dumps({"id": "mine-7", "arxiv_id": "2101.00001", "abstract": ABSTRACT + " Extended."}) + "\n"
        + json.dumps({"id": "mine-8", "title": "Quantization", "abstract": OTHER}) + "\n"
    )
    path = tmp_path / "idx"
    s = build([f, CORPUS], path, embedder=FakeEmbedder(), cache=False)
    assert s.papers == 27
    with Index.open(path, embedder=FakeEmbedder()) as idx:
        row, paper = idx.resolve("mine-7")
        assert (paper.id, paper.given_id) == ("2101.00001", "mine-7")
        assert idx.resolve("arXiv:2101.00001")[0] == row and len(idx.similar("mine-7", k=2)) == 2
    assert remove(["mine-7"], path, embedder=FakeEmbedder()).removed == ["2101.00001"]
    with pytest.raises(QueryError, match="no paper with id 'mine-7'"):
        remove(["mine-7"], path, embedder=FakeEmbedder())


def test_build_reports_likely_duplicates_it_did_not_merge(tmp_path):
    f = tmp_path / "companions.jsonl"
    f.write_text("".join(
        json.dumps({"id": f"p{i}", "title": title, "abstract": ABSTRACT}) + "\n"
        for i, title in enumerate(["Sharding tables", "Sharding tables, again"])
    ))
    s = build([f], tmp_path / "idx", embedder=FakeEmbedder(), cache=False)
    assert s.papers == 2 and json.loads(json.dumps(s.as_dict()["likely_duplicates"])) == [
        {"papers": ["p0", "p1"], "sources": [f"{f}:1", f"{f}:2"], "containment": 1.0, "reason": "different ids"}
    ]


def test_an_index_without_aliases_is_read_and_updated(tmp_path):
    """Indexes written before format 4 have no given_id/aliases columns: their explicit ids are
    recovered (an id that is neither the arXiv id nor the content id of the text), kept by add."""
    import sqlite3

    f = tmp_path / "mine.jsonl"
    f.write_text(json.dumps({"id": "p1", "title": "Sharding", "abstract": ABSTRACT}) + "\n")
    path = tmp_path / "idx"
    build([f, CORPUS], path, embedder=FakeEmbedder(), cache=False)
    con = sqlite3.connect(path / "papers.sqlite")
    con.execute("DROP TABLE paper_names")
    con.execute("ALTER TABLE papers DROP COLUMN given_id")
    con.execute("ALTER TABLE papers DROP COLUMN aliases")
    con.commit()
    con.close()
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 3}))
    before = _ids(path)
    with Index.open(path, embedder=FakeEmbedder()) as idx:
        assert idx.resolve("p1")[1].given_id == "p1" and idx.resolve("2407.21783")[1].given_id is None
    g = tmp_path / "more.jsonl"
    g.write_text(
        json.dumps({"abstract": ABSTRACT + " Extended."}) + "\n"  # an id-less version of p1
        + json.dumps({"id": "p2", "title": "Sharding", "abstract": ABSTRACT}) + "\n"  # same text, other id
    )
    s = add([g], path, embedder=FakeEmbedder(), cache=False)
    assert s.papers == 27 and [d.reason for d in s.likely_duplicates] == ["different ids"]
    after = _ids(path)
    assert set(before) < set(after) and "p2" in after and len(after["p1"]) == 2
    assert Manifest.read(path).format_version == 4
