"""semsearch: local, offline semantic search over scientific paper abstracts.

The public surface is re-exported here; the stages live in ingest/ -> records.py -> embed/ ->
store/ -> builder.py, update.py -> results.py, themes.py, query.py -> cli.py (see README,
"How the code is laid out").
"""

from .builder import BuildSummary, build  # noqa: E402
from .embed import Embedder  # noqa: E402
from .errors import (  # noqa: E402
    CorpusError,
    IndexFormatError,
    IndexNotFound,
    ModelMismatch,
    QueryError,
    SemsearchError,
)
from .query import Filters, Index  # noqa: E402
from .records import Paper  # noqa: E402
from .results import Excluded, Hit, Hits, Neighbours, Papers, Theme, ThemeGroups, ThemeMember  # noqa: E402
from .update import add, remove  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = [
    "BuildSummary",
    "CorpusError",
    "Embedder",
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
    "Theme",
    "ThemeGroups",
    "ThemeMember",
    "__version__",
    "add",
    "build",
    "remove",
]
