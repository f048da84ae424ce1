"""The torch backend: a sentence-transformers model, loaded on first use."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import SemsearchError
from .base import DEFAULT_MODEL, PROGRESS_MIN_TEXTS, file_fingerprint, resolve_model

if TYPE_CHECKING:
    import numpy as np


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
