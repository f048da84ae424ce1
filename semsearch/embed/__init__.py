"""Embed: papers and queries -> L2-normalised float32 vectors from a sentence-transformers model.

base.py: the Embedder protocol, paper text, model names, fingerprints; torch.py, onnx.py: the two
ways to run a model; backends.py: BACKENDS, the registry that picks one; cache.py: the embedding
cache; ray.py: the Ray engine (many processes, same vectors). The engine factory is here.
"""

from __future__ import annotations

from ..errors import SemsearchError
from .backends import BACKENDS, make_embedder, query_embedder_for, resolve_backend
from .base import DEFAULT_MODEL, PROGRESS_MIN_TEXTS, Embedder, cache_dir, default_cache_path, paper_text, resolve_model
from .cache import CachedEmbedder
from .torch import SentenceTransformerEmbedder

#: Where a build embeds: "local" in this process; "ray" on a Ray cluster (ray.py).
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
    from .ray import RayEmbedder

    return RayEmbedder(model, backend, workers=workers, address=address)


__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "ENGINES",
    "PROGRESS_MIN_TEXTS",
    "CachedEmbedder",
    "Embedder",
    "SentenceTransformerEmbedder",
    "cache_dir",
    "default_cache_path",
    "engine_embedder",
    "make_embedder",
    "paper_text",
    "query_embedder_for",
    "resolve_backend",
    "resolve_model",
]
