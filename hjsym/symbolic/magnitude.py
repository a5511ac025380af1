"""The magnitude of an expression's terms: the scale of its rounding error.

``magnitude(e)`` is an expression ``M(e) >= |e|`` such that evaluating ``e`` in floating point
with unit roundoff ``u`` is off by at most about ``u * M(e)`` (a first-order running error
bound, as in Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3). It is built from
the terms as they are computed, before they cancel: ``M(a - b) = M(a) + M(b)`` however small
``a - b`` is. Checks use it as the scale ``S`` of their tolerance ``k u S``, so a tolerance
follows the size and conditioning of the numbers it compares, not a constant.

The rules, with ``pi = softmax(z)``:

* leaves: ``M(c) = |c|``; sums and ``Sum``: ``M(a + b) = M(a) + M(b)``;
* products: ``M(a b) = M(a) |b| + |a| M(b)``; powers ``M(a^n) = |n| |a|^(n-1) M(a) + |a^n|``;
* ``M(exp a) = |exp a| (1 + M(a))``, ``M(log a) = |log a| + M(a) / |a|``; gates and ``erf`` are
  Lipschitz: ``M(tanh a) = |tanh a| + M(a)``;
* ``M(LSE z) = |LSE z| + E_pi[M(z)] + log N`` (the error of the logits is averaged; the sum of
  ``N`` exponentials adds ``log N``);
* ``M(E_pi[a]) = |E_pi[a]| + E_pi[M(a)] + E_pi[|a| M(z)] + E_pi[|a|] E_pi[M(z)]`` (a perturbation
  ``dz`` of the logits moves the average by ``Cov_pi(a, dz)``);
* a step ``Heaviside(a)`` is exact (0, 1/2 or 1);
* ``M(pi_m) = pi_m (1 + M(z_m) + E_pi[M(z)])``; ``M(max z) = |max z| + max M(z)``, the top-two
  gap ``2 max M(z)``.

The expression keeps the reductions of ``e`` (a log-sum-exp's magnitude is a Gibbs average), so
code generation evaluates it at the cost of ``e`` itself.
"""

from __future__ import annotations

import sympy as sp

from .axes import DIM
from .gates import GATES
from .matrices import LogDet
from .reductions import GibbsMean, GibbsWeight, LogSumExp, ReduceMax, ReduceMin, TopGap, gibbs_mean

__all__ = ["magnitude"]

_LIPSCHITZ = (sp.tanh, sp.sin, sp.cos) + tuple(GATES)


def _abs(e):
    return e if (e.is_nonnegative is True) else sp.Abs(e)


def magnitude(expr) -> sp.Expr:
    """``M(expr)``, the magnitude of the terms of ``expr`` (see the module docstring)."""
    return _m(sp.sympify(expr))


def _m(e):
    if e.is_Number or isinstance(e, (sp.NumberSymbol, sp.Symbol, sp.Indexed)):
        return _abs(e)
    if isinstance(e, (sp.KroneckerDelta, sp.Heaviside)):
        return e  # exact: 0, 1 (or 1/2 at a tie)
    if e.is_Add:
        return sp.Add(*[_m(t) for t in e.args])
    if e.is_Mul:
        factors = list(e.args)
        terms = []
        for n, f in enumerate(factors):
            others = sp.Mul(*[_abs(g) for g in factors[:n] + factors[n + 1:]])
            if f.is_Number:
                continue  # an exact coefficient: scales the others, adds no error of its own beyond theirs
            terms.append(_m(f) * others)
        return sp.Add(*terms) if terms else _abs(e)
    if e.is_Pow:
        base, ex = e.args
        if ex.is_Number:
            if ex == 1:
                return _m(base)
            return _abs(ex) * _abs(base) ** (ex - 1) * _m(base) + _abs(e)
        return _abs(e) * (1 + _abs(ex) * _m(base) / _abs(base) + _m(ex) * _abs(sp.log(_abs(base))))
    if isinstance(e, sp.exp):
        return _abs(e) * (1 + _m(e.args[0]))
    if isinstance(e, sp.log):
        a = e.args[0]
        return _abs(e) + _m(a) / _abs(a)
    if isinstance(e, sp.Abs):
        return _m(e.args[0])
    if isinstance(e, _LIPSCHITZ) or isinstance(e, sp.erf):
        return _abs(e) + (2 / sp.sqrt(sp.pi) if isinstance(e, sp.erf) else 1) * _m(e.args[0])
    if isinstance(e, (sp.Max, sp.Min)):
        return _abs(e) + sp.Max(*[_m(a) for a in e.args])
    if isinstance(e, sp.Sum):
        return sp.Sum(_m(e.function), *e.limits)
    if isinstance(e, LogSumExp):
        z = e.logits
        return _abs(e) + gibbs_mean(_m(z), z, e.limits) + sp.log(e.limits[0][2] - e.limits[0][1] + 1)
    if isinstance(e, GibbsMean):
        a, z = e.value, e.logits
        mz = _m(z)
        return (_abs(e) + gibbs_mean(_m(a), z, e.limits) + gibbs_mean(_abs(a) * mz, z, e.limits)
                + gibbs_mean(_abs(a), z, e.limits) * gibbs_mean(mz, z, e.limits))
    if isinstance(e, GibbsWeight):
        z, m = e.logits, e.at
        mz = _m(z)
        return e * (1 + mz.xreplace({e.index: m}) + gibbs_mean(mz, z, e.limits))
    if isinstance(e, (ReduceMax, ReduceMin)):
        return _abs(e) + ReduceMax(_m(e.function), *e.limits)
    if isinstance(e, TopGap):
        return 2 * ReduceMax(_m(e.function), *e.limits)
    if isinstance(e, LogDet):
        return _abs(e) + DIM.extent  # d Cholesky pivots, each with a relative error of order u
    if isinstance(e, sp.Piecewise):
        return sp.Piecewise(*[(_m(v), c) for v, c in e.args])
    raise NotImplementedError(f"no magnitude rule for {type(e).__name__} in {e}")
