"""The whole CLI against wrong --index paths, wrong input and concurrent or killed writers.

Every case runs the real `semsearch` command in its own process (tests/fake_cli.py: the fake
embedder instead of the model) and asserts: a non-zero exit with one line on stderr and no
traceback, the target and its parent directory unchanged file by file, and the previous index
answering identically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import CORPUS, ROOT

SEEDS = sorted(CORPUS.glob("*.txt"))
QUERY = ["search", "embedding table sharding", "-k", "5", "--json"]


def semsearch(*args, env: dict | None = None, wait: bool = True):
    cmd = [sys.executable, "-m", "tests.fake_cli", *[str(a) for a in args]]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)


def tree(root: Path) -> dict[str, tuple]:
    """Every path under `root` (links not followed): kind, mode and content hash or link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                out[str(p.relative_to(root))] = ("link", os.readlink(p))
            elif p.is_dir():
                out[str(p.relative_to(root))] = ("dir", st.st_mode)
            else:
                out[str(p.relative_to(root))] = ("file", st.st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def refused(result, *words: str) -> None:
    """Non-zero exit, exactly one error line (after any 'waiting' note), no traceback."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture
def user_files(tmp_path) -> Path:
    """A user's folder: notes, a directory of theirs, links to both, a copy of one seed page."""
    home = tmp_path / "home"
    (home / "thesis").mkdir(parents=True)
    (home / "thesis" / "chapter1.tex").write_text("\\chapter{Intro}\n")
    (home / "notes.txt").write_text("my notes\n")
    (home / "empty").mkdir()
    os.symlink(home / "thesis", home / "link-to-thesis")
    os.symlink(home / "notes.txt", home / "link-to-notes")
    shutil.copy(SEEDS[0], home / "same.txt")
    shutil.copytree(CORPUS, home / "papers")
    return home


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A seed index built once by the CLI; tests copy it."""
    path = tmp_path_factory.mktemp("built") / "idx"
    assert semsearch("build", CORPUS, "--index", path).returncode == 0
    return path


@pytest.fixture
def index(tmp_path, built) -> Path:
    path = tmp_path / "work" / "idx"
    shutil.copytree(built, path)
    return path


WRONG_TARGETS = {
    "a regular file": ("notes.txt", "is a file"),
    "a user's directory": ("thesis", "not a semsearch index"),
    "a link to a user's directory": ("link-to-thesis", "not a semsearch index"),
    "a link to a user's file": ("link-to-notes", "is a file"),
    "a path under a file": ("notes.txt/idx", "is a file, not a directory"),
    "the input itself": ("same.txt", "is a file"),
    "a path inside an input directory": ("papers/idx", "is an input or inside one"),
}


@pytest.mark.parametrize("command", ["build", "add", "remove"])
@pytest.mark.parametrize("case", list(WRONG_TARGETS))
def test_wrong_index_is_refused_and_left_untouched(user_files, command, case):
    name, words = WRONG_TARGETS[case]
    before = tree(user_files)
    source = user_files / ("same.txt" if name == "same.txt" else "papers")
    args = {
        "build": ["build", source],
        "add": ["add", source],
        "remove": ["remove", "2407.21783"],
    }[command]
    result = semsearch(*args, "--index", user_files / name)
    if command == "build" or "not a semsearch index" not in words:
        refused(result, str(user_files / name.split("/")[0]))
    else:
        refused(result)
    assert tree(user_files) == before


def test_read_only_directory(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    (parent / "keep.txt").write_text("mine\n")
    os.chmod(parent, 0o555)
    try:
        before = tree(tmp_path)
        result = semsearch("build", SEEDS[0], "--index", parent / "idx")
        if os.geteuid() == 0:  # root may write anywhere: the index is made, nothing of the user's changes
            assert result.returncode == 0, result.stderr
            assert {k: v for k, v in tree(tmp_path).items() if not k.startswith("ro/idx")} == before
        else:
            refused(result, "cannot write an index here")
            assert tree(tmp_path) == before
    finally:
        os.chmod(parent, 0o755)


def test_rebuild_refuses_a_file_the_user_put_in_the_index(index):
    (index / "my-notes.txt").write_text("mine\n")
    answers = semsearch(*QUERY, "--index", index).stdout
    before = tree(index.parent)
    for args in (["build", CORPUS], ["add", SEEDS[0]], ["remove", "2407.21783"]):
        refused(semsearch(*args, "--index", index), "my-notes.txt", "did not write")
        assert tree(index.parent) == before
    assert semsearch(*QUERY, "--index", index).stdout == answers


def test_build_follows_a_link_to_an_index_and_keeps_the_link(tmp_path, index):
    link = tmp_path / "link"
    os.symlink(index, link)
    assert semsearch("build", SEEDS[0], SEEDS[1], "--index", link).returncode == 0
    assert link.is_symlink() and os.readlink(link) == str(index)
    info = json.loads(semsearch("info", "--json", "--index", link).stdout)
    assert info["count"] < 25
    assert sorted(p.name for p in index.parent.iterdir()) == ["idx"]  # nothing left beside it


def test_build_into_an_empty_directory_and_a_link_to_one(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    os.symlink(empty, tmp_path / "link")
    assert semsearch("build", SEEDS[0], "--index", tmp_path / "link").returncode == 0
    assert (tmp_path / "link").is_symlink() and (empty / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "link"]


def test_a_users_file_named_like_the_lock_is_refused(index):
    lock = index.parent / f".{index.name}.lock"
    lock.write_text("my own file\n")
    before = tree(index.parent)
    refused(semsearch("add", SEEDS[0], "--index", index), "not written by semsearch")
    assert tree(index.parent) == before


BAD_INPUTS = {  # name: (file name, content or None for absent, words of the error)
    "a missing file": ("missing.jsonl", None, "missing.jsonl"),
    "an empty file": ("empty.txt", b"", "empty.txt"),
    "a binary file": ("x.bin", b"\x00\x01\x02" * 100, "x.bin"),
    "a JSON array, not JSON lines": ("x.json", b'[{"title": "A", "abstract": "b c d"}]', "x.json"),
}


@pytest.mark.parametrize("command", ["build", "add"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_changes_nothing(tmp_path, index, command, case):
    name, content, words = BAD_INPUTS[case]
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    answers = semsearch(*QUERY, "--index", index).stdout
    before = tree(tmp_path)
    refused(semsearch(command, CORPUS, bad, "--index", index), words)
    assert tree(tmp_path) == before
    assert semsearch(*QUERY, "--index", index).stdout == answers


# --- concurrency ---------------------------------------------------------------------------


def test_two_concurrent_adds_both_land(tmp_path):
    idx = tmp_path / "idx"
    assert semsearch("build", *SEEDS[:3], "--index", idx).returncode == 0
    slow = {"SEMSEARCH_TEST_ENCODE_SLEEP": "1"}
    first = semsearch("add", SEEDS[3], "--index", idx, "--json", env=slow, wait=False)
    time.sleep(0.5)
    second = semsearch("add", SEEDS[4], "--index", idx, "--json", env=slow, wait=False)
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    assert "waiting for pid" in outs[1][1]
    whole = tmp_path / "whole"
    assert semsearch("build", *SEEDS, "--index", whole).returncode == 0
    ids = [{p["id"] for p in json.loads(semsearch("papers", "--json", "--index", i).stdout)} for i in (idx, whole)]
    assert ids[0] == ids[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "whole"]


def test_a_busy_index_fails_after_wait_and_readers_keep_answering(index):
    answers = semsearch(*QUERY, "--index", index).stdout
    writer = semsearch("build", CORPUS, "--index", index, env={"SEMSEARCH_TEST_ENCODE_SLEEP": "4"}, wait=False)
    time.sleep(1.5)
    started = time.monotonic()
    result = semsearch("add", SEEDS[0], "--index", index, "--wait", "1")
    refused(result, "index busy")
    assert "waiting for pid" in result.stderr and time.monotonic() - started < 10
    reader = semsearch(*QUERY, "--index", index)  # during the write: the previous index answers
    assert reader.returncode == 0 and reader.stdout == answers
    writer.communicate(timeout=120)
    assert writer.returncode == 0
    assert semsearch(*QUERY, "--index", index).stdout == answers  # same corpus rebuilt


def test_a_writer_killed_holding_the_lock_does_not_block_the_next(tmp_path, index):
    answers = semsearch(*QUERY, "--index", index).stdout
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"title": "Sharding sparse tables", "abstract": "We shard sparse embedding tables."}))
    writer = semsearch("add", new, "--index", index, env={"SEMSEARCH_TEST_ENCODE_SLEEP": "30"}, wait=False)
    lock = index.parent / f".{index.name}.lock"
    for _ in range(100):
        if lock.exists() and "pid" in lock.read_text():
            break
        time.sleep(0.1)
    os.kill(writer.pid, signal.SIGKILL)
    writer.communicate()
    assert semsearch(*QUERY, "--index", index).stdout == answers
    started = time.monotonic()
    result = semsearch("add", new, "--index", index, "--wait", "5")
    assert result.returncode == 0 and "waiting" not in result.stderr, result.stderr
    assert time.monotonic() - started < 10
    assert json.loads(semsearch("info", "--json", "--index", index).stdout)["count"] == 26


def test_add_and_remove_refuse_a_damaged_index_like_search(index):
    with open(index / "vectors.faiss", "r+b") as f:
        f.truncate(1000)
    before = tree(index.parent)
    searched = semsearch(*QUERY, "--index", index)
    refused(searched, "vectors.faiss")
    for args in (["add", SEEDS[0]], ["remove", "2407.21783"]):
        result = semsearch(*args, "--index", index)
        refused(result)
        assert result.stderr.strip().splitlines()[-1] == searched.stderr.strip().splitlines()[-1]
    assert tree(index.parent) == before


@pytest.mark.parametrize("case", ["a user's directory", "a regular file", "a link to a user's directory"])
def test_fetch_into_a_wrong_index_is_refused_before_any_request(user_files, case):
    name, words = WRONG_TARGETS[case]
    before = tree(user_files)
    env = {"SEMSEARCH_ARXIV_API": "http://127.0.0.1:9/unreachable"}  # never asked: refused first
    result = semsearch("fetch", "arxiv", "--id", "2407.21783", "--index", user_files / name, env=env)
    refused(result, words)
    assert tree(user_files) == before


def test_fetch_never_extends_a_users_file(user_files):
    before = tree(user_files)
    env = {"SEMSEARCH_ARXIV_API": "http://127.0.0.1:9/unreachable"}  # never asked: refused first
    result = semsearch("fetch", "arxiv", "--id", "2407.21783", "--output", user_files / "notes.txt", env=env)
    refused(result, "notes.txt:1: exists and is not JSON lines of papers")
    assert tree(user_files) == before


def test_export_never_replaces_a_users_file_unless_forced(user_files, built):
    before = tree(user_files)
    result = semsearch("export", "--format", "csv", "--output", user_files / "notes.txt", "--index", built)
    refused(result, "notes.txt: exists; semsearch does not replace it", "--force")
    refused(semsearch("export", "--output", user_files / "thesis", "--index", built), "thesis: exists")
    assert tree(user_files) == before
    forced = semsearch("export", "--format", "csv", "--output", user_files / "notes.txt", "--force", "--index", built)
    assert forced.returncode == 0 and (user_files / "notes.txt").read_text(encoding="utf-8-sig").startswith("\"id\",")
