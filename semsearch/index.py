"""Index: papers + vectors -> a directory on disk (FAISS, SQLite, manifest.json), and back.

An index directory holds exactly FILES. It is written into a temporary sibling directory and
renamed into place, so a crash mid-build leaves the previous index (or none) and never half of
one. Nothing is unpickled on load: the manifest is JSON, records are SQLite rows, vectors are
FAISS's own binary format.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from . import __version__
from . import lexical
from .ann import TARGET_RECALL, build_vector_index, omp_threads, set_search_params
from .embed import CachedEmbedder, Embedder, default_cache_path, engine_embedder, make_embedder, paper_text
from .errors import IndexFormatError, IndexNotFound, IndexTargetError, ModelMismatch, SemsearchError
from .ingest import FileResult, RawRecord, Skipped, read_paths
from .records import LikelyDuplicate, MergeGroup, Paper, as_records, content_id, merge, unmerged
from .target import DEFAULT_WAIT, FILES, MANIFEST, PAPERS, SIDE_FILES, VECTORS, WriterLock, foreign_entries, is_index, judge

#: 2 added the FTS5 table `papers_fts` to papers.sqlite; version 1 indexes must be rebuilt.
#: 3 added in-place updates: FAISS rows of removed or changed papers are retired (listed in
#: `retired_rows`, never returned) rather than rebuilt away. A version-2 index is a version-3
#: index with no retired rows, so both are read.
#: 4 added `given_id` and `aliases` to papers and the `paper_names` table (ids that still resolve
#: after a merge or an id change). Older indexes are read as having no aliases (see PaperStore).
FORMAT_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)
DEFAULT_INDEX = Path("indexes") / "default"
METRIC = "inner_product"  # on L2-normalised vectors: cosine similarity, higher is better

_COLUMNS = (
    "id", "title", "abstract", "versions", "arxiv_id", "date", "authors", "categories", "sources", "given_id", "aliases"
)
_JSON_COLUMNS = {"versions", "authors", "categories", "sources", "aliases"}


@dataclass(frozen=True)
class Manifest:
    """Facts stamped on an index at build time; `manifest.json` is this, as JSON."""

    model: str
    model_fingerprint: str
    dim: int
    count: int
    corpus_hash: str
    created: str
    metric: str = METRIC
    index_type: str = "flat"
    index_params: dict = field(default_factory=dict)
    text: str = "title. abstract"
    format_version: int = FORMAT_VERSION
    semsearch_version: str = __version__
    build: dict = field(default_factory=dict)
    rows: int | None = None  # FAISS rows, retired ones included (None: `count`, none retired)
    retired: int = 0

    @classmethod
    def read(cls, directory: Path) -> "Manifest":
        """Read and validate `directory/manifest.json`; raises IndexNotFound / IndexFormatError."""
        path = directory / MANIFEST
        if not directory.is_dir():
            raise IndexNotFound(f"no index at {directory}: build one with `semsearch build --index {directory}`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexFormatError(f"{path}: missing; {directory} is not a semsearch index (rebuild it)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"{path}: unreadable ({exc}); rebuild the index") from None
        if not isinstance(data, dict):
            raise IndexFormatError(f"{path}: not a JSON object; rebuild the index")
        version = data.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise IndexFormatError(
                f"{path}: format version {version} is newer than this semsearch reads ({FORMAT_VERSION}); "
                "upgrade semsearch"
            )
        if isinstance(version, int) and version not in READABLE_VERSIONS and version < FORMAT_VERSION:
            raise IndexFormatError(
                f"{path}: format version {version} is older than this semsearch reads ({FORMAT_VERSION}); "
                f"rebuild it with `semsearch build ... --index {directory}`"
            )
        known = set(cls.__dataclass_fields__)
        try:
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise IndexFormatError(f"{path}: {exc}; rebuild the index") from None
        if not (isinstance(manifest.dim, int) and isinstance(manifest.count, int) and manifest.dim > 0):
            raise IndexFormatError(f"{path}: 'dim' and 'count' must be integers; rebuild the index")
        if not (isinstance(manifest.vector_rows, int) and isinstance(manifest.retired, int)
                and manifest.vector_rows == manifest.count + manifest.retired):
            raise IndexFormatError(f"{path}: 'rows' must be 'count' + 'retired'; rebuild the index")
        return manifest

    @property
    def vector_rows(self) -> int:
        """Rows in vectors.faiss: the papers' plus retired ones."""
        return self.count if self.rows is None else self.rows

    def write(self, directory: Path) -> None:
        (directory / MANIFEST).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


