"""The BM25 channel: user text never breaks FTS5 syntax; scores rank matching papers."""

from __future__ import annotations

import re
import sqlite3

from hypothesis import given, settings
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
