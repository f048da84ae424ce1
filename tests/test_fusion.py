"""Fusion: absolute-unit hybrid scores, IDF mass from FTS5, the match flag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semsearch import fusion, query
from semsearch.store import lexical


def test_lexical_mass_is_fts5_idf_of_each_term(seed_index):
    con = seed_index._store.connection
    mass = fusion.lexical_mass(con, "sharding embedding tables zzzunseenzzz")
    total = con.execute("SELECT count(*) FROM papers_fts").fetchone()[0]
    n = con.execute("SELECT count(*) FROM papers_fts WHERE papers_fts MATCH '\"sharding\"'").fetchone()[0]
    assert mass.terms == ("sharding", "embedding", "tables", "zzzunseenzzz")
    assert mass.idf[0] == pytest.approx(math.log((total - n + 0.5) / (n + 0.5)))
    assert mass.idf[3] == pytest.approx(math.log((total + 0.5) / 0.5))  # no paper holds it: as rare as can be
    assert mass.upper == pytest.approx(sum(mass.idf) * 2.2)


def test_normalised_bm25_is_at_most_one_and_zero_without_terms(seed_index):
    con = seed_index._store.connection
    for q in ("embedding table sharding", "quantization of large language models with rotations", "the of and"):
        mass = fusion.lexical_mass(con, q)
        found = lexical.search(con, q, 30)
        norm = fusion.normalised_bm25(np.array([s for _, s in found], dtype=np.float32), mass)
        assert (norm >= 0).all() and (norm <= 1).all()
    assert fusion.normalised_bm25(np.array([0.0], dtype=np.float32), fusion.LexicalMass((), ())).tolist() == [0.0]


def test_hybrid_gives_every_candidate_its_real_cosine_and_bm25(seed_index):
    q = "automated sharding of embedding tables"
    con = seed_index._store.connection
    qv = seed_index.embed([q])[0]
    found = seed_index.search_vectors(qv[None], 3)
    dense = [(int(r), float(s)) for r, s in zip(found.rows[0], found.scores[0])]
    lex = lexical.search(con, q, 3, None, fusion.TITLE_WEIGHTS)
    fused = dict(fusion.hybrid(con, q, qv, dense, seed_index.vectors, n=3, common=1.0))
    rows = sorted(fused)
    assert set(rows) == {r for r, _ in dense} | {r for r, _ in lex}
    bm = dict(lexical.search(con, q, 100, rows, fusion.TITLE_WEIGHTS))
    mass = fusion.lexical_mass(con, q)
    for r in rows:  # oracle: the definition, term by term
        expect = float(seed_index.vectors([r])[0] @ qv) + fusion.LEXICAL_WEIGHT * bm.get(r, 0.0) / mass.upper
        assert fused[r] == pytest.approx(expect, abs=1e-5)


def test_hybrid_leaves_out_words_most_papers_hold(seed_index):
    con = seed_index._store.connection
    q = "sharding of the embedding tables"
    mass = fusion.lexical_mass(con, q)
    content = mass.content()
    assert set(mass.terms) - set(content.terms) == {"of", "the"} and "sharding" in content.terms
    assert all(n <= 0.5 * mass.papers for n in content.held)
    assert all(i == pytest.approx(1e-6) for t, i in zip(mass.terms, mass.idf) if t not in content.terms)
    qv = seed_index.embed([q])[0]
    dense = [(r, 0.0) for r in range(3)]
    with_common = fusion.hybrid(con, q, qv, dense, seed_index.vectors, n=25, common=1.0)
    without = fusion.hybrid(con, q, qv, dense, seed_index.vectors, n=25)
    cosine = dict(zip(range(25), (seed_index.vectors(list(range(25))) @ qv).tolist()))
    for row, score in with_common:  # they weighed nothing: the same score, or the bare cosine of a paper they alone found
        assert score == pytest.approx(dict(without).get(row, cosine[row]), abs=1e-5)
    assert len(without) < len(with_common)
    assert len(fusion.hybrid(con, "of the", qv, [], seed_index.vectors, n=25)) == 0  # no papers scanned for them


@pytest.mark.parametrize("q", ["automated sharding of embedding tables", "quantization ab\u19b0cd models", "the of and"])
def test_hybrid_from_postings_equals_hybrid_from_fts5(seed_index, q):
    con = seed_index._store.connection
    qv = seed_index.embed([q])[0]
    dense = [(r, 0.0) for r in range(0, 25, 3)]
    for rows in (None, list(range(0, 25, 2))):
        scanned = fusion.hybrid(con, q, qv, dense, seed_index.vectors, n=8, rows=rows)
        kept = fusion.hybrid(con, q, qv, dense, seed_index.vectors, n=8, rows=rows, postings=seed_index.postings)
        assert [r for r, _ in kept] == [r for r, _ in scanned]
        assert [s for _, s in kept] == pytest.approx([s for _, s in scanned], abs=1e-6)


def test_match_flag_is_the_cosine_against_the_calibrated_bar(seed_index, monkeypatch):
    q = "embedding table sharding"
    hits = seed_index.search(q, k=5)
    cosine = seed_index.vectors([seed_index.resolve(h.id)[0] for h in hits]) @ seed_index.embed([q])[0]
    assert [h.match for h in hits] == [bool(c >= query.MATCH_COSINE) for c in cosine]
    monkeypatch.setattr(query, "MATCH_COSINE", 1.01)
    hits = seed_index.search(q, k=5)
    assert hits.match is False and hits.as_dicts()[0]["match"] is False
    assert "no close match" in hits._repr_html_()
    assert seed_index.search("embedding table sharding", k=2, mode="lexical").match is None  # no bar for BM25


@pytest.mark.slow
def test_real_model_says_no_close_match_for_an_off_topic_query(real_index_path, real_embedder):
    from semsearch import Index

    with Index.open(real_index_path, embedder=real_embedder) as idx:
        off = idx.search("sourdough bread recipes", k=3)
        on = idx.search("how do I shard embedding tables?", k=3)
    assert off.match is False and on.match is True
    assert off[0].score < 0.5 * on[0].score  # min-max gave both ~1


def test_prf_query_moves_towards_the_feedback_and_stays_normalised():
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    top = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    moved = fusion.prf_query(q, top, 1.0)
    assert np.linalg.norm(moved) == pytest.approx(1.0) and moved[1] == pytest.approx(moved[0])
    assert fusion.prf_query(q, top, 0.0) is q


def test_hybrid_reads_its_own_index_when_the_file_was_replaced(seed_index):
    con = seed_index._store.connection
    q = "automated sharding of embedding tables"
    qv = seed_index.embed([q])[0]
    stale = lexical.Postings(seed_index._store.path, inode=seed_index._store.inode + 1)  # "another file" now
    with pytest.raises(lexical.Replaced):
        stale.held(["shard"])
    expect = fusion.hybrid(con, q, qv, [], seed_index.vectors, n=8)
    assert fusion.hybrid(con, q, qv, [], seed_index.vectors, n=8, postings=stale) == expect
    assert lexical.Postings(seed_index._store.path, inode=seed_index._store.inode).held(["shard"])[0] > 0


def test_distinctive_terms_are_repeated_rare_words_never_stopwords_or_numbers(seed_index):
    con = seed_index._store.connection
    text = "The sharding of the tables: sharding tables with a planner, 2024, and zzzunseenzzz."
    mass = fusion.distinctive_terms(con, text, 3)
    every = fusion.lexical_mass(con, "sharding tables planner zzzunseenzzz")
    idf = dict(zip(every.terms, every.idf))
    tf = {"sharding": 2, "tables": 2, "planner": 1, "zzzunseenzzz": 1}
    expect = sorted(tf, key=lambda w: (-tf[w] * idf[w], w))[:3]  # oracle: tf x IDF, best first
    assert mass.terms == tuple(expect) and mass.idf == pytest.approx([idf[w] for w in expect])
    assert not {"the", "of", "a", "with", "and", "2024"} & set(fusion.distinctive_terms(con, text, 50).terms)
    assert fusion.distinctive_terms(con, "the of and 42").terms == ()


def test_distinctive_terms_from_postings_are_those_of_fts5_with_their_tokens(seed_index):
    con = seed_index._store.connection
    text = seed_index.papers()[3].title + ". " + seed_index.papers()[3].abstract
    plain = fusion.distinctive_terms(con, text, 20)
    fast = fusion.distinctive_terms(con, text, 20, postings=seed_index.postings)
    assert fast.terms == plain.terms and fast.idf == pytest.approx(plain.idf) and fast.held == plain.held
    assert plain.tokens == () and len(fast.tokens) == 20
    assert fast.tokens == tuple(seed_index.postings.tokens(list(fast.terms)))


def test_hybrid_with_a_given_mass_never_adds_excluded_rows(seed_index):
    con = seed_index._store.connection
    mass = fusion.distinctive_terms(con, "sharding sharding embedding tables planner", 3, postings=seed_index.postings)
    held, _ = lexical.scan(con, mass.terms, (1.0, 1.0))
    qv = seed_index.vectors([0])[0]
    args = dict(n=len(seed_index), mass=mass, title_weights=(1.0, 1.0))
    every = dict(fusion.hybrid(con, "", qv, [], seed_index.vectors, postings=seed_index.postings, **args))
    assert set(every) == set(held.tolist())
    left = dict(fusion.hybrid(con, "", qv, [], seed_index.vectors, exclude=[int(held[0])], **args))  # FTS5 path
    assert set(left) == set(every) - {int(held[0])}
    assert all(left[r] == pytest.approx(every[r], abs=1e-5) for r in left)
