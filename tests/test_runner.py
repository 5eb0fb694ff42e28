"""The papermill runner: executes, skips what is unchanged, hides parameters, never installs a failure."""
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
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks" / "tiny.md").write_text(NOTEBOOK % body)
    return tmp_path


def test_executes_then_skips_then_reexecutes_on_change(tmp_path):
    root = make_root(tmp_path)
    first = runner.run_all("smoke", root=root, log=lambda *_: None)
    assert [r.executed for r in first] == [True]
    nb = nbformat.read(root / "book" / "tiny.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "EPS 0.1 PROFILE smoke" in outputs  # the injected parameter took effect
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and all("remove-cell" in c.metadata["tags"] for c in injected)
    timings = json.loads((root / "_build" / "executed" / "smoke" / "timings.json").read_text())
    assert timings["tiny"]["seconds"] > 0

    second = runner.run_all("smoke", root=root, log=lambda *_: None)
    assert [r.executed for r in second] == [False]

    src = root / "notebooks" / "tiny.md"
    src.write_text(src.read_text().replace("A tiny chapter", "A tiny chapter, edited"))
    third = runner.run_all("smoke", root=root, log=lambda *_: None)
    assert [r.executed for r in third] == [True]


def test_a_failing_notebook_is_never_installed(tmp_path):
    root = make_root(tmp_path, body='raise RuntimeError("boom")')
    with pytest.raises(runner.NotebookFailed, match="tiny.md failed.*RuntimeError: boom"):
        runner.run_all("smoke", root=root, log=lambda *_: None)
    assert not (root / "book" / "tiny.ipynb").exists()
    assert not (root / "_build" / "executed" / "smoke" / "tiny.ipynb").exists()
    assert (root / "_build" / "executed" / "smoke" / "failed" / "tiny.ipynb").exists()
