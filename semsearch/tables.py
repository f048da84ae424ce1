"""Rows of plain values -> an HTML table (Jupyter) or a pandas DataFrame; no stage logic."""

from __future__ import annotations

import html
from typing import Sequence


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def html_table(rows: Sequence[dict], columns: Sequence[str], caption: str = "", max_chars: int = 160) -> str:
    """An HTML table of `columns` from `rows`; long cells are cut to `max_chars`."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            text = _cell(row.get(c))
            if len(text) > max_chars:
                text = text[: max_chars - 1] + "…"
            cells.append(f"<td style='text-align:left'>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def dataframe(rows: Sequence[dict], columns: Sequence[str]):
    """A pandas DataFrame of `rows` with `columns` (pandas is imported here, lazily)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        from .errors import SemsearchError

        raise SemsearchError("pandas is not installed: pip install pandas") from None
    return pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=list(columns))