@dataclass
class BuildSummary:
    """What a build read, merged, skipped and wrote."""

    index: str
    files: list[dict]
    records: int
    papers: int
    merged_groups: list[MergeGroup]
    skipped: list[Skipped]
    seconds: float
    index_choice: dict = field(default_factory=dict)
    papers_before: int = 0  # papers the index held before an update
    embedded: int | None = None  # texts embedded by an update (the rest reused)
    removed: list[str] = field(default_factory=list)
    likely_duplicates: list[LikelyDuplicate] = field(default_factory=list)  # not merged: look at them

    @property
    def merged_records(self) -> int:
        """Records that joined another record or a stored paper instead of making a new paper."""
        return self.records - (self.papers - self.papers_before)

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "files": self.files,
            "records": self.records,
            "papers": self.papers,
            "merged_records": self.merged_records,
            "merged_groups": [asdict(g) for g in self.merged_groups],
            "skipped": [asdict(s) for s in self.skipped],
            "seconds": round(self.seconds, 3),
            "index_choice": self.index_choice,
            "embedded": self.embedded,
            "removed": self.removed,
            "likely_duplicates": [asdict(d) for d in self.likely_duplicates],
        }


# --- writing -----------------------------------------------------------------------------


def corpus_hash(papers: Iterable[Paper]) -> str:
    """SHA-256 (first 16 hex) over the papers' ids and embedded texts, in index order."""
    h = hashlib.sha256()
    for p in papers:
        h.update(p.id.encode() + b"\0" + paper_text(p).encode() + b"\0")
    return h.hexdigest()[:16]


def _values(paper: Paper) -> tuple:
    """A paper's _COLUMNS values as stored (lists as JSON)."""
    return tuple(json.dumps(list(getattr(paper, c))) if c in _JSON_COLUMNS else getattr(paper, c) for c in _COLUMNS)


def _write_papers(path: Path, papers: Sequence[Paper]) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute(
            "CREATE TABLE papers (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT, "
            "abstract TEXT NOT NULL, versions TEXT, arxiv_id TEXT, date TEXT, authors TEXT, "
            "categories TEXT, sources TEXT, given_id TEXT, aliases TEXT)"
        )
        con.execute("CREATE INDEX papers_arxiv ON papers(arxiv_id)")
        con.executemany(
            f"INSERT INTO papers (row, {', '.join(_COLUMNS)}) VALUES (?{', ?' * len(_COLUMNS)})",
            ((row, *_values(p)) for row, p in enumerate(papers)),
        )
        _write_names(con, enumerate(papers))
        lexical.create(con)
        con.commit()
    finally:
        con.close()


def _write_names(con: sqlite3.Connection, rows_papers: Iterable[tuple[int, Paper]]) -> None:
    """Index the ids a paper answers to besides `id` and `arxiv_id` (its given id, its aliases)."""
    con.execute("CREATE TABLE IF NOT EXISTS paper_names (name TEXT NOT NULL, row INTEGER NOT NULL)")
    con.execute("CREATE INDEX IF NOT EXISTS paper_names_name ON paper_names(name)")
    con.executemany(
        "INSERT INTO paper_names (name, row) VALUES (?, ?)",
        ((name, row) for row, p in rows_papers for name in p.names if name not in (p.id, p.arxiv_id)),
    )


def _upgrade_papers(con: sqlite3.Connection) -> None:
    """Give a papers.sqlite written before format 4 the `given_id` and `aliases` columns, filled
    as PaperStore reads them, so in-place updates keep its explicit ids."""
    have = {r[1] for r in con.execute("PRAGMA table_info(papers)")}
    if "given_id" in have:
        return
    con.execute("ALTER TABLE papers ADD COLUMN given_id TEXT")
    con.execute("ALTER TABLE papers ADD COLUMN aliases TEXT")
    rows = con.execute("SELECT row, id, arxiv_id, abstract FROM papers").fetchall()
    given = [(_legacy_given_id(i, a, text), row) for row, i, a, text in rows]
    con.executemany("UPDATE papers SET given_id = ? WHERE row = ?", [g for g in given if g[0]])
    _write_names(con, [])


def _write_vectors(path: Path, index) -> None:
    import faiss

    # Through a Python file: given a file name, FAISS ignores a failed fclose (it prints "close
    # error" and returns), so a disk that fills at the last buffered bytes left a truncated file.
    with open(path, "wb") as f:
        faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))


def _fsync_dir(path: Path) -> None:
    for f in [*path.iterdir(), path]:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Staging:
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


