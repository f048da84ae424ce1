"""One progress bar for every long step: tqdm on stderr, or a silent stand-in with the same calls."""

from __future__ import annotations

import sys


class _Silent:
    """What `bar` returns when nothing is shown: counts, prints nothing."""

    n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc) -> None:
        pass


def bar(total: int, desc: str, *, show: bool = True, unit: str = "text", **options):
    """A tqdm bar on stderr (`update`, `close`, `n`, a context manager), or a silent one when `show`
    is false; tqdm is imported only when a bar is shown."""
    if not show:
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, **options)
