"""The files of an index directory, and its manifest: the facts stamped on it at build time.

An index directory holds exactly FILES. Nothing is unpickled on load: the manifest is JSON,
records are SQLite rows (papers.py), vectors are FAISS's own binary format (vectors.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import IndexFormatError, IndexNotFound
from ..version import __version__

MANIFEST, VECTORS, PAPERS = "manifest.json", "vectors.faiss", "papers.sqlite"
FILES = (MANIFEST, VECTORS, PAPERS)
#: SQLite's side files next to papers.sqlite, written by SQLite on semsearch's behalf.
SIDE_FILES = tuple(PAPERS + suffix for suffix in ("-journal", "-wal", "-shm"))

#: 2 added the FTS5 table `papers_fts` to papers.sqlite; version 1 indexes must be rebuilt.
#: 3 added in-place updates: FAISS rows of removed or changed papers are retired (listed in
#: `retired_rows`, never returned) rather than rebuilt away. A version-2 index is a version-3
#: index with no retired rows, so both are read.
#: 4 added `given_id` and `aliases` to papers and the `paper_names` table (ids that still resolve
#: after a merge or an id change). Older indexes are read as having no aliases (see PaperStore).
FORMAT_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)
METRIC = "inner_product"  # on L2-normalised vectors: cosine similarity, higher is better


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
        if not isinstance(version, int) or isinstance(version, bool):
            raise IndexFormatError(f"{path}: no format_version; {directory} is not a semsearch index (rebuild it)")
        if version > FORMAT_VERSION:
            raise IndexFormatError(
                f"{path}: format version {version} is newer than this semsearch reads ({FORMAT_VERSION}); "
                "upgrade semsearch"
            )
        if version not in READABLE_VERSIONS:
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


def disk_usage(directory: Path) -> dict[str, int]:
    """Bytes on disk of each index file."""
    return {name: (directory / name).stat().st_size for name in FILES if (directory / name).exists()}
