"""Derivation passes for a diffusion matrix: ``H(p) = p^T A p``, ``u_t + H(grad u) = eps tr(A Hess u)``.

The engine (:mod:`hjsym.derivation.engine`) calls these when the spec sets ``diffusion=``. Nothing is
special-cased to the metric: every step is the isotropic one with two facts of
:mod:`hjsym.symbolic.matrices` added to the calculus (symmetric indices in canonical order, and the
inverse-pair contraction ``sum_l A_{il} (A^{-1})_{lk} = delta_{ik}``):

* convexity: ``d2H/dp2`` is a positive multiple of ``A``, declared positive definite;
* Legendre transform: ``q = dH/dp`` is solved for ``p`` by contracting with ``A^{-1}``
  (:func:`solve_indexed`), giving ``L(q) = q^T A^{-1} q / 4``;
* heat kernel with metric ``A^{-1}``: ``(4 pi eps t)^{-d/2} det(A)^{-1/2} exp(-x^T A^{-1} x/(4 eps t))``,
  whose residual canonicalises to zero;
* the change of variables of a network that applies an isotropic layer after a linear map
  ``x -> L x``: the diffusion matrix it induces is derived, ``A = (L^T L)^{-1}``.

When ``A`` is not declared positive definite, the HJ equation and the Hopf-Cole transform are
still derived; the Legendre transform and the Hopf-Lax formula are reported as failed, with
the reason.
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.axes import DIM, bound_index, free_index
from ..symbolic.calculus import (
    canonical,
    free_indices,
    fresh_free_index,
    index_sum,
    instantiate,
    laplacian,
    pdiff,
    substitute_indexed,
)
from ..symbolic.jets import Dxx, jets_in
from ..symbolic.latex import Partial, Tex, eq
from ..symbolic.matrices import InverseBase, LogDet, inverse_of
from .passes import register

__all__ = ["solve_indexed", "convexity_and_legendre", "heat_kernel", "input_map"]


def _matrices_in(expr):
    """Bases of the two-index ``(d, d)`` tensors in ``expr`` (candidates to contract with)."""
    out = []
    for e in sp.preorder_traversal(expr):
        if isinstance(e, sp.Indexed) and len(e.indices) == 2 and all(getattr(ix, "upper", None) == DIM.extent for ix in e.indices):
            if e.base not in out:
                out.append(e.base)
    return out


def solve_indexed(equation, target):
    """Solve ``equation`` for the tensor entry ``target`` (an ``Indexed`` with a free dim index last).

    ``sympy.solve`` first; when the target only occurs inside a contraction with a matrix ``M``
    (``q_k = 2 sum_i A_{ik} p_i``), both sides are contracted with ``M^{-1}`` on the target's free
    index, the inverse pair cancels, and the now bare target is solved for. Returns the
    canonical solution or None.
    """
    sols = sp.solve(equation, target)
    if len(sols) == 1 and not sols[0].has(target.base):
        return canonical(sols[0])
    k = target.indices[-1]
    expr = equation.lhs - equation.rhs
    for M in _matrices_in(expr):
        inv = inverse_of(M)
        n = fresh_free_index(DIM, expr, target)
        new_target = target.xreplace({k: n})
        for entry in (inv[n, k], inv[k, n]):
            contracted = index_sum(entry * expr, k)
            sols = sp.solve(contracted, new_target)
            if len(sols) == 1 and not sols[0].has(target.base):
                return canonical(sols[0].xreplace({n: k}))
    return None


def _positive_multiple(d, hess):
    """(True, reason) when ``d2H/dp_k dp_l = c A_{kl}`` with ``c > 0`` and ``A`` declared positive definite."""
    A, name = d.A, d.sym.spec.diffusion
    decl = d.sym.tensor_decl[name]
    c = canonical(hess / A[d.k, d.l])
    if free_indices(c) or c.has(d.p) or not c.is_positive:
        return False, rf"$\partial^2 H/\partial p^2 = {d.latex(hess)}$ is not a positive multiple of ${name}$: convexity is not established"
    if not decl.positive_definite:
        return False, (rf"$\partial^2 H/\partial p^2 = {d.latex(c)}\, {name}$, but ${name}$ is not declared positive definite: $H$ is "
                       "not known to be convex (an indefinite $A$ gives no Lagrangian)")
    return True, rf"$\partial^2 H/\partial p^2 = {d.latex(c)}\, {name}$ with ${name}$ symmetric positive definite: $H$ is strictly convex"


def convexity_and_legendre(d):
    """Convexity of a quadratic form in p and its Legendre transform (the metric ``A^{-1}``)."""
    k, l, p = d.k, d.l, d.p
    name = d.sym.spec.diffusion
    hess = pdiff(pdiff(d.H, p[k]), p[l])
    d.results["hamiltonian_hessian"] = hess
    convex, why = _positive_multiple(d, hess)
    d.add("convexity", "Convexity of $H$ in $p$", eq(Partial(sp.Symbol("H"), p[k], p[l]), hess), why, ("hj-equation",))
    if not convex:
        d.add("hopf-lax", "Hopf-Lax formula: does not apply", (),
              rf"{why}; the Hopf-Lax formula $u_0 = \inf_y\, g(y) + t L((x-y)/t)$ needs a convex $H$. Generated functions that need "
              rf"${name}^{{-1}}$ raise an error when ${name}$ is not positive definite", ("convexity",), "failed")
        return
    if d.results["pdot"] != 0:
        d.add("legendre", "Legendre transform", (), "$H$ depends on $x$: no $x$-independent Lagrangian", ("convexity",), "failed")
        return
    q = sp.IndexedBase("q")
    grad = pdiff(d.H, p[k])
    pk = solve_indexed(eq(q[k], grad), p[k])
    if pk is None:
        d.add("legendre", "Legendre transform", eq(q[k], grad), r"$q = \partial H/\partial p$ could not be solved for $p$", ("convexity",), "failed")
        return
    d.legendre(q, grad, pk, rf"$L(q) = \sup_p\, (p\cdot q - H(p))$: $q = \partial H/\partial p$ is solved for $p$ by contracting with ${name}^{{-1}}$ "
               rf"($\sum_l {name}_{{il}} ({name}^{{-1}})_{{lk}} = \delta_{{ik}}$), then substituted")


def heat_kernel(d, rhs):
    """The fundamental solution of ``w_t = kappa sum_{il} A_il w_{x_i x_l}``: a Gaussian with metric ``A^{-1}``."""
    w, x, t, A = d.w, d.x, d.t, d.A
    name = d.sym.spec.diffusion
    i, i1 = bound_index(DIM, 0), bound_index(DIM, 1)
    kappa = canonical(rhs / sp.Sum(sp.Sum(A[i, i1] * Dxx(w, i, i1), (i1, 1, d.d)), (i, 1, d.d)))
    if jets_in(kappa) or kappa.has(w) or free_indices(kappa) or "lagrangian" not in d.results:
        why = r"the linear equation is not a multiple of $\mathrm{tr}(A \nabla^2 w)$" if "lagrangian" in d.results else (
            rf"${name}$ is not known to be positive definite: the Gaussian kernel $\exp(-x^\top {name}^{{-1}} x/(4 \kappa t))$ needs it")
        d.add("heat-kernel", "Fundamental solution", (), why, ("linear-equation",), "failed")
        return
    Ainv = InverseBase(A)
    quad = index_sum(index_sum(Ainv[i, i1] * x[i] * x[i1], i1), i)
    log_K = -d.d / 2 * sp.log(4 * sp.pi * kappa * t) - LogDet(A) / 2 - quad / (4 * kappa * t)
    K = sp.exp(log_K)
    residual = canonical(pdiff(K, t) - kappa * laplacian(K, x, A))
    d.results.update(kernel=K, kernel_diffusivity=kappa, log_kernel=canonical(log_K))
    d.add(
        "heat-kernel",
        f"Fundamental solution (heat kernel with metric ${name}^{{-1}}$)",
        (eq(sp.Function("K")(x, t), K), eq(Tex(r"\partial_t K - \kappa\,\mathrm{tr}(A \nabla^2 K)"), residual)),
        rf"Gaussian ansatz with covariance $2 \kappa t {name}$, $\kappa = {d.latex(kappa)}$; substituting it into "
        rf"$w_t = \kappa\, \mathrm{{tr}}({name} \nabla^2 w)$ leaves {d.math(residual)} (the pairs ${name} {name}^{{-1}}$ contract)",
        ("linear-equation",),
        "verified" if residual == 0 else "failed",
    )


@register("input-map", order=40, when=lambda d: d.H is not None and bool(d.sym.spec.input_map))
def input_map(d):
    """The diffusion matrix induced by an isotropic layer applied after ``x -> L x`` (``spec.input_map``)."""
    spec = d.sym.spec
    if not spec.input_map:
        return
    L = d.sym.tensors[spec.input_map]
    k, l, n = d.k, d.l, free_index(DIM, 2)
    a = bound_index(DIM)
    P, p = sp.IndexedBase("P"), d.p
    # chain rule for u(x) = U(L x): du/dx_k = sum_a L_ak dU/dxi_a; solve for dU/dxi
    chain = eq(p[k], index_sum(L[a, k] * P[a], a))
    P_of_p = solve_indexed(chain, P[k])
    if P_of_p is None:
        d.add("input-map", r"Change of variables $\xi = L x$", eq(p[k], chain.rhs), r"the chain rule could not be solved for $\nabla_\xi U$",
              ("hj-equation",), "failed")
        return
    iso = index_sum(P[a] ** 2, a)  # |grad_xi U|^2, the isotropic Hamiltonian
    H_x = substitute_indexed(iso, P, P_of_p, (k,))
    A_of_L = canonical(pdiff(pdiff(H_x, p[k]), p[l]) / 2)
    metric = canonical(index_sum(L[a, k] * L[a, l], a))
    s = fresh_free_index(DIM, A_of_L, metric, k, l, n)
    check_inverse = canonical(index_sum(instantiate(A_of_L, {l: s}) * instantiate(metric, {k: s, l: n}), s))
    # the spec's H with A := (L^T L)^-1 must be |grad_xi U|^2 written in x; both are quadratic
    # forms in p, so equal Hessians in p mean equal forms
    H_spec = substitute_indexed(d.H, d.A, A_of_L, (k, l))
    matches = canonical(pdiff(pdiff(H_spec, p[k]), p[l]) - pdiff(pdiff(H_x, p[k]), p[l]))
    d.results.update(diffusion_of_map=A_of_L, metric_of_map=metric)
    d.fn("diffusion_from_map", A_of_L, f"diffusion matrix A = (L^T L)^-1 induced by x -> {spec.input_map} x", out=(k, l))
    d.fn("metric_from_map", metric, f"kernel metric A^-1 = L^T L induced by x -> {spec.input_map} x", out=(k, l))
    name = spec.diffusion or "A"
    d.add(
        "input-map",
        rf"An isotropic layer after $x \mapsto {spec.input_map} x$",
        (eq(P[k], P_of_p), eq(Tex(r"|\nabla_{\xi} U|^{2}"), H_x), eq(sp.IndexedBase(name)[k, l], A_of_L),
         eq(Tex(r"(A^{-1})_{kl}"), metric), eq(Tex(r"\sum_{i} A_{ki} (L^{T} L)_{i n}"), check_inverse)),
        rf"$u(x, t) = U({spec.input_map} x, t)$ with $U$ solving the isotropic equation: the chain rule gives $\nabla_\xi U = "
        rf"{spec.input_map}^{{-\top}} \nabla_x u$, so $|\nabla_\xi U|^2 = p^\top A p$ and $\Delta_\xi U = \mathrm{{tr}}(A \nabla_x^2 u)$ with $A = (L^\top L)^{{-1}}$ "
        rf"(Hessian in $p$ of the spec's $H$ with this $A$ minus that of $|\nabla_\xi U|^2$: {d.math(matches)}); its inverse, the kernel metric, is $L^\top L$",
        ("hj-equation",),
        "verified" if check_inverse == sp.KroneckerDelta(k, n) and matches == 0 else "derived",
    )
