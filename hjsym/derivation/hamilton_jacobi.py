"""The PDE passes: the Hamilton-Jacobi equation, its characteristics, the Legendre transform, Hopf-Cole,
the heat kernel, the Hopf-Lax formula and the solution for atomic initial data.

Nothing here asserts a formula: the Hopf-Cole constant is found by ``solve``, the kernel and
the residual are substituted back and canonicalised, derivatives go through the rules of
:mod:`hjsym.symbolic.reductions`. A spec with a diffusion matrix takes the metric versions of
:mod:`hjsym.derivation.anisotropic`.
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.axes import ATOM, DIM, bound_index
from ..symbolic.calculus import canonical, free_indices, index_sum, laplacian, pdiff, substitute_indexed
from ..symbolic.jets import Dt, Dx, Dxx, jets_in
from ..symbolic.latex import InfOver, Partial, Tex, eq
from ..symbolic.reductions import ReduceMin, lse
from . import anisotropic
from .passes import register

__all__ = ["hj_equation", "characteristics", "convexity_and_legendre", "hopf_cole", "heat_kernel", "hopf_lax", "atomic_solution"]


def _has_hamiltonian(d) -> bool:
    return d.H is not None


def _has_atoms(d) -> bool:
    return d.H is not None and d.sym.spec.initial_data is not None


@register("hj-equation", order=10, when=_has_hamiltonian)
def hj_equation(d):
    u, k = d.u, d.k
    lhs = canonical(Dt(u) + d.hamiltonian_at(Dx(u, k), k))
    rhs = canonical(d.diffusion_of(lambda i, l: Dxx(u, i, l)))
    d.results["hj_equation"] = eq(lhs, rhs)
    metric = "" if d.A is None else f" (diffusion matrix $D = {d.sym.spec.diffusion}$)"
    d.add(
        "hj-equation",
        "Viscous Hamilton-Jacobi equation",
        eq(lhs, rhs),
        r"$u_t + H(x, \nabla u) = \nu\, \nabla\cdot(D \nabla u)$ with the spec's Hamiltonian $H$ and viscosity $\nu$" + metric,
    )


@register("characteristics", order=20, when=_has_hamiltonian)
def characteristics(d):
    k, x, p = d.k, d.x, d.p
    xdot = pdiff(d.H, p[k])
    pdot = canonical(-pdiff(d.H, x[k]))
    d.results["xdot"], d.results["pdot"] = xdot, pdot
    eqs = [eq(sp.IndexedBase(r"\dot{x}")[k], xdot), eq(sp.IndexedBase(r"\dot{p}")[k], pdot)]
    reason = r"Hamilton's equations $\dot{x} = \partial H/\partial p$, $\dot{p} = -\partial H/\partial x$"
    if pdot == 0:
        reason += "; $H$ does not depend on $x$, so $p$ is constant and characteristics are straight lines"
    d.add("characteristics", "Characteristics (Hamilton's equations)", eqs, reason, uses=("hj-equation",))


@register("legendre", order=30, when=_has_hamiltonian)
def convexity_and_legendre(d):
    if d.A is not None:  # a quadratic form with a diffusion matrix: contract with its inverse
        return anisotropic.convexity_and_legendre(d)
    k, l, p = d.k, d.l, d.p
    hess = pdiff(pdiff(d.H, p[k]), p[l])
    d.results["hamiltonian_hessian"] = hess
    convex, why = _positive_definite(d, hess)
    display = eq(Partial(sp.Symbol("H"), p[k], p[l]), hess)
    d.add("convexity", "Convexity of $H$ in $p$", display, why, uses=("hj-equation",), status="derived")
    if not convex:
        return
    if d.results["pdot"] != 0:
        d.add("legendre", "Legendre transform", (), "$H$ depends on $x$: no $x$-independent Lagrangian", ("convexity",), "failed")
        return
    q = sp.IndexedBase("q")
    grad = pdiff(d.H, p[k])
    sol = sp.solve(eq(q[k], grad), p[k], dict=True)
    if len(sol) != 1 or sol[0][p[k]].has(p):
        d.add(
            "legendre",
            "Legendre transform",
            eq(q[k], grad),
            r"the stationarity condition $q = \partial H/\partial p$ could not be solved componentwise for $p$",
            ("convexity",),
            "failed",
        )
        return
    d.legendre(q, grad, sol[0][p[k]], r"$L(q) = \sup_p\, (p\cdot q - H(p))$: solve the stationarity condition $q = \partial H/\partial p$ for $p$ and substitute")


@register("hopf-cole", order=50, when=_has_hamiltonian)
def hopf_cole(d):
    u, w, k = d.u, d.w, d.k
    c = sp.Symbol("c", nonzero=True, real=True)
    ansatz = {
        Dt: lambda f: -c * Dt(w) / w,
        Dx: lambda f, i: -c * Dx(w, i) / w,
        Dxx: lambda f, i, l: -c * Dxx(w, i, l) / w + c * Dx(w, i) * Dx(w, l) / w**2,
    }
    hj = d.results["hj_equation"]
    pde = hj.lhs - hj.rhs
    for cls, rule in ansatz.items():
        pde = pde.replace(lambda e, cls=cls: isinstance(e, cls) and e.args[0] == u, lambda e, rule=rule: rule(*e.args))
    scaled = canonical(w * pde)
    parts = sp.collect(sp.expand(scaled), w, evaluate=False)
    linear_part = parts.pop(sp.S.One, sp.S.Zero)
    nonlinear = canonical(sum((coef * key for key, coef in parts.items()), sp.S.Zero))
    d.add(
        "hopf-cole-ansatz",
        "Hopf-Cole substitution",
        (
            eq(u, -c * sp.log(w)),
            eq(Dt(u), -c * Dt(w) / w),
            eq(Dx(u, k), -c * Dx(w, k) / w),
            eq(Dxx(u, k, d.l), ansatz[Dxx](u, k, d.l)),
        ),
        "substitute $u = -c \\log w$ with an unknown constant $c$; the chain rule gives the jets of $u$",
        ("hj-equation",),
    )
    d.add(
        "hopf-cole-split",
        "The equation for $w$, split by powers of $w$",
        (eq(Tex(r"\mathrm{linear}"), linear_part), eq(Tex(r"\mathrm{nonlinear}"), nonlinear)),
        "multiply the equation by $w$: terms with $1/w$ are nonlinear in $w$, the rest is linear",
        ("hopf-cole-ansatz",),
    )
    if nonlinear == 0:
        c_star = sp.S.One
        why = "there is no nonlinear term: any $c$ works; take $c = 1$"
    else:
        sols = [s for s in sp.solve(nonlinear, c) if s != 0 and not jets_in(s) and not s.has(w)]
        c_star = sols[0] if len(sols) == 1 else None
        why = f"the nonlinear terms cancel for all $w$ exactly when $c = {d.latex(c_star)}$" if c_star is not None else ""
    if c_star is None:
        guess = d.nu if d.nu != 0 else sp.S.One
        leftover = canonical(nonlinear.subs(c, guess) / w)
        d.results["hopf_cole_leftover"] = leftover
        d.add(
            "hopf-cole-solve",
            "Hopf-Cole: does not linearise",
            eq(Tex(r"\mathrm{leftover}"), leftover),
            f"no constant $c$ removes the nonlinear terms for every $w$; with $c = {d.latex(guess)}$ this term remains",
            ("hopf-cole-split",),
            "failed",
        )
        return
    d.results["hopf_cole_c"] = c_star
    linear = canonical(linear_part.subs(c, c_star))
    wt = sp.solve(linear, Dt(w))
    if len(wt) != 1:
        d.add("hopf-cole-solve", "Hopf-Cole constant", eq(c, c_star), why + "; the linear part has no $w_t$ to solve for",
                 ("hopf-cole-split",), "failed")
        return
    rhs = canonical(wt[0])
    d.results["linear_equation"] = eq(Dt(w), rhs)
    d.add("hopf-cole-solve", "Hopf-Cole constant", eq(c, c_star), why, ("hopf-cole-split",))
    d.add(
        "linear-equation",
        "The linear equation for $w$",
        eq(Dt(w), rhs),
        "the remaining (linear) part with $c$ substituted, solved for $w_t$",
        ("hopf-cole-solve",),
    )
    heat_kernel(d, rhs)


def heat_kernel(d, rhs):
    if d.A is not None:
        return anisotropic.heat_kernel(d, rhs)
    w, i = d.w, bound_index(DIM)
    kappa = canonical(rhs / sp.Sum(Dxx(w, i, i), (i, 1, d.d)))
    if d.A is not None or jets_in(kappa) or kappa.has(w) or free_indices(kappa):
        d.add("heat-kernel", "Fundamental solution", (), "$w_t$ is not a multiple of the Laplacian of $w$: no Gaussian kernel derived",
                 ("linear-equation",), "failed")
        return
    x, t = d.x, d.t
    K = (4 * sp.pi * kappa * t) ** (-d.d / 2) * sp.exp(-index_sum(x[i] ** 2, i) / (4 * kappa * t))
    residual = canonical(pdiff(K, t) - kappa * laplacian(K, x))
    d.results["kernel"] = K
    d.results["kernel_diffusivity"] = kappa
    d.results["log_kernel"] = canonical(-d.d / 2 * sp.log(4 * sp.pi * kappa * t) - index_sum(x[i] ** 2, i) / (4 * kappa * t))
    d.add(
        "heat-kernel",
        "Fundamental solution (heat kernel)",
        (eq(sp.Function("K")(x, t), K), eq(Tex(r"\partial_t K - \kappa \Delta K"), residual)),
        rf"Gaussian ansatz with diffusivity $\kappa = {d.latex(kappa)}$; substituting it into $w_t = \kappa \Delta w$ leaves {d.math(residual)}",
        ("linear-equation",),
        "verified" if residual == 0 else "failed",
    )

# ------------------------------------------------------------------ Hopf-Lax


@register("hopf-lax", order=60, when=_has_atoms)
def hopf_lax(d):
    if "lagrangian" not in d.results:
        return
    k, x, t = d.k, d.x, d.t
    q = d.L_q
    yv = sp.IndexedBase("y")
    tl_cont = substitute_indexed(t * d.results["lagrangian"], q, (x[k] - yv[k]) / t, (k,))
    d.add(
        "hopf-lax",
        "Hopf-Lax formula (inviscid solution)",
        eq(Tex("u_{0}"), InfOver(sp.Function("g")(yv) + tl_cont, yv)),
        r"the viscosity solution of $u_t + H(\nabla u) = 0$ with convex $H$: $u_0(x,t) = \inf_y\, g(y) + t L((x - y)/t)$",
        ("legendre",),
    )
    data = d.sym.spec.initial_data
    Y, G = d.sym.tensors[data.points], d.sym.tensors[data.values]
    j = bound_index(ATOM)
    tl = substitute_indexed(t * d.results["lagrangian"], q, (x[k] - Y[j, k]) / t, (k,))
    u0 = canonical(ReduceMin(G[j] + tl, (j, 1, d.N)))
    d.results["hopf_lax"] = u0
    d.fn("hopf_lax", u0, "Hopf-Lax solution u0(x, t) = min_j g_j + t L((x - y_j)/t) for atomic initial data")
    d.add(
        "hopf-lax-atomic",
        "Hopf-Lax formula for atomic initial data",
        eq(Tex("u_{0}"), u0),
        r"$g$ is $+\infty$ away from the atoms $y_j$, so the infimum is a minimum over $j$",
        ("hopf-lax",),
    )

# ------------------------------------------------------------------ atomic initial data


@register("atomic-solution", order=70, when=_has_atoms)
def atomic_solution(d):
    if "kernel" not in d.results:
        return
    data = d.sym.spec.initial_data
    Y, G = d.sym.tensors[data.points], d.sym.tensors[data.values]
    x, t, k = d.x, d.t, d.k
    j = bound_index(ATOM)
    c, log_kernel = d.results["hopf_cole_c"], d.results["log_kernel"]
    log_k = substitute_indexed(log_kernel, x, x[k] - Y[j, k], (k,))  # the kernel centred at y_j
    u_exact = canonical(-c * lse(-G[j] / c + log_k, j))
    const = canonical(-c * substitute_indexed(log_kernel, x, sp.S.Zero, (k,)))
    u = canonical(u_exact - const)
    d.results["u_exact"], d.results["u"] = u_exact, u
    d.add(
        "atomic-solution",
        "Solution for atomic initial data",
        (
            eq(sp.Function("w")(x, 0), sp.Sum(sp.exp(-G[j] / c) * sp.Function(r"\delta")(x - Y[j]), (j, 1, d.N))),
            eq(Tex(r"u_{\mathrm{exact}}"), u_exact),
        ),
        r"$w(\cdot, 0) = e^{-g/c}$ on the atoms; $w(\cdot, t)$ is the superposition of kernels, and $u = -c \log w$",
        ("heat-kernel", "hopf-cole-solve"),
    )
    d.add(
        "unnormalised-solution",
        r"The unnormalised solution $u_\varepsilon$ (the paper's form)",
        eq(Tex(r"u_{\varepsilon}"), u),
        rf"drop the constant {d.math(const)} (it does not depend on $x$); $u_\varepsilon$ is what the network computes",
        ("atomic-solution",),
    )
    d.fn("u", u, "Hopf-Cole solution u_eps(x, t) for atomic initial data (unnormalised)")
    d.fn("u_exact", u_exact, "exact Hopf-Cole solution (normalised kernel)")
    res = d.hj_residual(u)
    # u_exact = u + const(t): the gradient and the second derivatives agree, only u_t gains d const/dt
    res_exact = canonical(res + pdiff(const, t)) if not const.has(x) else d.hj_residual(u_exact)
    d.results["residual"], d.results["residual_exact"] = res, res_exact
    d.fn("residual", res, "PDE residual u_t + H(grad u) - eps Lap u of the unnormalised solution (a constant)",
         terms=d.hj_residual(u, simplify=False))
    d.add(
        "residual",
        r"PDE residual of $u_\varepsilon$",
        (eq(Tex(r"\mathcal{R}[u_{\varepsilon}]"), res), eq(Tex(r"\mathcal{R}[u_{\mathrm{exact}}]"), res_exact)),
        "substitute u into the PDE and differentiate through the log-sum-exp (Gibbs averages); everything cancels but a constant; "
        r"$u_{\mathrm{exact}}$ differs from $u$ by a function of $t$ alone, which adds its $t$-derivative",
        ("unnormalised-solution", "hj-equation"),
        "verified" if res_exact == 0 else "derived",
    )
    grad = pdiff(u, x[k])
    lap = laplacian(u, x, d.A)  # tr(A Hess u) when the spec has a diffusion matrix
    ut = pdiff(u, t)
    d.results.update(grad_u=grad, laplacian_u=lap, u_t=ut)
    d.fn("grad_u", grad, "gradient of u_eps", out=(k,))
    d.fn("laplacian_u", lap, "Laplacian of u_eps")
    d.fn("u_t", ut, "time derivative of u_eps")
    d.add(
        "derivatives",
        r"Derivatives of $u_\varepsilon$",
        (eq(Dx(Tex(r"u_{\varepsilon}"), k), grad), eq(Tex(r"\Delta u_{\varepsilon}"), lap),
         eq(Dt(Tex(r"u_{\varepsilon}")), ut)),
        r"$d\,\mathrm{LSE}(z) = \mathbb{E}_\pi[dz]$ and $d\,\mathbb{E}_\pi[a] = \mathbb{E}_\pi[da] + \mathrm{Cov}_\pi(a, dz)$ ($z$ the logits): the gradient is an average over atoms",
        ("unnormalised-solution",),
    )

# ------------------------------------------------------------------ network


def _positive_definite(d, hess):
    if hess.has(d.p):
        return False, r"$\partial^2 H/\partial p^2$ depends on $p$; convexity is not established symbolically"
    delta = sp.KroneckerDelta(d.k, d.l)
    c = canonical(hess / delta)
    if not free_indices(c) and c.is_positive:
        return True, rf"$\partial^2 H/\partial p^2 = {d.latex(c)}\, I$ is positive definite: $H$ is strictly convex"
    if d.A is not None:
        decl = d.sym.tensor_decl[d.sym.spec.diffusion]
        coeffs = [sp.Wild("a"), sp.Wild("b")]
        m = canonical(hess).match(coeffs[0] * d.A[d.k, d.l] + coeffs[1] * d.A[d.l, d.k])
        if m and decl.positive_definite and all(m[w].is_nonnegative for w in coeffs) and any(m[w].is_positive for w in coeffs):
            return True, rf"$\partial^2 H/\partial p^2$ is a positive multiple of ${decl.name}$, declared symmetric positive definite (re-checked on real weights)"
    return False, r"$\partial^2 H/\partial p^2$ is not recognisably positive definite; convexity is not established"
