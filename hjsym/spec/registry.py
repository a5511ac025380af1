"""The registry of architectures, discovered from the modules of :mod:`hjsym.architectures`.

An architecture module defines ``ARCHITECTURE = Architecture(spec=..., suite=...)``; dropping
such a module into ``hjsym/architectures/`` registers it (no list to edit).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache

from .._errors import UnknownArchitectureError
from .spec import Spec

__all__ = ["Architecture", "get", "names", "all_architectures"]


@dataclass(frozen=True)
class Architecture:
    """A spec plus where its check suite lives (``"package.module:function"``, imported lazily).

    ``position`` orders listings and reports; ``figures`` names the report-figure function;
    ``modules`` names a function ``(seed, dtype) -> [(label, nn.Module), ...]`` giving the real
    reference networks a suite checks by default (control family).
    """

    spec: Spec
    suite: str | None = None
    figures: str | None = None
    position: int = 100
    modules: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def _load(self, target: str):
        mod, _, fn = target.partition(":")
        return getattr(importlib.import_module(mod), fn)

    def suite_function(self):
        return None if self.suite is None else self._load(self.suite)

    def figures_function(self):
        return None if self.figures is None else self._load(self.figures)

    def modules_function(self):
        return None if self.modules is None else self._load(self.modules)


@lru_cache(maxsize=1)
def _discover() -> dict[str, Architecture]:
    from .. import architectures

    found: dict[str, Architecture] = {}
    for info in pkgutil.iter_modules(architectures.__path__):
        mod = importlib.import_module(f"{architectures.__name__}.{info.name}")
        arch = getattr(mod, "ARCHITECTURE", None)
        if isinstance(arch, Architecture):
            if arch.name in found:
                raise RuntimeError(f"architecture {arch.name!r} is defined twice")
            found[arch.name] = arch
    return dict(sorted(found.items(), key=lambda kv: (kv[1].position, kv[0])))


def names() -> list[str]:
    return list(_discover())


def all_architectures() -> list[Architecture]:
    return list(_discover().values())


def get(name: str) -> Architecture:
    arch = _discover().get(name)
    if arch is None:
        close = difflib.get_close_matches(str(name), names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}", f"{hint}run 'hjsym list' to see the {len(names())} available"
        )
    return arch
