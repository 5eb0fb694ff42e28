import pytest

from robustlens.science import cache, profiles
from robustlens.science.cache import Cache, CacheError


def test_put_is_atomic_and_checksummed(tmp_path):
    store = Cache(tmp_path)
    path = store.put("things", "k1", {"a.txt": lambda p: p.write_text("hello")}, {"spec": {"x": 1}})
    assert store.has("things", "k1")
    assert store.path("things", "k1", "a.txt").read_text() == "hello"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    (path / "a.txt").write_text("jello")
    with pytest.raises(CacheError, match="fails its checksum.*delete"):
        store.path("things", "k1", "a.txt")


def test_a_failed_writer_leaves_no_entry(tmp_path):
    store = Cache(tmp_path)

    def boom(p):
        p.write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        store.put("things", "k2", {"ok.txt": lambda p: p.write_text("x"), "bad.txt": boom}, {})
    assert not store.has("things", "k2")
    assert list((tmp_path / "things").iterdir()) == []


def test_unreadable_meta_is_reported(tmp_path):
    store = Cache(tmp_path)
    store.put("things", "k3", {"a.txt": lambda p: p.write_text("x")}, {})
    (tmp_path / "things" / "k3" / "meta.json").write_text("{not json")
    with pytest.raises(CacheError, match="unreadable"):
        store.read_meta("things", "k3")


def test_key_changes_with_spec_and_code():
    k1 = cache.make_key({"a": 1}, [profiles])
    assert k1 == cache.make_key({"a": 1}, [profiles])
    assert k1 != cache.make_key({"a": 2}, [profiles])
    assert k1 != cache.make_key({"a": 1}, [profiles, cache])
