"""Named themes: spec parsing, the membership rule, groups, notebook views."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsearch import Index, QueryError
from semsearch.themes import ABSOLUTE_MIN, RELATIVE_MARGIN, ThemeSpec, assign


def test_theme_spec_parsing():
    assert ThemeSpec.parse("quantization") == ThemeSpec("quantization")
    spec = ThemeSpec.parse("sharding:  partitioning tables or models across devices")
    assert spec == ThemeSpec("sharding", "partitioning tables or models across devices")
    assert spec.text == "sharding. partitioning tables or models across devices"


@pytest.mark.parametrize("bad", ["", "   ", "sharding:", ": description only", "?!: x"])
def test_bad_theme_syntax_is_refused(bad):
    with pytest.raises(QueryError, match="theme"):
        ThemeSpec.parse(bad)


def test_assign_is_multi_label_with_a_floor_and_a_margin():
    scores = np.array(
        [
            [0.40, 0.40 - RELATIVE_MARGIN + 0.01, 0.10],  # two themes nearly equal: both
            [0.40, 0.40 - RELATIVE_MARGIN - 0.01, 0.10],  # second too far behind: one
            [ABSOLUTE_MIN - 0.01, 0.0, 0.0],  # fits nothing well enough: unassigned
        ]
    )
    assert assign(scores).tolist() == [[True, True, False], [True, False, False], [False, False, False]]


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


@pytest.mark.slow
def test_seed_themes_with_the_real_model(real_index_path, real_embedder):
    with Index.open(real_index_path, embedder=real_embedder) as idx:
        groups = idx.themes(["recommendation systems", "quantization", "sharding"])
    names = {t.name: {m.paper.display_title() for m in t.papers} for t in groups}
    autoshard = "AutoShard: Automated Embedding Table Sharding for Recommender Systems"
    assert autoshard in names["recommendation systems"] and autoshard in names["sharding"]  # multi-label
    assert "SpinQuant: LLM quantization with learned rotations" in names["quantization"]
    assert "Movie Gen: A Cast of Media Foundation Models" in {p.display_title() for p in groups.unassigned}
