"""Index calculus: a canonical form for expressions with sums and reductions, and derivatives.

:func:`canonical` rewrites an expression until nothing changes:

* products are expanded, so that a sum over ``i`` of a product becomes a contraction;
* sums and Gibbs averages are linear: constants come out, sums of terms split, ``E_pi`` moves
  inside a sum over the state dimension; a sum whose summand has a sum as a factor is one sum
  over both sets of indices;
* ``sum_i delta_{ik} a_i = a_k`` and ``E_pi[delta_{jm} a_j] = pi_m a_m``;
* ``sum_m pi_m a_m = E_pi[a]`` (a sum against one Gibbs weight is the Gibbs average);
* symmetric matrices have their indices in canonical order, and ``sum_l A_{il} (A^{-1})_{lk}
  = delta_{ik}`` (see :mod:`hjsym.symbolic.matrices`);
* log-sum-exp, max and min are shift-equivariant (a term free of ``j`` comes out) and softmax
  weights are shift-invariant (such a term is dropped from their logits);
* every bound index gets a canonical name, so that equal terms written with different
  summation letters are equal as SymPy objects and cancel.

Two expressions with the same canonical form are equal; the derivation engine relies on this
to *derive* identities (their difference canonicalises to zero) rather than assert them. A sum
over several indices gets the assignment of names whose printed form is smallest, so it does
not depend on the order of its limits. Canonical forms are not complete in general (a zero
test can answer "not shown"), but never wrong: every rule is an equality.
"""

from __future__ import annotations

import itertools

import sympy as sp

from .axes import AXES, Axis, axis_of, bound_index, free_index
from .matrices import InverseBase, inverse_of, is_matrix_entry, is_symmetric, sort_symmetric
from .reductions import GibbsMean, GibbsWeight, LogSumExp, ReduceMax, ReduceMin, Reduction, TopGap, gibbs_mean, gibbs_weight

__all__ = [
    "canonical",
    "free_indices",
    "pdiff",
    "grad",
    "laplacian",
    "index_sum",
    "is_zero",
    "substitute_indexed",
    "instantiate",
    "fresh_binders",
    "fresh_free_index",
]

_BINDERS = (sp.Sum, Reduction)
_tmp_counter = itertools.count()


# --------------------------------------------------------------------------- free indices
def free_indices(expr) -> frozenset:
    """The ranged indices (``sympy.Idx``) that occur free in ``expr``."""
    if isinstance(expr, sp.Idx):
        return frozenset({expr})
    if isinstance(expr, sp.Indexed):
        out = set()
        for ix in expr.indices:
            out |= free_indices(ix)
        return frozenset(out)
    if isinstance(expr, _BINDERS):
        inner = free_indices(expr.function)
        bound = {lim[0] for lim in expr.limits}
        return frozenset(inner - bound)
    if not expr.args:
        return frozenset()
    out = set()
    for a in expr.args:
        out |= free_indices(a)
    return frozenset(out)


def _all_index_names(expr) -> set[str]:
    return {str(s.label) for s in expr.atoms(sp.Idx)}


def _depends(expr, index) -> bool:
    return index in free_indices(expr)


def _split(expr, index):
    """Split a product into (factor free of ``index``, factor depending on it)."""
    indep, dep = [], []
    for f in sp.Mul.make_args(expr):
        (dep if _depends(f, index) else indep).append(f)
    return sp.Mul(*indep), sp.Mul(*dep)


def _extent(limit) -> sp.Expr:
    _, lo, hi = limit
    return hi - lo + 1


# --------------------------------------------------------------------------- inverse pairs
def _pair_delta(f, g, var):
    """``delta`` if ``sum_var f g`` is an inverse-pair contraction, else None."""
    if not (is_matrix_entry(f) and is_matrix_entry(g)) or inverse_of(f.base) != g.base:
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
    factors = list(sp.Mul.make_args(summand))
    for var in [lim[0] for lim in limits]:
        holders = [f for f in factors if var in free_indices(f)]
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
        partners = [f for f in flat if var in free_indices(f)]
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


