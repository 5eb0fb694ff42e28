"""The papermill runner: executes, skips what is unchanged, hides parameters, never installs a
failure, and writes only under ``_build/``."""

import hashlib
import json

import nbformat
import pytest

from robustlens.book import runner

NOTEBOOK = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# A tiny chapter

```{code-cell} ipython3
:tags: [parameters]
profile = "cpu"
device = "auto"
```

```{code-cell} ipython3
from robustlens.science.profiles import get_profile
p = get_profile(profile)
print("EPS", p.eps, "PROFILE", p.name)
%s
```
"""


def make_root(tmp_path, body=""):
    """A miniature repository: one notebook, the page sources, a library file."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "tiny.md").write_text(NOTEBOOK % body)
    book = tmp_path / "book"
    book.mkdir()
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: tiny\n")
    (book / "intro.md").write_text("# Intro\n")
    (book / "references.bib").write_text("")
    (book / "figures").mkdir()
    (book / "figures" / "logo.svg").write_text("<svg/>")
    # A notebook left in book/ by an older runner must never reach the staging folder.
    (book / "old.ipynb").write_text("{}")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "module.py").write_text("X = 1\n")
    return tmp_path


def snapshot(root):
    """Every file outside ``_build/`` with its content hash and modification time."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "_build"
    }


def quiet(*_):
    pass


def test_executes_then_skips_then_reexecutes_on_change(tmp_path):
    root = make_root(tmp_path)
    first = runner.run_all("smoke", root=root, log=quiet)
    assert [r.executed for r in first] == [True]
    nb = nbformat.read(runner.staging_dir(root) / "tiny.ipynb", as_version=4)
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "EPS 0.1 PROFILE smoke" in outputs  # the injected parameter took effect
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and all("remove-cell" in c.metadata["tags"] for c in injected)
    timings = json.loads((root / "_build" / "executed" / "smoke" / "timings.json").read_text())
    assert timings["tiny"]["seconds"] > 0

    second = runner.run_all("smoke", root=root, log=quiet)
    assert [r.executed for r in second] == [False]

    src = root / "notebooks" / "tiny.md"
    src.write_text(src.read_text().replace("A tiny chapter", "A tiny chapter, edited"))
    third = runner.run_all("smoke", root=root, log=quiet)
    assert [r.executed for r in third] == [True]


def test_a_failing_notebook_is_never_installed(tmp_path):
    root = make_root(tmp_path, body='raise RuntimeError("boom")')
    with pytest.raises(runner.NotebookFailed, match="tiny.md failed.*RuntimeError: boom"):
        runner.run_all("smoke", root=root, log=quiet)
    assert not (runner.staging_dir(root) / "tiny.ipynb").exists()
    assert not (root / "_build" / "executed" / "smoke" / "tiny.ipynb").exists()
    assert (root / "_build" / "executed" / "smoke" / "failed" / "tiny.ipynb").exists()


def test_the_staging_folder_holds_the_pages_and_the_executed_notebooks(tmp_path):
    root = make_root(tmp_path)
    runner.run_all("smoke", root=root, log=quiet)
    staging = runner.staging_dir(root)
    staged = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    assert staged == [
        "_toc.yml",
        "figures/logo.svg",
        "intro.md",
        "provenance.md",
        "references.bib",
        "tiny.ipynb",
    ]
    page = (staging / "provenance.md").read_text()
    assert "(provenance)=" in page and "| tiny |" in page and "Profile:** `smoke`" in page

    # A page deleted from book/ leaves the staging folder; an unchanged one keeps its mtime.
    before = (staging / "intro.md").stat().st_mtime_ns
    (root / "book" / "figures" / "logo.svg").unlink()
    runner.stage_pages(root)
    assert not (staging / "figures").exists()
    assert (staging / "intro.md").stat().st_mtime_ns == before


def test_nothing_is_written_outside_build(tmp_path):
    # The notebook also writes a file into its working folder: that must not land in notebooks/.
    root = make_root(tmp_path, body='open("stray.txt", "w").write("x")')
    before = snapshot(root)
    runner.run_all("smoke", root=root, log=quiet)
    assert snapshot(root) == before
    assert (runner.staging_dir(root) / "tiny.ipynb").is_file()


def test_the_provenance_page_lists_each_notebooks_models_and_overrides():
    timings = {
        "a": {
            "seconds": 90.0,
            "computed": 2,
            "cached": 1,
            "finished": "t",
            "models": {"cnn/pgd/seed0": "0123456789abcdef0123"},
        }
    }
    page = runner.provenance_page("cpu", {"eps": "0.2"}, "cpu", timings, ["a", "b"])
    assert "values changed for the run: eps = 0.2" in page
    assert "| a | 90 | 2 | 1 | t |" in page and "| b | 0 | — | — | — |" in page
    assert "`cnn/pgd/seed0`: `0123456789abcdef0123`" in page
    assert "Total wall time of the notebooks' last runs: 1.5 min" in page
