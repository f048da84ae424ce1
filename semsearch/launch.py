"""The installed `semsearch` command: a plain `search` answered without importing typer; the rest by cli.py.

Importing cli.py costs typer (~30 ms) on top of rich, in a cold query of ~0.3 s
(docs/benchmarks.md, "Cold query"). `python -m semsearch` runs the same.
"""

from __future__ import annotations

import sys


def main() -> None:
    from . import render

    if not render.answer_plain_search(sys.argv[1:]):
        from .cli import main as everything_else

        everything_else()
