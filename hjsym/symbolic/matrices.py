"""Matrices in index notation: symmetric matrices, inverses and log-determinants.

A ``(d, d)`` tensor declared ``symmetric`` is a :class:`SymmetricBase` (``positive_definite``:
an :class:`SPDBase`); ``InverseBase(A)`` stands for ``A^{-1}`` with entries ``(A^{-1})_{kl}``.
:func:`hjsym.symbolic.calculus.canonical` uses two facts about them (the rules live there):

* a symmetric matrix's two indices are put in a canonical order (``A_{lk} -> A_{kl}``), so
  ``sum_l A_{kl} p_l + sum_i A_{ik} p_i`` becomes ``2 sum_i A_{ik} p_i``;
* an inverse pair contracts: ``sum_l A_{il} (A^{-1})_{lk} = delta_{ik}`` (either order; for a
  symmetric matrix in any orientation).

Generated code receives ``A`` and computes ``A^{-1}`` once per call, through a Cholesky
factorisation when ``A`` is declared positive definite (so a matrix that is not fails with an
error that says so) and an LU solve otherwise; ``LogDet(A)`` prints as ``torch.logdet``.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "SymmetricBase",
    "SPDBase",
    "InverseBase",
    "LogDet",
    "is_matrix_entry",
    "is_symmetric",
    "inverse_of",
    "sort_symmetric",
]


class SymmetricBase(sp.IndexedBase):
    """A ``(d, d)`` matrix with ``A_{kl} = A_{lk}``."""


class SPDBase(SymmetricBase):
    """A symmetric positive definite ``(d, d)`` matrix."""


class InverseBase(sp.IndexedBase):
    """``A^{-1}`` for a matrix ``A`` (an ``IndexedBase``); ``InverseBase(A)[k, l] = (A^{-1})_{kl}``."""

    def __new__(cls, of, **kwargs):
        if not isinstance(of, sp.IndexedBase) or isinstance(of, InverseBase):
            raise TypeError(f"InverseBase needs a matrix IndexedBase, got {of!r}")
        return super().__new__(cls, of, **kwargs)

    @property
    def of(self) -> sp.IndexedBase:
        return self.label

    def _sympystr(self, printer):
        return f"{printer._print(self.of)}^-1"

    def _latex(self, printer):
        return rf"\left({printer._print(self.of.label)}^{{-1}}\right)"


class LogDet(sp.Function):
    """``log det A`` of a positive definite matrix (a scalar)."""

    nargs = 1

    def _eval_derivative(self, s):
        return sp.S.Zero  # A never depends on the state or on time

    def _latex(self, printer, exp=None):
        tex = rf"\log\det {printer._print(self.args[0].label)}"
        return rf"\left({tex}\right)^{{{exp}}}" if exp else tex

    def _sympystr(self, printer):
        return f"logdet({printer._print(self.args[0])})"

    def _hjsym_torchcode(self, printer):
        spec = printer.c.arg_for(self.args[0])
        return f"_rt.logdet_spd({spec.name!r}, {spec.name})"


def is_symmetric(base) -> bool:
    if isinstance(base, InverseBase):
        return is_symmetric(base.of)
    return isinstance(base, SymmetricBase)


def inverse_of(base):
    """The inverse partner of a matrix base (``A -> A^{-1}``, ``A^{-1} -> A``)."""
    return base.of if isinstance(base, InverseBase) else InverseBase(base)


def is_matrix_entry(e) -> bool:
    return isinstance(e, sp.Indexed) and len(e.indices) == 2


def sort_symmetric(expr):
    """Put the two indices of every symmetric matrix entry in canonical (name) order."""

    def fix(e):
        a, b = e.indices
        return e.base[b, a] if sp.default_sort_key(b) < sp.default_sort_key(a) else e

    return expr.replace(lambda e: isinstance(e, sp.Indexed) and len(e.indices) == 2 and is_symmetric(e.base), fix)