# --------------------------------------------------------------------------- rewrite rules
def _rule_sum(e: sp.Sum):
    """Linearity, constants out, delta contraction; several limits are one sum over all of them."""
    f = e.function
    if f == 0:
        return sp.S.Zero
    if f.is_Add:
        return sp.Add(*[sp.Sum(t, *e.limits) for t in f.args])
    limits = list(e.limits)
    # an index the summand does not depend on contributes a factor (its range)
    unused = [lim for lim in limits if not _depends(f, lim[0])]
    if unused:
        rest = [lim for lim in limits if lim not in unused]
        factor = sp.Mul(*[_extent(lim) for lim in unused])
        return factor * (sp.Sum(f, *rest) if rest else f)
    variables = [lim[0] for lim in limits]
    factors = sp.Mul.make_args(f)
    indep = [g for g in factors if not any(_depends(g, v) for v in variables)]
    dep = [g for g in factors if g not in indep]
    contracted = contract_inverse_pair(f, limits)
    if contracted is not None:
        return contracted
    inner = next((g for g in dep if isinstance(g, sp.Sum)), None)
    if inner is not None:
        # a sum of a product with a sum is one sum over both index sets (fresh names: no capture),
        # so that x^T A y and y^T A x written with nested sums meet in one canonical form
        inner = fresh_binders(inner)
        rest = sp.Mul(*[g for g in factors if g is not next(h for h in dep if isinstance(h, sp.Sum))])
        return sp.Sum(rest * inner.function, *limits, *inner.limits)
    for fac in dep:
        if isinstance(fac, GibbsWeight):
            if fac.at in variables and fac.at not in free_indices(fac.logits):
                fresh = fresh_binders(fac)  # its bound index must not capture anything in the rest
                rest = sp.Mul(*[g for g in factors if g is not fac])
                remaining = [lim for lim in limits if lim[0] != fac.at]
                body = gibbs_mean(rest.xreplace({fac.at: fresh.index}), fresh.logits, fresh.limits)
                return sp.Sum(body, *remaining) if remaining else body
    for fac in dep:
        if isinstance(fac, sp.KroneckerDelta):
            a, b = fac.args
            for var, other in ((a, b), (b, a)):
                if var in variables and other != var:
                    rest = sp.Mul(*[g for g in factors if g is not fac])
                    remaining = [lim for lim in limits if lim[0] != var]
                    body = rest.subs(var, other)
                    return sp.Sum(body, *remaining) if remaining else body
    if indep:
        return sp.Mul(*indep) * sp.Sum(sp.Mul(*dep), *limits)
    return e


def _rule_gibbs_mean(e: GibbsMean):
    a, z = e.value, e.logits
    j = e.index
    z2 = _drop_shift(z, j)
    if z2 != z:
        return gibbs_mean(a, z2, e.limits)
    if a == 0:
        return sp.S.Zero
    if a.is_Add:
        return sp.Add(*[gibbs_mean(t, z, e.limits) for t in a.args])
    indep, dep = _split(a, j)
    if dep == 1:
        return indep
    for fac in sp.Mul.make_args(dep):
        if isinstance(fac, sp.KroneckerDelta) and j in fac.args:
            other = fac.args[1] if fac.args[0] == j else fac.args[0]
            if other != j:
                rest = sp.Mul(*[g for g in sp.Mul.make_args(dep) if g is not fac])
                return indep * gibbs_weight(z, e.limits, other) * rest.subs(j, other)
    if indep != 1:
        return indep * gibbs_mean(dep, z, e.limits)
    if isinstance(a, sp.Sum) and not any(lim[0] in free_indices(z) for lim in a.limits):
        return sp.Sum(gibbs_mean(a.function, z, e.limits), *a.limits)
    inner = next((g for g in sp.Mul.make_args(a) if isinstance(g, sp.Sum)), None)
    if inner is not None:
        # E_pi[b sum_i c_i] = sum_i E_pi[b c_i] (fresh names: the bound index captures nothing)
        fresh = fresh_binders(inner)
        rest = sp.Mul(*[g for g in sp.Mul.make_args(a) if g is not inner])
        return sp.Sum(gibbs_mean(rest * fresh.function, z, e.limits), *fresh.limits)
    return e


def _drop_shift(z, j):
    """Remove the terms of ``z`` that do not depend on ``j`` (softmax is shift-invariant)."""
    if not z.is_Add:
        return z
    dep = [t for t in z.args if _depends(t, j)]
    if len(dep) == len(z.args) or not dep:
        return z
    return sp.Add(*dep)


def _rule_lse(e: LogSumExp):
    z, j = e.logits, e.index
    if not _depends(z, j):
        return z + sp.log(_extent(e.limits[0]))
    if z.is_Add:
        dep = [t for t in z.args if _depends(t, j)]
        indep = [t for t in z.args if not _depends(t, j)]
        if indep:
            return LogSumExp(sp.Add(*dep), *e.limits) + sp.Add(*indep)
    return e


