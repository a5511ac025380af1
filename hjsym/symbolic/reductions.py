"""Reductions over one index as SymPy nodes, with their derivative rules.

``LogSumExp(z, (j, 1, N))`` is ``log sum_j exp(z_j)``. Differentiating it gives a Gibbs
average, ``GibbsMean((a, z), (j, 1, N)) = sum_j softmax_j(z) a_j = E_pi[a]``, whose own
derivative is a covariance. With these two rules SymPy differentiates a log-sum-exp layer any
number of times while the atom index stays a single bound symbol. ``GibbsWeight`` is one
weight ``pi_m`` (the attribution of atom ``m``); ``ReduceMax``/``ReduceMin`` are the tropical
(max-plus / min-plus) reductions, and ``TopGap`` is the gap between the two largest terms.
"""

from __future__ import annotations

import sympy as sp
from sympy.concrete.expr_with_intlimits import ExprWithIntLimits

__all__ = [
    "Reduction",
    "LogSumExp",
    "GibbsMean",
    "GibbsWeight",
    "ReduceMax",
    "ReduceMin",
    "TopGap",
    "lse",
    "gibbs_mean",
    "gibbs_weight",
]


class Reduction(ExprWithIntLimits):
    """A reduction over exactly one ranged index (base class)."""

    __slots__ = ()

    def __new__(cls, function, *limits, **kwargs):
        obj = ExprWithIntLimits.__new__(cls, function, *limits, **kwargs)
        if len(obj.limits) != 1:
            raise ValueError(f"{cls.__name__} reduces over exactly one index, got {obj.limits}")
        # Tuple-valued functions (GibbsMean, GibbsWeight) have no commutativity of their own.
        obj.is_commutative = True
        return obj

    @property
    def index(self) -> sp.Idx:
        return self.limits[0][0]

    def _eval_is_extended_real(self):
        return True

    def _sympystr(self, printer):
        return f"{type(self).__name__}[{self.index}]({', '.join(printer._print(a) for a in self._shown())})"

    def _shown(self):
        f = self.function
        return tuple(f) if isinstance(f, sp.Tuple) else (f,)


class LogSumExp(Reduction):
    """``log sum_j exp(z_j)``; ``d/ds LSE(z) = E_pi[dz/ds]`` with ``pi = softmax(z)``."""

    __slots__ = ()

    @property
    def logits(self):
        return self.function

    def _eval_derivative(self, s):
        dz = self.logits.diff(s)
        if dz == 0:
            return sp.S.Zero
        return GibbsMean(sp.Tuple(dz, self.logits), *self.limits)


class GibbsMean(Reduction):
    """``E_pi[a] = sum_j softmax_j(z) a_j``; the function is the pair ``(a, z)``.

    ``d/ds E_pi[a] = E_pi[da/ds] + E_pi[a dz/ds] - E_pi[a] E_pi[dz/ds]``.
    """

    __slots__ = ()

    @property
    def value(self):
        return self.function[0]

    @property
    def logits(self):
        return self.function[1]

    def _eval_derivative(self, s):
        a, z = self.value, self.logits
        da, dz = a.diff(s), z.diff(s)
        out = sp.S.Zero
        if da != 0:
            out += gibbs_mean(da, z, self.limits)
        if dz != 0:
            out += gibbs_mean(a * dz, z, self.limits) - gibbs_mean(a, z, self.limits) * gibbs_mean(dz, z, self.limits)
        return out


class GibbsWeight(Reduction):
    """One Gibbs weight ``pi_m = exp(z_m - LSE_j z_j)``; the function is the pair ``(z, m)``."""

    __slots__ = ()

    @property
    def logits(self):
        return self.function[0]

    @property
    def at(self):
        return self.function[1]

    def as_exp(self):
        """``exp(z_m - LSE_j z_j)``: the same value written with a log-sum-exp."""
        z = self.logits
        return sp.exp(z.xreplace({self.index: self.at}) - LogSumExp(z, *self.limits))

    def _eval_derivative(self, s):
        z = self.logits
        dz = z.diff(s)
        if dz == 0:
            return sp.S.Zero
        return self * (dz.xreplace({self.index: self.at}) - gibbs_mean(dz, z, self.limits))


class ReduceMax(Reduction):
    """``max_j z_j`` (the tropical, max-plus sum)."""

    __slots__ = ()


class ReduceMin(Reduction):
    """``min_j z_j`` (the min-plus sum)."""

    __slots__ = ()


class TopGap(Reduction):
    """``max_j z_j - second-largest z_j`` (zero when N = 1 by convention: no competitor)."""

    __slots__ = ()


def _limits(index_or_limits):
    if isinstance(index_or_limits, sp.Idx):
        return ((index_or_limits, index_or_limits.lower, index_or_limits.upper),)
    return tuple(index_or_limits)


def lse(z, index) -> LogSumExp:
    """``LSE_j z`` over a ranged index ``j`` (or explicit SymPy limits)."""
    return LogSumExp(z, *_limits(index))


def gibbs_mean(a, z, index) -> sp.Expr:
    """``E_pi[a]`` with ``pi = softmax_j(z)``."""
    return GibbsMean(sp.Tuple(a, z), *_limits(index))


def gibbs_weight(z, index, at) -> GibbsWeight:
    """``pi_at = softmax_j(z)`` evaluated at atom ``at``."""
    return GibbsWeight(sp.Tuple(z, at), *_limits(index))
