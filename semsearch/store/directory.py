"""An index directory written whole or not at all: staged in a temporary sibling, swapped in, recovered.

An index directory is written into a temporary sibling directory and renamed into place, so a
crash mid-build leaves the previous index (or none) and never half of one.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from ..errors import IndexFormatError, IndexTargetError, SemsearchError
from ..records import Paper
from .manifest import FILES, MANIFEST, PAPERS, SIDE_FILES, VECTORS, Manifest
from .papers import write_papers
from .target import WriterLock, foreign_entries, is_index
from .vectors import VectorIndex


def _fsync_dir(path: Path) -> None:
    for f in [*path.iterdir(), path]:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Staging:
    """A temporary sibling of the index directory that becomes the index on `commit`.

    `target` is a path `target.judge` accepted, and the caller holds its WriterLock."""

    def __init__(self, target: Path):
        self.target = target
        parent = target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            _remove_stale(parent, target.name)
            self._remove_stale_old()
            self.path = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=parent))
        except OSError as exc:
            raise SemsearchError(f"{parent}: cannot write an index here ({exc.strerror or exc})") from None

    def _remove_stale_old(self) -> None:
        """Delete previous indexes that killed runs had moved aside after their swap. Only once an
        index is in place (callers `recover` first): else `recover` would one day put one back."""
        if not self.target.is_dir():
            return
        prefix = f".{self.target.name}.old-"
        for old in self.target.parent.glob(prefix + "*"):
            pid = old.name[len(prefix) :].split("-")[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                _discard(old)

    def commit(self) -> None:
        """Swap the staging directory in: a crash between the two renames leaves the previous index
        as `.NAME.old-*` for `recover`, a crash after them leaves it to `_remove_stale_old`.

        Only an index semsearch wrote, with nothing else in it, or an empty directory is ever moved
        aside; a file a user put in the directory meanwhile stops the swap, naming it."""
        old = self.target.parent / f".{self.target.name}.old-{self.path.name.rsplit('.tmp-', 1)[-1]}"
        try:
            _fsync_dir(self.path)
            if self.target.is_dir() and not os.listdir(self.target):
                os.rmdir(self.target)  # an empty directory: nothing to keep, nothing to move
            elif os.path.lexists(self.target):
                foreign = foreign_entries(self.target) if is_index(self.target) else sorted(os.listdir(self.target))
                if foreign:
                    raise IndexTargetError(
                        f"{self.target}: now holds {', '.join(foreign[:3])}, which semsearch did not write; "
                        "the index was not replaced: move it out and run again"
                    )
                os.rename(self.target, old)
            try:
                os.rename(self.path, self.target)
            except OSError:
                if old.is_dir() and not self.target.exists():
                    os.rename(old, self.target)
                raise
        except OSError as exc:
            raise SemsearchError(
                f"{self.target}: cannot replace the index ({exc.strerror or exc}); the previous index is unchanged"
            ) from None
        _discard(old)

    def write(self, files: dict[str, Callable[[Path], None]]) -> None:
        """Write the new index, file by file (name -> a function that writes that path), and swap it
        in; on any failure nothing changed and the staging directory is gone.

        Raises:
            SemsearchError: a file cannot be written (an OSError, SQLite's "disk is full", FAISS's
                RuntimeError), naming it; the error of `commit`.
        """
        name = ""
        try:
            for name, write in files.items():
                write(self.path / name)
            name = ""
            self.commit()
        except (OSError, sqlite3.Error, RuntimeError) as exc:
            self.abort()
            if not name or (isinstance(exc, RuntimeError) and name != VECTORS):
                raise
            raise self.failed(name, exc) from None
        except BaseException:
            self.abort()
            raise

    def failed(self, name: str, exc: BaseException) -> SemsearchError:
        """The one-line error for file `name` of the new index that could not be written: an OSError
        (ENOSPC, EFBIG), SQLite's "database or disk is full", FAISS's RuntimeError "... (strerror)"."""
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
        else:
            text = (str(exc).strip() or type(exc).__name__).splitlines()[-1]
            cut = text.rfind(" (")
            reason = text[cut + 2 : -1] if isinstance(exc, RuntimeError) and cut >= 0 and text.endswith(")") else text
        kept = "the previous index is unchanged" if self.target.exists() else "no index was written"
        return SemsearchError(f"{self.target / name}: cannot write ({reason}); {kept}")

    def abort(self) -> None:
        _discard(self.path)


def _discard(directory: Path) -> None:
    """Delete a staging or moved-aside directory semsearch wrote: only its own files (the manifest
    first, so a half-deleted index is never `recover`ed), then the directory if that emptied it."""
    for name in (MANIFEST, *FILES, *SIDE_FILES):
        try:
            (directory / name).unlink()
        except FileNotFoundError:
            pass
        except OSError:
            return
    try:
        os.rmdir(directory)
    except OSError:
        pass  # missing, or something not ours is inside: it stays


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent: Path, name: str) -> None:
    """Delete staging directories left by builds that were killed (their process is gone)."""
    for stale in parent.glob(f".{name}.tmp-*"):
        pid = stale.name[len(f".{name}.tmp-") :].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            _discard(stale)


def recover_locked(target: Path) -> None:
    """Finish an interrupted swap: put back the old index if a crash left none in place. The
    caller holds the writer lock."""
    if os.path.lexists(target):
        return
    for old in sorted(target.parent.glob(f".{target.name}.old-*")):
        if is_index(old) and not foreign_entries(old):
            os.rename(old, target)
            return


def recover(index: str | Path) -> None:
    """`recover_locked` for readers: only when no writer is mid-swap (else its new index is about
    to appear, and readers wait a moment for it)."""
    target = Path(os.path.realpath(index))
    if os.path.lexists(target) or not any(target.parent.glob(f".{target.name}.old-*")):
        return
    lock = WriterLock(target)
    try:
        free = lock.try_acquire()
    except SemsearchError:  # e.g. a read-only parent: nothing to recover from here
        return
    if not free:
        for _ in range(100):
            if os.path.lexists(target):
                return
            time.sleep(0.05)
        return
    try:
        recover_locked(target)
    finally:
        lock.release()


def write_index(
    target: Path, papers: Sequence[Paper], vectors: VectorIndex, manifest: Manifest, staging: Staging | None = None
) -> None:
    """Write an index directory atomically (see module doc); FILES is what it writes.

    `vectors` holds the papers' vectors under their positions as ids.
    Raises:
        SemsearchError: a file cannot be written (e.g. the disk is full), naming it; nothing changed.
    """
    staging = staging or Staging(Path(target))
    staging.write({PAPERS: lambda path: write_papers(path, papers), VECTORS: vectors.save,
                   MANIFEST: lambda path: manifest.write(path.parent)})


def read_vectors(directory: Path, manifest: Manifest) -> VectorIndex:
    """Load the vector index and check it against the manifest; raises IndexFormatError."""
    path = directory / VECTORS
    index = VectorIndex.load(path, manifest.index_params)
    if index.dim != manifest.dim or index.ntotal != manifest.vector_rows:
        raise IndexFormatError(
            f"{path}: holds {index.ntotal} vectors of dim {index.dim}, manifest says {manifest.vector_rows} of dim "
            f"{manifest.dim}; rebuild the index"
        )
    return index