def _rule_extremum(e):
    z, j = e.function, e.index
    if not _depends(z, j):
        return z
    if z.is_Add:
        dep = [t for t in z.args if _depends(t, j)]
        indep = [t for t in z.args if not _depends(t, j)]
        if indep:
            return type(e)(sp.Add(*dep), *e.limits) + sp.Add(*indep)
    if z.is_Mul:
        c, rest = _split(z, j)
        if c != 1 and c.is_positive:
            return c * type(e)(rest, *e.limits)
        if c != 1 and c.is_negative:
            flipped = ReduceMin if isinstance(e, ReduceMax) else ReduceMax
            # max_j(c r_j) = c min_j r_j for c < 0
            return c * flipped(rest, *e.limits)
    if z.could_extract_minus_sign():
        # max_j(-r_j) = -min_j r_j: one orientation per expression, so equal forms coincide
        flipped = ReduceMin if isinstance(e, ReduceMax) else ReduceMax
        return -flipped(-z, *e.limits)
    return e


def _rule_topgap(e: TopGap):
    z, j = e.function, e.index
    if not _depends(z, j):
        return sp.S.Zero
    z2 = _drop_shift(z, j)
    if z2 != z:
        return TopGap(z2, *e.limits)
    if z.is_Mul:
        c, rest = _split(z, j)
        if c != 1 and c.is_positive:
            return c * TopGap(rest, *e.limits)
    return e


def _rule_gibbs_weight(e: GibbsWeight):
    z = e.logits
    z2 = _drop_shift(z, e.index)
    if not _depends(z, e.index):
        return 1 / _extent(e.limits[0])
    if z2 != z:
        return gibbs_weight(z2, e.limits, e.at)
    return e


_RULES = (
    (sp.Sum, _rule_sum),
    (GibbsMean, _rule_gibbs_mean),
    (GibbsWeight, _rule_gibbs_weight),
    (LogSumExp, _rule_lse),
    (ReduceMax, _rule_extremum),
    (ReduceMin, _rule_extremum),
    (TopGap, _rule_topgap),
)


def _rewrite(e):
    if isinstance(e, sp.Indexed) and len(e.indices) == 2 and is_symmetric(e.base):
        return sort_symmetric(e)
    if e.is_Atom or isinstance(e, (sp.Indexed, sp.Idx, sp.IndexedBase)):
        return e
    if isinstance(e, sp.Derivative):
        # SymPy differentiates the free index of a surviving KroneckerDelta; indices are not
        # functions of the state, so those terms vanish.
        if isinstance(e.expr, sp.Idx) or any(isinstance(v, sp.Idx) for v, _ in e.variable_count):
            return sp.S.Zero
    if isinstance(e, sp.KroneckerDelta) and e.args[0] == e.args[1]:
        return sp.S.One
    args = tuple(_rewrite(a) for a in e.args)
    if args != e.args:
        e = e.func(*args)
    if e.is_Mul or e.is_Pow or e.is_Add:
        e = sp.expand(e, deep=False, power_base=False, power_exp=False, log=False, multinomial=True, mul=True)
        return e
    for cls, rule in _RULES:
        if isinstance(e, cls):
            return rule(e)
    return e


def _tmp_like(var) -> sp.Idx:
    return sp.Idx(sp.Symbol(f"_hjsym_tmp{next(_tmp_counter)}", integer=True), (var.lower, var.upper))


def _rename_bound(e):
    """Give every bound index the first canonical name not used inside its scope.

    Several limits of one sum are renamed in order and then sorted by name, so sums that differ
    only in the order or names of their indices become equal.
    """
    if e.is_Atom or isinstance(e, (sp.Indexed, sp.Idx, sp.IndexedBase)):
        return e
    if isinstance(e, _BINDERS):
        tmps = [_tmp_like(lim[0]) for lim in e.limits]
        f = e.function.xreplace({lim[0]: tmp for lim, tmp in zip(e.limits, tmps)})
        f = _rename_bound(f)
        used = _all_index_names(f)
        names = []
        for lim in e.limits:
            axis = axis_of(lim[0])
            n = 0
            while str(bound_index(axis, n).label) in used:
                n += 1
            names.append(bound_index(axis, n))
            used.add(str(names[-1].label))
        candidates = []
        # several indices: every assignment of the names (same axis only) and keep the smallest
        # printed form, so the result does not depend on the order of the limits
        orders = itertools.permutations(range(len(tmps))) if len(tmps) <= 4 else [tuple(range(len(tmps)))]
        for order in orders:
            final = {tmps[a]: names[b] for a, b in enumerate(order)}
            if any(axis_of(tmp) != axis_of(final[tmp]) for tmp in tmps):
                continue
            limits = sorted(((final[tmp], lim[1], lim[2]) for lim, tmp in zip(e.limits, tmps)), key=lambda lim: str(lim[0].label))
            candidates.append(sort_symmetric(e.func(f.xreplace(final), *limits)))
        return min(candidates, key=sp.srepr) if len(candidates) > 1 else candidates[0]
    args = tuple(_rename_bound(a) for a in e.args)
    return e.func(*args) if args != e.args else e


