"""The web app's JSON API and pages (TestClient), its schema fuzzed by schemathesis, the `serve` command."""

from __future__ import annotations

import html as html_module
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'semsearch[serve]'")

import httpx  # noqa: E402
import schemathesis  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from semsearch import Excluded, Hit, Index, SemsearchError, add, build, remove  # noqa: E402
from semsearch.serve import create_app  # noqa: E402
from semsearch.serve.live import LiveIndex  # noqa: E402
from semsearch.serve.models import ExcludedOut, HitOut, InfoOut, PaperOut, ThemesOut  # noqa: E402

from .conftest import CORPUS, ROOT, FakeEmbedder  # noqa: E402

MAX_EXAMPLES = 25  # per operation and mode: about 180 generated requests in all
AUTOSHARD = "AutoShard: Automated Embedding Table Sharding for Recommender Systems"


@pytest.fixture(scope="module")
def app(seed_index_path):
    return create_app(seed_index_path, embedder=FakeEmbedder())


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app, base_url="http://127.0.0.1")


def test_api_answers_in_the_clis_json_shapes(client, seed_index):
    assert client.get("/api/search", params={"q": "embedding table sharding", "k": 3}).json() == \
        seed_index.search("embedding table sharding", 3).as_dicts()
    dense = client.get("/api/search", params={"q": "quantization", "k": 2, "mode": "dense", "year_from": 2023})
    assert [h["score_kind"] for h in dense.json()] == ["cosine", "cosine"]
    assert all(h["date"] >= "2023" for h in dense.json())
    by_author = client.get("/api/search", params={"q": "sharding", "author": "ZHA", "k": 3}).json()
    assert by_author and all(any("zha" in a.lower() for a in h["authors"]) for h in by_author)
    similar = client.get("/api/similar", params={"ref": "AutoShard", "k": 4}).json()
    expected = seed_index.similar("AutoShard", 4)
    assert similar == {"hits": expected.as_dicts(), "excluded": [e.as_dict() for e in expected.excluded], "notes": []}
    assert similar["excluded"][0]["title"] == AUTOSHARD
    themes = client.get("/api/themes", params={"theme": ["recommendation systems", "quantization"]}).json()
    assert themes == seed_index.themes(["recommendation systems", "quantization"]).as_dict()
    auto = client.get("/api/themes", params={"auto": "true", "n": 3}).json()
    assert auto == seed_index.discover_themes(3).as_dict()
    assert client.get("/api/info").json()["count"] == 25


def test_similar_like_several_unlike_others_by_facet_and_no_close_match(client, seed_index):
    two = client.get("/api/similar", params={"ref": ["AutoShard", "FlexShard"], "unlike": "Llama 3", "k": 3}).json()
    expected = seed_index.similar(["AutoShard", "FlexShard"], 3, unlike=["Llama 3"])
    assert two["hits"] == expected.as_dicts() and {h["score_kind"] for h in two["hits"]} == {"svm"}
    assert len(two["excluded"]) == 3  # the two liked and the one unliked
    facet = client.get("/api/similar", params={"ref": "AutoShard", "facet": "method", "k": 3}).json()
    assert facet["hits"] == seed_index.similar("AutoShard", 3, facet="method").as_dicts()
    assert client.get("/api/similar", params={"ref": "AutoShard", "facet": "style"}).status_code == 422
    assert client.get("/api/similar", params={"ref": ["AutoShard", "FlexShard"], "facet": "method"}).status_code == 400
    nonsense = client.get("/api/search", params={"q": "zqxj vwpk yfgh", "mode": "dense", "k": 3}).json()
    assert nonsense[0]["match"] is False
    page = client.get("/", params={"q": "zqxj vwpk yfgh", "mode": "dense"}).text
    assert "No close match." in page
    short = min(seed_index.papers(), key=lambda p: len(p.abstract))  # its own text: a close match even for the fake
    assert seed_index.search(short.abstract, 1).match
    assert "No close match." not in client.get("/", params={"q": short.abstract}).text


def test_a_paper_by_id_or_arxiv_id_with_every_version(client, seed_index):
    paper = next(p for p in seed_index.papers() if len(p.versions) > 1 and p.arxiv_id)
    for ref in (paper.id, f"arXiv:{paper.arxiv_id}v2"):
        got = client.get(f"/api/papers/{ref}").json()
        assert got["id"] == paper.id and got["version_texts"] == list(paper.versions)
        assert got["versions"] == len(paper.versions) and got["abstract"] == paper.abstract


