"""Import robustbench 1.1.1 (the last PyPI release) in this environment; every workaround lives here.

Why this module exists -- ``import robustbench`` fails or warns in a clean install, for reasons that
are packaging bugs of robustbench 1.1.1, not of this project:

1. ``robustbench/loaders.py`` does ``import pkg_resources``. setuptools 81 removed ``pkg_resources``,
   so the project pins ``setuptools<81`` (pyproject.toml). If it is missing we say so in one line
   instead of a traceback. The deprecation warning that ``pkg_resources`` prints on import is muted.
2. ``robustbench/__init__.py`` imports ``robustbench/eval.py``, which does ``from autoattack import
   AutoAttack`` and ``from autoattack.state import EvaluationState``. Its declared PyPI dependency,
   ``pyautoattack`` 0.2.0, installs the very same code under the top-level name ``pyautoattack``;
   nothing installs ``autoattack``. So, only when ``autoattack`` is not importable (someone may have
   installed the GitHub package that does provide it), we register ``pyautoattack`` and its loaded
   submodules under the name ``autoattack`` in ``sys.modules`` *before* importing robustbench.
3. The robustbench wheel (and torchconvquality's) also installs a top-level package named ``tests``
   into site-packages. Our own ``tests/`` folder has no ``__init__.py``. It is still collected
   correctly: pytest imports test files by path (the project sets ``--import-mode=importlib``; the
   default "prepend" mode works too). The one trap: with the prepend mode, ``import tests.something``
   resolves to robustbench's installed package (a regular package wins over a namespace folder
   even when the folder comes first on ``sys.path``). Keep shared test helpers in ``conftest.py``,
   never ``from tests.x import ...``. Nothing needs patching for this at run time.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from types import ModuleType

__all__ = ["RobustBenchImportError", "alias_autoattack", "import_robustbench"]

FIX_SETUPTOOLS = "pip install 'setuptools<81' (robustbench 1.1.1 imports pkg_resources, removed in setuptools 81)"
FIX_AUTOATTACK = (
    "pip install pyautoattack==0.2.0 (robustbench 1.1.1 imports it under the name `autoattack`)"
)
FIX_ROBUSTBENCH = "pip install robustbench==1.1.1"


class RobustBenchImportError(ImportError):
    """robustbench (or one of its undeclared/misnamed dependencies) cannot be imported; the message says the fix."""


def alias_autoattack() -> str:
    """Make ``import autoattack`` work; return which top-level package now answers to that name."""
    if "autoattack" in sys.modules:
        return getattr(sys.modules["autoattack"], "__name__", "autoattack")
    if importlib.util.find_spec("autoattack") is not None:
        return "autoattack"  # the GitHub package is installed: use it as is
    try:
        package = importlib.import_module("pyautoattack")
        importlib.import_module("pyautoattack.state")  # robustbench.eval imports autoattack.state
    except ImportError as exc:
        raise RobustBenchImportError(
            f"robustbench needs AutoAttack and neither `autoattack` nor `pyautoattack` "
            f"imports ({exc}): {FIX_AUTOATTACK}"
        ) from None
    sys.modules["autoattack"] = package
    for name, module in list(sys.modules.items()):
        if name.startswith("pyautoattack."):
            sys.modules.setdefault("autoattack." + name[len("pyautoattack.") :], module)
    return "pyautoattack"


def import_robustbench() -> ModuleType:
    """Return the imported ``robustbench`` package (with ``robustbench.utils`` loaded), applying the fixes above."""
    if "robustbench.utils" in sys.modules and "robustbench" in sys.modules:
        return sys.modules["robustbench"]
    alias_autoattack()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated")
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.interface.* is deprecated")
        warnings.filterwarnings(
            "ignore", message=r"Importing from timm\.", category=DeprecationWarning
        )
        try:
            importlib.import_module("pkg_resources")
        except ImportError:
            raise RobustBenchImportError(
                f"robustbench 1.1.1 cannot import pkg_resources: {FIX_SETUPTOOLS}"
            ) from None
        try:
            module = importlib.import_module("robustbench")
            importlib.import_module("robustbench.utils")
        except ModuleNotFoundError as exc:
            missing = exc.name or str(exc)
            if missing.split(".")[0] == "robustbench":
                raise RobustBenchImportError(
                    f"robustbench is not installed: {FIX_ROBUSTBENCH}"
                ) from None
            raise RobustBenchImportError(
                f"robustbench 1.1.1 failed to import because `{missing}` is missing: "
                f"pip install the project's pinned dependencies "
                f"(pip install -e .)"
            ) from None
    return module
