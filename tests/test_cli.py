"""CLI wiring: exit codes, --json shapes, one-line errors, every command documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semsearch import cli

from .conftest import ROOT

runner = CliRunner()


@pytest.fixture
def fake_model(monkeypatch):
    """Make the CLI build and query with the fake embedder (no torch)."""
    from . import conftest

    monkeypatch.setattr("semsearch.embed.make_embedder", lambda model=None, backend="auto": conftest.FakeEmbedder())
    monkeypatch.setattr("semsearch.embed.query_embedder_for", lambda model, fingerprint: conftest.FakeEmbedder())


def run(*args):
    result = runner.invoke(cli.app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_build_search_papers_info_json(tmp_path, fake_model):
    idx = tmp_path / "idx"
    code, out, _ = run("build", ROOT / "corpus", "--index", idx, "--json")
    assert code == 0
    summary = json.loads(out)
    assert (summary["papers"], summary["records"], summary["merged_records"]) == (25, 47, 22)
    assert len(summary["skipped"]) == 13

    code, out, _ = run("search", "embedding table sharding", "-k", "3", "--index", idx, "--json")
    assert code == 0
    hits = json.loads(out)
    assert len(hits) == 3
    assert {"id", "title", "arxiv_id", "score", "abstract"} <= set(hits[0])

    code, out, _ = run("papers", "--index", idx, "--json")
    papers = json.loads(out)
    assert len(papers) == 25
    assert {"id", "title", "arxiv_id", "date", "sources", "versions"} <= set(papers[0])

    code, out, _ = run("info", "--index", idx, "--json")
    info = json.loads(out)
    assert (info["dim"], info["count"]) == (64, 25) and info["bytes"] > 0


def test_human_output_marks_untitled_papers(tmp_path, fake_model):
    idx = tmp_path / "idx"
    assert run("build", ROOT / "corpus", "--index", idx)[0] == 0
    code, out, _ = run("papers", "--index", idx)
    assert code == 0 and "[no title]" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "anything", "--index", "{tmp}/none"], "error: no index at {tmp}/none"),
        (["build", "{tmp}/missing.txt", "--index", "{tmp}/idx"], "error: {tmp}/missing.txt: no such file or directory"),
        (["build", "{tmp}/empty.txt", "--index", "{tmp}/idx"], "error: {tmp}/empty.txt: file is empty"),
    ],
)
def test_errors_are_one_line_with_exit_1(tmp_path, fake_model, args, message):
    (tmp_path / "empty.txt").write_text("")
    code, out, err = run(*[a.format(tmp=tmp_path) for a in args])
    assert code == 1
    assert err.strip().startswith(message.format(tmp=tmp_path))
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "idx").exists()


def test_empty_query_exits_1(tmp_path, fake_model):
    idx = tmp_path / "idx"
    run("build", ROOT / "corpus", "--index", idx)
    code, _, err = run("search", "  ", "--index", idx)
    assert code == 1 and "empty query" in err


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for command in cli.app.registered_commands:
        name = command.name or command.callback.__name__
        assert "Example: semsearch " + name in (command.callback.__doc__ or ""), name
        assert re.search(rf"semsearch {name}\b", readme), f"README does not show `semsearch {name}`"


def test_help_starts_without_heavy_imports():
    code = (
        "import sys\n"
        "from semsearch import cli\n"
        "try:\n    cli.app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'faiss', 'sentence_transformers', 'sklearn', 'pandas', 'ray')\n"
        "         if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert "HEAVY []" in out


def test_import_semsearch_loads_no_heavy_module():
    code = (
        "import sys, semsearch\n"
        "print([m for m in ('torch', 'faiss', 'sentence_transformers', 'sklearn', 'pandas', 'numpy', 'ray')\n"
        "       if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_similar_and_themes_json(tmp_path, fake_model):
    idx = tmp_path / "idx"
    run("build", ROOT / "corpus", "--index", idx)
    code, out, _ = run("similar", "arXiv:2407.21783v1", "-k", "3", "--index", idx, "--json")
    d = json.loads(out)
    assert code == 0 and len(d["hits"]) == 3 and "2407.21783" not in [h["id"] for h in d["hits"]]
    assert d["excluded"] == [{"id": "2407.21783", "title": "The Llama 3 Herd of Models",
                              "display_title": "The Llama 3 Herd of Models", "reason": "the paper asked about",
                              "containment": None}]
    code, out, _ = run("themes", "--theme", "recommendation systems", "--theme", "quantization", "--index", idx, "--json")
    assert code == 0
    d = json.loads(out)
    assert [t["name"] for t in d["themes"]] == ["recommendation systems", "quantization"]
    assert "unassigned" in d
    code, out, _ = run("themes", "--theme", "quantization", "--theme", "sharding", "--explain", "--index", idx, "--json")
    d = json.loads(out)
    assert code == 0 and len(d["explain"]) == 25
    assert all([r["theme"] for r in rows] == ["quantization", "sharding"] for rows in d["explain"].values())


@pytest.mark.parametrize(
    "args, message",
    [
        (["similar", "positive unlabeled"], "matches 2 papers, give one id"),
        (["similar", "no such paper at all"], "no paper with id, arXiv id or title"),
        (["search", "x", "--year-from", "1900", "--year-to", "1901"], "no paper matches the filters"),
        (["search", "x", "--mode", "fuzzy"], "unknown mode 'fuzzy'"),
        (["themes", "--theme", "sharding:"], "write a theme as NAME or 'NAME: description'"),
        (["themes"], "name themes with --theme, or use --auto"),
        (["themes", "--auto", "--explain"], "--explain is for named themes (--theme)"),
        (["themes", "--auto", "--n", "0"], "--n must be at least 1, got 0"),
        (["themes", "--theme", "x" * 5000], "theme name of 5000 characters: keep a name under 200"),
    ],
)
def test_query_errors_exit_1_with_one_line(tmp_path, fake_model, args, message):
    idx = tmp_path / "idx"
    run("build", ROOT / "corpus", "--index", idx)
    code, _, err = run(*args, "--index", idx)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_add_and_remove_json(tmp_path, fake_model):
    idx = tmp_path / "idx"
    run("build", ROOT / "corpus", "--index", idx)
    f = tmp_path / "new.jsonl"
    f.write_text(json.dumps({"title": "Fresh", "abstract": " ".join(["sharding embedding tables"] * 10)}) + "\n")
    code, out, _ = run("add", f, "--index", idx, "--json")
    assert code == 0 and json.loads(out)["papers"] == 26 and json.loads(out)["embedded"] == 1
    code, out, _ = run("remove", "2407.21783", "--index", idx, "--json")
    assert code == 0 and json.loads(out)["removed"] == ["2407.21783"] and json.loads(out)["papers"] == 25
    code, out, _ = run("remove", "2104.05158", "--index", idx)
    assert code == 0 and "removed 2104.05158; 24 papers left" in out and "(index updated in place)" in " ".join(out.split())
    code, _, err = run("remove", "no-such-id", "--index", idx)
    assert code == 1 and "no paper with id 'no-such-id'" in err


MARKUP = ["[INST]", "[/INST]", "[bold]x[/bold]", "[red]", ":fire:"]


@pytest.fixture
def markup_index(tmp_path, fake_model, monkeypatch):
    """Papers whose ids, titles, authors and file name look like rich markup."""
    monkeypatch.chdir(tmp_path)  # relative paths: short enough not to wrap in tables
    rows = [
        {"id": "[red]p1", "title": "[INST] chat templates [/INST] for [bold]x[/bold] models",
         "authors": ["[bold]Ann[/bold]"],
         "abstract": "We study how [INST] system prompt [/INST] markers in chat templates change the answers "
                     "of instruction tuned language models across many prompts, tasks and model sizes."},
        {"id": "p2", "title": "Alarms :fire: and [red] flags",
         "abstract": "Smoke detectors in old buildings raise false alarms; we count the red flags that "
                     "firefighters report and propose a cheaper sensor layout for the city of Lyon."},
    ]
    Path("[bold]papers[red].jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run("build", "[bold]papers[red].jsonl", "--index", "idx")
    assert code == 0, err
    assert "[bold]papers[red].jsonl" in out  # the file name, as it is
    return "idx"


def test_user_and_corpus_text_is_printed_literally(markup_index):
    """No rich markup or emoji codes are interpreted in queries, titles, ids or theme names."""
    code, out, err = run("search", "llama chat template [INST] system prompt [/INST]", "--index", markup_index)
    assert code == 0, err
    assert "[INST] system prompt [/INST]'" in out and "[INST] chat templates [/INST]" in out
    code, out, err = run("search", "[bold]x[/bold] [red] :fire:", "--index", markup_index)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "'[bold]x[/bold] [red] :fire:'" in flat and "[bold]x[/bold] models" in flat and "[red]p1" in flat
    assert "Alarms :fire: and [red] flags" in flat
    code, out, err = run("papers", "--index", markup_index)
    assert code == 0 and all(m in out for m in MARKUP), err
    code, out, err = run("themes", "--theme", "[red]", "--theme", "[bold]x[/bold]", "--theme", "[INST]: chat templates",
                         "--index", markup_index)
    assert code == 0, err
    theme_cells = {line.split("│")[1].strip() for line in out.splitlines() if line.count("│") == 5}
    assert "[INST]" in theme_cells


def test_error_messages_quote_user_text_literally(markup_index):
    code, _, err = run("similar", "no [bold]such[/bold] :fire: [/INST] paper", "--index", markup_index)
    assert code == 1
    assert err.strip() == ("error: no paper with id, arXiv id or title 'no [bold]such[/bold] :fire: [/INST] paper': "
                           "see `semsearch papers`")


def test_similar_text_names_the_paper_it_leaves_out(tmp_path, fake_model):
    idx = tmp_path / "idx"
    run("build", ROOT / "corpus", "--index", idx)
    from semsearch import Index

    with Index.open(idx) as opened:
        _, paper = opened.resolve("FlexShard")
    code, out, err = run("similar", "--text", paper.versions[1], "-k", "3", "--index", idx, "--json")
    d = json.loads(out)
    assert code == 0 and len(d["hits"]) == 3 and paper.id not in [h["id"] for h in d["hits"]]
    reason = "the text is a version of this paper (3-gram containment 1.00)"
    assert [(e["id"], e["reason"], e["containment"]) for e in d["excluded"]] == [(paper.id, reason, 1.0)]
    code, out, err = run("similar", "--text", paper.versions[1], "-k", "3", "--index", idx)
    assert code == 0 and err == f"left out {paper.id} ({paper.title}): {reason}\n"


def test_similar_several_papers_facet_and_bad_input(tmp_path, fake_model):
    idx = tmp_path / "idx"
    run("build", ROOT / "corpus", "--index", idx)
    code, out, _ = run("similar", "AutoShard", "FlexShard", "--unlike", "2407.21783", "-k", "3", "--index", idx, "--json")
    d = json.loads(out)
    assert code == 0 and len(d["hits"]) == 3 and {h["score_kind"] for h in d["hits"]} == {"svm"}
    assert [e["reason"] for e in d["excluded"]] == ["a paper asked about", "a paper asked about", "marked unlike"]
    code, out, _ = run("similar", "AutoShard", "--facet", "method", "-k", "3", "--index", idx, "--json")
    d = json.loads(out)
    assert code == 0 and d["notes"] == [] and {h["score_kind"] for h in d["hits"]} == {"facet"}
    for args, message in [
        (("AutoShard", "--facet", "methods"), "unknown facet 'methods': use one of background, method, result"),
        (("--unlike", "AutoShard"), "--unlike needs at least one paper to be like: give REF"),
        (("no such paper at all",), "no paper with id, arXiv id or title 'no such paper at all': see `semsearch papers`"),
        (("AutoShard", "FlexShard", "--facet", "result"), "--facet compares one paper: give one REF (got 2)"),
    ]:
        code, out, err = run("similar", *args, "--index", idx)
        assert (code, out, err.strip()) == (1, "", f"error: {message}")


def test_search_says_when_nothing_is_a_close_match(tmp_path, fake_model, monkeypatch):
    idx = tmp_path / "idx"
    run("build", ROOT / "corpus", "--index", idx)
    monkeypatch.setattr("semsearch.query.MATCH_COSINE", 1.01)
    code, out, err = run("search", "sourdough bread recipes", "-k", "2", "--index", idx)
    assert code == 0 and err.strip() == ("no close match: the best paper's cosine with the query is below 1.01, "
                                         "the bar of a real match (README, Scores)")


# --- a plain `search` is answered without typer (render.plain_search) -------------------------


def test_plain_search_options_are_cli_searchs():
    import inspect

    import typer.main

    from semsearch import render

    command = typer.main.get_command(cli.app).commands["search"]
    options = {o: p for p in command.params if p.param_type_name == "option" for o in p.opts}
    assert set(options) == set(render.SEARCH_OPTIONS)
    defaults = {n: p.default for n, p in inspect.signature(render.search).parameters.items()}
    assert [p.name for p in command.params] == list(defaults)
    for name, (param, kind) in render.SEARCH_OPTIONS.items():
        option = options[name]
        assert option.name == param, name
        assert (option.is_flag, option.multiple) == (kind is bool, kind is list), name
        assert option.default in (defaults[param], None if kind is list else defaults[param]), name


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["search", "q"], {"query": "q"}),
        (["search", "-k", "3", "q", "-i", "x", "--json", "--source", "a", "--source", "b", "--year-from=2021"],
         {"k": 3, "query": "q", "index": Path("x"), "as_json": True, "source": ["a", "b"], "year_from": 2021}),
        (["search", "q", "-k", "3", "-k", "-2"], {"query": "q", "k": -2}),  # the last wins, as in click
        (["search", "q", "--diverse", "--mode", "dense", "--format", "bibtex"],
         {"query": "q", "diverse": True, "mode": "dense", "fmt": "bibtex"}),
        (["search"], None),  # no query
        (["search", "q", "r"], None),  # two
        (["search", "--help"], None),
        (["search", "q", "--nope"], None),
        (["search", "q", "-k"], None),  # a missing value
        (["search", "q", "-k", "three"], None),
        (["search", "q", "-k", "1_0"], None),
        (["search", "q", "-k3"], None),
        (["search", "q", "--json=yes"], None),
        (["search", "--", "-q"], None),
        (["similar", "q"], None),
        ([], None),
    ],
)
def test_plain_search_reads_only_what_it_is_sure_of(argv, expected):
    from semsearch import render

    assert render.plain_search(argv) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["embedding table sharding", "-k", "3"],
        ["embedding table sharding", "--json", "--mode", "dense"],
        ["language models", "--year-from", "2023", "--diverse", "--format", "ris"],
        ["", "--json"],  # an error: one line, exit 1
        ["q", "--mode", "nope"],
    ],
)
def test_plain_search_prints_what_typer_prints(seed_index_path, fake_model, capsys, monkeypatch, args):
    from semsearch import launch

    code, typer_out, typer_err = run("search", *args, "--index", seed_index_path)
    monkeypatch.setattr(sys, "argv", ["semsearch", "search", *args, "--index", str(seed_index_path)])
    try:
        launch.main()
        plain_code = 0
    except SystemExit as exc:
        plain_code = exc.code
    captured = capsys.readouterr()
    plain_out = captured.out.replace("\r\n", "\n")  # as click's test runner hands typer's back (RIS ends lines so)
    assert (plain_code, plain_out, captured.err) == (code, typer_out, typer_err)


def test_a_flat_index_is_searched_without_typer_faiss_or_torch(seed_index_path):
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.conftest import FakeEmbedder\n"
        "import semsearch.embed\n"
        "semsearch.embed.query_embedder_for = lambda model, fingerprint: FakeEmbedder()\n"
        f"sys.argv = ['semsearch', 'search', 'embedding table sharding', '--index', {str(seed_index_path)!r}]\n"
        "from semsearch import launch\n"
        "launch.main()\n"
        "heavy = ('typer', 'pydantic', 'faiss', 'torch', 'sentence_transformers', 'sklearn', 'pandas', 'ray')\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "AutoShard" in out and "HEAVY []" in out


def test_python_dash_m_semsearch_is_the_command():
    out = subprocess.run([sys.executable, "-m", "semsearch", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "Usage: " in out.stdout and "search" in out.stdout
