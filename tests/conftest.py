"""Shared fixtures: the seed corpus, a deterministic fake embedder, built indexes."""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from semsearch import Index, build

# No test reads or writes the user's caches: embeddings are not cached (cache tests pass their
# own file) and ONNX exports go to one temporary folder shared by the whole session.
os.environ["SEMSEARCH_CACHE"] = "off"
os.environ["SEMSEARCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="semsearch-test-cache-")
atexit.register(shutil.rmtree, os.environ["SEMSEARCH_CACHE_DIR"], ignore_errors=True)  # ~110 MB of exports

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"


class FakeEmbedder:
    """Signed feature hashing of words and word pairs: deterministic, no torch, lexical 'meaning'."""

    name = "fake-hash"

    def __init__(self, dim: int = 64, seed: str = "v1"):
        self._dim = dim
        self.seed = seed
        self.calls = 0

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def fingerprint(self) -> str:
        return f"fake-{self.seed}-{self._dim}"

    def encode(self, texts, *, progress: bool = False) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower())
            for feature in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = int.from_bytes(hashlib.blake2b(f"{self.seed}:{feature}".encode(), digest_size=8).digest(), "little")
                out[i, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def seed_index_path(tmp_path_factory) -> Path:
    """The seed corpus built with the fake embedder (shared, read-only)."""
    path = tmp_path_factory.mktemp("seed") / "index"
    build([CORPUS], path, embedder=FakeEmbedder())
    return path


@pytest.fixture
def seed_index(seed_index_path) -> Index:
    with Index.open(seed_index_path, embedder=FakeEmbedder()) as idx:
        yield idx


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once per session."""
    from semsearch.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def real_index_path(tmp_path_factory, real_embedder) -> Path:
    path = tmp_path_factory.mktemp("real") / "index"
    build([CORPUS], path, embedder=real_embedder)
    return path


def run_killed_while_writing(call: str) -> int:
    """Run `semsearch.<call>` in a new process that SIGKILLs itself right after writing the
    new vectors file (mid-update); returns the exit status (-9)."""
    import subprocess
    import sys

    code = (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.conftest import FakeEmbedder\n"
        "import semsearch\n"
        "from semsearch.store.vectors import VectorIndex\n"
        "real = VectorIndex.save\n"
        "def dying(self, path):\n"
        "    real(self, path)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "VectorIndex.save = dying\n"
        f"semsearch.{call}\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode
