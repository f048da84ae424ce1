"""`semsearch mcp`: the SDK's own client talks to the server over stdio, as an assistant would."""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("mcp", reason="the serve extra is not installed: pip install 'semsearch[serve]'")

import anyio  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402

from .conftest import ROOT  # noqa: E402

AUTOSHARD = "AutoShard: Automated Embedding Table Sharding for Recommender Systems"


def _server(index) -> StdioServerParameters:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return StdioServerParameters(command=sys.executable, args=["-m", "tests.fake_cli", "mcp", "--index", str(index)],
                                 cwd=str(ROOT), env=env)


def test_an_assistant_can_search_open_and_group_papers_over_stdio(seed_index_path, seed_index):
    async def session():
        async with Client(_server(seed_index_path)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            calls = {
                "search": await client.call_tool("search", {"query": "embedding table sharding", "k": 3}),
                "similar": await client.call_tool("similar", {"refs": ["AutoShard"], "k": 2}),
                "like two": await client.call_tool(
                    "similar", {"refs": ["AutoShard", "FlexShard"], "unlike": ["Llama 3"], "k": 3}),
                "paper": await client.call_tool("paper", {"id": "arXiv:2104.05158v1"}),
                "themes": await client.call_tool("themes", {"themes": ["recommendation systems", "quantization"]}),
                "auto": await client.call_tool("themes", {"auto": True, "n": 3}),
                "unknown": await client.call_tool("paper", {"id": "../../etc/passwd"}),
                "bad k": await client.call_tool("search", {"query": "x", "k": 1_000_000}),
                "neither": await client.call_tool("themes", {}),
            }
            return tools, calls

    tools, calls = anyio.run(session)
    assert sorted(tools) == ["paper", "search", "similar", "themes"]
    k = tools["search"].input_schema["properties"]["k"]
    assert (k["minimum"], k["maximum"]) == (1, 100) and tools["search"].input_schema["required"] == ["query"]
    assert all(t.annotations.read_only_hint for t in tools.values())
    text = {name: r.content[0].text for name, r in calls.items()}

    hits = seed_index.search("embedding table sharding", 3)
    assert text["search"].splitlines()[0] == "3 papers for 'embedding table sharding' (score: fused, higher is better)"
    assert f"1. [{hits[0].score:.3f}] {hits[0].id}: {AUTOSHARD} (2022; Daochen Zha, Louis Feng, Bhargav Bhushanam)" \
        in text["search"]
    assert all(h.id in text["search"] for h in hits)
    assert f"left out {seed_index.resolve('AutoShard')[1].id} (AutoShard" in text["similar"]
    assert text["paper"].startswith("[no title] Deep learning recommendation models") and \
        "https://arxiv.org/abs/2104.05158" in text["paper"]
    assert "## recommendation systems" in text["themes"] and text["auto"].startswith("3 themes over 25 papers")

    assert text["like two"].startswith("3 papers like AutoShard") and "(score: svm" in text["like two"]
    assert not any(calls[n].is_error for n in ("search", "similar", "like two", "paper", "themes", "auto"))
    assert calls["unknown"].is_error and "no paper with id or arXiv id '../../etc/passwd'" in text["unknown"]
    assert calls["bad k"].is_error and "less than or equal to 100" in text["bad k"]
    assert calls["neither"].is_error and "name themes" in text["neither"]


def test_mcp_on_a_missing_index_exits_with_one_line(tmp_path):
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "tests.fake_cli", "mcp", "--index", str(tmp_path / "none")], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")
