"""House rules checked on the sources: code a reader sees in a chapter never scrolls sideways."""

import re

import pytest

from _support import ROOT

MAX_CODE_LINE = 100  # the same limit as ruff's line-length in pyproject.toml
FENCE = re.compile(r"^(`{3,}|~{3,})\{code-cell\}")


def code_cell_lines(text):
    """``(line number, line)`` for every line of code inside a ``{code-cell}`` block.

    Option lines (``:tags: [...]``) at the top of a cell are not code and are left out.
    """
    fence, in_options = None, False
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is None:
            match = FENCE.match(line)
            if match:
                fence, in_options = match.group(1), True
            continue
        stripped = line.strip()
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            fence = None
            continue
        if in_options and line.startswith(":"):
            continue
        in_options = False
        yield number, line


def test_the_fence_reader_finds_code_and_skips_options():
    text = "text\n```{code-cell} ipython3\n:tags: [hide-input]\nx = 1\n```\nprose " + "y" * 120
    assert list(code_cell_lines(text)) == [(4, "x = 1")]


@pytest.mark.parametrize("source", sorted((ROOT / "notebooks").glob("*.md")), ids=lambda p: p.stem)
def test_no_code_line_is_longer_than_the_page(source):
    long = [
        f"{source.name}:{number} ({len(line)} characters)"
        for number, line in code_cell_lines(source.read_text(encoding="utf-8"))
        if len(line) > MAX_CODE_LINE
    ]
    assert not long, (
        f"code lines longer than {MAX_CODE_LINE} characters scroll sideways on the "
        "page: " + "; ".join(long)
    )


def test_the_publishing_workflow_builds_and_deploys_the_pages():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    triggers = flow[True]  # YAML 1.1 reads the key "on" as True
    assert {"push", "workflow_dispatch"} <= set(triggers)
    steps = [s for job in flow["jobs"].values() for s in job.get("steps", [])]
    uses = {s.get("uses", "").split("@")[0] for s in steps}
    pages = {"actions/upload-pages-artifact", "actions/deploy-pages"}
    assert pages | {"actions/cache/restore", "actions/cache/save"} <= uses
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "make test" in runs and "make book" in runs
    assert "download.pytorch.org/whl/cpu" in runs and "torch==2.14.1" in runs
