"""Shared test helpers (importable because pyproject puts tests/ on pytest's pythonpath)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def have_fashion_mnist() -> bool:
    from robustlens.science import data

    return data.find_fashion_mnist() is not None


# Under CI the data must be there (make test fetches it first): never skip silently there.
needs_fashion_mnist = pytest.mark.skipif(
    not have_fashion_mnist() and not os.environ.get("CI"),
    reason="Fashion-MNIST not installed: run `make data`",
)
