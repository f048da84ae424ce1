"""Named themes: spec parsing, the membership rule, groups, notebook views."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsearch import Index, QueryError
from semsearch.themes import NamedThemes, ThemeSpec, distinctive_stems, expansion_bm25, term_counts, word_evidence


def test_theme_spec_parsing():
    assert ThemeSpec.parse("quantization") == ThemeSpec("quantization")
    spec = ThemeSpec.parse("sharding:  partitioning tables or models across devices")
    assert spec == ThemeSpec("sharding", "partitioning tables or models across devices")
    assert spec.text == "sharding. partitioning tables or models across devices"


@pytest.mark.parametrize("bad", ["", "   ", "sharding:", ": description only", "?!: x", "x" * 5000])
def test_bad_theme_syntax_is_refused(bad):
    with pytest.raises(QueryError, match="theme"):
        ThemeSpec.parse(bad)


def _blobs(rng, centres, per, noise=0.15):
    x = np.vstack([c + noise * rng.standard_normal((per, len(c))) for c in centres])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_named_themes_file_every_member_despite_weak_queries():
    rng = np.random.default_rng(0)
    dim = 16
    e = np.eye(dim, dtype=np.float32)
    # three themes with 20 papers each, 20 papers about something else (axis 3)
    x = _blobs(rng, [e[0], e[1], e[2], e[3]], 20)
    # weak, off-centre queries: a one-word theme is a poor query
    q = np.vstack([e[0] + 0.6 * e[3] + 0.3 * e[1], e[1] + 0.5 * e[3], e[2] + 0.5 * e[0]])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    model = NamedThemes().fit(x, q)
    truth = np.zeros((80, 3), dtype=bool)
    for j in range(3):
        truth[20 * j : 20 * (j + 1), j] = True
    pred = model.members_
    assert (pred & truth).sum() == truth.sum()  # every member found
    # known limit (docs/benchmarks.md): the boundary is the mean score of the other themes' papers,
    # so papers about none of the themes are only partly left out
    assert (pred & truth).sum() / pred.sum() >= 0.65
    assert model.thresholds_.shape == (3,) and model.scores_.shape == (80, 3)


def test_named_themes_are_multi_label_for_a_paper_between_two_themes():
    rng = np.random.default_rng(1)
    e = np.eye(8, dtype=np.float32)
    x = _blobs(rng, [e[0], e[1], e[2]], 20, 0.1)
    both = (e[0] + e[1]) / np.sqrt(2)
    x = np.vstack([x, both[None, :]])
    model = NamedThemes().fit(x, np.vstack([e[0], e[1], e[2]]))
    assert model.members_[-1].tolist() == [True, True, False]
    assert model.members_[:20, 0].all() and not model.members_[:20, 1:].any()


def test_a_paper_with_every_word_of_the_name_joins_unless_it_looks_unlike_the_theme():
    rng = np.random.default_rng(2)
    e = np.eye(8, dtype=np.float32)
    x = _blobs(rng, [e[0], e[1], e[2]], 10, 0.1)
    # paper 30 sits with theme 1's papers but names theme 0's word; paper 31 names it and is far away
    near = (0.45 * e[0] + e[1]) / np.linalg.norm(0.45 * e[0] + e[1])
    x = np.vstack([x, near[None, :], -e[0][None, :]]).astype(np.float32)
    ev = np.zeros((32, 3), dtype=np.float32)
    ev[30:, 0] = 1.0
    model = NamedThemes().fit(x, e[:3], ev)
    assert model.members_[30].tolist() == [True, True, False] and model.by_words_[30, 0]
    assert not model.members_[31, 0]  # its cosine to the name is below the corpus mean
    assert "every word of the name" in model.explain(30, ["a", "b", "c"])[0]["reason"]
    without = NamedThemes(lexical_min=None).fit(x, e[:3], ev)
    assert without.members_[30].tolist() == [False, True, False] and not without.by_words_.any()


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_lexical_expansion_moves_a_paper_in_its_themes_words_to_the_theme():
    texts = ["Phonons in a graphene lattice", "Lattice phonons and thermal transport", "Phonon lattice modes of crystals",
             "Anharmonic phonons in lattice models", "Protein folding by enzymes", "Enzyme kinetics of protein folding",
             "Folding of a protein with chaperone enzymes", "Protein enzyme complexes fold", "Rain and weather over oceans",
             "Weather radar and rain", "Lattice phonons measured by neutron scattering"]
    x = _unit([[1, .1, .1], [1, .15, .05], [1, .05, .15], [1, .1, 0], [.1, 1, .1], [.15, 1, .05], [.05, 1, .15],
               [0, 1, .1], [.1, .1, 1], [.05, .1, 1], [.62, .7, .3]])
    q = _unit([[1, 0, 0], [0, 1, 0]])  # the last paper's vector is nearer the second theme; its words, the first's
    counts = term_counts(texts)
    model = NamedThemes().fit(x, q, None, counts)
    assert model.expansion_words_ == [["lattic", "phonon"], ["enzym", "fold", "protein"]]
    assert model.members_[-1].tolist() == [True, False]
    assert model.members_[:8].tolist() == [[True, False]] * 4 + [[False, True]] * 4 and not model.members_[8:10].any()
    assert NamedThemes(expansion_weight=0).fit(x, q, None, counts).members_[-1].tolist() == [False, True]
    assert NamedThemes().fit(x, q).members_[-1].tolist() == [False, True]  # no counts, no expansion
    with pytest.raises(QueryError, match="counts must have 5 rows, got 11"):
        NamedThemes().fit(x[:5], q, None, counts)


def test_term_counts_stem_and_drop_stopwords_and_numbers():
    counts = term_counts(["The galaxies of 2024 and a galaxy", "Robots"])
    assert "galaxi" in counts.stems and not {"the", "of", "2024", "a", "and"} & set(counts.stems)
    assert counts.counts[0, counts.stems.index("galaxi")] == 2 and counts.lengths.tolist() == [7, 1]
    member = np.array([True, False])
    assert distinctive_stems(counts, member, 5) == []  # held by one member only: never distinctive
    bm25 = expansion_bm25(counts, ["galaxi", "absent"])
    assert bm25[0] > 0 and bm25[1] == 0 and (bm25 <= 1).all()


def test_a_tiny_corpus_files_each_paper_under_its_closest_theme():
    e = np.eye(4, dtype=np.float32)
    model = NamedThemes().fit(e[:1], e[:2])
    assert model.members_.tolist() == [[True, False]]
    assert NamedThemes().fit(np.zeros((0, 4), np.float32), e[:2]).members_.shape == (0, 2)


def test_word_evidence_matches_stems_and_ignores_function_words():
    ev = word_evidence(["Galaxy formation at high redshift", "Robots grasping objects", "nothing"],
                       ["galaxies", "theory of robotics"])
    assert ev[0, 0] == 1.0 and ev[1, 0] == 0.0
    assert ev[1, 1] == 0.0 or ev[1, 1] == 0.5  # "robots" and "robotics" stem apart in Porter
    assert ev[2].sum() == 0.0


def test_explain_says_why(seed_index):
    groups = seed_index.themes(["recommendation systems", "quantization"])
    assert all(groups.model.expansion_words_) and "words of each theme's papers" in groups.method
    rows = groups.explain(groups.papers[0].id)
    assert [r["theme"] for r in rows] == ["recommendation systems", "quantization"]
    assert all(r["reason"].startswith(("in:", "out:")) for r in rows)
    assert any(r["member"] for r in rows) == any(groups.papers[0].id == m.paper.id for t in groups for m in t.papers)


def test_groups_cover_every_paper_once_or_more(seed_index):
    groups = seed_index.themes(["recommendation systems", "quantization", "sharding: partitioning embedding tables"])
    seen = {m.paper.id for t in groups for m in t.papers} | {p.id for p in groups.unassigned}
    assert seen == {p.id for p in seed_index.papers()}
    for t in groups:
        assert [m.score for m in t.papers] == sorted((m.score for m in t.papers), reverse=True)
    d = groups.as_dict()
    json.dumps(d)
    assert [t["name"] for t in d["themes"]] == ["recommendation systems", "quantization", "sharding"]
    nonempty = [t for t in d["themes"] if t["papers"]]
    assert nonempty and set(nonempty[0]["papers"][0]) == {"id", "title", "score"}
    assert all(set(u) == {"id", "title"} for u in d["unassigned"])


def test_themes_of_a_query_group_only_its_results(seed_index):
    groups = seed_index.themes(["recommendation", "quantization"], query="embedding tables", k=6)
    assert len(groups.papers) == 6


def test_duplicate_and_missing_themes_are_refused(seed_index):
    with pytest.raises(QueryError, match="same name"):
        seed_index.themes(["quantization", "Quantization: weights"])
    with pytest.raises(QueryError, match="at least one theme"):
        seed_index.themes([])


def test_theme_groups_show_in_notebooks_and_plot(seed_index, tmp_path):
    pytest.importorskip("matplotlib")
    groups = seed_index.themes(["recommendation systems", "quantization"])
    df = groups.to_pandas()
    assert list(df.columns) == ["theme", "score", "id", "title"]
    assert len(df) == sum(len(t.papers) for t in groups) + len(groups.unassigned)
    assert groups._repr_html_().startswith("<table>")
    assert groups.coordinates().shape == (25, 2)
    groups.plot(tmp_path / "map.png")
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"



def _members(groups) -> list:
    return [[(m.paper.id, m.score) for m in t.papers] for t in groups] + [[p.id for p in groups.unassigned]]


@pytest.mark.parametrize("discovered", [False, True])
def test_themes_over_a_large_corpus_read_only_the_papers_shown(seed_index_path, monkeypatch, discovered):
    import semsearch.query
    from semsearch.results import PaperList

    from .conftest import FakeEmbedder

    def group(idx):
        if discovered:
            return idx.discover_themes(3)
        return idx.themes(["recommendation systems", "quantization", "sharding"])

    with Index.open(seed_index_path, embedder=FakeEmbedder()) as idx:
        eager = group(idx)
        monkeypatch.setattr(semsearch.query, "EAGER_PAPERS", 10)  # the 25 seeds count as a large corpus
        lazy = group(idx)
        assert isinstance(lazy.papers, PaperList) and lazy.papers.loaded == (25 if discovered else 0)
        if discovered:  # discovered themes read the texts to name the themes, nothing else
            lazy = group(idx)
        else:
            first = max(lazy, key=lambda t: len(t.papers))
            shown = first.papers[:2]
            assert lazy.papers.loaded == 2 and [m.paper.id for m in shown] == [m.paper.id for m in eager[first.name].papers[:2]]
            pid = lazy.papers[next(i for i in range(25) if i not in first.papers.positions[:2])].id
            assert lazy.papers.loaded == 3
            assert lazy.explain(pid) == eager.explain(pid) and lazy.papers.loaded == 3
        assert _members(lazy) == _members(eager)
        assert lazy.papers.loaded == 25
        unread = group(idx)
    assert _members(eager) == _members(lazy)  # what was read stays readable
    if not discovered:
        with pytest.raises(QueryError, match="closed before these papers were read"):
            list(unread.papers)


def test_a_small_corpus_reads_its_papers_at_once_and_outlives_the_index(seed_index_path):
    from .conftest import FakeEmbedder

    with Index.open(seed_index_path, embedder=FakeEmbedder()) as idx:
        groups = idx.themes(["recommendation systems", "quantization"])
    assert groups.papers.loaded == 25 and len({p.id for p in groups.papers}) == 25
    assert groups.explain(groups.papers[3].id)[0]["theme"] == "recommendation systems"


@pytest.mark.slow
def test_seed_themes_with_the_real_model(real_index_path, real_embedder):
    from .conftest import ROOT

    labels = json.loads((ROOT / "benchmarks" / "data" / "seed_themes.json").read_text(encoding="utf-8"))
    with Index.open(real_index_path, embedder=real_embedder) as idx:
        groups = idx.themes(labels["themes"])
        ids = [p.id for p in idx.papers()]
    pred = np.array([[any(m.paper.id == i for m in groups[t].papers) for t in labels["themes"]] for i in ids])
    truth = np.array([[t in labels["labels"][i] for t in labels["themes"]] for i in ids])
    tp = (pred & truth).sum()
    assert 2 * tp / (pred.sum() + truth.sum()) >= 0.8  # 0.844 with this embedder; 0.870 with the default int8 one (0.810 before the word rule)
    names = {t.name: {m.paper.display_title() for m in t.papers} for t in groups}
    assert "AutoShard: Automated Embedding Table Sharding for Recommender Systems" in names["sharding"]
    assert "SpinQuant: LLM quantization with learned rotations" in names["quantization"]
    assert "Movie Gen: A Cast of Media Foundation Models" in {p.display_title() for p in groups.unassigned}


@pytest.mark.slow
def test_seed_discovered_themes_keep_the_embedding_table_papers_together(real_index_path, real_embedder):
    with Index.open(real_index_path, embedder=real_embedder) as idx:
        groups = idx.discover_themes()
    where = {m.paper.display_title(): t.name for t in groups for m in t.papers}
    shard = [t for t in where if t.startswith(("FlexShard", "AutoShard"))]
    assert len(shard) == 2 and where[shard[0]] == where[shard[1]]
    assert all(w not in {"model", "learning", "data"} for t in groups for w in t.words)
