"""The registry of architectures: a spec, the real networks its checks run on by default, and an order.

The architectures hjsym ships are plugins: each module of :mod:`hjsym.architectures` defines
``ARCHITECTURE = Architecture(spec=..., networks=...)``, and the registry finds them by name
(dropping such a module into ``hjsym/architectures/`` registers it; there is no list to edit).
This is the one place where hjsym imports a module by name, because the architectures sit at the
top of the pipeline (they name reference networks) while everything below looks them up here.
Which checks run is decided by the spec (:mod:`hjsym.checks.suites`), which figures a report
draws by the report (:mod:`hjsym.reports.figures`).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .._errors import UnknownArchitectureError
from .spec import Spec

__all__ = ["Architecture", "KeyResult", "get", "names", "all_architectures", "PLUGINS"]

#: The package whose modules define the shipped architectures.
PLUGINS = "hjsym.architectures"


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
    costate recursion).
    """

    spec: Spec
    networks: Callable | None = None
    position: int = 100
    checks: tuple = ()
    key_result: KeyResult | None = None

    @property
    def name(self) -> str:
        return self.spec.name


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
    return dict(sorted(found.items(), key=lambda kv: (kv[1].position, kv[0])))


def names() -> list[str]:
    return list(_discover())


def all_architectures() -> list[Architecture]:
    return list(_discover().values())


def get(name) -> Architecture:
    if isinstance(name, Architecture):
        return name
    arch = _discover().get(name)
    if arch is None:
        close = difflib.get_close_matches(str(name), names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}", f"{hint}run 'hjsym list' to see the {len(names())} available"
        )
    return arch
