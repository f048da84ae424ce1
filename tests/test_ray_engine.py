"""The Ray engine: the same vectors and the same index as the local path, and one-line errors.

One local Ray session (2 CPUs, 2 actors) serves the whole module: starting Ray costs seconds.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from semsearch import Index, SemsearchError, build, cli

pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'semsearch[ray]'")
pytest.importorskip("pyarrow", reason="the ray extra is not installed: pip install 'semsearch[ray]'")

from semsearch.embed import onnx as ob
from semsearch.embed import paper_text
from semsearch.embed.ray import RayEmbedder

from .conftest import CORPUS

QUERIES = ["sharding embedding tables", "quantization of LLM weights", "video generation with transformers"]


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray with 2 CPUs, shut down after the module; RayEmbedder uses it as it is."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    from semsearch.ingest import read_paths
    from semsearch.records import merge

    papers = merge(r for fr in read_paths([CORPUS]) for r in fr.records).papers
    return [paper_text(p) for p in papers] + QUERIES  # 28 texts


@pytest.mark.slow
def test_ray_vectors_are_bit_identical_to_local_ones(ray_session, texts, monkeypatch):
    # Units of 10 texts: 3 units for 2 actors; the last (8 texts) runs the light query session, as locally.
    monkeypatch.setattr(ob, "ENCODE_CHUNK", 10)
    local = ob.OnnxEmbedder(quantized=True)
    want = local.encode(texts)
    remote = RayEmbedder(backend="onnx-int8", workers=2, unit_size=10)
    got = remote.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    assert np.array_equal(got, want)
    assert (remote.name, remote.fingerprint, remote.dim) == (local.name, local.fingerprint, local.dim)
    # Not equal by luck: int8 vectors depend on the batches (activation scales are per batch).
    monkeypatch.setattr(ob, "ENCODE_CHUNK", 2048)
    assert not np.array_equal(local.encode(texts), want)


@pytest.mark.slow
def test_build_with_engine_ray_writes_the_local_index(ray_session, tmp_path):
    build([CORPUS], tmp_path / "local", backend="onnx-int8", cache=False)
    build([CORPUS], tmp_path / "ray", backend="onnx-int8", cache=False, engine="ray", workers=2)
    with Index.open(tmp_path / "local") as a, Index.open(tmp_path / "ray") as b:
        assert (a.manifest.model_fingerprint, a.manifest.corpus_hash) == (b.manifest.model_fingerprint,
                                                                          b.manifest.corpus_hash)
        for q in QUERIES:
            hits_a, hits_b = a.search(q, k=5, mode="dense"), b.search(q, k=5, mode="dense")
            assert [(h.paper.id, h.score) for h in hits_a] == [(h.paper.id, h.score) for h in hits_b]


@pytest.mark.slow
def test_an_actor_with_other_weights_fails_the_build_in_one_line(ray_session, monkeypatch):
    monkeypatch.setattr(RayEmbedder, "fingerprint", property(lambda self: "0123456789abcdef"))
    with pytest.raises(SemsearchError, match=r"^Ray embedding failed: .*has weights [\w-]+, the driver's "
                                             r"0123456789abcdef: install the same model on every node$"):
        RayEmbedder(backend="onnx-int8", workers=1).encode(["a text"])


def test_more_workers_than_cpus_is_refused_before_any_actor_starts(ray_session):
    with pytest.raises(SemsearchError, match=r"--workers 3 needs 3 CPUs and the Ray cluster has 2: lower --workers"):
        RayEmbedder(backend="onnx-int8", workers=3).encode(["a text"])


def test_without_ray_the_cli_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, find_spec("ray") is None
    result = CliRunner().invoke(cli.app, ["build", str(CORPUS), "--index", str(tmp_path / "i"), "--engine", "ray"])
    assert result.exit_code == 1
    assert result.stderr == "error: --engine ray needs Ray Data, which is not installed: pip install 'semsearch[ray]'\n"
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a staging directory


def test_an_unknown_engine_names_the_choices(tmp_path):
    result = CliRunner().invoke(cli.app, ["build", str(CORPUS), "--index", str(tmp_path / "i"), "--engine", "spark"])
    assert result.exit_code == 1 and result.stderr == "error: unknown engine 'spark': choose one of local, ray\n"
