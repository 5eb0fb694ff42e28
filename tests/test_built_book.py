"""Checks on the built HTML (run by `make test` after the book build, with REQUIRE_BUILT_BOOK=1)."""

import os
import re

import pytest

from _support import ROOT

pytestmark = pytest.mark.built_book
HTML = ROOT / "_build" / "html"


def chapters():
    return sorted((ROOT / "notebooks").glob("*.md"))


@pytest.fixture(scope="module", autouse=True)
def built():
    if not (HTML / "index.html").is_file():
        if os.environ.get("REQUIRE_BUILT_BOOK"):
            pytest.fail("_build/html/index.html is missing: the book build did not run or failed")
        pytest.skip("the book is not built yet (make html)")


@pytest.mark.parametrize("source", chapters(), ids=lambda p: p.stem)
def test_every_glued_figure_is_a_real_image(source):
    page = (HTML / f"{source.stem}.html").read_text()
    figures = re.findall(r"```\{glue:figure\}\s+(\S+)", source.read_text())
    assert figures, f"{source.name} glues no figure"
    images = re.findall(r"<img[^>]+src=\"[^\"]+\.(?:png|svg|jpg)\"", page)
    # Equal, not >=: a figure glued without being closed shows up a second time as cell output.
    assert len(images) == len(figures), (
        f"{source.stem}: {len(images)} <img> for {len(figures)} glued figures"
    )
    assert "&lt;Figure size" not in page and "<Figure size" not in page


@pytest.mark.parametrize("source", chapters(), ids=lambda p: p.stem)
def test_glued_numbers_are_in_the_prose_and_parameters_are_hidden(source):
    page = (HTML / f"{source.stem}.html").read_text()
    keys = re.findall(r"\{glue:text\}`([^`:]+)", source.read_text())
    assert keys, f"{source.name} glues no number into its prose"
    assert "glue:text" not in page and "glue-missing" not in page.lower()
    assert "# Parameters" not in page  # papermill's injected-parameters cell
    assert 'profile = "cpu"' not in page  # the defaults cell


def test_every_citation_reaches_the_bibliography():
    # The book is built from _build/staging, and _config.yml names references.bib relative to
    # that folder: a page source the runner failed to stage would show up here.
    sources = [*sorted((ROOT / "book").glob("*.md")), *chapters()]
    cited = {
        key.strip()
        for source in sources
        for keys in re.findall(r"\{cite:[a-z]+\}`([^`]+)`", source.read_text())
        for key in keys.split(",")
    }
    entries = (HTML / "reproducing.html").read_text().count('role="doc-biblioentry"')
    assert cited and entries == len(cited), f"{entries} bibliography entries for {len(cited)} cited"
    assert 'href="reproducing.html#' in (HTML / "intro.html").read_text()


def library_modules():
    import importlib
    import pkgutil

    names = []
    for layer in ("science", "outside", "book"):
        package = importlib.import_module(f"robustlens.{layer}")
        names += [
            f"robustlens.{layer}.{m.name}"
            for m in pkgutil.iter_modules(package.__path__)
            if not m.name.startswith("_")
        ]
    return names


def test_library_page_documents_every_public_module():
    page = (HTML / "library.html").read_text()
    missing = [m for m in library_modules() if f'id="module-{m}"' not in page]
    assert not missing, f"book/library.md documents no automodule for {missing}"
    # Functions and constants are link targets of the chapters' {py:func} / {py:data} roles.
    for target in (
        "robustlens.science.zoo.get",
        "robustlens.science.evidence.compare",
        "robustlens.book.claims.overall",
        "robustlens.book.claims.HOLDS",
    ):
        assert f'id="{target}"' in page, f"the library page has no entry {target}"


@pytest.mark.parametrize("source", chapters(), ids=lambda p: p.stem)
def test_each_chapter_offers_its_executed_notebook_for_download(source):
    import json

    page = (HTML / f"{source.stem}.html").read_text()
    assert f'href="_sources/{source.stem}.ipynb"' in page
    nb = json.loads((HTML / "_sources" / f"{source.stem}.ipynb").read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs, "the downloadable notebook must be the executed one"
    assert "provenance.html" in page  # the set-up line links the provenance appendix
