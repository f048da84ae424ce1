"""The README's Python block runs as written, on a copy of the seed corpus, with the fake embedder."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from .conftest import CORPUS, ROOT, FakeEmbedder

NEW_BIB = """@article{newpaper2024,
  title = {Sharding embedding tables across accelerators},
  abstract = {We study how to partition large embedding tables of recommendation models across many
    accelerators so that lookups stay balanced, communication stays small and training throughput grows
    almost linearly with the number of devices in the cluster.}
}
"""


def python_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_block_runs(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    shutil.copytree(CORPUS, tmp_path / "corpus")
    (tmp_path / "new-papers.bib").write_text(NEW_BIB, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr("semsearch.embed.make_embedder", lambda model=None, backend="auto": FakeEmbedder())
    monkeypatch.setattr("semsearch.embed.query_embedder_for", lambda model, fingerprint: FakeEmbedder())
    scope: dict = {}
    exec(compile(python_block(), "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    idx = scope["idx"]
    assert len(idx) == len(scope["ids"]) + 1, "the reopened index must hold the paper add() brought"
    assert scope["vectors"].shape == (len(scope["ids"]), idx.manifest.dim)
    assert os.path.exists(tmp_path / "themes.png")
    idx.close()
