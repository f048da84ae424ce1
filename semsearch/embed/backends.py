"""Backends: which implementation encodes a model (BACKENDS), and the lightest one that reproduces an index."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import SemsearchError
from . import onnx
from .base import Embedder, resolve_model
from .onnx import INT8_SUFFIX, OnnxEmbedder, can_export, model_folder, weights_fingerprint
from .torch import SentenceTransformerEmbedder

#: The backends, by name: each makes an Embedder for a model name or folder (None = the bundled
#: default). "torch": sentence-transformers; "onnx": the same vectors from an ONNX export, no torch
#: at query time; "onnx-int8": int8 weights (2.8x the documents/s of torch here, SciFact nDCG@10
#: within 0.0024 of fp32: docs/benchmarks.md), own fingerprint.
BACKENDS: dict[str, Callable[[str | None], Embedder]] = {
    "torch": SentenceTransformerEmbedder,
    "onnx": OnnxEmbedder,
    "onnx-int8": lambda model: OnnxEmbedder(model, quantized=True),
}
#: What `--backend` accepts: a BACKENDS name, or "auto": onnx-int8 for a local model folder when
#: onnxruntime is installed and the model exports, else torch.
CHOICES = ("auto", *BACKENDS)


def resolve_backend(model: str | None = None, backend: str = "auto") -> str:
    """The BACKENDS name that `make_embedder(model, backend)` runs ("auto" decided here).

    Raises:
        SemsearchError: an unknown backend.
    """
    if backend not in CHOICES:
        raise SemsearchError(f"unknown backend {backend!r}: choose one of {', '.join(CHOICES)}")
    if backend == "auto":
        target = Path(resolve_model(model)[1])
        backend = "onnx-int8" if onnx.available() and target.is_dir() and can_export(target) else "torch"
    return backend


def make_embedder(model: str | None = None, backend: str = "auto") -> Embedder:
    """An Embedder for `model` (None = the bundled default) run by `backend` (one of CHOICES).

    Raises:
        SemsearchError: an unknown backend, or an ONNX backend for a model with no local folder.
    """
    return BACKENDS[resolve_backend(model, backend)](model)


def query_embedder_for(model: str, fingerprint: str) -> Embedder:
    """The lightest Embedder that reproduces an index's vectors, from its manifest's model and fingerprint.

    `…-onnx-int8` fingerprints need the int8 ONNX model. A plain weights fingerprint is served by
    the fp32 ONNX export (same vectors, no torch import) when onnxruntime and tokenizers are
    installed, the model is a local folder with those weights, and the export exists or torch can
    make it; otherwise by sentence-transformers. A mismatch is left to `check_model` to report.
    """
    if fingerprint.endswith(INT8_SUFFIX):
        return OnnxEmbedder(model, quantized=True)
    if onnx.available():
        try:
            _, folder = model_folder(model)
            if weights_fingerprint(folder) == fingerprint and can_export(folder):
                return OnnxEmbedder(model)
        except SemsearchError:
            pass
    return SentenceTransformerEmbedder(model)
