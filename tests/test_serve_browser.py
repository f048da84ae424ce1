"""The web app's pages in a real headless browser: Playwright driving Debian's Chromium.

Search, open a paper, follow a related paper, themes (map hover and click), the pages without
JavaScript, and a corpus with hostile titles, authors and ids whose scripts must never run. Each page
is screenshotted to tmp_path (and, the window only, to $SEMSEARCH_SCREENSHOTS when set: docs/screenshots was made so).
Without Chromium (or Playwright) the tests skip with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from semsearch import build

from .conftest import CORPUS, FakeEmbedder

CHROMIUM = os.environ.get("SEMSEARCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
AUTOSHARD = "AutoShard: Automated Embedding Table Sharding for Recommender Systems"
FILLER = [  # three different abstracts: near-duplicate texts would be merged into one paper
    ("We study embedding table sharding for deep recommendation models trained on many devices, and measure the "
     "cost of each placement on production workloads at scale."),
    ("Quantization to four bits shrinks sharded embedding tables; we report accuracy and memory trade-offs for "
     "several rounding schemes across ranking and retrieval tasks."),
    ("Identifiers of records in scholarly databases are sometimes malformed; this note surveys how search tools "
     "display, link and escape such identifiers in their user interfaces."),
]
HOSTILE = [
    {"id": "xss-script", "title": "<script>window.__xss = 'title'</script>Sharding embedding tables safely",
     "abstract": "<script>window.__xss = 'abstract'</script> " + FILLER[0],
     "authors": ["<b onmouseover=\"window.__xss='author'\">Mallory</b>", "Eve"], "date": "2024-02-01"},
    {"id": "xss-img", "title": "<img src=x onerror=\"window.__xss='img'\"> Quantization of sharded tables",
     "abstract": "<svg onload=\"window.__xss='svg'\"></svg> " + FILLER[1], "date": "2023-05-01"},
    {"id": "x\"'><img src=y onerror=\"window.__xss='id'\">", "title": "A paper whose id is hostile",
     "abstract": "Hostile identifiers. " + FILLER[2]},
]


def _need_browser():
    try:
        import playwright.sync_api  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        problem = f"{exc.name} is not installed: pip install 'semsearch[test,serve]'"
    else:
        problem = None if Path(CHROMIUM).exists() else f"no Chromium at {CHROMIUM}: apt-get install chromium"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser tests cannot run: {problem}", pytrace=False)
        pytest.skip(f"browser tests: {problem}")


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory) -> Path:
    """The seed corpus plus papers whose titles, abstracts, authors and ids carry markup and scripts."""
    _need_browser()
    root = tmp_path_factory.mktemp("hostile")
    (root / "hostile.jsonl").write_text("".join(json.dumps(r) + "\n" for r in HOSTILE))
    build([CORPUS, root / "hostile.jsonl"], root / "index", embedder=FakeEmbedder())
    return root / "index"


@pytest.fixture(scope="module")
def base_url(hostile_index):
    """The app served by uvicorn on 127.0.0.1 in a thread of this process."""
    import uvicorn

    from semsearch.serve import create_app

    app = create_app(hostile_index, embedder=FakeEmbedder())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser(base_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, base_url):
    """A page that fails the test on any dialog, page error or request leaving 127.0.0.1."""
    context = browser.new_context(viewport=DESKTOP, base_url=base_url)
    page = context.new_page()
    problems = []
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: r.url.startswith((base_url, "data:")) or problems.append(f"request: {r.url}"))
    yield page
    context.close()
    assert problems == []


def shoot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000  # something was drawn
    if os.environ.get("SEMSEARCH_SCREENSHOTS"):  # a smaller copy to keep: what the window shows
        keep = Path(os.environ["SEMSEARCH_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(keep / f"{name}.png"))
    return path


def fits_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_search_open_a_paper_and_follow_a_related_one(page, tmp_path):
    page.goto("/")
    page.fill("input[name=q]", "embedding table sharding for recommendation")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("ol.hits li")
    titles = page.locator("ol.hits a.title").all_inner_texts()
    assert AUTOSHARD in titles and len(titles) == 10
    assert "fused" in page.locator(".hit .score").first.inner_text()
    shoot(page, tmp_path, "search")
    page.set_viewport_size(PHONE)
    assert fits_width(page)
    shoot(page, tmp_path, "search-phone")
    page.set_viewport_size(DESKTOP)

    page.locator("ol.hits a.title", has_text=AUTOSHARD).click()
    page.wait_for_url("**/paper/**")
    assert page.locator("h1").inner_text() == AUTOSHARD
    assert "Daochen Zha" in page.locator("article .authors").inner_text()
    assert page.locator("article .abstract").inner_text().startswith("Embedding learning is an important technique")
    related = page.locator("section.related a.title")
    assert related.count() == 10
    shoot(page, tmp_path, "paper")
    page.set_viewport_size(PHONE)
    assert fits_width(page)
    page.set_viewport_size(DESKTOP)
    page.click("nav.facets a:has-text('method')")  # the facet switch: related by the sentences giving the method
    page.wait_for_url("**?facet=method")
    assert page.locator("nav.facets a[aria-current=true]").inner_text() == "method"
    assert page.locator("section.related a.title").count() == 10
    page.click("nav.facets a:has-text('whole abstract')")
    page.wait_for_load_state()
    first = related.first.inner_text()
    related.first.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == first
    assert page.locator("section.related a.title", has_text=AUTOSHARD).count() == 1  # and back again


def test_no_close_match_is_said(page):
    page.goto("/?q=zqxj+vwpk+yfgh&mode=dense")
    assert page.locator(".no-match").inner_text().startswith("No close match.")
    assert page.locator(".hit .weak").count() == 10


def test_filters_and_modes_from_the_form(page):
    page.goto("/?q=recommendation")
    page.click("details.options summary")
    page.select_option("select[name=mode]", "lexical")
    page.fill("input[name=year_from]", "2023")
    page.click("form.search button[type=submit]")
    page.wait_for_selector("ol.hits li")
    assert "mode=lexical" in page.url and "year_from=2023" in page.url
    assert all(s.endswith("bm25") for s in page.locator(".hit .score").all_inner_texts())
    assert all(int(y) >= 2023 for y in page.locator(".hit .year").all_inner_texts())


def test_themes_map_hover_shows_the_title_and_click_opens_the_paper(page, tmp_path):
    page.goto("/themes")
    page.fill("textarea[name=themes]",
              "recommendation systems\nquantization\nsharding: partitioning tables across devices")
    page.click("form.themes button:has-text('Group')")
    page.wait_for_selector("svg.theme-map a.point")
    points = page.locator("svg.theme-map a.point")
    assert points.count() == 28
    assert page.locator("section.theme h3").count() >= 3
    point = page.locator("svg.theme-map a.point", has=page.locator("title", has_text=AUTOSHARD))
    point.hover()
    tip = page.locator("#map-tip")
    tip.wait_for(state="visible")
    assert AUTOSHARD in tip.inner_text()
    shoot(page, tmp_path, "themes")
    page.set_viewport_size(PHONE)
    assert fits_width(page)
    shoot(page, tmp_path, "themes-phone")
    page.set_viewport_size(DESKTOP)
    point.click()
    page.wait_for_url("**/paper/**")
    assert page.locator("h1").inner_text() == AUTOSHARD

    page.goto("/themes")
    page.fill("input[name=n]", "4")
    page.click("form.themes button:has-text('Discover themes')")
    page.wait_for_selector("svg.theme-map a.point")
    assert page.locator("section.theme").count() == 4 and page.locator("section.theme .words").count() == 4


def test_hostile_titles_authors_and_ids_show_as_text_and_never_run(page, tmp_path, base_url):
    page.goto("/?q=sharding+embedding+tables+quantization+hostile&k=30")
    page.wait_for_selector("ol.hits li")
    titles = page.locator("ol.hits a.title").all_inner_texts()
    assert HOSTILE[0]["title"] in titles and HOSTILE[1]["title"] in titles and HOSTILE[2]["title"] in titles
    shoot(page, tmp_path, "hostile-search")
    page.locator("ol.hits a.title", has_text="Sharding embedding tables safely").click()
    page.wait_for_url("**/paper/xss-script")
    assert page.locator("h1").inner_text() == HOSTILE[0]["title"]
    assert HOSTILE[0]["authors"][0] in page.locator("article .authors").inner_text()
    assert page.locator("article .abstract").inner_text().startswith("<script>window.__xss = 'abstract'</script>")
    shoot(page, tmp_path, "hostile-paper")
    page.goto("/")
    page.fill("input[name=q]", "hostile identifiers")
    page.press("input[name=q]", "Enter")
    page.locator("ol.hits a.title", has_text="A paper whose id is hostile").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "A paper whose id is hostile"
    assert page.locator("dl.facts code").first.inner_text() == HOSTILE[2]["id"]
    page.goto("/themes?themes=sharding%0Aquantization")
    page.locator("svg.theme-map a.point", has=page.locator("title", has_text="Quantization of sharded tables")).hover()
    assert HOSTILE[1]["title"] in page.locator("#map-tip").inner_text()
    for url in ("/?q=sharding+hostile&k=30", "/paper/xss-script", "/paper/xss-img", "/themes?themes=sharding",
                "/themes?auto=true"):
        page.goto(url)
        page.mouse.move(200, 300)
        assert page.evaluate("window.__xss") is None, url
        assert page.locator("body script:not([src])").count() == 0
        assert page.locator("[onerror], [onload], [onmouseover]").count() == 0


def test_pages_work_without_javascript(browser, base_url, tmp_path):
    context = browser.new_context(viewport=DESKTOP, base_url=base_url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/")
    page.fill("input[name=q]", "quantization of language models")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("ol.hits li")
    page.locator("ol.hits a.title").first.click()
    page.wait_for_url("**/paper/**")
    assert page.locator("section.related a.title").count() == 10
    page.goto("/themes?themes=recommendation+systems%0Aquantization")
    page.locator("svg.theme-map a.point").first.click()  # the map's points are plain links
    page.wait_for_url("**/paper/**")
    page.goto("/docs")
    assert page.locator("section.op").count() == 5
    shoot(page, tmp_path, "docs")
    page.set_viewport_size(PHONE)
    assert fits_width(page)  # wide tables scroll inside themselves
    context.close()
