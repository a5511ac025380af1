"""Readouts: what a check reads out of a real module, behind one interface.

A :class:`Readout` holds a copy of the module (in the working dtype, in eval mode) and the
weights read out of it, named as the spec's symbols: ``arguments()`` are the arguments route B
passes to the generated functions (``W``, ``b``, ``eps``, ``A``, ...). Reading never
re-initialises anything; a module that is not of the form a readout understands is refused with
a :class:`~hjsym.ModuleFormError` naming what is missing. Implementations: ``LSEReadout``,
``AnisoLSEReadout`` (:mod:`hjsym.networks.lse`), ``MLPReadout`` (:mod:`hjsym.networks.mlp`),
``MHAReadout`` (:mod:`hjsym.networks.attention`), ``ControlReadout`` (:mod:`hjsym.networks.control`).
"""

from __future__ import annotations

import abc
import copy

__all__ = ["Readout", "ModuleReadout"]


class Readout(abc.ABC):
    """The interface every readout implements (see the module docstring)."""

    module: object

    @abc.abstractmethod
    def describe(self) -> str:
        """One line naming the module and the sizes read (shown in reports and ``hjsym check``)."""

    def arguments(self) -> dict:
        """The weights as generated-function arguments, by the spec's symbol names."""
        return {}


class ModuleReadout(Readout):
    """A module read whole: a copy in the working dtype, for checks whose route B needs no weights of it
    (``F.scaled_dot_product_attention``, L2 attention) or that read its submodules themselves (hooks)."""

    def __init__(self, module, dtype):
        self.module = copy.deepcopy(module).to(dtype).eval()

    def describe(self) -> str:
        return type(self.module).__name__
