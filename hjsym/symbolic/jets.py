"""Jet symbols: ``u_t``, ``u_{x_i}``, ``u_{x_i x_l}`` of an unknown function as SymPy objects.

The Hamilton-Jacobi equation is stated, and the Hopf-Cole substitution is searched for, in
terms of these opaque derivatives: ``solve`` treats them as unknowns, and the LaTeX printer
shows them as partial derivatives.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["Dt", "Dx", "Dxx", "jets_of", "jets_in"]


def _power(tex: str, exp) -> str:
    return rf"\left({tex}\right)^{{{exp}}}" if exp else tex


class Dt(sp.Function):
    """``partial_t f``."""

    nargs = 1

    def _latex(self, printer, exp=None):
        return _power(rf"\partial_{{t}} {printer._print(self.args[0])}", exp)


class Dx(sp.Function):
    """``partial_{x_i} f``."""

    nargs = 2

    def _latex(self, printer, exp=None):
        f, i = self.args
        return _power(rf"\partial_{{x_{{{printer._print(i)}}}}} {printer._print(f)}", exp)


class Dxx(sp.Function):
    """``partial_{x_i} partial_{x_l} f``."""

    nargs = 3

    def _latex(self, printer, exp=None):
        f, i, l = self.args
        if i == l:
            return _power(rf"\partial_{{x_{{{printer._print(i)}}}}}^{{2}} {printer._print(f)}", exp)
        return _power(rf"\partial_{{x_{{{printer._print(i)}}}}} \partial_{{x_{{{printer._print(l)}}}}} {printer._print(f)}", exp)


def jets_of(f: sp.Symbol):
    """The three jet constructors bound to ``f``: ``(f_t, i -> f_{x_i}, (i, l) -> f_{x_i x_l})``."""
    return Dt(f), (lambda i: Dx(f, i)), (lambda i, l: Dxx(f, i, l))


def jets_in(e) -> bool:
    """True when ``e`` contains an unknown derivative (``Dt``, ``Dx`` or ``Dxx``)."""
    return bool(e.atoms(Dx) or e.atoms(Dxx) or e.atoms(Dt))
