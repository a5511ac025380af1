"""Axes and index symbols.

Every vector quantity is written with explicit indices (``x[i]``, ``W[j, i]``) whose range
carries the axis they run over: ``i`` ranges over the state dimension ``1..d``, ``j`` over the
atoms ``1..N``. Reductions are SymPy nodes over one index, so an expression stays at the level
of "sum over i" or "log-sum-exp over j" and is never expanded per neuron. Code generation reads
the axis of every index from its range (see :mod:`hjsym.codegen.printer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

__all__ = ["Axis", "AXES", "DIM", "ATOM", "VALUE", "INPUT", "HIDDEN", "axis_of", "bound_index", "free_index", "register_axis"]


@dataclass(frozen=True)
class Axis:
    """A named axis: the symbol of its extent and the letters used for its indices.

    ``bound`` names are reserved for summation (bound) indices and are chosen canonically by
    :func:`hjsym.symbolic.calculus.canonical`; ``free`` names are for indices left free in a result
    (for example the ``k, l`` of a Hessian entry).
    """

    name: str
    extent: sp.Symbol
    bound: str
    free: tuple[str, ...]
    description: str
    order: int = 0  # position in the canonical axis order of generated tensors (after the batch)


AXES: dict[str, Axis] = {}


def register_axis(axis: Axis) -> Axis:
    """Register an axis kind; its extent symbol must be unique among registered axes."""
    for other in AXES.values():
        if other.name != axis.name and other.extent == axis.extent:
            raise ValueError(f"axis {axis.name!r} reuses the extent symbol {axis.extent} of {other.name!r}")
    AXES[axis.name] = axis
    return axis


DIM = register_axis(
    Axis("dim", sp.Symbol("d", integer=True, positive=True), "i", ("k", "l", "n"), "state dimension", order=20)
)
ATOM = register_axis(
    Axis("atom", sp.Symbol("N", integer=True, positive=True), "j", ("m", "q"), "atoms / neurons", order=10)
)

VALUE = register_axis(
    Axis("value", sp.Symbol("d_v", integer=True, positive=True), "a", ("c", "e"), "value dimension (attention's V)", order=30)
)


# Control family: the per-step input x_k of a recurrent network, and the inner width of a
# residual block (ResNet F = W2 sigma(W1 s + b1) + b2); the state lives on "dim".
INPUT = register_axis(
    Axis("input", sp.Symbol("n_x", integer=True, positive=True), "alpha", ("beta", "gamma"), "input features", order=40)
)
HIDDEN = register_axis(
    Axis("hidden", sp.Symbol("n_h", integer=True, positive=True), "mu", ("rho", "kappa"), "inner width of a block", order=15)
)


def _make(name: str, axis: Axis) -> sp.Idx:
    return sp.Idx(sp.Symbol(name, integer=True), (1, axis.extent))


def bound_index(axis: Axis, n: int = 0) -> sp.Idx:
    """The n-th canonical bound index of ``axis``: ``i, i_1, i_2, ...``."""
    return _make(axis.bound if n == 0 else f"{axis.bound}_{n}", axis)


def free_index(axis: Axis, n: int = 0) -> sp.Idx:
    """The n-th free index of ``axis`` (``k, l, n`` for dim; ``m, q`` for atom)."""
    if n < len(axis.free):
        return _make(axis.free[n], axis)
    return _make(f"{axis.free[-1]}_{n}", axis)


def axis_of(index: sp.Idx) -> Axis:
    """The registered axis an index runs over, read from its upper bound."""
    if not isinstance(index, sp.Idx) or index.upper is None:
        raise TypeError(f"{index!r} is not a ranged index (sympy.Idx with bounds)")
    for axis in AXES.values():
        if index.upper == axis.extent and index.lower == 1:
            return axis
    raise ValueError(f"index {index} runs over {index.lower}..{index.upper}, which is no registered axis")
