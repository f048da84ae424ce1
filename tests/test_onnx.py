"""The ONNX backend: pooling against a brute-force oracle, the export cache, and (slow) real-model parity."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch import Index, ModelMismatch, SemsearchError, build
from semsearch.embed import DEFAULT_MODEL, SentenceTransformerEmbedder, make_embedder, paper_text, query_embedder_for

from .conftest import CORPUS, ROOT

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

from semsearch.embed import onnx as ob  # noqa: E402

QUERIES = ["sharding embedding tables", "how do I shard embedding tables?", "quantization of LLM weights",
           "video generation with transformers", "recommendation systems", "  graph   neural networks  "]


# --- fast: no model -----------------------------------------------------------------------


def test_mean_pooling_matches_a_loop_over_real_tokens():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 7, 5)).astype(np.float32)
    mask = np.array([[1] * 7, [1, 1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0]])
    got = ob._pool(hidden, mask, "mean")
    for i in range(3):
        want = hidden[i, : mask[i].sum()].mean(axis=0)
        np.testing.assert_allclose(got[i], want / np.linalg.norm(want), atol=1e-6)
    assert got.dtype == np.float32 and got.shape == (3, 5)
    np.testing.assert_allclose(ob._pool(hidden, mask, "cls")[2], hidden[2, 0] / np.linalg.norm(hidden[2, 0]), atol=1e-6)


def test_cache_root_follows_semsearch_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(tmp_path))
    assert ob.onnx_cache_root() == tmp_path / "onnx"
    monkeypatch.delenv("SEMSEARCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ob.onnx_cache_root() == tmp_path / "xdg" / "semsearch" / "onnx"


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    def fail(path: Path) -> None:
        path.write_bytes(b"half a model")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        ob._atomic_write(tmp_path / "model.onnx", fail)
    assert list(tmp_path.iterdir()) == []


def test_models_with_a_dense_layer_are_refused(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]))
    with pytest.raises(SemsearchError, match=r"also has Dense: use --backend torch"):
        ob.read_model_config(tmp_path)


def test_pooling_other_than_mean_cls_max_is_refused(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"pooling_mode_mean_tokens": False, "pooling_mode_mean_sqrt_len_tokens": True}))
    with pytest.raises(SemsearchError, match=r"is not supported by the ONNX backend: use --backend torch"):
        ob.read_model_config(tmp_path)


def test_unknown_backend_names_the_choices():
    with pytest.raises(SemsearchError, match=r"unknown backend 'tf': choose one of auto, torch, onnx, onnx-int8"):
        make_embedder(None, "tf")
    assert isinstance(make_embedder(None, "torch"), SentenceTransformerEmbedder)  # loads nothing yet


def test_importing_the_backend_loads_no_heavy_module():
    code = ("import sys, semsearch, semsearch.embed.onnx, semsearch.embed; "
            "print(sorted({'numpy', 'onnxruntime', 'tokenizers', 'torch', 'onnx'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


# --- slow: the real bundled model, exported once per session into a temporary cache ---------


def _texts() -> list[str]:
    from semsearch.ingest import read_paths
    from semsearch.records import merge

    papers = merge(r for fr in read_paths([CORPUS]) for r in fr.records).papers
    return [paper_text(p) for p in papers][:20] + QUERIES


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    """SEMSEARCH_CACHE_DIR pointed at a temporary folder holding the fp32 and int8 exports."""
    root = Path(os.environ["SEMSEARCH_CACHE_DIR"])  # set for the session by conftest
    _, folder = ob.model_folder(None)
    out = ob.ensure_onnx(folder, quantize=True)
    assert out.parent == root / "onnx"
    yield out


@pytest.fixture(scope="session")
def onnx_fp32(onnx_cache):
    return ob.OnnxEmbedder()


@pytest.fixture(scope="session")
def onnx_int8(onnx_cache):
    return ob.OnnxEmbedder(quantized=True)


@pytest.fixture(scope="session")
def texts():
    return _texts()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


@pytest.mark.slow
def test_export_folder_holds_what_query_time_needs(onnx_cache):
    made_by_queries = {"model.basic.onnx", "model_int8.basic.onnx"}
    assert sorted(p.name for p in onnx_cache.iterdir() if p.name not in made_by_queries) == [
        "model.onnx", "model_int8.onnx", "onnx_config.json", "tokenizer.json"]
    config = json.loads((onnx_cache / "onnx_config.json").read_text())
    assert config["opset"] == ob.OPSET and config["dim"] == 384 and config["max_seq_length"] == 256
    assert config["inputs"] == ["input_ids", "attention_mask", "token_type_ids"] and config["pooling"] == "mean"
    assert (onnx_cache / "model_int8.onnx").stat().st_size < 0.7 * (onnx_cache / "model.onnx").stat().st_size


@pytest.mark.slow
def test_fp32_onnx_reproduces_sentence_transformers(onnx_fp32, real_embedder, texts):
    got, want = onnx_fp32.encode(texts), real_embedder.encode(texts)
    assert _cos(got, want).min() >= 0.999
    assert onnx_fp32.fingerprint == real_embedder.fingerprint and onnx_fp32.dim == real_embedder.dim == 384


@pytest.mark.slow
def test_int8_is_close_to_fp32_but_has_its_own_fingerprint(onnx_fp32, onnx_int8, texts):
    assert _cos(onnx_int8.encode(texts), onnx_fp32.encode(texts)).min() >= 0.98
    assert onnx_int8.fingerprint == onnx_fp32.fingerprint + "-onnx-int8"


@pytest.mark.slow
@pytest.mark.parametrize("quantized", [False, True])
def test_vectors_are_normalised_float32_in_input_order(onnx_fp32, onnx_int8, texts, quantized):
    e = onnx_int8 if quantized else onnx_fp32
    v = e.encode(texts)
    assert v.dtype == np.float32 and v.shape == (len(texts), 384) and v.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # Batches are formed by length; each row still belongs to its own text.
    alone = np.vstack([e.encode([t]) for t in texts[-3:]])
    assert _cos(v[-3:], alone).min() >= (0.97 if quantized else 0.99999)
    assert e.encode([]).shape == (0, 384)


@pytest.mark.slow
@pytest.mark.parametrize("quantized", [False, True])
def test_query_sessions_load_a_saved_optimised_copy_with_the_same_vectors(onnx_cache, texts, quantized):
    fresh = ob.OnnxEmbedder(quantized=quantized)
    copy = fresh.path.with_name(fresh.path.stem + ob.BASIC_SUFFIX)
    copy.unlink(missing_ok=True)
    first = np.vstack([fresh.encode([t]) for t in texts[:12]])  # light sessions: this one saves the copy
    assert copy.is_file()
    again = ob.OnnxEmbedder(quantized=quantized)
    np.testing.assert_array_equal(np.vstack([again.encode([t]) for t in texts[:12]]), first)
    copy.write_bytes(b"damaged")  # newer than the model, but unreadable: made again
    np.testing.assert_array_equal(ob.OnnxEmbedder(quantized=quantized).encode(texts[:1]), first[:1])
    assert copy.stat().st_size > 1000


@pytest.mark.slow
def test_a_query_in_a_new_process_imports_no_torch(onnx_cache):
    code = ("import sys; from semsearch.embed.onnx import OnnxEmbedder; "
            "v = OnnxEmbedder().encode(['sharding embedding tables']); "
            "print(v.shape, sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}).stdout
    assert out.strip() == "(1, 384) []"


@pytest.mark.slow
def test_a_damaged_export_is_named_with_the_fix(onnx_cache, tmp_path):
    broken = tmp_path / "onnx" / onnx_cache.name
    shutil.copytree(onnx_cache, broken)
    model = broken / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.raises(SemsearchError, match=rf"cannot load ONNX model {model}: .*Delete {broken} to re-export it"):
        ob.OnnxEmbedder(cache_dir=tmp_path / "onnx").encode(["a query"])


@pytest.mark.slow
def test_an_int8_file_from_another_recipe_is_requantized(onnx_cache, tmp_path):
    copy = tmp_path / "onnx" / onnx_cache.name
    shutil.copytree(onnx_cache, copy)
    config = json.loads((copy / "onnx_config.json").read_text())
    config["int8"]["per_channel"] = not config["int8"]["per_channel"]
    (copy / "onnx_config.json").write_text(json.dumps(config))
    (copy / "model_int8.onnx").write_bytes(b"an older int8 model")
    _, folder = ob.model_folder(None)
    assert ob.ensure_onnx(folder, quantize=True, cache_dir=tmp_path / "onnx") == copy
    assert json.loads((copy / "onnx_config.json").read_text())["int8"]["per_channel"] == ob.INT8_PER_CHANNEL
    assert (copy / "model_int8.onnx").stat().st_size == (onnx_cache / "model_int8.onnx").stat().st_size


@pytest.mark.slow
def test_factory_and_query_embedder_pick_the_backend(onnx_cache, real_embedder):
    fp = real_embedder.fingerprint
    assert isinstance(make_embedder(None, "onnx"), ob.OnnxEmbedder)
    assert make_embedder(None, "onnx-int8").fingerprint == fp + "-onnx-int8"
    light = query_embedder_for(DEFAULT_MODEL, fp)
    assert isinstance(light, ob.OnnxEmbedder) and not light.quantized
    assert query_embedder_for(DEFAULT_MODEL, fp + "-onnx-int8").quantized
    assert isinstance(query_embedder_for(DEFAULT_MODEL, "0123456789abcdef"), SentenceTransformerEmbedder)


@pytest.mark.slow
def test_an_int8_index_needs_the_int8_query_model(onnx_int8, real_embedder, tmp_path):
    path = tmp_path / "index"
    build([CORPUS], path, embedder=onnx_int8, cache=False)
    with Index.open(path) as idx:
        m = idx.manifest
    with Index.open(path, embedder=query_embedder_for(m.model, m.model_fingerprint)) as idx:
        top = idx.search("partitioning embedding tables across devices", k=1, mode="dense")[0]
    assert "shard" in (top.title or top.paper.abstract).lower()
    with pytest.raises(ModelMismatch):
        Index.open(path, embedder=real_embedder)


@pytest.mark.slow
def test_chunked_tokenisation_keeps_input_order(onnx_fp32, texts, monkeypatch):
    whole = onnx_fp32.encode(texts)
    monkeypatch.setattr(ob, "ENCODE_CHUNK", 7)  # several chunks, the last one partial
    np.testing.assert_allclose(onnx_fp32.encode(texts), whole, atol=1e-5)
