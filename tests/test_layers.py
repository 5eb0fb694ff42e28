"""The package's three layers, checked on its source: science never imports the book or outside
models, outside models never import the book, and no two modules import each other in a circle.

Imports are read from the syntax tree, so an import hidden inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "robustlens"
LAYERS = ("science", "outside", "book")
# What each layer may import from the package besides itself.
ALLOWED = {"science": set(), "outside": {"science"}, "book": {"science", "outside"}}


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Fully qualified robustlens modules imported anywhere in ``path``."""
    here = _module_name(path, root)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("robustlens")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("robustlens"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _modules() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_library_module_sits_in_a_layer():
    loose = [
        m
        for m in _modules()
        if _layer(m) is None and m not in ("robustlens", "robustlens.cli", "robustlens.__main__")
    ]
    assert not loose, f"modules outside science/outside/book: {loose}"


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer):
    bad = []
    for module, imported in _modules().items():
        if _layer(module) != layer:
            continue
        for target in imported:
            other = _layer(target)
            if other not in (None, layer) and other not in ALLOWED[layer]:
                bad.append(f"{module} imports {target}")
    assert not bad, "; ".join(sorted(bad))


def test_no_import_circles():
    graph = _modules()
    known = set(graph)
    edges = {
        m: {t for t in targets if t in known and t != m and not m.startswith(t + ".")}
        for m, targets in graph.items()
    }
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_the_layer_checker_sees_a_hidden_import(tmp_path):
    # The checks above are only worth something if an import inside a function is found.
    fake = tmp_path / "robustlens" / "science"
    fake.mkdir(parents=True)
    (fake / "x.py").write_text(
        "def f():\n    from robustlens.book import wording\n    from ..outside import y\n"
    )
    assert _imports(fake / "x.py", tmp_path / "robustlens") == {
        "robustlens.book",
        "robustlens.book.wording",
        "robustlens.outside",
        "robustlens.outside.y",
    }
