"""Gate nonlinearities as SymPy functions whose derivatives stay one node.

The spec parser writes ``sigmoid(z)`` as ``1/(1 + exp(-z))`` and ``softplus(z)`` as
``log(1 + exp(z))`` (plain mathematics). For the control family's chain rule those forms are
costly: the derivative of ``1/(1 + exp(-z))`` is ``exp(-z)/(1 + exp(-z))^2`` and SymPy's
``tanh' = 1 - tanh^2`` is a sum that the canonical form would split into two contractions.
:func:`to_gates` rewrites them into :class:`Sigmoid`, :class:`Softplus` and :class:`Tanh`,
whose derivatives are the single nodes :class:`DSigmoid` (``y (1 - y)`` of ``y = sigma(z)``) and
:class:`DTanh` (``1 - y^2`` of ``y = tanh(z)``): the chain rule reuses the gate value, as
backprop does. :func:`from_gates` turns them back into elementary functions (for SymPy's own
simplification). Each class prints itself for torch (``torch.sigmoid``, ``torch.tanh``, a
stable softplus) and for LaTeX.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["Tanh", "Sigmoid", "Softplus", "DTanh", "DSigmoid", "GATES", "to_gates", "from_gates"]


class _Gate(sp.Function):
    nargs = 1
    _tex = ""
    _torch = ""

    def _eval_is_extended_real(self):
        return self.args[0].is_extended_real

    def _latex(self, printer, exp=None):
        out = rf"{self._tex}\left({printer._print(self.args[0])}\right)"
        return rf"{out}^{{{exp}}}" if exp else out

    def _hjsym_torchcode(self, printer):
        return f"{self._torch}({printer._print(self.args[0])})"

    def _sympystr(self, printer):
        return f"{type(self).__name__.lower()}({printer._print(self.args[0])})"


class Tanh(_Gate):
    """``tanh(z)``; ``d/dz = DTanh(tanh(z))``."""

    _tex = r"\tanh"
    _torch = "torch.tanh"

    def fdiff(self, argindex=1):
        return DTanh(self)

    def _eval_rewrite_as_elementary(self, z, **kwargs):
        return sp.tanh(z)


class Sigmoid(_Gate):
    """``sigma(z) = 1/(1 + exp(-z))``; ``d/dz = DSigmoid(sigma(z))``."""

    _tex = r"\sigma"
    _torch = "torch.sigmoid"

    def fdiff(self, argindex=1):
        return DSigmoid(self)

    def _eval_rewrite_as_elementary(self, z, **kwargs):
        return 1 / (1 + sp.exp(-z))


class Softplus(_Gate):
    """``log(1 + exp(z))``; ``d/dz = sigma(z)``. Printed as ``torch.logaddexp(z, 0)`` (no cut-off)."""

    _tex = r"\operatorname{softplus}"

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def _hjsym_torchcode(self, printer):
        return f"torch.logaddexp({printer._print(self.args[0])}, torch.zeros((), dtype=dtype, device=device))"

    def _eval_rewrite_as_elementary(self, z, **kwargs):
        return sp.log(1 + sp.exp(z))


class DTanh(_Gate):
    """``1 - y^2`` of a gate value ``y = tanh(z)``: the derivative of tanh, one node."""

    def fdiff(self, argindex=1):
        return -2 * self.args[0]

    def _latex(self, printer, exp=None):
        out = rf"\left(1 - {printer.parenthesize(self.args[0], 100)}^{{2}}\right)"
        return rf"{out}^{{{exp}}}" if exp else out

    def _hjsym_torchcode(self, printer):
        return f"(1 - torch.square({printer._print(self.args[0])}))"

    def _eval_rewrite_as_elementary(self, y, **kwargs):
        return 1 - y**2


class DSigmoid(_Gate):
    """``y (1 - y)`` of a gate value ``y = sigma(z)``: the derivative of the sigmoid, one node."""

    def fdiff(self, argindex=1):
        return 1 - 2 * self.args[0]

    def _latex(self, printer, exp=None):
        y = printer.parenthesize(self.args[0], 100)
        out = rf"{y}\left(1 - {y}\right)"
        return rf"\left({out}\right)^{{{exp}}}" if exp else out

    def _hjsym_torchcode(self, printer):
        y = printer._print(self.args[0])
        return f"({y} * (1 - {y}))"

    def _eval_rewrite_as_elementary(self, y, **kwargs):
        return y * (1 - y)


GATES = (Tanh, Sigmoid, Softplus, DTanh, DSigmoid)


def to_gates(expr):
    """Rewrite ``tanh``, ``1/(1 + exp(-z))`` and ``log(1 + exp(z))`` into gate nodes (bottom-up)."""
    expr = sp.sympify(expr)
    if expr.is_Atom or isinstance(expr, (sp.Indexed, sp.Idx, sp.IndexedBase)):
        return expr
    args = tuple(to_gates(a) for a in expr.args)
    if args != expr.args:
        expr = expr.func(*args)
    if isinstance(expr, sp.tanh):
        return Tanh(expr.args[0])
    if expr.is_Pow and expr.exp == -1:
        z = _one_plus_exp(expr.base)
        if z is not None:
            return Sigmoid(-z)
    if isinstance(expr, sp.log):
        z = _one_plus_exp(expr.args[0])
        if z is not None:
            return Softplus(z)
    return expr


def _one_plus_exp(e):
    """``z`` when ``e`` is ``1 + exp(z)``, else None."""
    if not e.is_Add or len(e.args) != 2 or sp.S.One not in e.args:
        return None
    other = e.args[0] if e.args[1] == 1 else e.args[1]
    return other.args[0] if isinstance(other, sp.exp) else None


def from_gates(expr):
    """The same expression with every gate node written with elementary functions."""
    return sp.sympify(expr).rewrite("elementary") if any(expr.atoms(g) for g in GATES) else expr