def canonical(expr, max_rounds: int = 60):
    """Rewrite ``expr`` to the canonical form described in the module docstring."""
    expr = sp.sympify(expr)
    for _ in range(max_rounds):
        new = _rewrite(expr)
        if new == expr:
            renamed = _rename_bound(new)
            if renamed == new:
                return new
            new = renamed
        expr = new
    raise RuntimeError(f"canonical form did not converge in {max_rounds} rounds: {expr}")


def is_zero(expr) -> bool:
    """True when ``expr`` canonicalises to exactly zero."""
    return canonical(expr) == 0


# --------------------------------------------------------------------------- derivatives
def pdiff(expr, var):
    """Partial derivative followed by :func:`canonical`."""
    return canonical(sp.diff(expr, var))


def fresh_free_index(axis: Axis, *avoid) -> sp.Idx:
    """A free index of ``axis`` whose name occurs in none of ``avoid``."""
    used = set()
    for a in avoid:
        used |= _all_index_names(sp.sympify(a))
    n = 0
    while str(free_index(axis, n).label) in used:
        n += 1
    return free_index(axis, n)


def index_sum(expr, index: sp.Idx):
    """``sum_{index} expr`` over the full range of ``index``, canonicalised."""
    return canonical(sp.Sum(expr, (index, index.lower, index.upper)))


def grad(u, x: sp.IndexedBase, axis: Axis | None = None, index: sp.Idx | None = None):
    """The component ``du/dx_k`` with a free index ``k`` (returned as ``(expr, k)``)."""
    axis = axis or AXES["dim"]
    k = index or fresh_free_index(axis, u)
    return pdiff(u, x[k]), k


def laplacian(u, x: sp.IndexedBase, metric: sp.IndexedBase | None = None, axis: Axis | None = None):
    """``sum_k d^2u/dx_k^2``, or ``sum_{k,l} A_{kl} d^2u/dx_k dx_l`` with ``metric=A``."""
    axis = axis or AXES["dim"]
    k = fresh_free_index(axis, u)
    uk = pdiff(u, x[k])
    if metric is None:
        return index_sum(pdiff(uk, x[k]), k)
    l = fresh_free_index(axis, u, k)
    return index_sum(index_sum(metric[k, l] * pdiff(uk, x[l]), l), k)


def fresh_binders(expr):
    """Rename every bound index of ``expr`` to a unique temporary name (alpha-renaming).

    Substituting a template with free indices into a context is capture-free afterwards: no
    index of the context can coincide with an index bound inside the template.
    """
    if expr.is_Atom or isinstance(expr, (sp.Indexed, sp.Idx, sp.IndexedBase)):
        return expr
    if isinstance(expr, _BINDERS):
        tmps = [_tmp_like(lim[0]) for lim in expr.limits]
        f = fresh_binders(expr.function.xreplace({lim[0]: tmp for lim, tmp in zip(expr.limits, tmps)}))
        return expr.func(f, *[(tmp, lim[1], lim[2]) for lim, tmp in zip(expr.limits, tmps)])
    args = tuple(fresh_binders(a) for a in expr.args)
    return expr.func(*args) if args != expr.args else expr


def instantiate(template, mapping: dict):
    """``template`` with its free indices replaced by ``mapping`` (capture-free)."""
    return fresh_binders(sp.sympify(template)).xreplace(mapping)


def substitute_indexed(expr, base: sp.IndexedBase, template, params: tuple):
    """Replace every ``base[a, b, ...]`` in ``expr`` by ``template`` with ``params -> (a, b, ...)``.

    ``template`` is an expression whose free indices ``params`` stand for the slots of ``base``;
    the substitution is capture-free and the result is canonicalised.
    """

    def is_target(e):
        return isinstance(e, sp.Indexed) and e.base == base

    def replace(e):
        if len(e.indices) != len(params):
            raise ValueError(f"{e} has {len(e.indices)} indices, the template expects {len(params)}")
        return instantiate(template, dict(zip(params, e.indices)))

    return canonical(fresh_binders(sp.sympify(expr)).replace(is_target, replace))
