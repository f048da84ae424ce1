"""papers.sqlite: the papers of an index by row (= id in the vector index), their other names, FTS5."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import IndexFormatError
from ..records import Paper, content_id
from . import lexical
from .manifest import PAPERS

_COLUMNS = (
    "id", "title", "abstract", "versions", "arxiv_id", "date", "authors", "categories", "sources", "given_id", "aliases"
)
_JSON_COLUMNS = {"versions", "authors", "categories", "sources", "aliases"}


def _values(paper: Paper) -> tuple:
    """A paper's _COLUMNS values as stored (lists as JSON)."""
    return tuple(json.dumps(list(getattr(paper, c))) if c in _JSON_COLUMNS else getattr(paper, c) for c in _COLUMNS)


def write_papers(path: Path, papers: Sequence[Paper]) -> None:
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


def update_papers(
    path: Path, retire: Sequence[int], update: Sequence[tuple[int, Paper]], append: Sequence[tuple[int, Paper]]
) -> None:
    """Change a copy of papers.sqlite: `retire` rows, `update` (row, paper) records whose text is
    unchanged, `append` (row, paper) new ones; FTS entries follow their rows."""
    con = sqlite3.connect(path)
    try:
        _upgrade_papers(con)
        con.execute("CREATE TABLE IF NOT EXISTS retired_rows (row INTEGER PRIMARY KEY)")
        for row in [*retire, *(r for r, _ in update)]:
            con.execute("DELETE FROM paper_names WHERE row = ?", (row,))
        for row in retire:
            lexical.forget(con, row)
            con.execute("DELETE FROM papers WHERE row = ?", (row,))
        con.executemany("INSERT INTO retired_rows (row) VALUES (?)", ((r,) for r in retire))
        for row, paper in update:  # same title and abstract: the FTS entry stays right
            con.execute(
                f"UPDATE papers SET {', '.join(f'{c} = ?' for c in _COLUMNS)} WHERE row = ?",
                (*_values(paper), row),
            )
        con.executemany(
            f"INSERT INTO papers (row, {', '.join(_COLUMNS)}) VALUES (?{', ?' * len(_COLUMNS)})",
            ((row, *_values(p)) for row, p in append),
        )
        for row, _ in append:
            lexical.index_row(con, row)
        _write_names(con, [*update, *append])
        con.commit()
    finally:
        con.close()



def paper_from_row(row: Sequence) -> Paper:
    """A `Paper` from a SELECT of _COLUMNS."""
    values = {c: (_json_tuple(v) if c in _JSON_COLUMNS else v) for c, v in zip(_COLUMNS, row)}
    return Paper(**values)


def _json_tuple(value: str | None) -> tuple:
    return tuple(json.loads(value)) if value and value != "[]" else ()


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
        self.inode = os.stat(path).st_ino  # which file this is, for readers opening it again (lexical.Postings)
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
        if len(rows) > self.count // 4:  # most of the index: one scan beats hundreds of IN (...) lookups
            wanted = set(rows)
            return {row: p for row, p in self._select() if row in wanted}
        for i in range(0, len(rows), 500):
            chunk = rows[i : i + 500]
            found.update(self._select(f"WHERE row IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def rows_and_papers(self) -> list[tuple[int, Paper]]:
        """Every (row, paper), in row order."""
        return self._select("ORDER BY row")

    def rows(self) -> list[int]:
        """Rows of every paper, in order (FAISS may hold retired rows besides these)."""
        # no ORDER BY: SQLite then reads the rows from a covering index instead of walking the
        # whole table with its abstracts (75k papers: 15 ms + sort vs 80-270 ms)
        try:
            return sorted(int(r) for (r,) in self._con.execute("SELECT row FROM papers"))
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"{self.path}: {exc}; rebuild the index") from None

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
        if column not in ("id", "arxiv_id", "name"):
            raise ValueError(f"unknown column {column!r}: use id, arxiv_id or name")
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
