"""The disk cache: authenticated entries (nothing planted runs), misses on corruption, trust of the folder, atomic writes."""

import json
import os
import pickle
import stat
import warnings

import pytest
import torch

from hjsym import OutputError, _cache
from hjsym._cache import MAGIC, CacheWarning


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder and key for one test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("HJSYM_CACHE_DIR", str(root))
    monkeypatch.setenv("HJSYM_KEY_FILE", str(tmp_path / "keys" / "cache-key"))
    _cache._WARNED.clear()
    return root


def _warnings(fn):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in seen if issubclass(w.category, CacheWarning)]


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    _cache.atomic_write(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # usual permissions, not mkstemp's


def test_atomic_write_names_the_path_and_the_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write") as info:
        _cache.atomic_write(blocker / "page.html", b"x")  # a folder path through a file
    assert isinstance(info.value, OSError) and "is a file" in info.value.fix


def test_store_load_round_trip_and_entries_are_private(cache):
    _cache.store("thing-json", "k", {"a": 1})
    _cache.store("thing", "k", {"b": 2})
    assert _cache.load("thing-json", "k") == {"a": 1} and _cache.load("thing", "k") == {"b": 2}
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in cache.iterdir())
    key = _cache.key_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and not key.resolve().is_relative_to(cache.resolve())
    assert all(p.read_bytes().startswith(MAGIC) for p in cache.iterdir())