def _recover_locked(target: Path) -> None:
    """Finish an interrupted swap: put back the old index if a crash left none in place. The
    caller holds the writer lock."""
    if os.path.lexists(target):
        return
    for old in sorted(target.parent.glob(f".{target.name}.old-*")):
        if is_index(old) and not foreign_entries(old):
            os.rename(old, target)
            return


def recover(index: str | Path) -> None:
    """`_recover_locked` for readers: only when no writer is mid-swap (else its new index is about
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
        _recover_locked(target)
    finally:
        lock.release()


def write_index(
    target: Path, papers: Sequence[Paper], vectors, manifest: Manifest, staging: _Staging | None = None
) -> None:
    """Write an index directory atomically (see module doc); FILES is what it writes.

    `vectors` is a FAISS index whose ids are the papers' positions.
    Raises:
        SemsearchError: a file cannot be written (e.g. the disk is full), naming it; nothing changed.
    """
    staging = staging or _Staging(Path(target))
    name = PAPERS
    try:
        _write_papers(staging.path / PAPERS, papers)
        name = VECTORS
        _write_vectors(staging.path / VECTORS, vectors)
        name = MANIFEST
        manifest.write(staging.path)
        name = ""
        staging.commit()
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        staging.abort()
        if not name or (isinstance(exc, RuntimeError) and name != VECTORS):
            raise
        raise staging.failed(name, exc) from None
    except BaseException:
        staging.abort()
        raise


def build(
    paths: Sequence[str | Path],
    index: str | Path = DEFAULT_INDEX,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
    dedupe: bool = True,
    cache: Path | None | bool = True,
    index_type: str = "auto",
    target_recall: float = TARGET_RECALL,
    columns: dict[str, str] | None = None,
    backend: str = "auto",
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    wait: float = DEFAULT_WAIT,
) -> BuildSummary:
    """Ingest `paths`, merge into papers, embed and write the index at `index`.

    Args:
        paths: files and directories of abstracts.
        index: the index directory to create or replace.
        model: sentence-transformers name or path (ignored when `embedder` is given).
        embedder: an `Embedder`; default make_embedder(model, backend).
        progress: show a progress bar while embedding.
        dedupe: merge repeats and versions into one paper (False: one paper per input record,
            as benchmarks with judged document ids need).
        cache: embedding cache file; True = default_cache_path(), False/None = no cache.
        index_type: "auto" (Flat below ann.FLAT_MAX papers, else tuned), "flat", "ivf-sq8",
            "ivf-pq" or "hnsw".
        target_recall: recall@10 an approximate index must reach on a held-out sample.
        columns: CSV/TSV column names for our fields, e.g. {"abstract": "Summary"}.
        backend: how `model` runs: "auto" (int8 ONNX when available), "torch", "onnx", "onnx-int8".
        engine: where it runs: "local" (this process) or "ray" (Ray actors, same vectors; needs
            semsearch[ray]); `workers` and `ray_address` as for semsearch.ray_engine.RayEmbedder.
        wait: seconds to wait for another process writing this index before IndexBusy.
    Raises:
        CorpusError: a path is missing, empty, binary or holds no abstracts.
        IndexTargetError: `index` is not a path semsearch may write (see target.judge); nothing changed.
        IndexBusy: another writer held the index for longer than `wait`.
        SemsearchError: the index directory cannot be written.
    """
    start = time.perf_counter()
    judge(index, paths)  # before minutes of reading: a wrong --index fails at once
    results: list[FileResult] = read_paths(paths, columns, progress=progress)
    files = _file_facts(results)
    summary = build_records(
        [r for f in results for r in f.records],
        index,
        model=model,
        embedder=embedder,
        progress=progress,
        dedupe=dedupe,
        cache=cache,
        files=files,
        index_type=index_type,
        target_recall=target_recall,
        backend=backend,
        engine=engine,
        workers=workers,
        ray_address=ray_address,
        wait=wait,
    )
    summary.skipped = [s for f in results for s in f.skipped]
    summary.seconds = time.perf_counter() - start
    return summary


def build_records(
    raw: Sequence[RawRecord],
    index: str | Path,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
    dedupe: bool = True,
    cache: Path | None | bool = True,
    files: list[dict] | None = None,
    index_type: str = "auto",
    target_recall: float = TARGET_RECALL,
    backend: str = "auto",
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    wait: float = DEFAULT_WAIT,
) -> BuildSummary:
    """`build` from raw records already read (same arguments, same atomic write)."""
    start = time.perf_counter()
    with _writing(index, wait) as target:
        staging = _Staging(target)  # fails now, before minutes of embedding, if unwritable
        try:
            if embedder is None and engine != "local":  # a missing Ray fails here, before the merge
                embedder = engine_embedder(model, backend, engine, workers=workers, address=ray_address)
            merged = merge(raw) if dedupe else unmerged(raw)
        except BaseException:
            staging.abort()
            raise
        summary = _build_papers(
            merged.papers, staging, embedder or make_embedder(model, backend), progress, cache, index_type,
            target_recall, {"files": files or [], "records": len(raw), "merged_groups": len(merged.groups)},
        )
    summary.merged_groups = merged.groups
    summary.likely_duplicates = merged.likely_duplicates
    summary.records = len(raw)
    summary.seconds = time.perf_counter() - start
    return summary


@contextmanager
def _writing(
    index: str | Path, wait: float, inputs: Sequence[str | Path] = (), *, existing: bool = False
) -> Iterator[Path]:
    """Judge `index` (see target.judge), hold its writer lock, finish any interrupted swap, and
    yield the real directory to write. `existing`: an index must be there already (add, remove)."""
    target = judge(index, inputs)
    if existing and not is_index(target) and not any(target.parent.glob(f".{target.name}.old-*")):
        Manifest.read(target)  # raises IndexNotFound / IndexFormatError before anything is created
    with WriterLock(target, wait):
        judge(index, inputs)  # again: another writer may have changed it while this one waited
        _recover_locked(target)
        yield target


def _build_papers(
    papers: Sequence[Paper],
    staging: _Staging,
    embedder: Embedder,
    progress: bool,
    cache: Path | None | bool,
    index_type: str,
    target_recall: float,
    facts: dict,
) -> BuildSummary:
    """Embed `papers`, build their vector index and commit `staging` as the index directory."""
    start = time.perf_counter()
    try:
        cache_path = default_cache_path() if cache is True else (cache or None)
        if cache_path is not None:
            embedder = CachedEmbedder(embedder, cache_path)
        vectors = embedder.encode([paper_text(p) for p in papers], progress=progress)
        vector_index, choice = build_vector_index(vectors, index_type, target_recall=target_recall)
        manifest = Manifest(
            model=embedder.name,
            model_fingerprint=embedder.fingerprint,
            dim=int(vectors.shape[1]),
            count=len(papers),
            rows=len(papers),
            corpus_hash=corpus_hash(papers),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            index_type=choice.type,
            index_params=choice.params,
            build={**facts, "index_choice": choice.as_dict(), "rows_at_build": len(papers),
                   "requested_index_type": index_type},
        )
    except BaseException:
        staging.abort()
        raise
    write_index(staging.target, papers, vector_index, manifest, staging)
    return BuildSummary(
        index=str(staging.target),
        files=facts.get("files", []),
        records=len(papers),
        papers=len(papers),
        merged_groups=[],
        skipped=[],
        seconds=time.perf_counter() - start,
        index_choice=choice.as_dict(),
    )


# --- incremental updates -----------------------------------------------------------------

#: An update rebuilds the whole index (re-trained, re-tuned, retired rows dropped) instead of
#: changing it in place once retired rows exceed this fraction of the FAISS rows ...
RETIRED_MAX = 0.25
#: ... or once an approximate index holds this many times the rows it was trained and tuned on
#: (IVF centroids and the tuned nprobe/efSearch describe the corpus they were measured on).
GROWTH_MAX = 1.5


@dataclass
class UpdatePlan:
    """How the papers of an index change: which FAISS rows stay, change in place, retire or arrive.

    A paper whose embedded text is unchanged keeps its row (its record may still change, e.g. a
    new source); a paper with new text, or a new paper, gets a new row; the rows of papers that
    left (removed, or merged into another) and of replaced texts are retired.
    """

    unchanged: int = 0
    update: list[tuple[int, Paper]] = field(default_factory=list)
    retire: list[int] = field(default_factory=list)
    append: list[Paper] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.update or self.retire or self.append)


def plan_update(stored: Sequence[tuple[int, Paper]], papers: Sequence[Paper]) -> UpdatePlan:
    """Compare stored (row, paper) pairs with the papers the index should now hold, by id."""
    plan = UpdatePlan()
    old = {p.id: (row, p) for row, p in stored}
    for paper in papers:
        row, before = old.pop(paper.id, (None, None))
        if before is None:
            plan.append.append(paper)
        elif before == paper:
            plan.unchanged += 1
        elif paper_text(before) == paper_text(paper):
            plan.update.append((row, paper))
        else:
            plan.retire.append(row)
            plan.append.append(paper)
    plan.retire.extend(row for row, _ in old.values())
    plan.retire.sort()
    return plan


class _Reusing:
    """An Embedder that serves known texts from an index's stored vectors and embeds only the rest."""

    def __init__(self, inner: Embedder, known: dict[str, "object"]):
        self.inner, self.name, self.known = inner, inner.name, known
        self.embedded = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def encode(self, texts: Sequence[str], *, progress: bool = False):
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self.known]
        if missing:
            self.known.update(zip(missing, self.inner.encode(missing, progress=progress)))
            self.embedded += len(missing)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self.known[t] for t in texts]).astype(np.float32)


