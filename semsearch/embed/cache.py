"""The embedding cache: vectors kept in SQLite, keyed by model fingerprint and text hash."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .base import Embedder

if TYPE_CHECKING:
    import numpy as np


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
        except (OSError, sqlite3.Error):  # an unusable cache must never stop a build: embed without it
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
