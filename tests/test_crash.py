"""Crashes and full disks: kill -9 at any moment, no space left, readers while an index is replaced.

The contract (docs/reliability.md): whatever happens to a `build` or an `add`, the index directory
answers exactly as before, or exactly as the finished run would have it; never anything else.

Kills are random but reproducible: every failure message carries the seed; rerun with
SEMSEARCH_CRASH_SEED=<seed> to draw the same kill points.
"""

from __future__ import annotations

import errno
import json
import linecache
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from semsearch import Index, add, build
from semsearch.errors import SemsearchError
from semsearch.store import FILES, MANIFEST, PAPERS, VECTORS

from .conftest import CORPUS, ROOT, FakeEmbedder

SEED = int(os.environ.get("SEMSEARCH_CRASH_SEED") or random.SystemRandom().randrange(2**32))
QUERIES = ("embedding table sharding", "quantization of large language models", "About 1012 w3 w45")
MODES = ("dense", "lexical", "hybrid")
_VOLATILE = {"created", "seconds", "when"}  # manifest facts that differ between two equal runs


# --- what an index answers ------------------------------------------------------------------


def _searches(idx: Index) -> dict:
    """Every paper, and the top 5 (id, score) of a few queries in every mode."""
    found = {f"{m}: {q}": [(h.paper.id, h.score) for h in idx.search(q, k=5, mode=m)] for q in QUERIES for m in MODES}
    return {"papers": list(idx.papers()), **found}


def _answers(path: Path) -> dict:
    """Everything a fresh reader of `path` sees: the manifest, the count, papers and searches."""
    with Index.open(path, embedder=FakeEmbedder()) as idx:
        return {"manifest": asdict(idx.manifest), "count": len(idx), **_searches(idx)}


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _differences(got: dict, want: dict) -> str:
    keys = [k for k in want if got.get(k) != want[k]]
    return ", ".join(keys[:4]) or "nothing"