@dataclass
class _Opened:
    manifest: Manifest
    stored: list[tuple[int, Paper]]
    embedder: Embedder
    vectors: object  # the FAISS index, checked against the manifest


def _open_for_update(target: Path, embedder: Embedder | None) -> _Opened:
    """Open the index to change as `search` would, refusing a damaged one with the same message."""
    from .embed import query_embedder_for

    manifest = Manifest.read(target)
    vectors = read_vectors(target, manifest)
    store = PaperStore(target)
    try:
        stored = store.rows_and_papers()
    except sqlite3.Error as exc:
        raise IndexFormatError(f"{target / PAPERS}: unreadable ({exc}); rebuild the index") from None
    finally:
        store.close()
    embedder = embedder or query_embedder_for(manifest.model, manifest.model_fingerprint)
    if embedder.fingerprint != manifest.model_fingerprint:
        raise ModelMismatch(
            f"{target}: built with {manifest.model} (weights {manifest.model_fingerprint}); update it with "
            f"the same model, or rebuild it with `semsearch build`"
        )
    return _Opened(manifest, stored, embedder, vectors)


def _rebuild_reason(manifest: Manifest, plan: UpdatePlan) -> str | None:
    """Why this update should rebuild the index rather than change it in place (None: it should not)."""
    rows = manifest.vector_rows + len(plan.append)
    retired = manifest.retired + len(plan.retire)
    if retired > RETIRED_MAX * rows:
        return f"{retired} of {rows} rows would be retired (more than {RETIRED_MAX:.0%})"
    trained = manifest.build.get("rows_at_build", manifest.vector_rows)
    if manifest.index_type != "flat" and rows > GROWTH_MAX * trained:
        return f"{rows} rows, {rows / trained:.1f}x the {trained} the {manifest.index_type} index was tuned on"
    return None


