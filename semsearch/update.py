"""Update: add papers to an index or remove them, in place when it can, else by a full rebuild."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from . import embed
from .builder import BuildSummary, _build_papers, _file_facts, _writing, corpus_hash
from .embed import CachedEmbedder, Embedder, default_cache_path, paper_text
from .errors import IndexFormatError, ModelMismatch, QueryError
from .ingest import maybe_arxiv, read_paths
from .records import Paper, as_records, merge
from .store.directory import Staging, read_vectors
from .store.manifest import FORMAT_VERSION, MANIFEST, PAPERS, VECTORS, Manifest
from .store.papers import PaperStore, update_papers
from .store.target import DEFAULT_INDEX, DEFAULT_WAIT, judge
from .store.tune import TARGET_RECALL
from .store.vectors import VectorIndex
from .version import __version__

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
    vectors: VectorIndex  # checked against the manifest


def _open_for_update(target: Path, embedder: Embedder | None) -> _Opened:
    """Open the index to change as `search` would, refusing a damaged one with the same message."""
    manifest = Manifest.read(target)
    vectors = read_vectors(target, manifest)
    store = PaperStore(target)
    try:
        stored = store.rows_and_papers()
    except sqlite3.Error as exc:
        raise IndexFormatError(f"{target / PAPERS}: unreadable ({exc}); rebuild the index") from None
    finally:
        store.close()
    embedder = embedder or embed.query_embedder_for(manifest.model, manifest.model_fingerprint)
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
        summary = _summary(target, len(papers), manifest.build.get("index_choice", {}), "nothing changed", start)
    elif reason is None:
        summary = _update_in_place(target, opened, plan, papers, reusing, progress, facts)
    else:
        if manifest.index_type == "flat":  # exact stored vectors: reuse them rather than re-embed
            reusing.known.update(zip((paper_text(p) for _, p in opened.stored),
                                     opened.vectors.reconstruct([row for row, _ in opened.stored])))
        target_recall = manifest.build.get("index_choice", {}).get("target_recall", TARGET_RECALL)
        kind = manifest.build.get("requested_index_type", "auto")
        kept = {k: v for k, v in manifest.build.items() if k not in ("index_choice", "rows_at_build", "updates")}
        summary = _build_papers(
            papers, Staging(target), reusing, progress, False, kind, target_recall, {**kept, **facts}
        )
        summary = replace(summary, update=f"rebuilt: {reason}")
    return replace(summary, embedded=reusing.embedded, seconds=time.perf_counter() - start)


def _summary(target: Path, papers: int, choice: dict, update: str, start: float) -> BuildSummary:
    return BuildSummary(str(target), [], papers, papers, [], [], time.perf_counter() - start, choice, update=update)


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
    start = time.perf_counter()
    manifest = opened.manifest
    vectors = embedder.encode([paper_text(p) for p in plan.append], progress=progress)
    first = manifest.vector_rows
    appended = list(zip(range(first, first + len(plan.append)), plan.append))
    by_row = dict(opened.stored)
    for row in plan.retire:
        by_row.pop(row)
    by_row.update(plan.update)
    by_row.update(appended)
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

    def write_vectors(path: Path) -> None:
        if appended:
            opened.vectors.add(vectors, [row for row, _ in appended])
            opened.vectors.save(path)
        else:
            os.link(target / VECTORS, path)  # unchanged: files are never written in place

    def write_papers(path: Path) -> None:
        shutil.copyfile(target / PAPERS, path)
        update_papers(path, plan.retire, plan.update, appended)

    Staging(target).write({VECTORS: write_vectors, PAPERS: write_papers, MANIFEST: lambda path: updated.write(path.parent)})
    choice = {**manifest.build.get("index_choice", {}), **step}
    return _summary(target, len(papers), choice, "updated in place", start)


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
    added = {f"{r.source}:{r.line}" for r in new}
    return replace(
        summary, files=_file_facts(results), records=len(new), papers_before=len(opened.stored),
        merged_groups=[g for g in merged.groups if added & set(g.sources)],
        likely_duplicates=[d for d in merged.likely_duplicates if added & set(d.sources)],
        skipped=[s for f in results for s in f.skipped], seconds=time.perf_counter() - start,
    )


def remove(
    ids: Sequence[str], index: str | Path = DEFAULT_INDEX, *, embedder: Embedder | None = None,
    wait: float = DEFAULT_WAIT,
) -> BuildSummary:
    """Remove papers (by record id or arXiv id) from an index, atomically; raises QueryError for an
    unknown id (nothing changes). Their FAISS rows are retired (see `add`)."""

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
            found = by_ref.get(ref) or by_ref.get(maybe_arxiv(ref) or "")
            if found is None:
                raise QueryError(f"no paper with id {ref!r} in {index}: see `semsearch papers`")
            gone.add(found)
        keep = [p for p in papers if p.id not in gone]
        if not keep:
            raise QueryError(f"removing {len(papers)} papers would leave {index} empty: delete the directory instead")
        summary = _apply(target, opened, keep, progress=False, cache=False, facts={})
    return replace(summary, papers_before=len(papers), removed=sorted(gone), seconds=time.perf_counter() - start)


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
    return replace(summary, papers_before=len(before), seconds=time.perf_counter() - start)