@dataclass
class Scenario:
    """An index (`old`) that `op(paths)` replaces (`new`, as a finished run in this process left it)."""

    op: str  # "build" (a rebuild over the existing index) or "add"
    paths: list[str]
    index: Path
    pristine: Path  # a copy of the previous index
    old: dict
    new: dict

    def run_here(self) -> None:
        (build if self.op == "build" else add)(self.paths, self.index, embedder=FakeEmbedder(), cache=False)

    def reset(self) -> None:
        shutil.rmtree(self.index, ignore_errors=True)
        shutil.copytree(self.pristine, self.index)

    def state(self) -> str:
        """'previous' or 'new'; raises AssertionError for anything else (a half-written index)."""
        try:
            got = _answers(self.index)
        except Exception as exc:  # noqa: BLE001 - any failure to open and answer is the finding
            raise AssertionError(f"the index does not open or answer: {type(exc).__name__}: {exc}") from None
        if got == self.old:
            return "previous"
        if _stable(got) == _stable(self.new):
            return "new"
        raise AssertionError(
            f"neither the previous index (differs in {_differences(got, self.old)}) nor the new one "
            f"(differs in {_differences(_stable(got), _stable(self.new))})"
        )

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.index.parent.iterdir() if p.name != self.index.name)


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _synthetic(n: int, seed: int, start: int) -> list[dict]:
    """n papers of 30 random words each (ids p<start>...): distinct for the fake embedder, never merged."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(400)]
    return [{"id": f"p{i}", "title": f"Paper {i}", "abstract": f"About {i}: {' '.join(rng.choices(vocab, k=30))}."}
            for i in range(start, start + n)]


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread():
    """Searches of a few hundred vectors: OpenMP threads cost more than they save, above all on a
    shared machine, and each test here asks hundreds of them."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """The previous index (the seed corpus) and the inputs of a rebuild and of an add."""
    d = tmp_path_factory.mktemp("crash-inputs")
    build([CORPUS], d / "seed", embedder=FakeEmbedder(), cache=False)
    with Index.open(d / "seed", embedder=FakeEmbedder()) as idx:
        _, flex = idx.resolve("FlexShard")
    out = {"seed": d / "seed"}
    for size, n in (("", 300), (" small", 40)):
        more = _jsonl(d / f"more{n}.jsonl", _synthetic(n, seed=11, start=1000))
        # new papers and a new version of a stored one (its old row is retired)
        added = _jsonl(d / f"added{n}.jsonl", _synthetic(n, seed=12, start=2000)
                       + [{"abstract": flex.abstract + " We also release the code."}])
        out |= {"build" + size: [str(CORPUS), str(more)], "add" + size: [str(added)]}
    return out


def _scenario(op: str, inputs: dict, tmp_path: Path, size: str = "") -> Scenario:
    """`op` over a copy of the seed index; "small" inputs (40 papers, not 300) for many runs."""
    pristine, index, reference = tmp_path / "pristine", tmp_path / "at" / "idx", tmp_path / "reference"
    shutil.copytree(inputs["seed"], pristine)
    shutil.copytree(pristine, index)
    shutil.copytree(pristine, reference)
    s = Scenario(op, inputs[op + size], index, pristine, _answers(pristine), {})
    (build if op == "build" else add)(s.paths, reference, embedder=FakeEmbedder(), cache=False)
    s.new = _answers(reference)
    assert _stable(s.new) != _stable(s.old)
    return s


# --- the kill runner: a child process that forks one process per run and kills it -------------


def _serve() -> None:
    """Run in a child process: for each JSON command on stdin fork a process that runs `build` or
    `add` with the fake embedder, SIGKILL it as told, and answer one JSON line on stdout.

    Forking from one warm process (semsearch, numpy and faiss imported, nothing run) makes a run
    cost its own work only, so one test affords dozens of kills. Commands:
    {"op", "paths", "index"} and at most one of "kill_after" (seconds after the fork),
    "kill_at" ([file, line, nth, k]: before the k-th traced line after the nth execution of that
    line of semsearch's writing code, whose counts do not depend on what earlier runs left), "kill_when"
    ("target_missing" | "swapped_old_left"); "trace_to": write every traced line, with the
    index's parent directory as it stood there, to this file (a dry run).
    """
    import faiss  # noqa: F401 - loaded before forking, so runs start warm
    import numpy  # noqa: F401

    for line in sys.stdin:
        cmd = json.loads(line)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the run
            code = 1
            try:
                _run(cmd)
                code = 0
            except BaseException:  # noqa: BLE001 - reported through the exit status and stderr
                import traceback

                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        outcome = _wait(pid, start, cmd.get("kill_after"))
        print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - start}), flush=True)


def _wait(pid: int, start: float, kill_after: float | None) -> str:
    deadline = start + (kill_after if kill_after is not None else 120)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)  # not reaped yet, so the pid is still this run's
            _, status = os.waitpid(pid, 0)
            if kill_after is None:
                return "hung"
            break
        time.sleep(0.0005)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return "killed"
    return "finished" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else f"failed (wait status {status})"


def _traced_files() -> set[str]:
    """Where kill points are drawn from: the code that writes and swaps index directories."""
    import pathlib

    return {*_writing_code(), shutil.__file__, pathlib.__file__}


def _writing_code() -> set[str]:
    """semsearch's modules that write index directories (build, update, and the store beneath)."""
    import semsearch.builder
    import semsearch.store.directory
    import semsearch.store.lexical
    import semsearch.store.papers
    import semsearch.store.vectors
    import semsearch.update

    return {m.__file__ for m in (semsearch.builder, semsearch.update, semsearch.store.directory,
                                 semsearch.store.papers, semsearch.store.lexical, semsearch.store.vectors)}


def _disk(parent: Path) -> list:
    """The index's parent directory two levels deep: (name, size) of every entry."""
    out = []
    for entry in sorted(os.scandir(parent), key=lambda e: e.name):
        if entry.is_dir():
            out.append([entry.name, sorted([e.name, e.stat().st_size] for e in os.scandir(entry.path))])
        else:
            out.append([entry.name, entry.stat().st_size])
    return out


def _run(cmd: dict) -> None:
    target = Path(cmd["index"])
    if any(k in cmd for k in ("kill_at", "kill_when", "trace_to")):
        _trace(cmd, target)
    (build if cmd["op"] == "build" else add)(cmd["paths"], target, embedder=FakeEmbedder(), cache=False)
    sys.settrace(None)
    if "trace_to" in cmd:
        Path(cmd["trace_to"]).write_text(json.dumps(_EVENTS))


_EVENTS: list = []  # a dry run's traced lines: [file, line, nth, the parent directory]


def _trace(cmd: dict, target: Path) -> None:
    files = _traced_files()
    seen: dict[tuple[str, int], int] = {}
    anchor, countdown = (tuple(cmd["kill_at"][:3]), cmd["kill_at"][3]) if "kill_at" in cmd else (None, None)
    armed = False
    when, log = cmd.get("kill_when"), "trace_to" in cmd
    before = (target / MANIFEST).read_bytes()

    def holds(condition: str) -> bool:
        if condition == "target_missing":
            return not target.exists()
        # the new index is in place while a complete copy of the previous one still lies beside it
        swapped = (target / MANIFEST).is_file() and (target / MANIFEST).read_bytes() != before
        return swapped and any(
            (d / MANIFEST).is_file() and (d / MANIFEST).read_bytes() == before and all((d / f).is_file() for f in FILES)
            for d in target.parent.iterdir()
            if d.is_dir() and d != target
        )

    def line(frame, event, arg):
        nonlocal armed, countdown
        if event == "line":
            key = (frame.f_code.co_filename, frame.f_lineno)
            seen[key] = n = seen.get(key, 0) + 1
            if armed:
                countdown -= 1
            armed = armed or key + (n,) == anchor
            if (armed and countdown == 0) or (when and holds(when)):
                os.kill(os.getpid(), signal.SIGKILL)
            if log:
                _EVENTS.append([*key, n, _disk(target.parent)])
        return line

    sys.settrace(lambda frame, event, arg: line if frame.f_code.co_filename in files else None)


class Runner:
    def __init__(self, tmp: Path):
        self.stderr = open(tmp / "runner.stderr", "w+")  # noqa: SIM115 - open as long as the runner
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.test_crash import _serve; _serve()"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env,
        )

    def run(self, s: Scenario, **how) -> tuple[str, float]:
        """Run `s.op` in a fresh process, killed as `how` says; returns (outcome, seconds)."""
        self.proc.stdin.write(json.dumps({"op": s.op, "paths": s.paths, "index": str(s.index), **how}) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            self.stderr.seek(0)
            raise AssertionError(f"the kill runner died:\n{self.stderr.read()[-3000:]}")
        reply = json.loads(answer)
        if reply["outcome"] not in ("killed", "finished"):
            self.stderr.seek(0)
            raise AssertionError(f"{s.op} {how}: {reply['outcome']}\n{self.stderr.read()[-3000:]}")
        return reply["outcome"], reply["seconds"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.stderr.close()


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    r = Runner(tmp_path_factory.mktemp("runner"))
    yield r
    r.close()


def _phase(s: Scenario, leftovers: list[str]) -> str:
    """Where a run stopped, as seen on disk: before writing, while writing (a new directory beside
    the index, or none in place), or done."""
    if not s.index.exists() or set(s.leftovers()) - set(leftovers):
        return "writing"
    return "done" if (s.index / MANIFEST).read_bytes() != (s.pristine / MANIFEST).read_bytes() else "before"


def _check(s: Scenario, outcome: str, what: str, failures: list[str]) -> None:
    """After one run: the previous index or the finished one, never anything else; then reset."""
    try:
        state = s.state()
        if outcome == "finished" and state != "new":
            raise AssertionError("the run finished but the index is the previous one")
    except AssertionError as exc:
        failures.append(f"{what} -> {outcome}: {exc}")
        state = "broken"
    if state != "previous":
        s.reset()


def _next_build_cleans_up(s: Scenario, failures: list[str], context: str) -> None:
    """The next run succeeds, answers as the finished run would, and leaves only the index."""
    s.run_here()
    try:
        if s.state() != "new":
            failures.append(f"{context}: the next {s.op} did not give the new index")
    except AssertionError as exc:
        failures.append(f"{context}: after the next {s.op}: {exc}")
    if s.leftovers():
        failures.append(f"{context}: the next {s.op} left {s.leftovers()} beside the index")


# --- 1. kill -9 at random moments -----------------------------------------------------------


@pytest.mark.parametrize("op", ["build", "add"])
def test_killed_at_random_moments_the_index_is_the_previous_or_the_new_one(op, inputs, runner, tmp_path):
    """SIGKILL from outside at uniformly random offsets over a whole run (measured first), plus at
    the start and near the end; after each, the index answers as before or as a finished run."""
    s = _scenario(op, inputs, tmp_path)
    outcome, full = runner.run(s)
    assert outcome == "finished" and s.state() == "new"
    s.reset()
    rng = random.Random(SEED)
    offsets = [0.0, *sorted(rng.uniform(0, full) for _ in range(8)), 0.95 * full, 0.99 * full, 3 * full]
    context = f"{op}, SEMSEARCH_CRASH_SEED={SEED}, a full run took {full:.3f} s"
    failures: list[str] = []
    seen = []
    for offset in offsets:
        leftovers = s.leftovers()
        outcome, _ = runner.run(s, kill_after=offset)
        seen.append((round(offset, 4), outcome, _phase(s, leftovers)))
        _check(s, outcome, f"{context}; killed {offset:.4f} s after the start", failures)
    _next_build_cleans_up(s, failures, context)
    assert not failures, "\n".join(failures) + f"\nevery kill (offset, outcome, where it stopped): {seen}"


# --- 2. kill -9 at every change on disk ------------------------------------------------------


def _where(event: list) -> str:
    file, line, nth = event[:3]
    return f"{Path(file).name}:{line} (#{nth}) `{linecache.getline(file, line).strip()}`"


@pytest.mark.parametrize("op", ["build", "add"])
def test_killed_at_every_change_on_disk_the_index_is_the_previous_or_the_new_one(op, inputs, runner, tmp_path):
    """A dry run records, at every line of the writing code (index, FTS, shutil, pathlib), the
    index's parent directory; a run is then killed right after each change it makes there (a file
    created or grown, staging written, the two renames of the swap, the old index's removal),
    and before a few random lines. This reaches the moment between the two renames, a staging
    copy that has begun, and a kill while the previous index is being deleted."""
    ours = _writing_code()
    s = _scenario(op, inputs, tmp_path, " small")
    trace = tmp_path / "trace.json"
    assert runner.run(s, trace_to=str(trace))[0] == "finished" and s.state() == "new"
    s.reset()
    events = json.loads(trace.read_text())
    changes = [i for i in range(1, len(events)) if events[i][3] != events[i - 1][3]]
    rng = random.Random(SEED)
    points = sorted({0, len(events) - 1, *changes, *rng.sample(range(len(events)), 4)})
    failures: list[str] = []
    context = f"{op}, SEMSEARCH_CRASH_SEED={SEED}"
    anchors = [i if events[i][0] in ours else None for i in range(len(events))]
    for i in range(1, len(events)):
        anchors[i] = anchors[i] if anchors[i] is not None else anchors[i - 1]
    for i in points:
        j = anchors[i] if anchors[i] is not None else i  # the last line of semsearch's writing code before it
        outcome, _ = runner.run(s, kill_at=[*events[j][:3], i - j])
        what = f"{context}; killed before {_where(events[i])}"
        if outcome != "killed":
            failures.append(f"{what}: the run never reached that line")
        _check(s, outcome, what, failures)
    _next_build_cleans_up(s, failures, context)
    assert not failures, (f"{len(failures)} of {len(points)} kill points ({len(changes)} changes on disk "
                          f"in {len(events)} traced lines):\n" + "\n".join(failures))


def test_an_old_index_left_by_a_killed_run_is_never_restored_over_a_newer_one(inputs, runner, tmp_path):
    """Run 1 (a rebuild) dies after its swap while the previous index still lies beside the new one;
    run 2 (an add) dies between the two renames of its swap. The index must come back as run 1
    left it (or as run 2 would), never as it was before run 1."""
    s = _scenario("build", inputs, tmp_path)
    # (should a swap never leave the previous index beside the new one, this scenario is gone)
    assert runner.run(s, kill_when="swapped_old_left")[0] == "killed" and s.state() == "new"
    after_build, reference = tmp_path / "after-build", tmp_path / "after-add"
    shutil.copytree(s.index, after_build)  # as run 1 left it
    shutil.copytree(s.index, reference)
    add(inputs["add"], reference, embedder=FakeEmbedder(), cache=False)
    s2 = Scenario("add", inputs["add"], s.index, after_build, _answers(after_build), _answers(reference))
    assert runner.run(s2, kill_when="target_missing")[0] == "killed"
    assert _answers(s.index) != s.old, "the index went back to before run 1: a stale previous index was restored"
    assert s2.state() in ("previous", "new")
    s2.run_here()
    assert s2.state() == "new" and s2.leftovers() == []


# --- 3. a full disk ------------------------------------------------------------------------


_CLI_BUILD = """
import sys
sys.path.insert(0, {root!r})
from tests.conftest import FakeEmbedder
import semsearch.embed
semsearch.embed.make_embedder = lambda model=None, backend="auto": FakeEmbedder(dim={dim})
from semsearch.cli import app
app(["build", {corpus!r}, "--index", {index!r}])
"""


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@pytest.fixture(scope="module")
def big_vectors_sizes(tmp_path_factory) -> dict[str, int]:
    """File sizes of the seed corpus built with 4,096-d vectors (vectors.faiss > papers.sqlite)."""
    path = tmp_path_factory.mktemp("sizes") / "idx"
    build([CORPUS], path, embedder=FakeEmbedder(dim=4096), cache=False)
    return {name: (path / name).stat().st_size for name in FILES}


@pytest.mark.parametrize(
    "fails_at, reason",
    [
        (PAPERS, "disk I/O error"),  # what SQLite says when write() fails with EFBIG
        (VECTORS, "File too large"),  # FAISS's large write of the vectors fails
        (VECTORS + " tail", "File too large"),  # only its last buffered bytes do not fit
    ],
)
def test_a_full_disk_fails_with_one_line_naming_the_file(fails_at, reason, big_vectors_sizes, tmp_path):
    """A real `semsearch build` whose file writes fail like a full disk (RLIMIT_FSIZE: EFBIG)."""
    sizes = big_vectors_sizes
    assert sizes[VECTORS] // 2 > sizes[PAPERS] // 2 > 2 * sizes[MANIFEST]
    limit = {PAPERS: sizes[PAPERS] // 2, VECTORS: sizes[VECTORS] // 2, VECTORS + " tail": sizes[VECTORS] - 8}[fails_at]
    index = tmp_path / "idx"
    build([CORPUS], index, embedder=FakeEmbedder(), cache=False)
    before = _answers(index)
    code = _CLI_BUILD.format(root=str(ROOT), dim=4096, corpus=str(CORPUS), index=str(index))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False,
                          preexec_fn=_limit_file_size(limit), timeout=120)
    name = fails_at.split()[0]
    assert (done.returncode, done.stderr) == (
        1, f"error: {index / name}: cannot write ({reason}); the previous index is unchanged\n"), done.stderr
    assert _answers(index) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no staging directory left


class _FullDisk(sqlite3.Connection):
    """A SQLite connection whose commit fails as SQLite does when the disk is full."""

    def commit(self):
        raise sqlite3.OperationalError("database or disk is full")


def _no_space(monkeypatch, name: str, kind: str) -> None:
    """Make writing `name` of a new index fail for want of space."""
    enospc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if name == PAPERS:
        connect = sqlite3.connect

        def full(database, *args, **kwargs):
            if str(database).endswith(PAPERS) and "mode=ro" not in str(database):
                kwargs["factory"] = _FullDisk
            return connect(database, *args, **kwargs)

        monkeypatch.setattr(sqlite3, "connect", full)
    elif name == VECTORS:
        import faiss

        faiss_message = ("Error in void faiss::write_index(const Index*, IOWriter*, int) at index_write.cpp:499: "
                         "Error: 'ret == (size * 4)' failed: write error in x: 0 != 25600 (No space left on device)")
        error = RuntimeError(faiss_message) if kind == "faiss" else enospc

        def failing(*args, **kwargs):
            raise error

        monkeypatch.setattr(faiss, "write_index", failing)
    else:
        write_text = Path.write_text

        def failing_text(self, *args, **kwargs):
            if self.name == MANIFEST:
                raise enospc
            return write_text(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", failing_text)


@pytest.mark.parametrize(
    "name, kind, reason",
    [
        (PAPERS, "sqlite", "database or disk is full"),
        (VECTORS, "oserror", "No space left on device"),
        (VECTORS, "faiss", "No space left on device"),  # FAISS's RuntimeError carries strerror at its end
        (MANIFEST, "oserror", "No space left on device"),
    ],
)
def test_no_space_left_names_the_file_and_keeps_the_previous_index(name, kind, reason, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from semsearch import cli

    index = tmp_path / "idx"
    build([CORPUS], index, embedder=FakeEmbedder(), cache=False)
    before = _answers(index)
    message = f"{index / name}: cannot write ({reason}); the previous index is unchanged"
    with monkeypatch.context() as m:
        _no_space(m, name, kind)
        with pytest.raises(SemsearchError) as exc:
            build([CORPUS], index, embedder=FakeEmbedder(seed="v2"), cache=False)
        m.setattr("semsearch.embed.make_embedder", lambda model=None, backend="auto": FakeEmbedder(seed="v2"))
        result = CliRunner().invoke(cli.app, ["build", str(CORPUS), "--index", str(index)])
    assert str(exc.value) == message
    assert (result.exit_code, result.stderr) == (1, f"error: {message}\n")
    assert _answers(index) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_no_space_on_a_first_build_says_nothing_was_written(tmp_path, monkeypatch):
    _no_space(monkeypatch, VECTORS, "oserror")
    with pytest.raises(SemsearchError, match=r"^.*/idx/vectors.faiss: cannot write \(No space left on device\); "
                                             r"no index was written$"):
        build([CORPUS], tmp_path / "idx", embedder=FakeEmbedder(), cache=False)
    assert list(tmp_path.iterdir()) == []


def test_a_swap_that_fails_puts_the_previous_index_back(tmp_path, monkeypatch):
    """Moving the new index into place fails (ENOSPC: a directory that cannot grow)."""
    index = tmp_path / "idx"
    build([CORPUS], index, embedder=FakeEmbedder(), cache=False)
    before = _answers(index)
    rename, refused = os.rename, []

    def failing(src, dst, *args, **kwargs):
        if Path(dst) == index and not refused:  # the first move into place: the new index's
            refused.append(src)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(SemsearchError) as exc:
        build([CORPUS], index, embedder=FakeEmbedder(seed="v2"), cache=False)
    monkeypatch.undo()
    assert refused and str(exc.value) == (
        f"{index}: cannot replace the index (No space left on device); the previous index is unchanged")
    assert _answers(index) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


# --- 4. readers while the index is replaced --------------------------------------------------


def test_open_readers_keep_answering_while_the_index_is_replaced(inputs, tmp_path):
    """A reader keeps the index it opened through a rebuild and an add; a fresh open sees the new one."""
    index = tmp_path / "idx"
    shutil.copytree(inputs["seed"], index)
    first = _answers(index)

    def answers(idx: Index) -> dict:
        return {"similar": [(h.paper.id, h.score) for h in idx.similar("FlexShard", k=5)], **_searches(idx)}

    with Index.open(index, embedder=FakeEmbedder()) as reader:
        seen = answers(reader)
        build(inputs["build"], index, embedder=FakeEmbedder(), cache=False)
        rebuilt = _answers(index)
        assert rebuilt["count"] == 325 != first["count"]
        with Index.open(index, embedder=FakeEmbedder()) as second:
            seen_second = answers(second)
            add(inputs["add"], index, embedder=FakeEmbedder(), cache=False)
            assert answers(reader) == seen  # still the seed index, through two replacements
            assert answers(second) == seen_second  # still the rebuilt one
        with Index.open(index, embedder=FakeEmbedder()) as fresh:
            assert len(fresh) == 625 and answers(fresh) != seen_second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
