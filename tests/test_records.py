"""Merging raw abstracts into papers: the seed count, each merged group, the near-duplicate rule."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.ingest import RawRecord, read_paths
from semsearch.records import (
    NEAR_DUPLICATE_CONTAINMENT,
    NEAR_IDENTICAL_CONTAINMENT,
    REWORDED_CONTAINMENT,
    as_records,
    containment,
    content_id,
    likely_same,
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
    # titles that disagree need near-identical texts (was NEAR_DUPLICATE_CONTAINMENT, 0.5, before
    # companion papers with distinct ids were found merged in CSFCube)
    assert same_paper(NEAR_IDENTICAL_CONTAINMENT, "A title", "Something else entirely")
    assert not same_paper(NEAR_DUPLICATE_CONTAINMENT, "A title", "Something else entirely")
    assert likely_same(NEAR_DUPLICATE_CONTAINMENT, "A title", "Something else entirely")
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
    raw = [r for f in read_paths([CORPUS]) for r in f.records]
    stored = [r for p in merge(raw[:split]).papers for r in as_records(p)]
    incremental = merge(stored + raw[split:], known=len(stored))
    full = merge(stored + raw[split:])
    assert incremental.papers == full.papers and len(full.papers) == 25


# --- explicit ids are identity ---------------------------------------------------------------


def test_same_text_with_different_explicit_ids_is_two_papers_and_reported():
    a = RawRecord(ABSTRACT, "a.jsonl", 1, title="Sharding", id="p1")
    b = RawRecord(ABSTRACT, "a.jsonl", 2, title="Sharding", id="p2")
    c = RawRecord(ABSTRACT, "b.txt", 1, arxiv_id="2101.00001")  # an arXiv id vs an input id
    merged = merge([a, b, c])
    assert sorted(p.id for p in merged.papers) == ["2101.00001", "p1", "p2"]
    assert not merged.groups
    assert {(d.papers, d.containment, d.reason) for d in merged.likely_duplicates} == {
        (("p1", "p2"), 1.0, "different ids"),
        (("p1", "2101.00001"), 1.0, "different ids"),
        (("p2", "2101.00001"), 1.0, "different ids"),
    }


def test_id_less_versions_still_merge_into_the_paper_with_an_id():
    extended = ABSTRACT + " We release the code and the traces of every run."
    with_id = RawRecord(ABSTRACT, "a.jsonl", 1, title="Sharding", id="doi:10.1/x")
    copy = RawRecord(ABSTRACT, "page.txt", 3)
    version = RawRecord(extended, "page.txt", 9, title="Sharding")
    [paper] = merge([copy, version, with_id]).papers
    assert paper.id == paper.given_id == "doi:10.1/x" and paper.abstract == extended


def test_an_id_less_version_joins_one_of_two_papers_with_ids_never_both():
    a = RawRecord(ABSTRACT, "a.jsonl", 1, id="p1")
    b = RawRecord(ABSTRACT + " Extended.", "a.jsonl", 2, id="p2")
    loose = RawRecord(ABSTRACT, "page.txt", 1)
    merged = merge([loose, a, b])
    assert sorted(p.id for p in merged.papers) == ["p1", "p2"]
    assert [d.reason for d in merged.likely_duplicates] == ["different ids"]


def test_titles_that_disagree_keep_id_less_companions_apart_unless_near_identical():
    shared = ABSTRACT + " " + OTHER
    a = RawRecord(shared + " " + " ".join(f"alpha{i} beta{i}" for i in range(20)), "x.txt", 1, title="Sharding tables")
    b = RawRecord(shared + " " + " ".join(f"gamma{i} delta{i}" for i in range(20)), "x.txt", 2, title="Quantizing models")
    c = containment(shingles(a.abstract), shingles(b.abstract))
    assert NEAR_DUPLICATE_CONTAINMENT <= c < NEAR_IDENTICAL_CONTAINMENT
    merged = merge([a, b])
    assert len(merged.papers) == 2
    [d] = merged.likely_duplicates
    assert d.reason == "titles disagree" and d.sources == ("x.txt:1", "x.txt:2")
    assert len(merge([a, RawRecord(a.abstract + " Minor.", "y.txt", 1, title="Other")]).papers) == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 30)), min_size=47, max_size=47), st.booleans())
def test_random_explicit_ids_are_never_merged_away(labels, as_arxiv):
    """Give the seed records random explicit ids (some none, some shared): every distinct id still
    names its own paper, so merging never reduces the number of distinct ids."""
    raw = [r for f in read_paths([CORPUS]) for r in f.records]
    assert len(raw) == len(labels)
    ids = [None if k is None else (f"2101.{k:05d}" if as_arxiv else f"id-{k}") for k in labels]
    records = [
        RawRecord(r.abstract, r.source, r.line, title=r.title, arxiv_id=i if as_arxiv else None,
                  id=None if as_arxiv else i)
        for r, i in zip(raw, ids)
    ]
    papers = merge(records).papers
    explicit = [p.arxiv_id if as_arxiv else p.given_id for p in papers]
    given_ids = {i for i in ids if i}
    assert sorted(i for i in explicit if i) == sorted(given_ids)  # each id on exactly one paper
    assert len({p.id for p in papers}) == len(papers) >= len(given_ids)


# --- ids do not depend on input order --------------------------------------------------------

PAGES = sorted(CORPUS.iterdir())


def _ids(papers) -> dict[str, str]:
    """paper id -> sorted sources, in page:line form (which records make each paper)."""
    return {p.id: sorted(map(short, p.sources)) for p in papers}


def _records(pages) -> list:
    return [r for f in read_paths(list(pages)) for r in f.records]


def _build_then_add(*batches):
    papers = merge(_records(batches[0])).papers
    for batch in batches[1:]:
        stored = [r for p in papers for r in as_records(p)]
        papers = merge(stored + _records(batch), known=len(stored)).papers
    return papers


@pytest.fixture(scope="module")
def seed_ids():
    return _ids(merge(_records(PAGES)).papers)


def test_ids_do_not_depend_on_the_order_of_pages(seed_ids):
    for order in itertools.permutations(PAGES):
        assert _ids(merge(_records(order)).papers) == seed_ids, [p.name[:3] for p in order]


def test_build_some_pages_then_add_the_rest_gives_the_same_ids(seed_ids):
    for k in range(1, len(PAGES)):
        for first in itertools.combinations(PAGES, k):
            rest = [p for p in PAGES if p not in first]
            assert _ids(_build_then_add(first, rest)) == seed_ids, [p.name[:3] for p in first]


def test_adding_pages_one_at_a_time_in_any_order_gives_the_same_ids(seed_ids):
    for order in itertools.permutations(PAGES):
        assert _ids(_build_then_add(*[[p] for p in order])) == seed_ids, [p.name[:3] for p in order]


def test_a_paper_that_gains_a_title_keeps_its_old_id_as_an_alias(seed_ids):
    papers = merge(_records(PAGES[:3])).papers
    pu_before = next(p for p in papers if "puNCE" in p.abstract and p.title is None)
    assert pu_before.title is None and pu_before.id == content_id(pu_before.abstract)
    pu = next(p for p in _build_then_add(PAGES[:3], PAGES[3:]) if pu_before.versions[0] in p.versions)
    assert pu.title == "Positive Unlabeled Contrastive Learning" and pu.id == content_id(pu.title)
    assert pu.id in seed_ids and pu.aliases == (pu_before.id,)


def test_bibtex_keys_are_ids_when_an_entry_has_no_doi_or_arxiv_id():
    from semsearch.ingest import stream_bibtex

    text = "".join(f"@article{{{key}, title={{{title}}}, abstract={{{ABSTRACT}}}}}\n"
                   for key, title in (("smith2020", "Sharding"), ("smith2020b", "Sharding, extended")))
    records = [r for r in stream_bibtex("refs.bib", text.splitlines(keepends=True)) if isinstance(r, RawRecord)]
    assert [r.id for r in records] == ["bibtex:smith2020", "bibtex:smith2020b"]
    assert sorted(p.id for p in merge(records).papers) == ["bibtex:smith2020", "bibtex:smith2020b"]
