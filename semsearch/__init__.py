"""semsearch: local, offline semantic search over scientific paper abstracts."""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    CorpusError,
    IndexFormatError,
    IndexNotFound,
    ModelMismatch,
    QueryError,
    SemsearchError,
)
from .index import BuildSummary, add, build, remove  # noqa: E402
from .query import Excluded, Filters, Hit, Hits, Index, Neighbours, Papers  # noqa: E402
from .records import Paper  # noqa: E402

__all__ = [
    "BuildSummary",
    "CorpusError",
    "Excluded",
    "Filters",
    "Hit",
    "Hits",
    "Index",
    "IndexFormatError",
    "IndexNotFound",
    "ModelMismatch",
    "Neighbours",
    "Paper",
    "Papers",
    "QueryError",
    "SemsearchError",
    "__version__",
    "add",
    "build",
    "remove",
]
