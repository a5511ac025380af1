"""The registry of architectures: a spec, the real networks its checks run on by default, and an order.

The architectures hjsym ships are plugins: each module of :mod:`hjsym.architectures` defines
``ARCHITECTURE = Architecture(spec=..., networks=...)``, and the registry finds them by name
(dropping such a module into ``hjsym/architectures/`` registers it; there is no list to edit).
Third-party packages add theirs through the entry-point group ``hjsym.architectures`` (the way
pytest finds its plugins): an entry point names an ``Architecture``, a ``Spec`` or a module
defining ``ARCHITECTURE`` or ``SPEC``. A user's own file works without installing anything:
:func:`get` also takes a ``Spec``, an ``Architecture`` or the path of a ``.py`` file that defines
``SPEC`` or ``ARCHITECTURE`` (:func:`load_spec_file`).

This is the one place where hjsym imports a module by name, because the architectures sit at the
top of the pipeline (they name reference networks) while everything below looks them up here.
Which checks run is decided by the spec (:mod:`hjsym.checks.suites`), which figures a report
draws by the report (:mod:`hjsym.reports.figures`).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from .._errors import InputError, SpecError, UnknownArchitectureError
from .spec import Spec

__all__ = ["Architecture", "KeyResult", "get", "names", "all_architectures", "load_spec_file", "is_spec_path", "PLUGINS",
           "ENTRY_POINTS"]

#: The package whose modules define the shipped architectures.
PLUGINS = "hjsym.architectures"
#: The entry-point group third-party packages register architectures in.
ENTRY_POINTS = "hjsym.architectures"


@dataclass(frozen=True)
class KeyResult:
    """The result an architecture's page leads with: an equation and the check that verifies it.

    ``step`` names the equation as checks do (``"identity:1"``; ``k`` counts from the end when
    negative, ``"step-map:-1"`` is the step's last equation); ``check`` is the name of the check that
    tests it numerically (``None``: the equation's symbolic verification is the evidence). Without a
    declaration the page uses :func:`hjsym.reports.main_result.default_key_result`.
    """

    step: str
    check: str | None = None


@dataclass(frozen=True)
class Architecture:
    """A spec plus the real networks its checks run on by default.

    ``networks(seed, dtype) -> {label: nn.Module}`` builds (trains, seeded) the reference
    networks; ``None`` means the checks need a module passed to them. ``checks`` are declared
    checks of the architecture's own science, run after its suite's (``hjsym.checks.engine.Check``).
    ``position`` orders listings and reports; ``key_result`` the equation and check its page leads
    with (:class:`KeyResult`; default: the network's identity, or for the control family the
    costate recursion). ``source`` is where a user's architecture came from (the path of its spec
    file, or ``"entry point NAME (DIST)"``): commands that reproduce its numbers name it instead of
    the name; ``source_key`` changes with the file's contents.
    """

    spec: Spec
    networks: Callable | None = None
    position: int = 100
    checks: tuple = ()
    key_result: KeyResult | None = None
    source: str | None = None
    source_key: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ref(self) -> str:
        """What to type after ``hjsym derive|check|report`` to get this architecture."""
        return self.source if self.source and not self.source.startswith("entry point") else self.name


def _architecture_of(obj, where: str, source: str | None = None, source_key: str = "") -> Architecture | None:
    """An ``Architecture`` from what a plugin or spec file provides (an Architecture, a Spec, or a module defining one)."""
    if not isinstance(obj, (Architecture, Spec)):
        arch = getattr(obj, "ARCHITECTURE", None)
        obj = arch if arch is not None else getattr(obj, "SPEC", None)
    if isinstance(obj, Spec):
        obj = Architecture(obj)
    if not isinstance(obj, Architecture):
        return None
    if source is not None:
        obj = replace(obj, source=source, source_key=source_key)
    return obj


def _entry_point_architectures() -> list[Architecture]:
    """Architectures registered by installed packages in the ``hjsym.architectures`` entry-point group."""
    out = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
        where = f"entry point {ep.name!r} ({ep.value}) of {dist}"
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plugin is named, not hidden
            raise InputError(f"loading the hjsym architecture plugin {where} failed: {type(exc).__name__}: {exc}",
                             f"fix or uninstall {dist}") from exc
        arch = _architecture_of(loaded, where, source=f"entry point {ep.name} ({dist})")
        if arch is None:
            raise InputError(f"the hjsym architecture plugin {where} is a {type(loaded).__name__}",
                             "point the entry point at an hjsym.Architecture, an hjsym.Spec or a module defining ARCHITECTURE or SPEC")
        out.append(arch)
    return out


@lru_cache(maxsize=1)
def _discover() -> dict[str, Architecture]:
    package = importlib.import_module(PLUGINS)
    found: dict[str, Architecture] = {}
    for info in pkgutil.iter_modules(package.__path__):
        mod = importlib.import_module(f"{PLUGINS}.{info.name}")
        arch = getattr(mod, "ARCHITECTURE", None)
        if isinstance(arch, Architecture):
            if arch.name in found:
                raise RuntimeError(f"architecture {arch.name!r} is defined twice")
            found[arch.name] = arch
    for arch in _entry_point_architectures():
        if arch.name in found:
            other = found[arch.name].source or f"{PLUGINS} (shipped with hjsym)"
            raise InputError(f"architecture {arch.name!r} of the {arch.source} is also defined by {other}",
                             "give the plugin's spec a name of its own")
        found[arch.name] = arch
    return dict(sorted(found.items(), key=lambda kv: (kv[1].position, kv[0])))


def is_spec_path(ref) -> bool:
    """Whether ``ref`` names a spec file (a path ending in ``.py``) rather than a registered name."""
    return isinstance(ref, Path) or (isinstance(ref, str) and ref.endswith(".py"))


def load_spec_file(path) -> Architecture:
    """The architecture a ``.py`` file defines: its ``ARCHITECTURE`` or, failing that, its ``SPEC``.

    The file is the user's own code and is run as such (like ``--module FILE.py:NAME``). A
    ``SPEC``-only file has no reference networks: its checks need a module (``--module``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"spec file {str(path)!r} does not exist", "give the path of a Python file that defines SPEC or ARCHITECTURE")
    if path.suffix != ".py":
        raise InputError(f"spec file {str(path)!r} is not a .py file", "give the path of a Python file that defines SPEC or ARCHITECTURE")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    key = (str(path.resolve()), digest)
    if key not in _SPEC_FILES:
        _SPEC_FILES[key] = _exec_spec_file(path, digest)
    return _SPEC_FILES[key]


_SPEC_FILES: dict = {}  # (resolved path, content hash) -> Architecture: a file is run once per process and content


def _exec_spec_file(path: Path, digest: str) -> Architecture:
    mod_name = f"hjsym_spec_{digest}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    mod = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = mod  # dataclasses and pickling look the module up by name
    try:
        module_spec.loader.exec_module(mod)  # the user's own file, run as they asked
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise InputError(f"importing the spec file {str(path)!r} failed: {type(exc).__name__}: {exc}",
                         "fix the file so that it imports") from exc
    has = {k for k in ("ARCHITECTURE", "SPEC") if k in vars(mod)}
    if not has:
        specs = sorted(k for k, v in vars(mod).items() if isinstance(v, (Spec, Architecture)) and not k.startswith("_"))
        hint = f" (it defines {', '.join(specs)})" if specs else ""
        raise SpecError(f"spec file {str(path)!r} defines neither SPEC nor ARCHITECTURE{hint}",
                        "define SPEC = hjsym.Spec(...) or ARCHITECTURE = hjsym.Architecture(SPEC, networks=...)")
    key = "ARCHITECTURE" if "ARCHITECTURE" in has else "SPEC"
    arch = _architecture_of(vars(mod)[key], str(path), source=str(path), source_key=digest)
    if arch is None or (key == "ARCHITECTURE" and not isinstance(vars(mod)[key], Architecture)) or (
            key == "SPEC" and not isinstance(vars(mod)[key], Spec)):
        wanted = "an hjsym.Architecture" if key == "ARCHITECTURE" else "an hjsym.Spec"
        raise SpecError(f"{key} in {str(path)!r} is a {type(vars(mod)[key]).__name__}, not {wanted}",
                        f"set {key} to {wanted}")
    if key == "ARCHITECTURE" and "SPEC" in has and isinstance(vars(mod)["SPEC"], Spec) and vars(mod)["SPEC"] != arch.spec:
        raise SpecError(f"{str(path)!r} defines SPEC and an ARCHITECTURE with another spec", "use ARCHITECTURE = hjsym.Architecture(SPEC, ...)")
    return arch


def names() -> list[str]:
    return list(_discover())


def all_architectures() -> list[Architecture]:
    return list(_discover().values())


def get(name) -> Architecture:
    """The architecture ``name`` refers to: a registered name, an ``Architecture``, a ``Spec`` or a spec file's path."""
    if isinstance(name, Architecture):
        return name
    if isinstance(name, Spec):
        return Architecture(name)
    if is_spec_path(name):
        return load_spec_file(name)
    arch = _discover().get(name)
    if arch is None:
        close = difflib.get_close_matches(str(name), names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}",
            f"{hint}run 'hjsym list' to see the {len(names())} available, or give the path of a spec file (e.g. ./my_cell.py)"
        )
    return arch
