"""Loop-invariant parts of a streamed reduction, computed once before the tiles.

Inside the tile loop (:mod:`hjsym.codegen.generate`) the logits of a reduction over the atoms are
recomputed for every block of batch rows and every chunk of atoms. Their terms without the
batch axis do not change from tile to tile: :func:`hoist_logits` rewrites the logits so that

* the terms without the batch axis (the bias ``-g_j/eps - |y_j|^2/(4 eps t)``) become one
  precomputed tensor over the atoms, added by the matrix product itself
  (``torch.addmm``, see :meth:`HJTorchPrinter._print_Add`), and
* the scalar factors of a contraction with the batch (``x . y_j / (2 eps t)``) move onto its
  atom-side operand, also precomputed, so that a tile is one matrix product with the bias folded
  in: ``z = addmm(B[_s], x[_b], Y[_s]^T)``.

The rewritten logits refer to the precomputed tensors as new ``IndexedBase`` placeholders; the
caller prints their definitions before the loop and registers them as tensors over all atoms
(sliced per chunk like any argument). Only the order of the floating-point operations changes:
the scalar factors multiply the atoms instead of the query points.
"""

from __future__ import annotations

import sympy as sp

from ..ir import ArgSpec
from ..symbolic.axes import axis_of
from .printer import BATCH, Compiler

__all__ = ["Hoisted", "hoist_logits"]


class Hoisted:
    """A tensor computed once before the tile loop: ``base[indices] = expr``."""

    def __init__(self, base: sp.IndexedBase, indices: tuple, expr: sp.Expr):
        self.base, self.indices, self.expr = base, indices, expr

    @property
    def name(self) -> str:
        return str(self.base.label)


def _free_indices(c: Compiler, e) -> tuple:
    """The ``Idx`` objects of ``e``'s free (non-batch) axes, in canonical axis order."""
    by_label = {}
    for ix in e.atoms(sp.Idx):
        by_label.setdefault(c.register(ix), ix)
    return tuple(by_label[a] for a in c.axes(e) if a != BATCH)


def _placeholder(c: Compiler, e, hoisted: list) -> sp.Expr:
    idx = _free_indices(c, e)
    for h in hoisted:  # the same invariant twice (e.g. in two reductions of one block) is computed once
        if h.expr == e and h.indices == idx:
            return h.base[idx]
    base = sp.IndexedBase(c.fresh("_inv"))
    hoisted.append(Hoisted(base, idx, e))
    # sliced per chunk of atoms like an argument of the function
    c.args[base] = ArgSpec(str(base.label), base, tuple(c.kinds[c.register(ix)] for ix in idx))
    return base[idx]


def hoist_logits(c: Compiler, z: sp.Expr, atom: str, hoisted: list) -> sp.Expr:
    """``z`` with its loop invariants replaced by placeholders (appended to ``hoisted``).

    ``atom`` is the label of the streamed atom index. Terms without the batch axis are summed
    into one invariant; in a term ``scalars * Sum_i(batch factors * atom factors)`` the scalars
    and the atom factors become one invariant operand. Nothing is hoisted that is already a
    plain argument (slicing it is free) or that does not run over the atoms.
    """
    if BATCH not in c.axes(z):
        return z
    bias, rest = [], []
    for term in sp.Add.make_args(z):
        (rest if BATCH in c.axes(term) else bias).append(term)
    out = []
    for term in rest:
        out.append(_fold_scalars(c, term, atom, hoisted))
    if bias:
        b = sp.Add(*bias)
        worth = atom in c.axes(b) and not isinstance(b, sp.Indexed)
        out.append(_placeholder(c, b, hoisted) if worth else b)
    return sp.Add(*out)


def _fold_scalars(c: Compiler, term, atom: str, hoisted: list):
    """``k * Sum_i(X[b, i] * A[j, i])`` -> ``Sum_i(X[b, i] * H[j, i])`` with ``H = k A`` hoisted."""
    factors = sp.Mul.make_args(term)
    sums = [f for f in factors if isinstance(f, sp.Sum)]
    scalars = [f for f in factors if not isinstance(f, sp.Sum)]
    if len(sums) != 1 or any(c.axes(f) for f in scalars):
        return term
    (s,) = sums
    inner = sp.Mul.make_args(s.function)
    batch = [f for f in inner if BATCH in c.axes(f)]
    atoms_side = [f for f in inner if BATCH not in c.axes(f)]
    if not batch or not atoms_side or any(atom in c.axes(f) for f in batch):
        return term
    operand = sp.Mul(*scalars) * sp.Mul(*atoms_side)
    if atom not in c.axes(operand) or any(axis_of(lim[0]).name == "atom" for lim in s.limits):
        return term
    if isinstance(operand, sp.Indexed):
        return term
    return sp.Sum(sp.Mul(*batch) * _placeholder(c, operand, hoisted), *s.limits)
