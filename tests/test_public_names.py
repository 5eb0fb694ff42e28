"""Hand-kept ``__all__`` lists are complete, and every name in them is on the built library page.

Sphinx's ``automodule :members:`` documents only what ``__all__`` names when a module has one, so
a public function left out of ``__all__`` silently vanishes from the book's library page.
"""

import ast
import importlib
import os

import pytest

from _support import ROOT

LIB = ROOT / "lib" / "robustlens"
HTML = ROOT / "_build" / "html"


def modules_with_all():
    out = []
    for path in sorted(LIB.rglob("*.py")):
        tree = ast.parse(path.read_text())
        if any(
            isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)
            for n in tree.body
        ):
            dotted = ".".join(path.relative_to(LIB.parent).with_suffix("").parts)
            out.append((dotted, tree))
    return out


def defined_public_names(tree) -> set[str]:
    """Functions and classes the module itself defines at top level (constants may stay
    internal)."""
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return {n for n in names if not n.startswith("_")}


MODULES = modules_with_all()


@pytest.mark.parametrize("dotted, tree", MODULES, ids=[m[0] for m in MODULES])
def test_every_public_name_is_in_all(dotted, tree):
    module = importlib.import_module(dotted)
    missing = sorted(defined_public_names(tree) - set(module.__all__))
    assert not missing, f"{dotted}.__all__ leaves out {missing}: add them (or prefix with _)"
    unknown = [n for n in module.__all__ if not hasattr(module, n)]
    assert not unknown, f"{dotted}.__all__ names what it does not define: {unknown}"


@pytest.mark.built_book
@pytest.mark.parametrize("dotted, tree", MODULES, ids=[m[0] for m in MODULES])
def test_every_name_in_all_is_on_the_library_page(dotted, tree):
    page = HTML / "library.html"
    if not page.is_file():
        if os.environ.get("REQUIRE_BUILT_BOOK"):
            pytest.fail("no built book: run make html first")
        pytest.skip("no built book (make html)")
    text = page.read_text()
    module = importlib.import_module(dotted)
    absent = [n for n in module.__all__ if f'id="{dotted}.{n}"' not in text]
    assert not absent, f"missing from the library page: {', '.join(absent)}"
