"""Matrices in index notation: symmetric matrices, inverses and log-determinants.

A ``(d, d)`` tensor declared ``symmetric`` is a :class:`SymmetricBase` (``positive_definite``:
an :class:`SPDBase`); ``InverseBase(A)`` stands for ``A^{-1}`` with entries ``(A^{-1})_{kl}``.
:func:`hjsym.symbolic.calculus.canonical` uses two facts about them:

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
    "is_symmetric",
    "inverse_of",
    "sort_symmetric",
    "contract_inverse_pair",
    "derived_arg",
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


def _is_matrix_entry(e) -> bool:
    return isinstance(e, sp.Indexed) and len(e.indices) == 2


def sort_symmetric(expr):
    """Put the two indices of every symmetric matrix entry in canonical (name) order."""

    def fix(e):
        a, b = e.indices
        return e.base[b, a] if sp.default_sort_key(b) < sp.default_sort_key(a) else e

    return expr.replace(lambda e: isinstance(e, sp.Indexed) and len(e.indices) == 2 and is_symmetric(e.base), fix)


def _free(e):
    from .calculus import free_indices

    return free_indices(e)


def _pair_delta(f, g, var):
    """``delta`` if ``sum_var f g`` is an inverse-pair contraction, else None."""
    if not (_is_matrix_entry(f) and _is_matrix_entry(g)) or inverse_of(f.base) != g.base:
        return None
    if list(f.indices).count(var) != 1 or list(g.indices).count(var) != 1:
        return None
    if isinstance(f.base, InverseBase):
        f, g = g, f  # f = M, g = M^-1
    (a1, a2), (b1, b2) = f.indices, g.indices
    if is_symmetric(f.base):
        other_f = a2 if a1 == var else a1
        other_g = b2 if b1 == var else b1
        return sp.KroneckerDelta(other_f, other_g)
    if a2 == var and b1 == var:  # M_{a l} (M^-1)_{l b}
        return sp.KroneckerDelta(a1, b2)
    if b2 == var and a1 == var:  # (M^-1)_{a l} M_{l b}
        return sp.KroneckerDelta(b1, a2)
    return None


def contract_inverse_pair(summand, limits):
    """Rewrite ``Sum(summand, *limits)`` when it contains an inverse pair over one of its indices.

    The pair may sit in the summand or one level down, inside sums that are factors of it
    (``sum_l A_{kl} sum_b (A^{-1})_{lb} x_b``); those sums are then merged into one (with fresh
    bound indices, so nothing is captured). Returns the rewritten expression or None.
    """
    from .calculus import fresh_binders

    factors = list(sp.Mul.make_args(summand))
    for var in [lim[0] for lim in limits]:
        holders = [f for f in factors if var in _free(f)]
        if not 1 <= len(holders) <= 2:
            continue
        flat, pulled = [], []
        for h in holders:
            if isinstance(h, sp.Sum):
                h = fresh_binders(h)
                pulled += list(h.limits)
                flat += list(sp.Mul.make_args(h.function))
            else:
                flat.append(h)
        partners = [f for f in flat if var in _free(f)]
        if len(partners) != 2:
            continue
        delta = _pair_delta(partners[0], partners[1], var)
        if delta is None:
            continue
        others = [f for f in factors if not any(f is h for h in holders)]
        inner = [f for f in flat if f is not partners[0] and f is not partners[1]]
        remaining = [lim for lim in limits if lim[0] != var] + pulled
        body = sp.Mul(*others) * sp.Mul(*inner) * delta
        return sp.Sum(body, *remaining) if remaining else body
    return None


# ----------------------------------------------------------------------------- code generation
def derived_arg(base, args: dict):
    """For ``InverseBase(A)`` with ``A`` an argument: ``(name, code)`` of the tensor computed from it."""
    if not isinstance(base, InverseBase) or base.of not in args:
        return None
    src = args[base.of].name
    fn = "spd_inverse" if isinstance(base.of, SPDBase) else "matrix_inverse"
    return f"{src}_inv", f"_rt.{fn}({src!r}, {src})"