def test_response_models_have_exactly_the_librarys_fields(seed_index):
    """A field added to a result's as_dict() must be added to its response model (optional), or this fails."""
    hits = seed_index.similar("AutoShard", 2)
    assert set(HitOut.model_fields) == set(hits[0].as_dict())
    assert set(ExcludedOut.model_fields) == set(hits.excluded[0].as_dict())
    assert set(PaperOut.model_fields) == set(seed_index.papers().as_dicts()[0]) | {"version_texts"}
    assert set(InfoOut.model_fields) == set(seed_index.info())
    named, auto = seed_index.themes(["sharding"]).as_dict(), seed_index.discover_themes(2).as_dict()
    assert set(ThemesOut.model_fields) == set(named) == set(auto)
    assert isinstance(hits[0], Hit) and isinstance(hits.excluded[0], Excluded)


BAD = [
    "/api/search?q=",
    "/api/search",
    "/api/search?q=" + "x" * 20_000,
    "/api/search?q=ok&k=-1",
    "/api/search?q=ok&k=0",
    "/api/search?q=ok&k=abc",
    "/api/search?q=ok&k=1000000",
    "/api/search?q=ok&mode=sparse",
    "/api/search?q=ok&year_from=20x",
    "/api/search?q=ok&nonsense=1",
    "/api/search?q=%E0%A4%A",
    "/api/search?q=%zz",
    "/api/search?q=%C3%28",
    "/api/search?q=ok&category=no-such-category",
    "/api/similar?ref=no%20such%20paper%20at%20all",
    "/api/similar",
    "/api/similar?ref=AutoShard&text=some%20text",
    "/api/similar?ref=AutoShard&ref=no%20such%20paper%20at%20all",
    "/api/similar?text=a%20pasted%20abstract&unlike=AutoShard",
    "/api/similar?" + "&".join(f"ref=p{i}" for i in range(21)),
    "/api/papers/..%2F..%2Fetc%2Fpasswd",
    "/api/papers/%2Fetc%2Fpasswd",
    "/api/papers/" + "9" * 400,
    "/api/themes",
    "/api/themes?theme=a&auto=true",
    "/api/themes?" + "&".join(f"theme=t{i}" for i in range(500)),
    "/api/themes?theme=a&theme=a",
    "/api/themes?theme=%3A",
    "/api/nowhere",
    "/api/info?verbose=1",
]


@pytest.mark.parametrize("url", BAD, ids=lambda u: u[:60])
def test_bad_input_is_a_one_line_4xx_json_error(client, url):
    r = client.get(url)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    assert r.headers["content-type"].startswith("application/json")
    message = r.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message and len(message) < 400


def test_error_statuses_say_what_kind_of_error(client):
    assert client.get("/api/search?q=ok&k=0").status_code == 422
    assert client.get("/api/search?q=ok&nonsense=1").json() == {"error": "unknown parameter 'nonsense'"}
    assert client.get("/api/papers/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/api/similar?ref=no%20such%20paper%20at%20all").status_code == 404
    assert client.get("/api/search?q=%zz").json()["error"].startswith("malformed percent-encoding")
    r = client.post("/api/search?q=ok")
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_no_endpoint_writes_or_reads_a_path_from_the_request(client, seed_index_path):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in seed_index_path.iterdir())
    for url in ("/static/../app.py", "/static/..%2F..%2Fcli.py", "/static/%2Fetc%2Fpasswd",
                "/paper/..%2F..%2Fetc%2Fpasswd"):
        r = client.get(url)
        assert r.status_code == 404 and "root:" not in r.text and "import" not in r.text
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/api/papers/2104.05158").status_code == 405
    assert sorted((p.name, p.stat().st_mtime_ns) for p in seed_index_path.iterdir()) == before


def test_security_headers_on_pages_and_api(client):
    for url in ("/", "/api/info", "/api/search?q=", "/static/style.css", "/nowhere"):
        h = client.get(url).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert h["x-content-type-options"] == "nosniff"


def test_only_loopback_host_names_are_answered(app):
    assert TestClient(app, base_url="http://localhost").get("/api/info").status_code == 200
    assert TestClient(app, base_url="http://evil.example").get("/api/info").status_code == 400  # DNS rebinding