def _apply(
    target: Path,
    opened: _Opened,
    papers: Sequence[Paper],
    *,
    progress: bool,
    cache: Path | None | bool,
    facts: dict,
) -> BuildSummary:
    """Make the index at `target` hold `papers`: in place when it can, else by a full rebuild."""
    start = time.perf_counter()
    manifest = opened.manifest
    plan = plan_update(opened.stored, papers)
    reason = _rebuild_reason(manifest, plan)
    cache_path = default_cache_path() if cache is True else (cache or None)
    reusing = _Reusing(CachedEmbedder(opened.embedder, cache_path) if cache_path else opened.embedder, {})
    if not plan:
        summary = _summary(target, len(papers), {"update": "nothing changed"}, start)
    elif reason is None:
        summary = _update_in_place(target, opened, plan, papers, reusing, progress, facts)
    else:
        if manifest.index_type == "flat":  # exact stored vectors: reuse them rather than re-embed
            reusing.known.update((paper_text(p), opened.vectors.reconstruct(row)) for row, p in opened.stored)
        target_recall = manifest.build.get("index_choice", {}).get("target_recall", TARGET_RECALL)
        kind = manifest.build.get("requested_index_type", "auto")
        kept = {k: v for k, v in manifest.build.items() if k not in ("index_choice", "rows_at_build", "updates")}
        summary = _build_papers(
            papers, _Staging(target), reusing, progress, False, kind, target_recall, {**kept, **facts}
        )
        summary.index_choice["update"] = f"rebuilt: {reason}"
    summary.embedded = reusing.embedded
    summary.seconds = time.perf_counter() - start
    return summary


def _summary(target: Path, papers: int, choice: dict, start: float) -> BuildSummary:
    return BuildSummary(str(target), [], papers, papers, [], [], time.perf_counter() - start, choice)


