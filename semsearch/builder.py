"""Build: files of abstracts -> records -> papers -> vectors -> a new index directory, atomically."""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from . import embed
from .embed import CachedEmbedder, Embedder, default_cache_path, paper_text
from .ingest import FileResult, RawRecord, Skipped, read_paths
from .records import LikelyDuplicate, MergeGroup, Paper, merge, unmerged
from .store.directory import Staging, recover_locked, write_index
from .store.manifest import Manifest
from .store.target import DEFAULT_INDEX, DEFAULT_WAIT, WriterLock, is_index, judge
from .store.tune import TARGET_RECALL, build_vector_index


@dataclass(frozen=True)
class BuildSummary:
    """What a build or update read, merged, skipped and wrote (frozen: each step makes a new one
    with `dataclasses.replace`). `index_choice` is the vector structure chosen; `update` says how
    an update was applied ("updated in place", "rebuilt: REASON", "nothing changed"; None for a
    build)."""

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
    update: str | None = None

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
            "update": self.update,
        }



def corpus_hash(papers: Iterable[Paper]) -> str:
    """SHA-256 (first 16 hex) over the papers' ids and embedded texts, in index order."""
    h = hashlib.sha256()
    for p in papers:
        h.update(p.id.encode() + b"\0" + paper_text(p).encode() + b"\0")
    return h.hexdigest()[:16]



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
            semsearch[ray]); `workers` and `ray_address` as for semsearch.embed.ray.RayEmbedder.
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
    return replace(summary, skipped=[s for f in results for s in f.skipped], seconds=time.perf_counter() - start)


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
        staging = Staging(target)  # fails now, before minutes of embedding, if unwritable
        try:
            if embedder is None and engine != "local":  # a missing Ray fails here, before the merge
                embedder = embed.engine_embedder(model, backend, engine, workers=workers, address=ray_address)
            merged = merge(raw) if dedupe else unmerged(raw)
        except BaseException:
            staging.abort()
            raise
        summary = _build_papers(
            merged.papers, staging, embedder or embed.make_embedder(model, backend), progress, cache, index_type,
            target_recall, {"files": files or [], "records": len(raw), "merged_groups": len(merged.groups)},
        )
    return replace(summary, merged_groups=merged.groups, likely_duplicates=merged.likely_duplicates,
                   records=len(raw), seconds=time.perf_counter() - start)


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
        recover_locked(target)
        yield target


def _build_papers(
    papers: Sequence[Paper],
    staging: Staging,
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


def _file_facts(results: Sequence[FileResult]) -> list[dict]:
    return [{"path": f.path, "format": f.format, "records": len(f.records), "skipped": len(f.skipped)} for f in results]


