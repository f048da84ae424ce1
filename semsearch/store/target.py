"""Where an index may be written: judge an `--index` path, and hold its one-writer lock.

semsearch writes only into a path that is absent, an empty directory, or a directory holding a
semsearch index and nothing else. A symlink is followed and its target judged; the link itself is
never moved. Writers take an OS file lock (`flock`, released by the kernel when the holder dies,
`kill -9` included) on `.NAME.lock` beside the index; readers never take it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from ..errors import IndexBusy, IndexTargetError
from .manifest import FILES, MANIFEST, SIDE_FILES

#: Keys every manifest semsearch ever wrote carries; a manifest.json without them is not ours.
_MANIFEST_KEYS = ("format_version", "model", "model_fingerprint", "dim", "count")
#: First line of a lock file, so a user's file of the same name is never taken for one.
_LOCK_MARK = "semsearch index lock"
DEFAULT_WAIT = 300.0
DEFAULT_INDEX = Path("indexes") / "default"


def is_index(directory: Path) -> bool:
    """True when `directory/manifest.json` is a manifest semsearch wrote (damaged files or not)."""
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in _MANIFEST_KEYS)


def foreign_entries(directory: Path) -> list[str]:
    """Names inside an index directory that semsearch did not write, sorted."""
    return sorted(set(os.listdir(directory)) - set(FILES) - set(SIDE_FILES))


def _shown(names: list[str], most: int = 3) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def judge(index: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """The real path at which an index may be written for `index` (symlinks followed).

    Raises:
        IndexTargetError: `index` (or what it links to) is a regular file, a directory holding
            anything but a semsearch index, an input or a path inside one, or under a file.
            Nothing is created or changed.
    """
    given = Path(index)
    real = Path(os.path.realpath(given))
    shown = f"{given} (a link to {real})" if real != Path(os.path.abspath(given)) else str(given)
    for path in inputs:
        source = Path(os.path.realpath(path))
        if _inside(real, source) or _inside(source, real):
            raise IndexTargetError(
                f"{shown}: is an input or inside one ({path}); choose an --index outside the files you build from"
            )
    if os.path.lexists(real) and not real.is_dir():
        raise IndexTargetError(f"{shown}: is a file, not a semsearch index directory; choose another --index")
    if real.is_dir():
        try:
            entries = os.listdir(real)
        except OSError as exc:
            raise IndexTargetError(f"{shown}: cannot be read ({exc.strerror}); choose another --index") from None
        if entries and not is_index(real):
            raise IndexTargetError(
                f"{shown}: holds {_shown(sorted(entries))}, not a semsearch index; semsearch writes only into a new "
                "or empty directory or an index it built: choose another --index"
            )
        foreign = foreign_entries(real) if entries else []
        if foreign:
            raise IndexTargetError(
                f"{shown}: holds {_shown(foreign)}, which semsearch did not write; move it out of the index "
                "directory or choose another --index"
            )
        return real
    for parent in real.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise IndexTargetError(f"{shown}: {parent} is a file, not a directory; choose another --index")
            break
    return real


class WriterLock:
    """The index's writer lock: `with WriterLock(real_path, wait=s):` — at most one writer at a time.

    A second writer prints once to stderr who holds the lock and waits up to `wait` seconds, then
    raises IndexBusy. The holder deletes the lock file on release; a waiter that then locks the
    deleted file sees that its inode is no longer at the path and tries again. A file of that name
    is ours only by its first line.
    """

    def __init__(self, target: Path, wait: float = DEFAULT_WAIT, poll: float = 0.1):
        self.target = target
        self.path = target.parent / f".{target.name}.lock"
        self.wait = wait
        self.poll = poll
        self._fd: int | None = None

    def _open(self) -> int:
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                if not f.readline().decode("utf-8", "replace").startswith(_LOCK_MARK):
                    raise IndexTargetError(
                        f"{self.path}: exists and was not written by semsearch; move it, or choose another --index"
                    )
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise IndexTargetError(
                f"{self.target.parent}: cannot write an index here ({exc.strerror or exc})"
            ) from None

    def holder(self) -> str:
        """Who holds the lock, as the holder wrote it ("pid 123: semsearch add x.bib"), or ''."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return lines[1] if len(lines) > 1 else ""

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting."""
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            try:
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # the holder released and deleted this file before we locked it: again
        self._fd = fd
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        note = f"{_LOCK_MARK}\npid {os.getpid()}: {command} (since {started})\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
        return True

    def acquire(self) -> None:
        """Take the lock, waiting up to `wait` seconds; raises IndexBusy."""
        if self.try_acquire():
            return
        deadline = time.monotonic() + self.wait
        holder = self.holder() or "another semsearch process"
        print(f"{self.target}: waiting for {holder} to finish (up to {self.wait:g} s, --wait)", file=sys.stderr)
        while time.monotonic() < deadline:
            time.sleep(self.poll)
            if self.try_acquire():
                return
        raise IndexBusy(
            f"{self.target}: index busy: {holder} is changing it; try again when it is done, or give a longer --wait"
        )

    def release(self) -> None:
        if self._fd is not None:
            try:
                self.path.unlink()
            except OSError:
                pass  # e.g. a read-only parent now: an empty lock file stays, harmless
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "WriterLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
