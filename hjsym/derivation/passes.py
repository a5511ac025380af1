"""The derivation's passes: one interface and one registry.

A :class:`Pass` reads what earlier passes derived (the engine's ``results`` and ``steps``) and
adds numbered steps, named results and function specs. The engine runs every registered pass in
``order`` whose ``applies`` says so; a ``requested`` pass runs only when the spec names it in
``Spec.passes``. A pass that cannot complete records a step with status ``failed`` and says why.

Adding a pass is writing a function and registering it::

    @register("my-pass", order=175, when=lambda d: "u" in d.results)
    def my_pass(d):
        d.add("my-step", "Title", eq(...), "reason", uses=("atomic-solution",))
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import SpecError

__all__ = ["Pass", "FunctionPass", "register", "PASSES", "pipeline", "requested_names", "check_requested"]


class Pass(abc.ABC):
    """One pass of the derivation engine (see the module docstring)."""

    name: str
    order: int
    requested: bool = False

    def applies(self, d) -> bool:
        """Whether the pass has what it needs in the engine ``d`` (results of earlier passes, spec fields)."""
        return True

    @abc.abstractmethod
    def run(self, d) -> None:
        """Add steps, results and function specs to ``d``."""


@dataclass(frozen=True)
class FunctionPass(Pass):
    """A pass given by a function of the engine, with a predicate for when it applies."""

    name: str
    order: int
    body: Callable
    when: Callable | None = None
    requested: bool = False

    def applies(self, d) -> bool:
        return self.when is None or bool(self.when(d))

    def run(self, d) -> None:
        self.body(d)

    @property
    def doc(self) -> str:
        return (self.body.__doc__ or "").strip().splitlines()[0] if self.body.__doc__ else ""


#: Every pass by name (filled by the pass modules when they are imported; see :func:`pipeline`).
PASSES: dict[str, Pass] = {}


def register(name: str, *, order: int, when: Callable | None = None, requested: bool = False):
    """Register the decorated function ``f(d)`` as the pass ``name`` (run in increasing ``order``)."""

    def deco(fn):
        if name in PASSES:
            raise RuntimeError(f"derivation pass {name!r} is registered twice")
        PASSES[name] = FunctionPass(name, order, fn, when, requested)
        return fn

    return deco


def pipeline() -> list[Pass]:
    """The registered passes in the order the engine runs them."""
    return sorted(PASSES.values(), key=lambda p: (p.order, p.name))


def requested_names() -> tuple[str, ...]:
    """Names a spec may list in ``passes`` (the optional passes)."""
    return tuple(p.name for p in pipeline() if p.requested)


def check_requested(spec) -> None:
    """Raise :class:`~hjsym.SpecError` when ``spec.passes`` names a pass that is not an optional pass."""
    known = requested_names()
    bad = [p for p in spec.passes if p not in known]
    if bad:
        raise SpecError(f"spec {spec.name!r}: unknown derivation pass(es) {', '.join(map(repr, bad))}",
                        f"use some of {', '.join(known)}")
