"""Store: an index directory on disk — manifest, papers (SQLite + FTS5), vectors — written atomically.

manifest.py: the directory's files and manifest.json; papers.py: papers.sqlite; lexical.py: its
FTS5 table (BM25); vectors.py: VectorIndex, the one class that calls FAISS, and NumpyIndex;
tune.py: which vector structure a build uses; directory.py: staging, atomic swap, recovery;
target.py: which paths may be written, and the one-writer lock.
"""

from .directory import Staging, read_vectors, recover, write_index
from .manifest import FILES, FORMAT_VERSION, MANIFEST, PAPERS, SIDE_FILES, VECTORS, Manifest, disk_usage
from .papers import PaperStore
from .target import DEFAULT_INDEX, DEFAULT_WAIT, WriterLock, judge
from .tune import INDEX_TYPES, IndexChoice, build_vector_index
from .vectors import NumpyIndex, VectorIndex

__all__ = [
    "DEFAULT_INDEX",
    "DEFAULT_WAIT",
    "FILES",
    "FORMAT_VERSION",
    "INDEX_TYPES",
    "MANIFEST",
    "PAPERS",
    "SIDE_FILES",
    "VECTORS",
    "IndexChoice",
    "Manifest",
    "NumpyIndex",
    "PaperStore",
    "Staging",
    "VectorIndex",
    "WriterLock",
    "build_vector_index",
    "disk_usage",
    "judge",
    "read_vectors",
    "recover",
    "write_index",
]