def test_pages_are_rendered_on_the_server(client, seed_index):
    html = client.get("/", params={"q": "embedding table sharding"}).text
    assert AUTOSHARD in html and "fused" in html and 'href="/paper/' in html
    paper = seed_index.search("embedding table sharding", 1)[0].paper
    page = html_module.unescape(client.get(f"/paper/{paper.id}").text)
    assert paper.abstract in page and "Related papers" in page and "Daochen Zha" in page
    themes = client.get("/themes", params={"themes": "recommendation systems\nquantization"}).text
    assert themes.count("<circle") >= 25 and "recommendation systems" in themes
    assert client.get("/themes?auto=true&n=3").text.count('class="point"') == 25
    empty_fields = {"q": "ok", "year_from": "", "category": "", "k": ""}  # a form submitted with fields left empty
    assert client.get("/", params=empty_fields).status_code == 200
    assert "Not found" in client.get("/paper/nope").text


def test_docs_page_and_openapi_work_offline(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/search", "/api/similar", "/api/themes", "/api/papers/{paper_id}", "/api/info"} <= set(spec["paths"])
    search = spec["paths"]["/api/search"]["get"]
    assert search["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"].endswith("/HitOut")
    k = next(p for p in search["parameters"] if p["name"] == "k")
    assert (k["schema"]["minimum"], k["schema"]["maximum"]) == (1, 100)
    docs = client.get("/docs").text
    assert "/api/search" in docs and "HitOut" in docs and "score_kind" in docs
    assert not re.search(r"""(src|href)=["']https?://""", docs)  # nothing fetched from a CDN
    assert client.get("/redoc").status_code == 404


def seed_id(path, ref) -> str:
    with Index.open(path, embedder=FakeEmbedder()) as idx:
        return idx.resolve(ref)[1].id


def _hammer(url: str, client: TestClient, stop: threading.Event, statuses: list):
    while not stop.is_set():
        statuses.append(client.get(url).status_code)
        stop.wait(0.005)  # leave the writer some of the GIL


def test_an_index_replaced_while_serving_keeps_answering(tmp_path):
    """Readers are never blocked: `add`, `build` and `remove` swap the directory; requests in flight finish on
    the old index and the server moves to the new one."""
    path = tmp_path / "idx"
    build([CORPUS / "000_dfe19e826c838aa7.txt"], path, embedder=FakeEmbedder())
    live = LiveIndex(path, embedder=FakeEmbedder(), check_every=0)
    client = TestClient(create_app(live), base_url="http://127.0.0.1")
    first = client.get("/api/info").json()["count"]
    stop, statuses = threading.Event(), []
    threads = [threading.Thread(target=_hammer, args=(u, client, stop, statuses))
               for u in ("/api/search?q=recommendation&k=3", "/api/similar?ref=" + "x" * 0 + "AutoShard", "/api/info")]
    for t in threads:
        t.start()
    try:
        add([CORPUS / "004_eed0eb06e3caffc0.txt"], path, embedder=FakeEmbedder())
        time.sleep(0.2)
        build([CORPUS], path, embedder=FakeEmbedder())
        time.sleep(0.2)
        remove([seed_id(path, "AutoShard")], path, embedder=FakeEmbedder())
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(statuses) > 20 and set(statuses) <= {200, 404}  # AutoShard is absent from the first index
    with Index.open(path, embedder=FakeEmbedder()) as idx:
        assert client.get("/api/info").json()["count"] == len(idx) != first
    assert live.reopened >= 2


def _cli(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "tests.fake_cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


@pytest.mark.parametrize("broken", ["missing", "garbage manifest"])
def test_serve_on_a_missing_or_broken_index_exits_with_one_line(tmp_path, broken):
    from typer.testing import CliRunner

    from semsearch import cli

    path = tmp_path / "idx"
    if broken == "garbage manifest":
        build([CORPUS / "000_dfe19e826c838aa7.txt"], path, embedder=FakeEmbedder())
        (path / "manifest.json").write_text("{not json")
    result = CliRunner().invoke(cli.app, ["serve", "--index", str(path), "--port", "0"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:") and str(path) in lines[0]


def _start(*args) -> tuple[subprocess.Popen, str, list[str]]:
    proc = _cli("serve", *args, "--port", "0")
    said = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        said.append(line.strip())
        m = re.search(r"at (http://\S+/) ", line)
        if m:
            return proc, m.group(1), said
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no URL printed: {said}")


def test_serve_prints_its_url_answers_and_ends_cleanly_on_ctrl_c(seed_index_path):
    proc, url, _ = _start("--index", str(seed_index_path))
    try:
        assert url.startswith("http://127.0.0.1:")
        r = httpx.get(url + "api/search", params={"q": "sharding", "k": 2}, timeout=30)
        assert r.status_code == 200 and len(r.json()) == 2
        assert AUTOSHARD in httpx.get(url, params={"q": "sharding"}, timeout=30).text
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "stopped"


def test_serve_on_a_port_in_use_says_so(seed_index_path):
    from semsearch.serve import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SemsearchError, match=rf"^cannot listen on 127.0.0.1:{port} \(Address already in use\); "
                                                 r"choose another --port or --host$"):
            serve(seed_index_path, "127.0.0.1", port, embedder=FakeEmbedder(), say=lambda line: None)


def test_serve_listens_before_it_prints_its_url(seed_index_path):
    """A client that connects the moment it reads the URL is queued, not refused (was a flaky race)."""
    from semsearch.serve import serve

    class Heard(Exception):
        pass

    def say(line):
        port = int(re.search(r":(\d+)/ ", line).group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        raise Heard  # stop before the server runs

    with pytest.raises(Heard):
        serve(seed_index_path, "127.0.0.1", 0, embedder=FakeEmbedder(), say=say)


def test_serve_warns_when_asked_to_listen_beyond_this_machine(seed_index_path):
    from semsearch.serve import serve

    said = []

    class Heard(Exception):
        pass

    def say(line):
        said.append(line)
        raise Heard  # stop before listening: the warning comes first

    with pytest.raises(Heard):
        serve(seed_index_path, "0.0.0.0", 0, embedder=FakeEmbedder(), say=say)
    assert said == ["warning: serving on 0.0.0.0: anyone who can reach this machine on port 0 can read the index "
                    "(read-only); use --host 127.0.0.1 to keep it local"]


# --- the schema, fuzzed: no 5xx, every response matches its declared schema and status codes ---------


OPERATIONS = ["/api/search", "/api/similar", "/api/themes", "/api/papers/{paper_id}", "/api/info"]


#: 400 is a schema-valid request the index cannot answer (documented as such): neither or both of ref and
#: text, filters no paper passes, a theme named twice, a title that fits several papers.
ACCEPTED = ["2xx", "400", "404"]


@pytest.fixture(scope="module")
def api_schema(seed_index_path):
    app = create_app(seed_index_path, embedder=FakeEmbedder(), allowed_hosts=None)  # its test client is 'testserver'
    config = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}})
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def test_every_operation_is_fuzzed(api_schema):
    assert sorted(api_schema.raw_schema["paths"]) == sorted(OPERATIONS)


@pytest.mark.parametrize(
    "path, mode",
    # negative: requests that break the schema. /api/info takes no parameter and any paper id is a string,
    # so those two have no invalid request to generate (unknown parameters are tested above).
    [(p, "positive") for p in OPERATIONS] + [(p, "negative") for p in OPERATIONS[:3]],
)
def test_api_conforms_to_its_openapi_schema(api_schema, path, mode):
    """Schemathesis' checks on generated requests, valid (positive) and invalid (negative): no 5xx, status
    codes, content types and bodies as declared, invalid input refused."""
    statuses: Counter = Counter()

    @given(case=api_schema[path]["GET"].as_strategy(generation_mode=GenerationMode(mode)))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        statuses[case.call_and_validate().status_code] += 1

    check()
    print(f"schemathesis {mode} GET {path}: {sum(statuses.values())} requests, status {dict(sorted(statuses.items()))}")
    assert statuses and not any(code >= 500 for code in statuses)


def test_the_app_answers_as_many_requests_at_once_as_it_is_told(seed_index_path):
    import anyio.to_thread

    from semsearch.serve import default_threads, serve

    live = LiveIndex(seed_index_path, embedder=FakeEmbedder())
    try:
        for threads in (3, None):
            with TestClient(create_app(live, threads=threads), base_url="http://127.0.0.1") as client:
                limit = client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
                assert limit == (threads or 40)  # None: the framework's own
                assert client.get("/api/search", params={"q": "embedding tables"}).status_code == 200
    finally:
        live.close()
    assert default_threads() >= 4
    with pytest.raises(SemsearchError, match="^--threads must be at least 1, got 0$"):
        serve(seed_index_path, "127.0.0.1", 0, embedder=FakeEmbedder(), threads=0, say=lambda line: None)