def _update_in_place(
    target: Path,
    opened: _Opened,
    plan: UpdatePlan,
    papers: Sequence[Paper],
    embedder: "_Reusing",
    progress: bool,
    facts: dict,
) -> BuildSummary:
    """Copy the index into staging, retire/update/append rows there, and swap it in."""
    import numpy as np

    start = time.perf_counter()
    manifest = opened.manifest
    vectors = embedder.encode([paper_text(p) for p in plan.append], progress=progress)
    first = manifest.vector_rows
    new_rows = np.arange(first, first + len(plan.append), dtype=np.int64)
    staging = _Staging(target)
    name = VECTORS
    try:
        if len(plan.append):
            index = opened.vectors
            with omp_threads(1 if len(new_rows) < 10_000 else None):  # see ann.omp_threads
                index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), new_rows)
            _write_vectors(staging.path / VECTORS, index)
            del index
        else:
            os.link(target / VECTORS, staging.path / VECTORS)  # unchanged: files are never written in place
        name = PAPERS
        shutil.copyfile(target / PAPERS, staging.path / PAPERS)
        _update_papers(staging.path / PAPERS, plan, [int(r) for r in new_rows])
        by_row = dict(opened.stored)
        for row in plan.retire:
            by_row.pop(row)
        by_row.update(plan.update)
        by_row.update(zip((int(r) for r in new_rows), plan.append))
        live = [by_row[r] for r in sorted(by_row)]
        step = {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "appended": len(plan.append),
            "retired": len(plan.retire),
            "updated": len(plan.update),
        }
        updated = replace(
            manifest,
            count=len(live),
            rows=first + len(plan.append),
            retired=manifest.retired + len(plan.retire),
            corpus_hash=corpus_hash(live),
            format_version=FORMAT_VERSION,
            semsearch_version=__version__,
            build={**manifest.build, **facts, "updates": [*manifest.build.get("updates", []), step]},
        )
        name = MANIFEST
        updated.write(staging.path)
        name = ""
        staging.commit()
    except (OSError, sqlite3.Error) as exc:
        staging.abort()
        if not name:
            raise
        raise staging.failed(name, exc) from None
    except BaseException:
        staging.abort()
        raise
    choice = {**manifest.build.get("index_choice", {}), "update": "updated in place", **step}
    return _summary(target, len(papers), choice, start)


def _update_papers(path: Path, plan: UpdatePlan, new_rows: Sequence[int]) -> None:
    """Apply `plan` to a copy of papers.sqlite: FTS entries follow their rows."""
    con = sqlite3.connect(path)
    try:
        _upgrade_papers(con)
        con.execute("CREATE TABLE IF NOT EXISTS retired_rows (row INTEGER PRIMARY KEY)")
        for row in [*plan.retire, *(r for r, _ in plan.update)]:
            con.execute("DELETE FROM paper_names WHERE row = ?", (row,))
        for row in plan.retire:
            lexical.forget(con, row)
            con.execute("DELETE FROM papers WHERE row = ?", (row,))
        con.executemany("INSERT INTO retired_rows (row) VALUES (?)", ((r,) for r in plan.retire))
        for row, paper in plan.update:  # same title and abstract: the FTS entry stays right
            con.execute(
                f"UPDATE papers SET {', '.join(f'{c} = ?' for c in _COLUMNS)} WHERE row = ?",
                (*_values(paper), row),
            )
        con.executemany(
            f"INSERT INTO papers (row, {', '.join(_COLUMNS)}) VALUES (?{', ?' * len(_COLUMNS)})",
            ((row, *_values(p)) for row, p in zip(new_rows, plan.append)),
        )
        for row in new_rows:
            lexical.index_row(con, row)
        _write_names(con, [*plan.update, *zip(new_rows, plan.append)])
        con.commit()
    finally:
        con.close()


