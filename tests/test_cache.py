"""The disk cache: atomic writes, misses on corruption, and the off switch."""

import os

from hjsym import _cache


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    _cache.atomic_write(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # usual permissions, not mkstemp's


def test_store_load_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("HJSYM_CACHE_DIR", str(tmp_path))
    _cache.store("thing-json", "k", {"a": 1})
    _cache.store("thing", "k", {"b": 2})
    assert _cache.load("thing-json", "k") == {"a": 1} and _cache.load("thing", "k") == {"b": 2}
    for p in tmp_path.iterdir():
        p.write_bytes(b"\x00garbage")
    assert _cache.load("thing-json", "k") is None and _cache.load("thing", "k") is None


def test_cache_can_be_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("HJSYM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HJSYM_NO_CACHE", "1")
    _cache.store("thing", "k", 1)
    assert _cache.load("thing", "k") is None and not os.listdir(tmp_path)


def test_version_tag_is_stable():
    assert _cache.version_tag() == _cache.version_tag() and len(_cache.version_tag()) == 16
