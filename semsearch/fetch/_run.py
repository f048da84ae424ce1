"""Drive a source page by page into a JSON-lines file, resumably.

Records go to `OUT.part`, one page at a time (flushed and fsynced), and after each page
`OUT.part.json` (written to a temporary name, then renamed) records where the source stands and
how many bytes of `OUT.part` are whole. A re-run of the same request truncates `OUT.part` to
that length and continues from there; the finished file is renamed to `OUT`. A record already
in `OUT.part` (or in an earlier `OUT`) is never written twice.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import FetchError


@dataclass
class Page:
    """One answer of a source: records in the JSON-lines shape `build` reads, and where the next
    page starts (`position`, JSON; None when this was the last)."""

    records: list[dict]
    position: dict | None
    total: int | None = None
    skipped: list[str] = field(default_factory=list)


@dataclass
class FetchSummary:
    """What a fetch wrote: `records` new lines in `output` (`kept` from an earlier run)."""

    source: str
    output: str
    records: int
    kept: int
    skipped: list[str]
    requests: int
    complete: bool
    seconds: float = 0.0
    index: dict | None = None

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def record_key(record: dict) -> str:
    """The identity of a fetched record: its arXiv id without version, else its id."""
    arxiv = record.get("arxiv_id")
    if arxiv:
        return "arxiv:" + re.sub(r"v\d+$", "", str(arxiv)).lower()
    return str(record.get("id", "")).lower()


def _keys(path: Path, length: int | None = None) -> set[str]:
    keys = set()
    with open(path, "rb") as f:
        data = f.read() if length is None else f.read(length)
    for line in data.splitlines():
        try:
            keys.add(record_key(json.loads(line)))
        except (ValueError, AttributeError):
            continue
    return keys


def _check_fetched(path: Path) -> None:
    """Refuse to extend a file that is not JSON lines of records (a user's file is never changed)."""
    if not path.is_file():
        raise FetchError(f"{path}: is not a file; choose another --output")
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ok = isinstance(json.loads(line), dict)
            except ValueError:
                ok = False
            if not ok:
                raise FetchError(
                    f"{path}:{number}: exists and is not JSON lines of papers; semsearch only adds to its own "
                    "fetch output: choose another --output"
                )


def _write_state(path: Path, state: dict) -> None:
    atomic_write_text(path, json.dumps(state, indent=1) + "\n")


def describe(request: dict) -> str:
    return " ".join(f"--{k} {v}" if not isinstance(v, list) else " ".join(f"--{k} {x}" for x in v)
                    for k, v in request.items() if v not in (None, False, [], "") and k != "source")


def run(
    source: str,
    request: dict,
    pages: Callable[[dict | None, set[str]], Iterator[Page]],
    output: Path,
    *,
    limit: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    requests: Callable[[], int] = lambda: 0,
) -> FetchSummary:
    """Write the records of `pages(position, seen)` to `output`, resuming an interrupted run.

    Raises:
        FetchError: the source failed (the records so far stay in OUT.part and the message says
            how to continue), or OUT.part holds another request's interrupted fetch.
    """
    output = Path(output)
    part = output.with_name(output.name + ".part")
    state_path = output.with_name(output.name + ".part.json")
    signature = {"source": source, **request}
    position, written, kept = None, 0, 0
    if part.exists():
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = None
        if not state or state.get("request") != signature:
            what = f"`semsearch fetch {source} {describe(state['request'])}`" if state else "another fetch"
            raise FetchError(
                f"{part}: holds an interrupted {what}; run that again to finish it, or delete {part} to start over"
            )
        with open(part, "r+b") as f:  # drop a page half-written when the last run stopped
            f.truncate(state["bytes"])
        position, written, kept = state["position"], state["records"], state.get("kept", 0)
        seen = _keys(part)
    else:
        seen = set()
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            if output.exists():  # a finished earlier fetch: keep its lines, add only new records
                _check_fetched(output)
                seen = _keys(output)
                kept = len(seen)
                part.write_bytes(output.read_bytes())
            else:
                part.write_bytes(b"")
        except OSError as exc:
            raise FetchError(f"{output}: cannot write ({exc.strerror or exc})") from None
        _write_state(state_path, {"request": signature, "position": None, "records": 0, "kept": kept,
                                  "bytes": part.stat().st_size})
    skipped: list[str] = []
    done = False
    try:
        if progress:
            progress(written, None)
        for page in pages(position, seen):
            lines = []
            for record in page.records:
                key = record_key(record)
                if key in seen or (limit is not None and written + len(lines) >= limit):
                    continue
                seen.add(key)
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            skipped.extend(page.skipped)
            with open(part, "ab") as f:
                f.write("".join(lines).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            written += len(lines)
            position = page.position
            _write_state(state_path, {"request": signature, "position": position, "records": written,
                                      "kept": kept, "bytes": part.stat().st_size})
            if progress:
                progress(written, page.total)
            if position is None or (limit is not None and written >= limit):
                done = True
                break
        else:
            done = True
    except FetchError as exc:
        raise FetchError(
            f"{exc}; {written} records fetched so far are kept in {part}: run the same command again to continue"
        ) from None
    if done:
        os.replace(part, output)
        state_path.unlink(missing_ok=True)
    return FetchSummary(source, str(output), written, kept, skipped, requests(), done)