def test_corrupt_truncated_and_forged_entries_are_misses_with_one_warning(cache):
    _cache.store("thing-json", "k", {"a": 1})
    _cache.store("thing", "k", {"b": 2})
    files = sorted(cache.iterdir())
    for p in files:
        raw = p.read_bytes()
        p.write_bytes(raw[: len(raw) // 2])  # truncated
    (got_json, got_pkl), seen = _warnings(lambda: (_cache.load("thing-json", "k"), _cache.load("thing", "k")))
    assert got_json is None and got_pkl is None
    assert len(seen) == 2 and all("recomputing" in s for s in seen)
    for p in files:
        p.write_bytes(b"\x00garbage")
    assert _cache.load("thing-json", "k") is None and _cache.load("thing", "k") is None


class _Planted:
    """A pickle that runs a shell command when loaded (what an attacker would plant)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant_everything(cache, marker):
    """Every payload of the audit, in every entry of the lse derivation: raw pickles, forged headers, code prepended to
    generated source, an edited formula."""
    planted = pickle.dumps(_Planted(marker))
    for path in cache.iterdir():
        if path.name.endswith("-derivation.pkl"):
            path.write_bytes(MAGIC + b"0" * 64 + b"\n" + planted)  # a forged header: the MAC does not match
        elif path.name.endswith("-functions.json"):
            raw = path.read_bytes()
            head, payload = raw[: len(MAGIC) + 65], json.loads(raw[len(MAGIC) + 65:])
            u = payload["functions"]["u"]
            u["source"] = f"import os\nos.system('touch {marker}')\n" + u["source"]
            identity = payload["functions"]["identity_rhs"]
            identity["source"] = identity["source"].replace("return identity_rhs_unchecked(", "return 1.001 * identity_rhs_unchecked(")
            path.write_bytes(head + json.dumps(payload).encode())  # the original header, edited payload


def test_planted_payloads_never_run_and_results_stay_right(cache, tmp_path):
    """The audit's payloads (a pickle that runs a command, a line prepended to generated source, an edited formula) in
    the cache of ``lse``: nothing runs, every entry is a miss with a warning, and the results are those derived afresh."""
    import hjsym
    from hjsym.codegen.pipeline import load_functions
    from tests.helpers import lse_inputs, reference_f

    hjsym.derive("lse")  # fills the cache
    saved = {p.name: p.read_bytes() for p in cache.iterdir()}
    marker = tmp_path / "pwned"
    _plant_everything(cache, marker)
    fns, seen = _warnings(lambda: load_functions("lse"))
    assert not marker.exists(), "a planted payload ran"
    assert any("failed verification" in s for s in seen) and any("functions.json" in s for s in seen)
    x, W, b = lse_inputs(5, 7, 3)
    t, eps = 1.0, 0.5
    y, g = fns["atoms_y"](W=W, t=t), fns["atoms_g"](W=W, b=b, t=t)
    torch.testing.assert_close(reference_f(x, W, b, eps) + fns["u"](x=x, eps=eps, y=y, g=g, t=t), fns["identity_rhs"](x=x, t=t))
    # the entries were rewritten by the recomputation and verify again
    assert {p.name for p in cache.iterdir()} == set(saved)
    _, seen_again = _warnings(lambda: load_functions("lse"))
    assert not seen_again
    # a raw pickle (no header at all) in place of the derivation: a miss, nothing runs
    derivation = next(p for p in cache.iterdir() if p.name.endswith("-derivation.pkl"))
    derivation.write_bytes(pickle.dumps(_Planted(marker)))
    d, seen = _warnings(lambda: hjsym.derive("lse"))
    assert not marker.exists() and "residual" in d.results and any("not an hjsym entry" in s for s in seen)


def test_an_authenticated_trained_entry_of_the_wrong_form_is_recomputed_not_blamed_on_the_user(cache):
    from torch import nn

    from hjsym.networks.training import cached_training

    def make(gen):
        return nn.Linear(2, 3, dtype=torch.float64)

    def fit(model, gen):
        with torch.no_grad():
            model.weight.copy_(torch.arange(6.0).reshape(3, 2))
            model.bias.zero_()
        return 0.5

    model = cached_training("toy", make, fit, seed=0)
    key = f"toy-{_cache.version_tag()}"
    for bad in ({"state": {"weight": [[float("nan")] * 2] * 3, "bias": [0.0] * 3}, "train_loss": 0.5},
                {"state": {"weight": [[1.0]], "bias": [0.0] * 3}, "train_loss": 0.5},
                {"state": {"weight": [[1.0] * 2] * 3}, "train_loss": 0.5},
                [1, 2, 3]):
        _cache.store("trained-json", key, bad)  # authenticated, but not a state of this network
        again, seen = _warnings(lambda: cached_training("toy", make, fit, seed=0))
        torch.testing.assert_close(again.weight, model.weight)
        assert any("unusable" in s for s in seen), bad


def test_a_folder_others_can_write_is_never_read(cache, tmp_path, monkeypatch):
    _cache.store("thing", "k", {"b": 2})
    os.chmod(cache, 0o777)
    got, seen = _warnings(lambda: _cache.load("thing", "k"))
    assert got is None and any("chmod go-w" in s for s in seen)
    _cache.store("other", "k", 1)  # nor written
    assert not any(p.name.startswith("k-other") for p in cache.iterdir())
    os.chmod(cache, 0o700)
    assert _cache.load("thing", "k") == {"b": 2}


def test_a_key_others_can_read_is_not_trusted(cache):
    _cache.store("thing", "k", {"b": 2})
    os.chmod(_cache.key_file(), 0o644)
    got, seen = _warnings(lambda: _cache.load("thing", "k"))
    assert got is None and any("rm " in s for s in seen)


def test_a_key_inside_the_cache_folder_is_refused(cache, monkeypatch):
    monkeypatch.setenv("HJSYM_KEY_FILE", str(cache / "key"))
    _, seen = _warnings(lambda: _cache.store("thing", "k", 1))
    assert any("inside the cache folder" in s for s in seen) and not (cache / "key").exists()


def test_an_unwritable_or_full_cache_is_a_warning_not_a_failure(cache, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("HJSYM_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot be created
    _, seen = _warnings(lambda: _cache.store("thing", "k", 1))
    assert any("cannot be created" in s for s in seen) and _cache.load("thing", "k") is None
    monkeypatch.setenv("HJSYM_CACHE_DIR", str(cache))

    def full(path, data, **kw):
        import errno

        raise OutputError.of(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(_cache, "atomic_write", full)
    _, seen = _warnings(lambda: _cache.store("thing", "k", 1))
    assert any("disk is full" in s for s in seen)


def test_cache_can_be_disabled(cache, monkeypatch):
    monkeypatch.setenv("HJSYM_NO_CACHE", "1")
    _cache.store("thing", "k", 1)
    assert _cache.load("thing", "k") is None and not cache.exists()


def test_version_tag_is_stable():
    assert _cache.version_tag() == _cache.version_tag() and len(_cache.version_tag()) == 16


def test_the_test_session_uses_its_own_key_outside_its_cache():
    assert os.environ["HJSYM_KEY_FILE"] and not os.environ["HJSYM_KEY_FILE"].startswith(os.environ["HJSYM_CACHE_DIR"])
