"""An index kept open for a long-running server, reopened when a writer swaps in a new one.

Writers (`build`, `add`, `remove`) replace the index directory by rename, so a reader's open
files keep answering from the previous index until it reopens. `LiveIndex` looks for a new
`manifest.json` at most every `check_every` seconds; requests already running finish on the index
they started with, which is closed once the last of them is done. Readers never wait for writers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ModelMismatch, SemsearchError
from ..query import Index

MANIFEST = "manifest.json"


def one_thread_per_query() -> None:
    """Run each FAISS search on one thread, for a server: its concurrency is many requests at once.

    FAISS's OpenMP threads pay off for a batch of queries; for one query among concurrent requests
    they only contend. On the 75k-paper IVF index (2 cores), `similar` took 20 ms with 2 threads
    and 0.3 ms with one, a dense search 17.5 ms and 5.6 ms (docs/benchmarks.md).
    """
    import faiss

    faiss.omp_set_num_threads(1)


def _stamp(path: Path) -> tuple | None:
    """Identity of the index's manifest (a swap gives it a new inode), or None between renames."""
    try:
        st = os.stat(path / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class _Generation:
    def __init__(self, index: Index, stamp: tuple | None):
        self.index = index
        self.stamp = stamp
        self.users = 0
        self.retired = False
        self.info = index.info()


class LiveIndex:
    """An open index that follows atomic replacements of its directory.

    Args:
        path: index directory.
        embedder: query embedder (tests, custom models); default the model in the manifest.
        warm: embed a word at start-up so the first request does not load the model.
        check_every: seconds between looks for a replaced index.
    Raises:
        IndexNotFound, IndexFormatError, ModelMismatch: as `Index.open`, at start-up.
    """

    def __init__(self, path: str | Path, *, embedder=None, warm: bool = True, check_every: float = 1.0):
        self.path = Path(path)
        self.check_every = check_every
        self._lock = threading.Lock()
        self._reopening = threading.Lock()
        stamp = _stamp(self.path)
        index = Index.open(self.path, embedder=embedder)
        if warm:
            index.embed(["warm up"])
        self._current = _Generation(index, stamp)
        self._next_check = time.monotonic() + check_every
        self.reopened = 0
        self.last_error: str | None = None

    @property
    def info(self) -> dict:
        """`Index.info()` of the index now served (computed once per opened index)."""
        return self._current.info

    @contextmanager
    def use(self) -> Iterator[Index]:
        """The current index, held open until the block ends."""
        self._maybe_reopen()
        with self._lock:
            gen = self._current
            gen.users += 1
        try:
            yield gen.index
        finally:
            with self._lock:
                gen.users -= 1
                done = gen.retired and gen.users == 0
            if done:
                gen.index.close()

    def _maybe_reopen(self) -> None:
        now = time.monotonic()
        if now < self._next_check or not self._reopening.acquire(blocking=False):
            return  # another request is already looking; this one uses the index it has
        try:
            self._next_check = now + self.check_every
            stamp = _stamp(self.path)
            if stamp is None or stamp == self._current.stamp:
                return
            old = self._current
            try:
                try:
                    index = Index.open(self.path, embedder=old.index.embedder)
                except ModelMismatch:  # rebuilt with another model: load that one
                    index = Index.open(self.path)
            except SemsearchError as exc:  # a half-finished swap or a damaged new index: keep serving the old
                self.last_error = str(exc)
                return
            new = _Generation(index, stamp)
            with self._lock:
                self._current = new
                old.retired = True
                done = old.users == 0
            self.reopened += 1
            self.last_error = None
            if done:
                old.index.close()
        finally:
            self._reopening.release()

    def close(self) -> None:
        with self._lock:
            gen = self._current
            gen.retired = True
            done = gen.users == 0
        if done:
            gen.index.close()
