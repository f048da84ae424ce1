"""The real bundled model: vectors, fingerprints, and the seed round trip (marked slow; CI runs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from semsearch import Index, ModelMismatch
from semsearch.embed import DEFAULT_MODEL, paper_text, resolve_model

from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_bundled_model_resolves_offline():
    name, target = resolve_model(None)
    assert name == DEFAULT_MODEL and os.path.isdir(target)
    assert resolve_model("all-MiniLM-L6-v2") == (name, target)


def test_vectors_are_normalised_float32(real_embedder):
    v = real_embedder.encode(["sharding embedding tables", "video generation with transformers"])
    assert v.dtype == np.float32 and v.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert len(real_embedder.fingerprint) == 16


def test_partitioning_query_ranks_a_sharding_paper_first(real_index_path, real_embedder):
    with Index.open(real_index_path, embedder=real_embedder) as idx:
        top = idx.search("partitioning embedding tables across devices", k=3)[0]
    assert "shard" in (top.title or top.paper.abstract).lower()


def test_index_vectors_are_the_model_vectors_of_title_and_abstract(real_index_path, real_embedder):
    with Index.open(real_index_path, embedder=real_embedder) as idx:
        paper = idx.papers()[0]
        stored = idx._vectors.reconstruct([0])[0]
    np.testing.assert_allclose(stored, real_embedder.encode([paper_text(paper)])[0], atol=1e-5)


def test_real_model_refuses_an_index_built_with_another(seed_index_path, real_embedder):
    with pytest.raises(ModelMismatch, match=r"index built with fake-hash \(dim 64.*query model .*MiniLM.*\(dim 384\)"):
        Index.open(seed_index_path, embedder=real_embedder)


def test_cli_search_json_in_a_new_process(real_index_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "semsearch.cli", "search", "quantization of LLM weights", "-k", "2",
         "--index", str(real_index_path), "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, check=True,
    ).stdout
    hits = json.loads(out)
    assert [h["rank"] for h in hits] == [1, 2]
    assert "quantization" in (hits[0]["title"] or hits[0]["abstract"]).lower()
