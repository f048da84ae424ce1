"""Facets: sentence splitting, role labels, max-sim against a brute-force oracle, facet similar."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.errors import QueryError
from semsearch.facets import label_roles, maxsim, split_sentences


def test_split_sentences_keeps_abbreviations_and_initials_together():
    text = ("Models, e.g. transformers, are large. Smith et al. showed this in Fig. 2 of J. Doe's paper. "
            "We propose X! Does it work? Yes: accuracy rises by 3.5%.")
    assert split_sentences(text) == [
        "Models, e.g. transformers, are large.",
        "Smith et al. showed this in Fig. 2 of J. Doe's paper.",
        "We propose X!",
        "Does it work?",
        "Yes: accuracy rises by 3.5%.",
    ]
    assert split_sentences("one line without a full stop") == ["one line without a full stop"]
    assert split_sentences("   ") == []


def test_label_roles_reads_position_and_cues():
    roles = label_roles([
        "Machine translation remains a challenging problem for low-resource languages.",
        "We propose a method based on back-translation with a denoising objective.",
        "Experiments show that our approach outperforms strong baselines by 2 BLEU.",
    ])
    assert roles == ["background", "method", "result"]
    assert label_roles(["A single sentence."]) in (["background"], ["method"], ["result"])


def test_maxsim_matches_a_brute_force_oracle():
    rng = np.random.default_rng(0)

    def unit(n, d=7):
        x = rng.normal(size=(n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    q = unit(3)
    sizes = [4, 1, 0, 5, 2]  # candidate 2 has no sentences
    sents = unit(sum(sizes))
    owner = np.repeat(np.arange(len(sizes)), sizes)
    got = maxsim(q, sents, owner, len(sizes))
    start = 0
    for c, n in enumerate(sizes):
        expect = -1.0 if n == 0 else float(np.mean([(sents[start:start + n] @ v).max() for v in q]))
        assert got[c] == pytest.approx(expect, abs=1e-6)
        start += n


def test_similar_by_facet_leaves_the_paper_out_and_scores_by_facet(seed_index):
    hits = seed_index.similar("AutoShard", 5, facet="method")
    assert len(hits) == 5 and hits.score_kind == "facet" and hits.notes == ()
    assert "AutoShard" not in [h.title or "" for h in hits][0]
    assert [e.reason for e in hits.excluded] == ["the paper asked about"]


@pytest.mark.parametrize("facet", ["background", "method", "result"])
def test_every_facet_answers(seed_index, facet):
    assert len(seed_index.similar("FlexShard", 3, facet=facet)) == 3


def test_unknown_facet_is_one_line(seed_index):
    with pytest.raises(QueryError, match=r"^unknown facet 'methods': use one of background, method, result$"):
        seed_index.similar("FlexShard", 3, facet="methods")


def test_one_sentence_abstracts_fall_back_and_say_so(tmp_path, fake):
    from semsearch import Index, build

    src = tmp_path / "one-line.jsonl"
    import json

    papers = [("a", "Sharding embedding tables across many GPUs for recommendation models"),
              ("b", "Placing embedding tables on GPUs with a cost model for recommenders"),
              ("c", "Quantizing language models to four bits with learned rotations")]
    src.write_text("".join(json.dumps({"id": i, "title": i.upper(), "abstract": a}) + "\n" for i, a in papers))
    build([src], tmp_path / "idx", embedder=fake)
    with Index.open(tmp_path / "idx", embedder=fake) as idx:
        hits = idx.similar("a", 2, facet="result")
    assert hits.score_kind == "cosine" and [h.id for h in hits][0] == "b"
    assert hits.notes == ("the reference's abstract is one sentence: ranked by the whole abstract",)


@pytest.mark.slow
def test_real_model_facets_and_several_papers(real_index_path, real_embedder):
    from semsearch import Index

    with Index.open(real_index_path, embedder=real_embedder) as idx:
        method = idx.similar("AutoShard", 3, facet="method")
        several = idx.similar(["AutoShard", "FlexShard"], 3)
    assert method.score_kind == "facet" and len(method) == 3
    assert any("shard" in (h.paper.abstract or "").lower() for h in several)  # RecShard, DLRM co-design


def test_shipped_role_classifier_matches_its_model_and_falls_back_otherwise():
    from semsearch.facets import FACETS, _role_model, predict_roles

    clf = _role_model()
    assert clf["classes"] == list(FACETS) and clf["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert np.asarray(clf["coef"]).shape == (3, clf["dim"] + 4) and len(clf["intercept"]) == 3
    v = np.eye(4, clf["dim"], dtype=np.float32)
    assert predict_roles(v, "another/model") is None
    assert predict_roles(np.eye(4, 8, dtype=np.float32), clf["model"]) is None
    assert set(predict_roles(v, clf["model"])) <= set(FACETS) and len(predict_roles(v, clf["model"])) == 4


def test_predict_roles_is_a_linear_model_on_vector_and_position(monkeypatch):
    """Hand-built 2-d classifier: the first dimension says background, the second method; the last
    sentence of an abstract leans to result through the 'is last' position feature."""
    from semsearch import facets

    clf = {"model": "m", "dim": 2, "classes": list(facets.FACETS), "intercept": [0.0, 0.0, 0.0],
           "coef": [[2, 0, 0, 0, 0, 0], [0, 2, 0, 0, 0, 0], [0, 0, 0, 0, 3, 0]]}
    monkeypatch.setattr(facets, "_role_model", lambda: clf)
    v = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)
    assert facets.predict_roles(v, "m") == ["background", "method", "result"]
    assert facets.position_features(3).tolist() == [[0, 1, 0, 0], [0.5, 0, 0, 0.25], [1, 0, 1, 1]]


def test_roles_json_ships_with_the_package():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "roles.json" in pyproject["tool"]["setuptools"]["package-data"]["semsearch"]


@pytest.mark.slow
def test_real_model_role_classifier_reads_an_abstract(real_embedder):
    from semsearch.facets import predict_roles

    sentences = [
        "Machine translation remains a challenging problem for low-resource languages.",
        "We propose a method based on back-translation with a denoising objective.",
        "Experiments show that our approach outperforms strong baselines by 2 BLEU.",
    ]
    assert predict_roles(real_embedder.encode(sentences), real_embedder.name) == ["background", "method", "result"]


def test_facet_scores_add_the_more_like_this_bm25_of_the_reference(seed_index, monkeypatch):
    """Each hit's facet score is the score without the lexical channel + LEXICAL_WEIGHT x the FTS5
    BM25 of the reference's distinctive words / their IDF mass (oracle: FTS5 itself, not the postings)."""
    from semsearch import facets, fusion
    from semsearch.embed import paper_text
    from semsearch.store import lexical

    weight = facets.LEXICAL_WEIGHT
    with_words = {h.id: h.score for h in seed_index.similar("FlexShard", 24, facet="method")}
    monkeypatch.setattr(facets, "LEXICAL_WEIGHT", 0.0)
    without = {h.id: h.score for h in seed_index.similar("FlexShard", 24, facet="method")}
    con = seed_index._store.connection
    mass = fusion.distinctive_terms(con, paper_text(seed_index.resolve("FlexShard")[1]))
    rows = {i: seed_index.resolve(i)[0] for i in with_words}
    bm25 = lexical.scores(con, " ".join(mass.terms), list(rows.values()), (1.0, 1.0))
    assert sum(bm25.get(r, 0.0) > 0 for r in rows.values()) >= 3  # the channel has something to add
    for paper_id, score in with_words.items():
        lexical_part = weight * bm25.get(rows[paper_id], 0.0) / mass.upper
        assert score == pytest.approx(without[paper_id] + lexical_part, abs=1e-5)
