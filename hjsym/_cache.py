"""On-disk cache of derivations, generated code, trained networks and report pages; authenticated.

Location: ``$HJSYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/hjsym``, else ``~/.cache/hjsym``.
``HJSYM_NO_CACHE=1`` disables it.

Nothing read from the cache is deserialised or compiled before it is authenticated: every entry
carries an HMAC (SHA-256) of its kind, its key and its bytes under a per-user secret key, created
with mode 0600 *outside* the cache folder (``$HJSYM_KEY_FILE``, else
``$XDG_DATA_HOME/hjsym/cache-key``, else ``~/.local/share/hjsym/cache-key``; the scheme Jupyter
uses to trust notebooks). Someone who can write the cache folder but cannot read the key can
neither plant an entry nor edit one (a pickle that runs code, a line prepended to generated
source, a changed formula): such an entry fails verification and is a miss. An entry that fails
verification, is truncated or does not parse is a miss: the caller recomputes and rewrites it,
and one warning line (:class:`CacheWarning`) says which entry and why.

The cache folder is created with mode 0700; one that is writable by group or others, or owned by
someone else, is never read or written (one warning names the fix), nor is one whose key file is
readable by others. A cache that cannot be written (read-only, full) is skipped with a warning:
it only saves time, and the result does not depend on it.

Every write goes to a temporary file that is then renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import pickle
import platform
import secrets
import stat
import tempfile
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from ._errors import HJSymWarning, OutputError

__all__ = ["cache_dir", "key_file", "version_tag", "load", "store", "reject", "enabled", "atomic_write", "check_writable",
           "CacheWarning"]

#: First line of every entry: the format, so that an entry of another format is a miss.
MAGIC = b"hjsym-cache-1\n"
_DIGEST_HEX = 64


class CacheWarning(HJSymWarning):
    """A cache entry was not used (failed verification, truncated, malformed) or the cache folder is not trusted."""


def enabled() -> bool:
    return os.environ.get("HJSYM_NO_CACHE", "") in ("", "0")


def cache_dir() -> Path:
    root = os.environ.get("HJSYM_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hjsym"


def key_file() -> Path:
    """Where the per-user secret key lives (never inside the cache folder)."""
    explicit = os.environ.get("HJSYM_KEY_FILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hjsym" / "cache-key"


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


# ----------------------------------------------------------------------------- writing files
def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    ``mode`` sets the file's permissions (default: the usual ``0666 & ~umask``). Raises
    :class:`~hjsym.OutputError` (an ``OSError`` and an :class:`~hjsym.HJSymError`) naming the path,
    the reason and the fix when the folder cannot be made or the file cannot be written (a
    path that is a file, a read-only or full disk).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        if isinstance(exc, OutputError):
            raise
        raise OutputError.of(path, exc) from exc
    except BaseException:
        _discard(tmp)
        raise


def check_writable(folder) -> None:
    """Make ``folder`` and write (then remove) a probe file in it, so that a report or an experiment that could not be
    written fails before its work starts (an :class:`~hjsym.OutputError`: a path that is a file, read-only, a full disk)."""
    probe = Path(folder) / ".hjsym-write-probe"
    atomic_write(probe, b"probe")
    try:
        probe.unlink()
    except OSError:
        pass


def _discard(tmp) -> None:
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- trust
_WARNED: set[str] = set()


def _warn(text: str) -> None:
    """One warning line per distinct message and process (``hjsym: CacheWarning: ...``)."""
    if text in _WARNED:
        return
    _WARNED.add(text)
    warnings.warn_explicit(text, CacheWarning, "hjsym", 0, module="hjsym", registry=None)


def _owned_private(st: os.stat_result) -> str | None:
    """Why a folder or file is not private to this user (None when it is)."""
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"owned by uid {st.st_uid}, not by you"
    group, others = st.st_mode & stat.S_IWGRP, st.st_mode & stat.S_IWOTH
    if group or others:
        who = "group and others" if group and others else ("group" if group else "others")
        return f"writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _trusted_dir(create: bool) -> Path | None:
    """The cache folder when it is private to this user (created 0700 if missing and ``create``), else None."""
    root = cache_dir()
    try:
        st = root.stat()
    except (FileNotFoundError, NotADirectoryError):
        if not create:
            return None
        try:
            root.mkdir(parents=True, mode=0o700, exist_ok=True)
            st = root.stat()
        except OSError as exc:
            _warn(f"cache folder {root} cannot be created ({exc.strerror or exc}): running without the cache; "
                  "fix: set HJSYM_CACHE_DIR to a writable folder of your own (or HJSYM_NO_CACHE=1)")
            return None
    except OSError as exc:
        _warn(f"cache folder {root} cannot be read ({exc.strerror or exc}): running without the cache; "
              "fix: set HJSYM_CACHE_DIR to a folder of your own (or HJSYM_NO_CACHE=1)")
        return None
    if not stat.S_ISDIR(st.st_mode):
        _warn(f"cache folder {root} is not a folder: running without the cache; fix: set HJSYM_CACHE_DIR to a folder")
        return None
    why = _owned_private(st)
    if why:
        _warn(f"cache folder {root} is {why}: it is never read or written, since others could plant entries; "
              f"fix: chmod go-w {root} (if it is yours) or set HJSYM_CACHE_DIR to a private folder")
        return None
    return root


def _secret(create: bool) -> bytes | None:
    """The per-user key (created with mode 0600 on first use when ``create``); None when it cannot be trusted."""
    path = key_file()
    root = cache_dir()
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except OSError:
        inside = False
    if inside:
        _warn(f"key file {path} lies inside the cache folder {root}: running without the cache; "
              "fix: point HJSYM_KEY_FILE outside the cache folder")
        return None
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            return None
        return _create_secret(path)
    except OSError as exc:
        _warn(f"key file {path} cannot be read ({exc.strerror or exc}): running without the cache; "
              "fix: set HJSYM_KEY_FILE to a file of your own")
        return None
    if (hasattr(os, "getuid") and st.st_uid != os.getuid()) or st.st_mode & 0o077:
        _warn(f"key file {path} is readable or writable by others (mode {stat.S_IMODE(st.st_mode):04o}) or not yours: "
              f"running without the cache; fix: rm {path} (a new private key is made on the next run)")
        return None
    try:
        key = path.read_bytes()
    except OSError as exc:
        _warn(f"key file {path} cannot be read ({exc.strerror or exc}): running without the cache; "
              "fix: set HJSYM_KEY_FILE to a file of your own")
        return None
    if len(key) < 32:
        _warn(f"key file {path} is truncated: running without the cache; fix: rm {path} (a new key is made on the next run)")
        return None
    return key


def _create_secret(path: Path) -> bytes | None:
    """32 random bytes in ``path``, mode 0600, made atomically (a concurrent process reads the same key)."""
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
            os.link(tmp, path)  # fails if another process made the key first
        finally:
            os.unlink(tmp)
    except FileExistsError:
        return _secret(create=False)
    except OSError as exc:
        _warn(f"key file {path} cannot be created ({exc.strerror or exc}): running without the cache; "
              "fix: set HJSYM_KEY_FILE to a writable path outside the cache folder (or HJSYM_NO_CACHE=1)")
        return None
    return key


def _mac(secret: bytes, kind: str, key: str, payload: bytes) -> bytes:
    return hmac.new(secret, kind.encode() + b"\0" + key.encode() + b"\0" + payload, hashlib.sha256).hexdigest().encode()


# ----------------------------------------------------------------------------- entries
def _path(root: Path, kind: str, key: str) -> Path:
    suffix = ".json" if kind.endswith("json") else ".pkl"
    return root / f"{key}-{kind.replace('json', '').strip('-') or 'data'}{suffix}"


def load(kind: str, key: str):
    """The cached object, or ``None`` on a miss (also: cache disabled or untrusted, entry unauthenticated or malformed).

    The entry's bytes are authenticated (HMAC) before anything parses them.
    """
    if not enabled():
        return None
    root = _trusted_dir(create=False)
    if root is None:
        return None
    path = _path(root, kind, key)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _warn(f"cache entry {path.name} cannot be read ({exc.strerror or exc}): recomputing")
        return None
    secret = _secret(create=False)
    if secret is None:
        return None
    head, payload = raw[: len(MAGIC) + _DIGEST_HEX + 1], raw[len(MAGIC) + _DIGEST_HEX + 1:]
    if not head.startswith(MAGIC) or len(head) < len(MAGIC) + _DIGEST_HEX + 1 or head[-1:] != b"\n":
        _warn(f"cache entry {path.name} is truncated or not an hjsym entry: recomputing and rewriting it")
        return None
    if not hmac.compare_digest(head[len(MAGIC):-1], _mac(secret, kind, key, payload)):
        _warn(f"cache entry {path.name} failed verification (changed or planted; not read): recomputing and rewriting it")
        return None
    try:
        return json.loads(payload) if path.suffix == ".json" else pickle.loads(payload)  # noqa: S301 - authenticated: written by us
    except Exception as exc:  # noqa: BLE001 - an authenticated entry of an older layout: a miss
        _warn(f"cache entry {path.name} does not parse ({type(exc).__name__}): recomputing and rewriting it")
        return None


def reject(kind: str, key: str, reason: str) -> None:
    """A caller found an authenticated entry unusable (wrong shapes, non-finite values): warn and remove it."""
    root = _trusted_dir(create=False)
    if root is None:
        return
    path = _path(root, kind, key)
    _warn(f"cache entry {path.name} is unusable ({reason}): recomputing and rewriting it")
    try:
        path.unlink()
    except OSError:
        pass


def store(kind: str, key: str, obj) -> None:
    """Store ``obj`` (JSON for kinds ending in 'json', pickle otherwise), authenticated; a failure is one warning."""
    if not enabled():
        return
    root = _trusted_dir(create=True)
    if root is None:
        return
    secret = _secret(create=True)
    if secret is None:
        return
    path = _path(root, kind, key)
    try:
        payload = json.dumps(obj, sort_keys=True).encode() if path.suffix == ".json" else pickle.dumps(obj)
    except (TypeError, ValueError, pickle.PicklingError, AttributeError) as exc:
        _warn(f"cache entry {path.name} cannot be serialised ({type(exc).__name__}: {exc}): not cached")
        return
    try:
        atomic_write(path, MAGIC + _mac(secret, kind, key, payload) + b"\n" + payload, mode=0o600)
    except OSError as exc:
        reason = "the disk is full" if getattr(exc, "errno", None) == errno.ENOSPC else (
            getattr(exc, "problem", None) or exc.strerror or str(exc))
        _warn(f"cache entry {path.name} cannot be written ({reason}): continuing without caching it; "
              "fix: free space or set HJSYM_CACHE_DIR to a writable folder (or HJSYM_NO_CACHE=1)")
