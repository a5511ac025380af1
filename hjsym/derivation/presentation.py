"""The form a person writes: every derived equation re-shaped for reading, and checked equal to the derived one.

The derivation's results are in the canonical form (:func:`hjsym.symbolic.calculus.canonical`):
fully expanded, which is what makes identities provable but buries structure
(``s^+ = h(-nz + n + sz - s) + s``). :func:`present` gives every step a ``shown`` form of each
equation: sums over the same index merged into one, each summand and each side factored or
collected by the step size of the spec's dynamics, a leading minus moved into a factor
(``(1 - z)`` rather than ``-(z - 1)``), and bound indices that the canonical form had to number
(``i_1``) renamed to a free letter. Among the candidates the one with the shortest LaTeX wins, and
only when ``canonical(shown - derived)`` is 0 for both sides: the shown form is the derived one,
verified symbolically, or it is not shown. :func:`verify_shown` repeats that check (the tests run
it on every equation of every architecture).
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.axes import axis_of
from ..symbolic.calculus import canonical
from ..symbolic.latex import to_latex

__all__ = ["present", "readable", "verify_shown", "clean_indices"]

#: Letters a renamed bound index may take, per axis (never the axis' canonical bound or free letters).
_POOL = {"dim": ("l", "n", "r", "q", "u", "v"), "atom": ("q", "r", "o"), "input": ("beta", "gamma", "delta"),
         "hidden": ("rho", "kappa", "lambda")}
#: Larger expressions are shown as derived (factoring them costs more than it helps).
_MAX_CHARS = 2500


def _index_names(expr) -> set[str]:
    return {str(s) for s in expr.atoms(sp.Symbol)} | {str(i.label) for i in expr.atoms(sp.Idx)}


def clean_indices(expr):
    """Rename bound indices printed with a number (``i_1``) to an unused letter of their axis."""
    if not isinstance(expr, sp.Basic):
        return expr
    used = _index_names(expr)

    def walk(e):
        if e.is_Atom or isinstance(e, (sp.Indexed, sp.Idx, sp.IndexedBase)):
            return e
        if isinstance(e, sp.Sum):
            func, limits = walk(e.function), []
            for var, lo, hi in e.limits:
                new = var
                if isinstance(var, sp.Idx) and "_" in str(var.label):
                    try:
                        axis = axis_of(var)
                    except (TypeError, KeyError):
                        axis = None
                    for name in _POOL.get(getattr(axis, "name", ""), ()):
                        if name not in used:
                            used.add(name)
                            new = sp.Idx(sp.Symbol(name, integer=True), (var.lower, var.upper))
                            func = func.xreplace({var: new})
                            break
                limits.append((new, lo, hi))
            return sp.Sum(func, *limits)
        if e.args:
            return e.func(*[walk(a) for a in e.args])
        return e

    try:
        return walk(expr)
    except (TypeError, ValueError):
        return expr


def _merge_sums(expr):
    """``c1 Sum_i a_i + c2 Sum_i b_i`` over the same limits -> ``Sum_i (c1 a_i + c2 b_i)``, the summand factored."""
    if not isinstance(expr, sp.Add):
        return expr
    groups: dict = {}
    rest = []
    for term in expr.args:
        coeff, sums = sp.S.One, [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) != 1 or len(sums[0].limits) != 1:
            rest.append(term)
            continue
        s = sums[0]
        coeff = sp.Mul(*[f for f in sp.Mul.make_args(term) if f is not s])
        if coeff.has(s.limits[0][0]):
            rest.append(term)
            continue
        groups.setdefault(s.limits, []).append(coeff * s.function)
    if not any(len(v) > 1 for v in groups.values()):
        return expr
    merged = []
    for limits, terms in groups.items():
        summand = _factor(sp.Add(*terms))
        outside, inside = summand.as_independent(limits[0][0], as_Add=False)  # constants move in front of the sum
        merged.append(outside * sp.Sum(inside, *limits))
    return sp.Add(*merged, *rest)


def _flip_sign(expr):
    """``-(z - 1)(n - s)`` -> ``(1 - z)(n - s)``: a leading minus absorbed into a two-term difference."""
    if isinstance(expr, sp.Mul) and expr.args and expr.args[0] == -1:
        rest = list(expr.args[1:])
        for n, f in enumerate(rest):
            if isinstance(f, sp.Add) and len(f.args) == 2:
                rest[n] = sp.Add(*[-a for a in f.args])
                return sp.Mul(*rest)
    return expr


def _factor(expr):
    try:
        out = sp.factor(expr)
    except (sp.PolynomialError, TypeError, ValueError, NotImplementedError):
        return expr
    return _flip_sign(out)


def _collect(expr, symbol):
    """``s + h (...)``: the terms with ``symbol`` collected, each coefficient factored."""
    if symbol is None or not expr.has(symbol):
        return expr
    try:
        parts = sp.collect(sp.expand(expr), symbol, evaluate=False)
    except (TypeError, ValueError):
        return expr
    return sp.Add(*[_factor(coeff) * key for key, coeff in parts.items()])


def _candidates(expr, step_size):
    out = [expr]
    if len(str(expr)) > _MAX_CHARS:
        return out
    merged = _merge_sums(expr)
    out.append(merged)
    for base in (expr, merged):
        try:
            out.append(_flip_sign(sp.factor_terms(base)))
        except (TypeError, ValueError):
            pass
        if step_size is not None:
            out.append(_collect(base, step_size))
        if not any(isinstance(a, sp.Sum) for a in sp.preorder_traversal(base)):
            out.append(_factor(base))
    return out


def _equal(a, b) -> bool:
    try:
        return canonical(a - b) == 0
    except Exception:  # noqa: BLE001 - a candidate the canonical form cannot handle is not shown
        return False


def _protect(expr):
    """Every reduction node (log-sum-exp, Gibbs average, max, ...) replaced by a placeholder, and the way back.

    Factoring must not reach inside them: their logits name the Gibbs weights (one label per softmax).
    """
    from ..symbolic.reductions import Reduction

    nodes = sorted(expr.atoms(Reduction), key=sp.default_sort_key)
    holders = {n: sp.Dummy(f"R{k}", commutative=True) for k, n in enumerate(nodes)}
    return expr.xreplace(holders), {v: k for k, v in holders.items()}


def _has_inverse(expr) -> bool:
    """Entries of an inverse matrix print as ``(A^{-1})_{ij}``; a factored form may raise one to a power, which LaTeX
    cannot print (a double superscript): such expressions are shown as derived."""
    from ..symbolic.matrices import InverseBase

    return any(isinstance(i.base, InverseBase) for i in expr.atoms(sp.Indexed))


def _length(tex: str) -> int:
    """How long a formula reads: its LaTeX without the sizing commands (``\\left(`` is one bracket)."""
    return len(tex.replace(r"\left", "").replace(r"\right", ""))


def readable(expr, names: dict | None = None, step_size=None):
    """The shortest (in LaTeX) form of ``expr`` among the candidates that equal it symbolically.

    Candidates are tried shortest first, so the canonical form runs once for the form that is shown.
    """
    if not isinstance(expr, sp.Expr) or expr.is_Atom or _has_inverse(expr):
        return expr
    protected, back = _protect(expr)
    base_len = _length(to_latex(expr, names))
    ranked = []
    for raw in _candidates(protected, step_size):
        for cand in {raw.xreplace(back), clean_indices(raw.xreplace(back))}:
            if cand == expr:
                continue
            tex = to_latex(cand, names)
            ranked.append((_length(tex) + (8 if "_{1}" in tex else 0), tex, cand))
    for n, _, cand in sorted(ranked, key=lambda r: (r[0], r[1])):
        if n >= base_len + (8 if "_{1}" in to_latex(expr, names) else 0):
            break
        if _equal(cand, expr):
            return cand
    return expr


def _shown(eq, names, step_size):
    if isinstance(eq, sp.Rel):
        lhs, rhs = readable(eq.lhs, names, step_size), readable(eq.rhs, names, step_size)
        if lhs is eq.lhs and rhs is eq.rhs:
            return eq
        return type(eq)(lhs, rhs, evaluate=False)
    return readable(eq, names, step_size) if isinstance(eq, sp.Expr) else eq


def present(steps, names: dict, step_size=None) -> None:
    """Give every step its ``shown`` equations (see the module docstring)."""
    for s in steps:
        s.shown = tuple(_shown(e, names, step_size) for e in s.equations)


def verify_shown(derived, shown) -> bool:
    """Whether a shown equation equals the derived one: both sides' differences canonicalise to 0."""
    if shown is derived or shown == derived:
        return True
    if isinstance(derived, sp.Rel) and isinstance(shown, sp.Rel):
        return type(derived) is type(shown) and _equal(shown.lhs, derived.lhs) and _equal(shown.rhs, derived.rhs)
    return _equal(shown, derived)

