"""Merging raw abstracts into papers: the seed count, each merged group, the near-duplicate rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch.ingest import RawRecord, read_paths
from semsearch.records import (
    NEAR_DUPLICATE_CONTAINMENT,
    REWORDED_CONTAINMENT,
    containment,
    content_id,
    merge,
    same_paper,
    shingles,
)

from .conftest import CORPUS
from .test_ingest import ABSTRACT, OTHER

# The seed corpus, read by hand: 47 abstracts in 5 pages describe 25 distinct papers.
# 14 papers appear more than once; these are their sources (page prefix : line), and why.
SEED_GROUPS = {
    # The same text on several pages (whitespace/NBSP aside):
    "Movie Gen: A Cast of Media Foundation Models": ["000:2", "001:1", "002:19", "004:66"],
    "The Llama 3 Herd of Models": ["000:3", "003:1", "004:17"],
    "SpinQuant: LLM quantization with learned rotations": ["000:4", "002:26"],
    "Microscaling Data Formats for Deep Learning": ["000:5", "002:33", "004:52"],
    "Future Gradient Descent for Adapting the Temporal Shifting Data Distribution in Online Recommendation Systems": [
        "000:8", "004:59"],
    "AutoShard: Automated Embedding Table Sharding for Recommender Systems": ["000:9", "004:45"],
    "Frequency-aware SGD for Efficient Embedding Learning with Provable Benefits": ["000:11", "004:94"],
    "On the Runtime-Efficacy Trade-off of Anomaly Detection Techniques for Real-Time Streaming Data": [
        "002:61", "004:122"],
    "Alternate Model Growth and Pruning for Efficient Training of Recommendation Systems": ["003:10", "004:73"],
    # One word changed between pages ("almost"/"nearly", "49x"/"48x"): two versions.
    "FlexShard: Flexible Sharding for Industry-Scale Sequence Recommendation Models": [
        "000:6", "001:2", "002:47", "004:38"],
    "RecD: Deduplication for End-to-End Deep Learning Recommendation Model Training Infrastructure": [
        "000:7", "002:40", "003:7", "004:31"],
    # Extended version: 002 adds a closing sentence to 004's text.
    "Accelerating Transformer Inference and Training with 2:4 Activation Sparsity": ["002:12", "004:80"],
    # Reworded versions: arXiv v1 (puNCE, untitled on page 000) and a later version (004).
    "Positive Unlabeled Contrastive Learning": ["000:10", "004:24"],
    # Reworded and retitled versions of the DCT paper (shares most sentences).
    "Fast Distributed Training of Deep Neural Networks: Dynamic Communication Thresholding for Model and Data "
    "Parallelism": ["002:54", "004:108"],
}
SEED_PAPERS = 25


@pytest.fixture(scope="module")
def seed_merge():
    return merge([r for f in read_paths([CORPUS]) for r in f.records])


def short(source: str) -> str:
    path, line = source.rsplit(":", 1)
    return f"{Path(path).name[:3]}:{line}"


def test_seed_corpus_yields_exactly_its_distinct_papers(seed_merge):
    assert len(seed_merge.papers) == SEED_PAPERS
    assert len({p.id for p in seed_merge.papers}) == SEED_PAPERS


def test_each_merged_seed_group_is_explained(seed_merge):
    groups = {p.title: sorted(map(short, p.sources)) for p in seed_merge.papers if len(p.sources) > 1}
    assert groups == {title: sorted(sources) for title, sources in SEED_GROUPS.items()}


def test_versions_are_kept_longest_first(seed_merge):
    sparsity = next(p for p in seed_merge.papers if p.title and p.title.startswith("Accelerating"))
    assert len(sparsity.versions) == 2
    assert sparsity.versions[0] == sparsity.abstract
    assert sparsity.abstract.endswith("surge in GPU FLOPs.")  # the extended version is primary


def test_metadata_is_merged_from_every_source(seed_merge):
    llama = next(p for p in seed_merge.papers if p.title == "The Llama 3 Herd of Models")
    assert llama.id == llama.arxiv_id == "2407.21783"  # id from page 003, title and date from 004
    assert llama.date == "2024-07-31" and llama.authors[0] == "Aaron Grattafiori"


def test_titles_are_never_invented(seed_merge):
    recshard = next(p for p in seed_merge.papers if p.abstract.startswith("We propose RecShard"))
    assert recshard.title is None
    assert recshard.display_title().startswith("[no title] We propose RecShard")
    assert recshard.id == content_id(recshard.abstract)


def test_different_arxiv_ids_are_never_merged():
    a = RawRecord(ABSTRACT, "a.txt", 1, arxiv_id="2101.00001")
    b = RawRecord(ABSTRACT, "b.txt", 1, arxiv_id="2101.00002")
    assert len(merge([a, b]).papers) == 2


def test_same_arxiv_id_merges_different_texts():
    a = RawRecord(ABSTRACT, "a.txt", 1, arxiv_id="2101.00001", title="T")
    b = RawRecord(OTHER, "b.txt", 1, arxiv_id="2101.00001")
    [paper] = merge([a, b]).papers
    assert set(paper.versions) == {ABSTRACT, OTHER} and paper.abstract == paper.versions[0]
    assert paper.title == "T"


def test_near_duplicate_rule_thresholds():
    assert same_paper(NEAR_DUPLICATE_CONTAINMENT, "A title", "Something else entirely")
    assert same_paper(REWORDED_CONTAINMENT, None, "Any title")
    assert not same_paper(REWORDED_CONTAINMENT, "Sharding embedding tables", "Quantizing language models")
    assert not same_paper(REWORDED_CONTAINMENT - 0.01, None, None)


def test_containment_is_one_for_an_extended_text():
    assert containment(shingles(ABSTRACT), shingles(ABSTRACT + " We also release code.")) == 1.0
    assert containment(shingles(ABSTRACT), shingles(OTHER)) < 0.05


def test_merge_is_independent_of_input_order(seed_merge):
    raw = [r for f in read_paths([CORPUS]) for r in f.records]
    reversed_ids = sorted(p.id for p in merge(raw[::-1]).papers)
    assert reversed_ids == sorted(p.id for p in seed_merge.papers)


@pytest.mark.parametrize("split", [5, 20, 33, 46])
def test_merging_new_records_into_known_papers_equals_merging_everything(split):
    """index.add merges new records against stored papers with `known`: only pairs involving a
    new record are searched, and the papers must be those of a full merge."""
    from semsearch.index import as_records

    raw = [r for f in read_paths([CORPUS]) for r in f.records]
    stored = [r for p in merge(raw[:split]).papers for r in as_records(p)]
    incremental = merge(stored + raw[split:], known=len(stored))
    full = merge(stored + raw[split:])
    assert incremental.papers == full.papers and len(full.papers) == 25
