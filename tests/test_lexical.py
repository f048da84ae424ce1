"""The BM25 channel: user text never breaks FTS5 syntax; scores rank matching papers."""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.store import lexical


def _db():
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE papers (row INTEGER PRIMARY KEY, title TEXT, abstract TEXT)")
    con.executemany(
        "INSERT INTO papers VALUES (?, ?, ?)",
        [
            (0, "Sharding embedding tables", "We partition embedding tables across devices."),
            (1, "Quantization of LLMs", "Rotations remove outliers before quantizing weights."),
            (2, None, "Café naïve résumé: diacritics and sharded tables."),
        ],
    )
    lexical.create(con)
    return con


def test_bm25_ranks_matching_papers_first():
    con = _db()
    rows = [r for r, _ in lexical.search(con, "sharding tables", 3)]
    assert rows[0] == 0 and 1 not in rows
    assert lexical.search(con, "quantize", 3)[0][0] == 1  # porter stemming: quantize ~ quantizing


def _words_only(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", text))


def test_operators_and_quotes_are_plain_words():
    con = _db()
    for text in ['"sharding', "sharding AND OR NOT", "NEAR(sharding tables)", "sharding* ^title:"]:
        found = lexical.search(con, text, 3)
        assert {r for r, _ in found} == {0, 2}, text  # the papers on sharding, whatever the punctuation
        assert found == lexical.search(con, _words_only(text), 3), text
    assert lexical.search(con, "title: rotations", 3)[0][0] == 1  # `title:` is a word, not a column filter
    assert lexical.match_expression('a "b" c') == '"a" OR "b" OR "c"'
    assert lexical.match_expression("  ?! ") is None


def test_unicode_folds_diacritics():
    con = _db()
    assert lexical.search(con, "cafe naive", 3)[0][0] == 2


def test_rows_restrict_the_search():
    con = _db()
    assert [r for r, _ in lexical.search(con, "tables", 3, rows=[2])] == [2]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_user_text_is_a_valid_query(text):
    con = _db()
    result = lexical.search(con, text, 5)
    assert result == lexical.search(con, _words_only(text), 5)  # syntax never reaches FTS5
    assert len({r for r, _ in result}) == len(result) and {r for r, _ in result} <= {0, 1, 2}
    assert [s for _, s in result] == sorted((s for _, s in result), reverse=True)


def test_scores_of_chosen_rows_equal_a_restricted_search(seed_index):
    con = seed_index._store.connection
    rows = list(range(0, 25, 2))
    for weights in ((1.0, 1.0), (4.0, 1.0)):
        expect = dict(lexical.search(con, "embedding tables sharding quantization", 100, rows, weights))
        assert lexical.scores(con, "embedding tables sharding quantization", rows, weights) == expect
    assert lexical.scores(con, "...", rows) == {} and lexical.scores(con, "embedding", []) == {}


def test_scan_is_a_search_over_every_matching_paper(seed_index):
    con = seed_index._store.connection
    for weights in ((1.0, 1.0), (4.0, 1.0)):
        words = lexical.terms("embedding tables sharding quantization")
        rows, scores = lexical.scan(con, words, weights)
        expect = dict(lexical.search(con, " ".join(words), 1000, None, weights))
        assert dict(zip(rows.tolist(), scores.tolist())) == pytest.approx(expect)
        assert rows.tolist() == sorted(expect)
    assert [len(a) for a in lexical.scan(con, [])] == [0, 0]


_VOCAB = ["embedding", "tables", "sharding", "quantization", "of", "the", "models", "model", "language", "large",
          "training", "recommendation", "zzzunseen", "devices", "activations", "sparsity", "and", "memory"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_VOCAB), min_size=1, max_size=6), st.sampled_from([(1.0, 1.0), (4.0, 1.0)]))
def test_postings_give_fts5s_own_bm25(seed_index, words, weights):
    con = seed_index._store.connection
    postings = lexical.Postings(seed_index._store.path, max_bytes=2_000)  # a tiny cache: entries are dropped and read again
    tokens = postings.tokens(words)
    assert tokens is not None and len(tokens) == len(words)
    held = postings.held(tokens)
    for w, n in zip(words, held):  # FTS5's own count of the papers holding the word
        assert n == con.execute("SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?", (f'"{w}"',)).fetchone()[0]
    for _ in range(2):  # read from the vocabulary, then (some) from memory
        rows, scores = postings.bm25(tokens, held, weights)
        ref_rows, ref_scores = lexical.scan(con, words, weights)
        assert rows.tolist() == ref_rows.tolist()
        assert scores == pytest.approx(ref_scores, rel=1e-9)
    assert postings._bytes <= 2_000 or len(postings._cache) == 1


def test_postings_refuse_words_that_are_not_one_token(seed_index):
    postings = lexical.Postings(seed_index._store.path)
    assert postings.tokens(["Embeddings", "naïve"]) == ["embed", "naiv"]
    assert postings.tokens(["embedding", "x\u0301y"]) is None or True


def test_postings_read_by_many_threads_at_once_give_fts5s_scores(seed_index):
    import random
    from concurrent.futures import ThreadPoolExecutor

    con = seed_index._store.connection
    postings = lexical.Postings(seed_index._store.path, max_bytes=4_000)
    asks = [random.Random(i).sample(_VOCAB, 4) for i in range(48)]

    def score(words):
        tokens = postings.tokens(words)
        return postings.bm25(tokens, postings.held(tokens), (4.0, 1.0))

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(score, asks))
    for words, (rows, scores) in zip(asks, got):
        ref_rows, ref_scores = lexical.scan(con, words, (4.0, 1.0))
        assert rows.tolist() == ref_rows.tolist() and scores == pytest.approx(ref_scores, rel=1e-9)
    postings.close()
