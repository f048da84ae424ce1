"""The project's own exceptions: each message names what is wrong and how to fix it."""

from __future__ import annotations


class SemsearchError(Exception):
    """Base class of every error semsearch raises on purpose."""


class CorpusError(SemsearchError):
    """An input file (or one line of it) cannot be read as paper abstracts."""

    def __init__(self, path: str, reason: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class IndexNotFound(SemsearchError):
    """No index directory where one was expected."""


class IndexTargetError(SemsearchError):
    """An --index path that is not a semsearch index (a file, a user's directory, an input)."""


class IndexBusy(SemsearchError):
    """Another process is changing the index and did not finish within the wait."""


class IndexFormatError(SemsearchError):
    """An index directory exists but its files are missing, damaged or too new."""


class ModelMismatch(SemsearchError):
    """The query model is not the model the index was built with."""


class QueryError(SemsearchError):
    """A query, reference or option that cannot be answered as given."""


class FetchError(SemsearchError):
    """A paper service could not be reached, refused a request, or answered in another format."""


class ExportError(SemsearchError):
    """Papers cannot be exported as asked (no paper selected, unknown format, unwritable file)."""
