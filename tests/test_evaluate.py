"""BEIR loading and retrieval metrics, checked against hand-computed values."""

from __future__ import annotations

import json
import math

import pytest

from semsearch.errors import CorpusError
from semsearch.evaluate import load_beir, mrr, ndcg, recall, score_run


def test_ndcg_matches_hand_computation():
    judged = {"a": 2, "b": 1, "z": 1}
    ranked = ["x", "a", "b"]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(ranked, judged, 10) == pytest.approx(dcg / idcg)
    assert ndcg(["a", "b", "z"], judged, 10) == pytest.approx(1.0)
    assert ndcg(["x"], judged, 10) == 0.0


def test_recall_and_mrr():
    judged = {"a": 1, "b": 1, "c": 0}
    assert recall(["c", "a"], judged, 100) == 0.5
    assert mrr(["c", "x", "b"], judged, 10) == pytest.approx(1 / 3)
    assert mrr(["c"], judged, 10) == 0.0


def test_score_run_averages_over_judged_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    m = score_run({"q1": ["a"], "q2": ["x", "b"]}, qrels)
    assert m["queries"] == 2
    assert m["mrr@10"] == pytest.approx((1 + 0.5) / 2)


def _beir(tmp_path, corpus=None, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\n"):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        corpus if corpus is not None else json.dumps({"_id": "d1", "title": "T", "text": "Some text"}) + "\n"
    )
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "what"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text(qrels)
    return tmp_path


def test_load_beir(tmp_path):
    data = load_beir(_beir(tmp_path))
    assert [r.id for r in data.records] == ["d1"] and data.qrels == {"q1": {"d1": 1}}


def test_bad_beir_lines_name_file_and_line(tmp_path):
    with pytest.raises(CorpusError, match=r"corpus.jsonl:2: invalid JSON"):
        load_beir(_beir(tmp_path, corpus=json.dumps({"_id": "d1", "text": "x"}) + "\n{oops\n"))


def test_missing_beir_file_is_named(tmp_path):
    d = _beir(tmp_path)
    (d / "queries.jsonl").unlink()
    with pytest.raises(CorpusError, match="queries.jsonl: missing"):
        load_beir(d)


def test_malformed_qrels_line(tmp_path):
    with pytest.raises(CorpusError, match=r"test.tsv:2: expected"):
        load_beir(_beir(tmp_path, qrels="query-id\tcorpus-id\tscore\nq1 d1 1\n"))


def test_metrics_match_trec_eval_reference():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    import random

    rng = random.Random(7)
    docs = [f"d{i}" for i in range(150)]
    qrels = {f"q{q}": {d: rng.choice([1, 1, 2]) for d in rng.sample(docs, rng.randint(1, 6))} for q in range(25)}
    run = {q: rng.sample(docs, 120) for q in qrels}
    mine = {q: (ndcg(run[q], qrels[q], 10), recall(run[q], qrels[q], 100), mrr(run[q][:10], qrels[q], 10)) for q in qrels}
    # trec_eval ranks by score; give strictly decreasing scores so the order is ours.
    as_scores = lambda ranked: {d: float(len(ranked) - i) for i, d in enumerate(ranked)}  # noqa: E731
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "recip_rank"})
    full = ev.evaluate({q: as_scores(r) for q, r in run.items()})
    cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate({q: as_scores(r[:10]) for q, r in run.items()})
    for q in qrels:
        assert mine[q][0] == pytest.approx(full[q]["ndcg_cut_10"], abs=1e-6)
        assert mine[q][1] == pytest.approx(full[q]["recall_100"], abs=1e-6)
        assert mine[q][2] == pytest.approx(cut[q]["recip_rank"], abs=1e-6)


def test_evaluate_on_a_small_beir_fixture(tmp_path, monkeypatch):
    from semsearch.evaluate import evaluate
    from tests.conftest import FakeEmbedder

    monkeypatch.setattr("semsearch.embed.make_embedder", lambda model=None, backend="auto": FakeEmbedder())
    monkeypatch.setattr("semsearch.embed.query_embedder_for", lambda model, fingerprint: FakeEmbedder())
    (tmp_path / "qrels").mkdir()
    docs = {
        "d1": "Sharding embedding tables across devices for recommendation training.",
        "d2": "Post-training quantization of language model weights with rotations.",
        "d3": "Galaxy formation and dust temperature in the early universe.",
    }
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items()))
    (tmp_path / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "embedding table sharding"}) + "\n" + json.dumps({"_id": "q2", "text": "quantization of weights"}) + "\n"
    )
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    m = evaluate(tmp_path, mode="lexical")
    assert m["queries"] == 2 and m["ndcg@10"] == pytest.approx(1.0) and m["mrr@10"] == pytest.approx(1.0)
    assert set(m) >= {"ndcg@10", "recall@100", "mrr@10", "queries"}