def add(
    paths: Sequence[str | Path],
    index: str | Path = DEFAULT_INDEX,
    *,
    embedder: Embedder | None = None,
    progress: bool = False,
    cache: Path | None | bool = True,
    columns: dict[str, str] | None = None,
    wait: float = DEFAULT_WAIT,
) -> BuildSummary:
    """Add the papers in `paths` to an existing index, merged against its records.

    A new version of a known paper updates that record (same id); only new or changed texts are
    embedded. The index is changed in place for every index type — new rows are added to the
    FAISS structure, rows of replaced texts are retired — unless the update crosses RETIRED_MAX
    or GROWTH_MAX, when it is rebuilt and re-tuned. Either way the directory is swapped
    atomically: a crash at any point leaves the previous index, and readers that have it open
    keep working.

    Raises:
        CorpusError: a bad input file (nothing changes); IndexNotFound / IndexFormatError (the
        same checks as `search`); IndexTargetError, IndexBusy (see `build`);
        ModelMismatch: the update would need another model.
    """
    start = time.perf_counter()
    judge(index, paths)
    with _writing(index, wait, paths, existing=True) as target:
        opened = _open_for_update(target, embedder)
        results = read_paths(paths, columns, progress=progress)
        new = [r for f in results for r in f.records]
        stored = [r for _, p in opened.stored for r in as_records(p)]
        merged = merge(stored + new, known=len(stored))
        facts = {"files": opened.manifest.build.get("files", []) + _file_facts(results),
                 "records": opened.manifest.build.get("records", 0) + len(new)}
        summary = _apply(target, opened, merged.papers, progress=progress, cache=cache, facts=facts)
    summary.files, summary.records, summary.papers_before = _file_facts(results), len(new), len(opened.stored)
    added = {f"{r.source}:{r.line}" for r in new}
    summary.merged_groups = [g for g in merged.groups if added & set(g.sources)]
    summary.likely_duplicates = [d for d in merged.likely_duplicates if added & set(d.sources)]
    summary.skipped = [s for f in results for s in f.skipped]
    summary.seconds = time.perf_counter() - start
    return summary


def remove(
    ids: Sequence[str], index: str | Path = DEFAULT_INDEX, *, embedder: Embedder | None = None,
    wait: float = DEFAULT_WAIT,
) -> BuildSummary:
    """Remove papers (by record id or arXiv id) from an index, atomically; raises QueryError for an
    unknown id (nothing changes). Their FAISS rows are retired (see `add`)."""
    from .errors import QueryError

    start = time.perf_counter()
    with _writing(index, wait, existing=True) as target:
        opened = _open_for_update(target, embedder)
        papers = [p for _, p in opened.stored]
        by_ref = {p.id: p.id for p in papers}
        for p in papers:  # then arXiv ids, given ids and aliases (ids of merged or renamed papers)
            for name in p.names:
                by_ref.setdefault(name, p.id)
        gone = set()
        for ref in ids:
            found = by_ref.get(ref) or by_ref.get(_arxiv_or_none(ref) or "")
            if found is None:
                raise QueryError(f"no paper with id {ref!r} in {index}: see `semsearch papers`")
            gone.add(found)
        keep = [p for p in papers if p.id not in gone]
        if not keep:
            raise QueryError(f"removing {len(papers)} papers would leave {index} empty: delete the directory instead")
        summary = _apply(target, opened, keep, progress=False, cache=False, facts={})
    summary.papers_before = len(papers)
    summary.removed = sorted(gone)
    summary.seconds = time.perf_counter() - start
    return summary


def rewrite(
    index: str | Path, change: "Callable[[list[Paper]], list[Paper]]", *, embedder: Embedder | None = None,
    progress: bool = False, cache: Path | None | bool = True, wait: float = DEFAULT_WAIT,
) -> BuildSummary:
    """Replace an index's papers by `change(stored papers)`, under the writer lock and through
    the same in-place update as `add` (only changed texts embedded; atomic swap). `change` sees
    the papers as they are once the lock is held, and must keep their ids (enrich fills
    metadata this way)."""
    start = time.perf_counter()
    with _writing(index, wait, existing=True) as target:
        opened = _open_for_update(target, embedder)
        before = [p for _, p in opened.stored]
        summary = _apply(target, opened, change(list(before)), progress=progress, cache=cache, facts={})
    summary.papers_before = len(before)
    summary.seconds = time.perf_counter() - start
    return summary


def _file_facts(results: Sequence[FileResult]) -> list[dict]:
    return [{"path": f.path, "format": f.format, "records": len(f.records), "skipped": len(f.skipped)} for f in results]


def _arxiv_or_none(ref: str) -> str | None:
    from .ingest import normalize_arxiv_id

    try:
        return normalize_arxiv_id(ref)
    except ValueError:
        return None


# --- reading -----------------------------------------------------------------------------


def paper_from_row(row: Sequence) -> Paper:
    """A `Paper` from a SELECT of _COLUMNS."""
    values = {c: (tuple(json.loads(v)) if c in _JSON_COLUMNS and v else v) for c, v in zip(_COLUMNS, row)}
    for c in _JSON_COLUMNS:
        values[c] = values[c] or ()
    return Paper(**values)


