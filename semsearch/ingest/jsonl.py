"""JSON lines: one record per object, streamed a line at a time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from ..errors import CorpusError
from .base import RawRecord, Skipped, _short
from .fields import _FieldsSeen, _record_from_fields


def _looks_like_jsonl(text: str) -> bool:
    return text.lstrip().startswith("{")


def stream_jsonl(
    path: str, lines: Iterable[str], columns: dict[str, str] | None = None
) -> Iterator[RawRecord | Skipped]:
    """JSON lines -> a RawRecord per object with an abstract, a Skipped per other non-blank line.

    An object's abstract is its `abstract` field, the field `columns` names, or (a BEIR corpus)
    its `text` beside an `_id`, which becomes the id.

    Args:
        path: the file name used in records and messages.
        lines: the file's lines (a trailing "\\n" is allowed); one is held at a time.
        columns: our field names -> the file's field names (`{"abstract": "summary"}`).
    Yields:
        RawRecord or Skipped, in file order.
    Raises:
        CorpusError (at the end): a field `columns` names is in no record, or no record has a
            field known to hold the abstract (the message lists the fields seen and suggests
            --columns).
    """
    fields = _FieldsSeen()
    rename = {theirs: ours for ours, theirs in (columns or {}).items()}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        line = line.removesuffix("\n")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Skipped(path, n, f"invalid JSON ({exc.msg})", _short(line))
            continue
        except (ValueError, RecursionError) as exc:  # a number of over 4,300 digits, deep nesting
            yield Skipped(path, n, f"invalid JSON ({type(exc).__name__}: {_short(str(exc))})", _short(line))
            continue
        if not isinstance(obj, dict):
            yield Skipped(path, n, "a JSON line must be an object", _short(line))
            continue
        fields.add(obj)
        if columns:
            # A field we map to replaces the file's own field of that name.
            obj = {rename.get(k, k): v for k, v in obj.items() if k in rename or k not in columns}
        elif "abstract" not in obj and "_id" in obj and "text" in obj:  # a BEIR corpus
            obj = {**obj, "abstract": obj["text"], "id": obj["_id"]}
        try:
            yield _record_from_fields(path, n, obj)
        except CorpusError as exc:
            yield Skipped(path, n, exc.reason, _short(line))
    fields.check(path, columns)
