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
    assert len(images) == len(figures), f"{source.stem}: {len(images)} <img> for {len(figures)} glued figures"
    assert "&lt;Figure size" not in page and "<Figure size" not in page


@pytest.mark.parametrize("source", chapters(), ids=lambda p: p.stem)
def test_glued_numbers_are_in_the_prose_and_parameters_are_hidden(source):
    page = (HTML / f"{source.stem}.html").read_text()
    keys = re.findall(r"\{glue:text\}`([^`:]+)", source.read_text())
    assert keys, f"{source.name} glues no number into its prose"
    assert "glue:text" not in page and "glue-missing" not in page.lower()
    assert "# Parameters" not in page  # papermill's injected-parameters cell
    assert 'profile = "cpu"' not in page  # the defaults cell