class PaperStore:
    """Read-only access to `papers.sqlite`, by FAISS row."""

    def __init__(self, directory: Path):
        path = directory / PAPERS
        if not path.is_file():
            raise IndexFormatError(f"{path}: missing; rebuild the index")
        try:
            self._con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            self.count = self._con.execute("SELECT count(*) FROM papers").fetchone()[0]
            have = {r[1] for r in self._con.execute("PRAGMA table_info(papers)")}
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"{path}: not a readable papers database ({exc}); rebuild the index") from None
        self.path = path
        self._legacy = "given_id" not in have  # written before format 4: no aliases
        self._columns = ", ".join(c if c in have else "NULL" for c in _COLUMNS)

    def _select(self, where: str = "", args: Sequence = ()) -> list[tuple[int, Paper]]:
        sql = f"SELECT row, {self._columns} FROM papers {where}"
        try:
            rows = self._con.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"{self.path}: {exc}; rebuild the index") from None
        found = [(r[0], paper_from_row(r[1:])) for r in rows]
        if self._legacy:
            found = [(row, replace(p, given_id=_legacy_given_id(p.id, p.arxiv_id, p.abstract))) for row, p in found]
        return found

    def by_rows(self, rows: Sequence[int]) -> dict[int, Paper]:
        found: dict[int, Paper] = {}
        rows = [int(r) for r in rows]
        for i in range(0, len(rows), 500):
            chunk = rows[i : i + 500]
            found.update(self._select(f"WHERE row IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def all(self) -> list[Paper]:
        return [p for _, p in self._select("ORDER BY row")]

    def rows_and_papers(self) -> list[tuple[int, Paper]]:
        """Every (row, paper), in row order."""
        return self._select("ORDER BY row")

    def rows(self) -> list[int]:
        """Rows of every paper, in order (FAISS may hold retired rows besides these)."""
        return self.rows_where("1", ())

    def retired(self) -> list[int]:
        """FAISS rows retired by updates: never to be returned (empty for a fresh build)."""
        try:
            return [int(r) for (r,) in self._con.execute("SELECT row FROM retired_rows ORDER BY row")]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise IndexFormatError(f"{self.path}: {exc}; rebuild the index") from None
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"{self.path}: {exc}; rebuild the index") from None

    def find(self, column: str, value: str) -> list[tuple[int, Paper]]:
        """Papers whose `column` is `value`; column "name": whose given id or an alias is."""
        assert column in ("id", "arxiv_id", "name")
        if column != "name":
            return self._select(f"WHERE {column} = ?", (value,))
        if self._legacy:
            return self._select("WHERE id = ?", (value,))
        return self._select("WHERE row IN (SELECT row FROM paper_names WHERE name = ?) ORDER BY row", (value,))

    def titles(self) -> list[tuple[int, str]]:
        """(row, title) of every titled paper."""
        return [(int(r), t) for r, t in self._con.execute("SELECT row, title FROM papers WHERE title IS NOT NULL")]

    def rows_where(self, where: str, args: Sequence) -> list[int]:
        """Rows of papers satisfying an SQL condition over the papers table (built by the query stage)."""
        try:
            return [int(r) for (r,) in self._con.execute(f"SELECT row FROM papers WHERE {where} ORDER BY row", args)]
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"{self.path}: {exc}; rebuild the index") from None

    @property
    def connection(self) -> sqlite3.Connection:
        return self._con

    def close(self) -> None:
        self._con.close()


def _legacy_given_id(paper_id: str, arxiv_id: str | None, abstract: str) -> str | None:
    """The given id of a paper stored before format 4: its id, unless that is its arXiv id or the
    content id those versions gave (a hash of its longest text, maybe with `~N`)."""
    base = paper_id.rsplit("~", 1)[0] if paper_id.rsplit("~", 1)[-1].isdigit() else paper_id
    return None if base in (arxiv_id, content_id(abstract)) else paper_id


def read_vectors(directory: Path, manifest: Manifest):
    """Load the FAISS index and check it against the manifest; raises IndexFormatError."""
    import faiss

    path = directory / VECTORS
    if not path.is_file():
        raise IndexFormatError(f"{path}: missing; rebuild the index")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        reason = reason.rsplit("failed: ", 1)[-1]  # FAISS prefixes the C++ function and source line
        raise IndexFormatError(f"{path}: damaged FAISS file ({reason}); rebuild the index") from None
    set_search_params(index, manifest.index_params)
    if index.d != manifest.dim or index.ntotal != manifest.vector_rows:
        raise IndexFormatError(
            f"{path}: holds {index.ntotal} vectors of dim {index.d}, manifest says {manifest.vector_rows} of dim "
            f"{manifest.dim}; rebuild the index"
        )
    return index


def disk_usage(directory: Path) -> dict[str, int]:
    """Bytes on disk of each index file."""
    return {name: (directory / name).stat().st_size for name in FILES if (directory / name).exists()}
