import os

# Progress bars are for people; in test logs they are noise.
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty result cache, so a test never reads or pollutes the book's."""
    path = tmp_path / "cache"
    monkeypatch.setenv("ROBUSTLENS_CACHE", str(path))
    return path
