"""Searching: the array path against a brute-force oracle, hits, papers, notebook conversions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semsearch import Filters, Hits, Index, QueryError, fusion
from semsearch.embed import paper_text

from .conftest import ROOT

PARAPHRASES = ROOT / "benchmarks" / "data" / "paraphrases.jsonl"
SPINQUANT = "62de3a6cd136"


def test_search_vectors_matches_brute_force(seed_index, fake):
    papers = seed_index.papers()
    corpus = fake.encode([paper_text(p) for p in papers])
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(7, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for k in (1, 5, 25, 40):
        found = seed_index.search_vectors(queries, k)
        expected = corpus @ queries.T
        kk = min(k, 25)
        assert found.rows.shape == found.scores.shape == (7, kk)
        for q in range(7):
            order = np.argsort(-expected[:, q], kind="stable")[:kk]
            np.testing.assert_allclose(found.scores[q], expected[order, q], atol=1e-5)
            # each returned row really has the returned score (tie-safe check of the ids)
            np.testing.assert_allclose(expected[found.rows[q], q], found.scores[q], atol=1e-5)


def test_text_search_delegates_to_vectors(seed_index, fake):
    hits = seed_index.search("embedding table sharding for recommendation", k=4, mode="dense")
    vec = fake.encode(["embedding table sharding for recommendation"])
    found = seed_index.search_vectors(vec, 4)
    assert [h.score for h in hits] == pytest.approx(found.scores[0].tolist())
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_search_batch_equals_single_searches(seed_index):
    qs = ["quantization of language models", "video generation"]
    batch = seed_index.search_batch(qs, k=3)
    assert [[h.id for h in hits] for hits in batch] == [[h.id for h in seed_index.search(q, 3)] for q in qs]


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_refused(seed_index, query):
    with pytest.raises(QueryError, match="empty query"):
        seed_index.search(query)


def test_bad_k_and_bad_vectors_are_refused(seed_index):
    with pytest.raises(QueryError, match="k must be at least 1"):
        seed_index.search("x", k=0)
    with pytest.raises(QueryError, match=r"shape \(n, 64\)"):
        seed_index.search_vectors(np.zeros((1, 3), dtype=np.float32))


def test_hits_convert_to_pandas_and_html(seed_index):
    hits = seed_index.search("recommendation model training", k=3)
    assert isinstance(hits, Hits)
    df = hits.to_pandas()
    assert list(df["rank"]) == [1, 2, 3]
    assert {"id", "title", "arxiv_id", "score", "abstract"} <= set(df.columns)
    html = hits._repr_html_()
    assert html.startswith("<table>") and "IDF mass" in html and html.count("<tr>") == 4


def test_untitled_papers_show_a_marked_excerpt_in_html(seed_index):
    html = seed_index.papers()._repr_html_()
    assert "[no title] We propose RecShard" in html


def test_info_reports_model_dim_count_and_sizes(seed_index):
    info = seed_index.info()
    assert (info["model"], info["dim"], info["count"]) == ("fake-hash", 64, 25)
    assert set(info["files"]) == {"manifest.json", "vectors.faiss", "papers.sqlite"}
    assert info["bytes"] == sum(info["files"].values()) > 0


def test_open_without_embedder_uses_the_manifest_model_lazily(seed_index_path):
    idx = Index.open(seed_index_path)  # must not load a model until text is embedded
    assert idx._embedder is None and len(idx.papers()) == 25
    idx.close()


# --- modes, filters, hygiene ----------------------------------------------------------

from semsearch.query import fuse, mmr, rrf  # noqa: E402


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filters_apply_before_ranking_so_k_results_come_back(seed_index, mode):
    f = Filters(year_from=2022)
    hits = seed_index.search("recommendation model training", k=5, mode=mode, filters=f)
    assert len(hits) == 5
    assert all(h.paper.year and h.paper.year >= 2022 for h in hits)
    unfiltered = seed_index.search("recommendation model training", k=5, mode=mode)
    assert sum(1 for h in unfiltered if h.paper.year and h.paper.year >= 2022) < 5  # post-filtering would lose some


def test_category_source_and_year_filters(seed_index):
    assert [h.title for h in seed_index.search("training", k=5, filters=Filters(categories=("ir",)))] == [
        "Alternate Model Growth and Pruning for Efficient Training of Recommendation Systems"
    ]
    hits = seed_index.search("recommendation", k=30, filters=Filters(sources=("003_",)))
    assert len(hits) == 10 and all(any("003_" in s for s in h.paper.sources) for h in hits)
    hits = seed_index.search("models", k=30, mode="lexical", filters=Filters(year_from=2020, year_to=2020))
    assert {h.paper.date[:4] for h in hits} == {"2020"} and len(hits) == 2


def test_filter_matching_nothing_is_a_clear_error(seed_index):
    with pytest.raises(QueryError, match=r"no paper matches the filters \(year 1990–1991\)"):
        seed_index.search("x", filters=Filters(year_from=1990, year_to=1991))


def test_unknown_mode_is_refused(seed_index):
    with pytest.raises(QueryError, match="unknown mode 'fuzzy'"):
        seed_index.search("x", mode="fuzzy")


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_results_never_repeat_a_paper(seed_index, mode):
    hits = seed_index.search("embedding sharding recommendation quantization", k=25, mode=mode, diverse=True)
    assert len({h.id for h in hits}) == len(hits)


def test_scores_say_what_they_are(seed_index):
    assert seed_index.search("x y", mode="dense")[0].score_kind == "cosine"
    assert seed_index.search("sharding", mode="lexical")[0].score_kind == "bm25"
    assert seed_index.search("sharding", mode="hybrid").as_dicts()[0]["score_kind"] == "fused"


def test_rrf_adds_reciprocal_ranks():
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert [r for r, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_fuse_scales_each_channel_then_mixes():
    fused = dict(fuse([(1, 0.9), (2, 0.5)], [(2, 12.0), (3, 4.0)], alpha=0.5))
    assert fused == pytest.approx({1: 0.5, 2: 0.5, 3: 0.0})
    assert [r for r, _ in fuse([(1, 0.9), (2, 0.5)], [(2, 12.0), (3, 4.0)], alpha=0.7)] == [1, 2, 3]


def test_mmr_skips_near_copies():
    v = np.array([[1, 0, 0], [0.999, 0.0447, 0], [0, 1, 0]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert mmr(np.array([0.9, 0.89, 0.5]), v, 2, lam=0.5) == [0, 2]
    assert mmr(np.array([0.9, 0.89, 0.5]), v, 2, lam=1.0) == [0, 1]


# --- related papers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    ["2407.21783", "arXiv:2407.21783", "2407.21783v2", "the llama 3 herd of models", "The Llama 3 Herd of Model"],
)
def test_resolve_by_id_arxiv_id_or_title(seed_index, ref):
    _, paper = seed_index.resolve(ref)
    assert paper.title == "The Llama 3 Herd of Models"


def test_resolve_by_title_head_and_record_id(seed_index):
    _, paper = seed_index.resolve("FlexShard")
    assert paper.title.startswith("FlexShard:")
    assert seed_index.resolve(paper.id)[1] == paper


def test_ambiguous_title_lists_candidates(seed_index):
    with pytest.raises(QueryError, match=r"'positive unlabeled' matches 2 papers, give one id: .*Positive Unlabeled"):
        seed_index.resolve("positive unlabeled")


def test_unknown_reference(seed_index):
    with pytest.raises(QueryError, match="no paper with id, arXiv id or title 'nothing like this'"):
        seed_index.resolve("nothing like this")


def test_similar_never_returns_the_paper_itself(seed_index):
    row, paper = seed_index.resolve("FlexShard")
    hits = seed_index.similar("FlexShard", k=24)
    assert len(hits) == 24 and paper.id not in {h.id for h in hits}


def test_similar_text_excludes_the_paper_it_is_a_version_of_and_says_so(seed_index):
    _, paper = seed_index.resolve("Accelerating Transformer Inference and Training with 2:4 Activation Sparsity")
    shorter = paper.versions[-1]
    hits = seed_index.similar(text=shorter, k=5)
    assert paper.id not in {h.id for h in hits} and len(hits) == 5
    assert [(e.id, e.containment) for e in hits.excluded] == [(paper.id, 1.0)]
    assert hits.excluded[0].reason == "the text is a version of this paper (3-gram containment 1.00)"
    assert hits.excluded[0].as_dict()["title"] == paper.title


def test_similar_text_excludes_a_pdf_copy_of_an_abstract(seed_index):
    from benchmarks.similar_text import pdf_copy

    _, paper = seed_index.resolve("SpinQuant")
    copy = pdf_copy(paper.abstract, 40)  # words hyphenated across line breaks: containment 0.89
    assert [e.id for e in seed_index.similar(text=copy, k=3).excluded] == [paper.id]


def paraphrases() -> list[dict]:
    return [json.loads(line) for line in PARAPHRASES.read_text(encoding="utf-8").splitlines()]


def test_similar_text_never_hides_the_paper_a_paraphrase_is_of(seed_index):
    """Hand-written paraphrases share up to 0.44 of their 3-grams with their paper: shown, never left out."""
    for p in paraphrases():
        hits = seed_index.similar(text=p["text"], k=24)
        assert hits.excluded == () and p["id"] in {h.id for h in hits}, p["title"]
    spinquant = next(p for p in paraphrases() if p["id"] == SPINQUANT and p["style"] == "close")
    assert seed_index.similar(text=spinquant["text"], k=3)[0].id == SPINQUANT


def test_similar_text_shorter_than_an_abstract_is_never_a_version(seed_index):
    hits = seed_index.similar(text="automated embedding table sharding for recommender systems", k=24)
    autoshard = seed_index.resolve("AutoShard")[1].id
    assert hits.excluded == () and autoshard in {h.id for h in hits}


def test_similar_reference_reports_the_paper_itself_as_excluded(seed_index):
    _, paper = seed_index.resolve("FlexShard")
    hits = seed_index.similar("FlexShard", k=3)
    assert [(e.id, e.reason, e.containment) for e in hits.excluded] == [(paper.id, "the paper asked about", None)]


def test_similar_text_reports_only_papers_that_pass_the_filters(seed_index):
    _, paper = seed_index.resolve("Accelerating Transformer Inference and Training with 2:4 Activation Sparsity")
    hits = seed_index.similar(text=paper.abstract, k=3, filters=Filters(year_to=2020))
    assert hits.excluded == () and paper.id not in {h.id for h in hits}


@pytest.mark.slow
def test_real_model_ranks_each_paraphrased_paper_first(real_index_path, real_embedder):
    with Index.open(real_index_path, embedder=real_embedder) as idx:
        firsts = {(p["id"], p["style"]): idx.similar(text=p["text"], k=1)[0].id == p["id"] for p in paraphrases()}
    assert firsts[(SPINQUANT, "close")] and firsts[(SPINQUANT, "free")]
    assert all(firsts.values()), [key for key, first in firsts.items() if not first]


def test_similar_needs_exactly_one_of_ref_and_text(seed_index):
    with pytest.raises(QueryError, match="not both"):
        seed_index.similar("FlexShard", text="something")
    with pytest.raises(QueryError, match="not both"):
        seed_index.similar()


def test_embeddings_hand_out_paper_ids_with_their_vectors(seed_index):
    ids, vectors = seed_index.embeddings()
    assert ids == [p.id for p in seed_index.papers()] and vectors.shape == (len(seed_index), seed_index.manifest.dim)
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    one_id, one = seed_index.embeddings(["AutoShard"])
    assert one_id[0] in ids and np.array_equal(one[0], vectors[ids.index(one_id[0])])
    with pytest.raises(QueryError):
        seed_index.embeddings(["no such paper at all"])


def test_dataframes_carry_the_display_title_the_table_shows(seed_index):
    pytest.importorskip("pandas")
    frame = seed_index.papers().to_pandas()
    untitled = frame[frame["title"].isna()]
    assert len(untitled) and untitled["display_title"].str.startswith("[no title]").all()
    assert "display_title" in seed_index.search("sharding", k=3).to_pandas()


def test_paper_by_record_id_or_arxiv_id_never_by_title(seed_index):
    paper = next(p for p in seed_index.papers() if p.arxiv_id)
    for ref in (paper.id, paper.arxiv_id, f"arXiv:{paper.arxiv_id}v3", f"https://arxiv.org/abs/{paper.arxiv_id}"):
        assert seed_index.paper(ref) == paper
    titled = next(p for p in seed_index.papers() if p.title)
    for ref in (titled.title, "../../etc/passwd", ""):
        with pytest.raises(QueryError, match="no paper with id or arXiv id"):
            seed_index.paper(ref)



def test_plain_similar_is_the_cosine_to_the_reference(seed_index, monkeypatch):
    monkeypatch.setattr(fusion, "SIMILAR", fusion.Related())  # weight 0, no smoothing: cosine
    row, _ = seed_index.resolve("FlexShard")
    hits = seed_index.similar("FlexShard", k=5)
    plain = seed_index.search_vectors(seed_index.vectors([row]), 5, exclude=[row])
    assert hits.score_kind == "cosine"
    assert [h.id for h in hits] == [seed_index.papers()[int(r)].id for r in plain.rows[0]]
    assert [h.score for h in hits] == pytest.approx(plain.scores[0].tolist(), abs=1e-6)


@pytest.mark.parametrize("related", [fusion.Related(20, 1.0, 3, 0.5), fusion.Related(7, 0.5), fusion.Related(10, 0.0, 4, 1.0)])
def test_related_similar_is_pulled_cosine_plus_more_like_this_bm25(seed_index, monkeypatch, related):
    """Oracle: every paper scored by the definition (FTS5's BM25, numpy cosine), against the product's ranking."""
    from semsearch.store import lexical

    monkeypatch.setattr(fusion, "SIMILAR", related)
    row, paper = seed_index.resolve("FlexShard")
    n = len(seed_index)
    vectors = seed_index.vectors(list(range(n)))
    cos = vectors @ vectors[row]
    cos[row] = -9
    query = vectors[row]
    if related.neighbours:
        query = query + related.pull * vectors[np.argsort(-cos, kind="stable")[: related.neighbours]].mean(axis=0)
        query = query / np.linalg.norm(query)
    con = seed_index._store.connection
    mass = fusion.distinctive_terms(con, paper_text(paper), related.terms)
    bm25 = dict(lexical.search(con, " ".join(mass.terms), n, weights=(1.0, 1.0)))
    score = {r: float(vectors[r] @ query) + related.weight * bm25.get(r, 0.0) / mass.upper for r in range(n) if r != row}
    hits = seed_index.similar("FlexShard", k=n - 1)
    assert hits.score_kind == "related" and len(hits) == n - 1
    ids = [p.id for p in seed_index.papers()]
    assert [h.score for h in hits] == pytest.approx(sorted(score.values(), reverse=True), abs=1e-5)
    assert all(h.score == pytest.approx(score[ids.index(h.id)], abs=1e-5) for h in hits)
    assert paper.id not in {h.id for h in hits} and hits.excluded[0].id == paper.id
    top = seed_index.similar("FlexShard", k=3)  # fewer candidates, the same best papers
    assert [h.id for h in top] == [h.id for h in hits][:3]


def test_similar_text_stays_plain_cosine(seed_index):
    text = "automated sharding of embedding tables for recommendation models across many devices"
    hits = seed_index.similar(text=text, k=5)
    vector = seed_index.embed([text])[0]
    plain = seed_index.search_vectors(vector[None], 5)
    assert hits.score_kind == "cosine" and [h.score for h in hits] == pytest.approx(plain.scores[0].tolist(), abs=1e-6)
    assert fusion.SIMILAR.weight > 0 and seed_index.similar("FlexShard", k=3).score_kind == "related"


def test_related_similar_filters_before_ranking_and_diversifies(seed_index):
    f = Filters(year_from=2022)
    hits = seed_index.similar("FlexShard", k=5, filters=f)
    assert hits.score_kind == "related" and len(hits) == 5
    assert all(h.paper.year and h.paper.year >= 2022 for h in hits)
    diverse = seed_index.similar("FlexShard", k=5, diverse=True)
    assert len(diverse) == 5 and seed_index.resolve("FlexShard")[1].id not in {h.id for h in diverse}
