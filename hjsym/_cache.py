"""On-disk cache of derivations and generated code, keyed by the spec and library versions.

Location: ``$HJSYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/hjsym``, else ``~/.cache/hjsym``.
``HJSYM_NO_CACHE=1`` disables it. Every write goes to a temporary file that is then renamed,
so a reader never sees half a file; a corrupt or unreadable entry is treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

__all__ = ["cache_dir", "version_tag", "load", "store", "enabled", "atomic_write"]


def enabled() -> bool:
    return os.environ.get("HJSYM_NO_CACHE", "") in ("", "0")


def cache_dir() -> Path:
    root = os.environ.get("HJSYM_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hjsym"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


@lru_cache(maxsize=1)
def version_tag() -> str:
    """Hash of hjsym's own sources and the versions of SymPy, torch and Python."""
    h = hashlib.sha256()
    pkg = Path(__file__).parent
    for path in sorted(pkg.rglob("*.py")):
        h.update(path.relative_to(pkg).as_posix().encode())
        h.update(path.read_bytes())
    for part in (_version("sympy"), _version("torch"), platform.python_version()):
        h.update(part.encode())
    return h.hexdigest()[:16]


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _path(kind: str, key: str) -> Path:
    suffix = ".json" if kind.endswith("json") else ".pkl"
    return cache_dir() / f"{key}-{kind.replace('json', '').strip('-') or 'data'}{suffix}"


def load(kind: str, key: str):
    """The cached object, or ``None`` on a miss (or when the cache is disabled)."""
    if not enabled():
        return None
    path = _path(kind, key)
    try:
        raw = path.read_bytes()
        return json.loads(raw) if path.suffix == ".json" else pickle.loads(raw)  # noqa: S301 - our own cache
    except (OSError, ValueError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None


def store(kind: str, key: str, obj) -> None:
    """Store ``obj`` (JSON for kinds ending in 'json', pickle otherwise); failures are silent."""
    if not enabled():
        return
    path = _path(kind, key)
    try:
        data = json.dumps(obj, sort_keys=True).encode() if path.suffix == ".json" else pickle.dumps(obj)
        atomic_write(path, data)
    except OSError:
        pass
