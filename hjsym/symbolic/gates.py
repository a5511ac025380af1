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

Piecewise-linear functions become one gate too: ``max(a, b) = b + relu(a - b)`` and
``min(a, b) = a - relu(a - b)`` (:class:`Relu`), whose derivative is the step :class:`Step`
``H(z)`` with the subgradient convention ``H(0) = 0`` (torch's ``relu``); ``abs`` stays ``Abs``
with derivative ``sign(z)``, ``sign(0) = 0`` (torch's ``abs``). These derivatives hold almost
everywhere: off the kink set ``{z = 0}``, which the checks measure.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["Tanh", "Sigmoid", "Softplus", "DTanh", "DSigmoid", "Relu", "Step", "AbsGate", "GATES", "PIECEWISE", "to_gates", "from_gates"]


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


class Relu(_Gate):
    """``max(z, 0)``; ``d/dz = Step(z)`` (the subgradient ``0`` at the kink ``z = 0``, as ``torch.relu``)."""

    _tex = r"\operatorname{relu}"
    _torch = "torch.relu"

    def fdiff(self, argindex=1):
        return Step(self.args[0])

    def _eval_rewrite_as_elementary(self, z, **kwargs):
        return sp.Max(z, 0)


class Step(_Gate):
    """``H(z)``: 1 for ``z > 0``, 0 for ``z <= 0`` (the derivative of relu almost everywhere; its own derivative is 0 a.e.).

    Printed as the indicator ``1[z > 0]``: ``H`` is the Hamiltonian on every page.
    """

    _tex = r"\mathbf{1}"

    def _latex(self, printer, exp=None):
        out = rf"\mathbf{{1}}\left[{printer._print(self.args[0])} > 0\right]"
        return rf"{out}^{{{exp}}}" if exp else out

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _hjsym_torchcode(self, printer):
        return f"torch.heaviside({printer._print(self.args[0])}, torch.zeros((), dtype=dtype, device=device))"

    def _eval_rewrite_as_elementary(self, z, **kwargs):
        return sp.Heaviside(z)


class AbsGate(_Gate):
    """``|z|`` of a real ``z``; ``d/dz = sign(z)`` (``sign(0) = 0``, as ``torch.abs``): SymPy's ``Abs`` does not know its
    argument (a saved intermediate) is real and would differentiate through ``re`` and ``im``."""

    _torch = "torch.abs"

    def fdiff(self, argindex=1):
        return sp.sign(self.args[0])

    def _latex(self, printer, exp=None):
        out = rf"\left|{printer._print(self.args[0])}\right|"
        return rf"{out}^{{{exp}}}" if exp else out

    def _sympystr(self, printer):
        return f"abs({printer._print(self.args[0])})"

    def _eval_rewrite_as_elementary(self, z, **kwargs):
        return sp.Abs(z)


GATES = (Tanh, Sigmoid, Softplus, DTanh, DSigmoid, Relu, Step, AbsGate)
#: Nodes with a kink (where the derivative jumps): their argument is the distance to it.
PIECEWISE = (Relu, AbsGate)


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
    if isinstance(expr, (sp.Max, sp.Min)):
        return _relu_form(expr)
    if isinstance(expr, sp.Abs):
        return AbsGate(expr.args[0])
    if expr.is_Pow and expr.exp == -1:
        z = _one_plus_exp(expr.base)
        if z is not None:
            return Sigmoid(-z)
    if isinstance(expr, sp.log):
        z = _one_plus_exp(expr.args[0])
        if z is not None:
            return Softplus(z)
    return expr


def _relu_form(expr):
    """``max``/``min`` of two or more arguments as relu gates: ``max(a, b) = b + relu(a - b)``, ``min(a, b) = a - relu(a - b)``.

    A numeric argument is taken as ``b`` so that ``max(z, 0)`` is ``relu(z)``.
    """
    args = sorted(expr.args, key=lambda a: (not a.is_number, sp.default_sort_key(a)))
    out = args[0]
    for a in args[1:]:
        b, c = out, a  # fold: out = max(c, b) or min(c, b) with b the running (numeric first) value
        out = b + Relu(c - b) if isinstance(expr, sp.Max) else c - Relu(c - b)
    return out


def _one_plus_exp(e):
    """``z`` when ``e`` is ``1 + exp(z)``, else None."""
    if not e.is_Add or len(e.args) != 2 or sp.S.One not in e.args:
        return None
    other = e.args[0] if e.args[1] == 1 else e.args[1]
    return other.args[0] if isinstance(other, sp.exp) else None


def from_gates(expr):
    """The same expression with every gate node written with elementary functions."""
    return sp.sympify(expr).rewrite("elementary") if any(expr.atoms(g) for g in GATES) else expr
