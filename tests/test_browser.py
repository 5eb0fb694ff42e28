"""The built book in a real browser (Debian's chromium driven by Playwright), served on
127.0.0.1: every page loads without a console error and without a request leaving this machine,
every image has a size, the search finds a chapter's word, every internal link and anchor
resolves. A screenshot of each page is saved under ``_build/screenshots/`` for a person to look
at. Run by ``make test`` after the book is built."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from _support import ROOT

pytestmark = pytest.mark.built_book
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
# Sphinx's generated index pages hold no content of the book's own.
SKIP = {"genindex.html", "search.html", "py-modindex.html"}


def _chromium() -> str:
    path = os.environ.get("ROBUSTLENS_CHROMIUM") or shutil.which("chromium")
    if path is None:
        if os.environ.get("REQUIRE_BUILT_BOOK"):
            pytest.fail("no chromium: apt-get install chromium (make test does)")
        pytest.skip("no chromium installed")
    return path


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").is_file():
        if os.environ.get("REQUIRE_BUILT_BOOK"):
            pytest.fail("_build/html/index.html is missing: the book build did not run or failed")
        pytest.skip("the book is not built yet (make html)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def pages() -> list[str]:
    return sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if p.name not in SKIP and "_static" not in p.parts and "_sources" not in p.parts
    )


def _visit(browser, url: str):
    """Open ``url``; return (page, console errors, requests that left 127.0.0.1)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith("data:") or host in ("127.0.0.1", None):
            r.continue_()
        else:  # the book must work offline: record and refuse
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="networkidle")
    return page, errors, outside


def test_every_page_loads_offline_without_errors_and_every_image_has_a_size(site, browser):
    assert pages(), "no pages built"
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for name in pages():
        page, errors, outside = _visit(browser, site + name)
        sizes = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight])"
        )
        broken = [src for src, w, h in sizes if not (w and h)]
        page.screenshot(
            path=str(SHOTS / name.replace("/", "_").replace(".html", ".png")), full_page=True
        )
        page.close()
        for what, items in (
            ("console errors", errors),
            ("requests leaving 127.0.0.1", outside),
            ("images without a size", broken),
        ):
            if items:
                problems.append(f"{name}: {what}: {items[:3]}")
    assert problems == []


def test_search_finds_a_word_of_a_chapter(site, browser):
    page, errors, _ = _visit(browser, site + "search.html?q=orthogonality")
    page.wait_for_selector("ul.search li", timeout=20_000)
    hits = page.eval_on_selector_all("ul.search li a", "as => as.map(a => a.getAttribute('href'))")
    page.close()
    assert any("filter" in h for h in hits), hits
    assert errors == []


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])


@functools.lru_cache(maxsize=None)
def _parsed(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


def broken_links(root: Path) -> list[str]:
    """Every internal link under ``root`` whose file or anchor does not exist."""
    missing = []
    for source in sorted(root.rglob("*.html")):
        if "_static" in source.parts or "_sources" in source.parts:
            continue
        name = source.relative_to(root).as_posix()
        for href in _parsed(source).hrefs:
            url = urlparse(href)
            if url.scheme or href.startswith("mailto:") or not (url.path or url.fragment):
                continue
            target = (source.parent / unquote(url.path)).resolve() if url.path else source
            if not target.is_file():
                missing.append(f"{name}: {href} (no file)")
            elif url.fragment and target.suffix == ".html":
                if unquote(url.fragment) not in _parsed(target).ids:
                    missing.append(f"{name}: {href} (no anchor)")
    return missing


def test_every_internal_link_and_anchor_resolves():
    if not (HTML / "index.html").is_file():
        pytest.skip("the book is not built yet (make html)")
    assert broken_links(HTML) == []


def test_the_link_checker_reports_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "a.html").write_text(
        '<a href="b.html#x">gone anchor</a><a href="c.html">gone file</a>'
        '<a href="b.html#z">fine</a><a href="#y">fine</a><a href="https://x.org">outside</a>'
        '<p id="y"></p>'
    )
    (tmp_path / "b.html").write_text('<p id="z"></p>')
    assert broken_links(tmp_path) == [
        "a.html: b.html#x (no anchor)",
        "a.html: c.html (no file)",
    ]


def test_repeated_inline_scripts_are_dropped_once_and_only_in_the_head():
    from robustlens.book.sphinx_fixes import drop_repeated_inline_scripts

    page = (
        "<head>\n<script>const A = 1;</script>\n<script src='x.js'></script>\n"
        "<script>const A = 1;</script>\n<script>const B = 2;</script>\n</head>\n"
        "<body>\n<script>const A = 1;</script>\n</body>"
    )
    fixed = drop_repeated_inline_scripts(page)
    assert fixed.count("const A = 1;") == 2  # one in the head, the body's own untouched
    assert "const B = 2;" in fixed and "x.js" in fixed


def test_the_bibliography_page_is_reread_whenever_another_page_is(tmp_path):
    from types import SimpleNamespace

    from robustlens.book.sphinx_fixes import _bibliography_pages

    (tmp_path / "chapter.md").write_text("A citation {cite:p}`new2020`.")
    (tmp_path / "refs.md").write_text("```{bibliography}\n```\n")
    (tmp_path / "other.md").write_text("No citations.")
    env = SimpleNamespace(
        found_docs={"chapter", "refs", "other"}, doc2path=lambda d: tmp_path / f"{d}.md"
    )
    assert _bibliography_pages(None, env, set(), {"chapter"}, set()) == ["refs"]
    assert _bibliography_pages(None, env, set(), set(), set()) == []  # nothing changed
    assert _bibliography_pages(None, env, set(), {"refs"}, set()) == []  # re-read already
