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
from ..symbolic.calculus import canonical, free_indices, fresh_free_index, index_sum, laplacian, pdiff, substitute_indexed
from ..symbolic.jets import Dt, Dx, Dxx, jets_in
from ..symbolic.latex import InfOver, Partial, Tex, eq
from ..symbolic.reductions import ReduceMin, lse
from . import anisotropic
from .passes import register

__all__ = ["hj_equation", "characteristics", "convexity_and_legendre", "hopf_cole", "heat_kernel", "hopf_lax", "atomic_solution",
           "split_linear"]


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
    radial = _radial_profile(d)
    if radial is not None and d.results["pdot"] == 0:
        return _radial_legendre(d, radial, hess)
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
    linear_part, nonlinear = split_linear(scaled, w)
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
        "The equation for $w$, split into terms linear in $w$ and the rest",
        (eq(Tex(r"\mathrm{linear}"), linear_part), eq(Tex(r"\mathrm{nonlinear}"), nonlinear)),
        r"multiply the equation by $w$; a term is linear when it is additive in the jets of $w$ ($T[w_1 + w_2] = T[w_1] + T[w_2]$, "
        r"checked symbolically, so $|\nabla w|$ and $w_x^2/w$ count as nonlinear), the rest is nonlinear",
        ("hopf-cole-ansatz",),
    )
    if nonlinear == 0:
        c_star = sp.S.One
        why = "there is no nonlinear term: any $c$ works; take $c = 1$"
    else:
        sols = [s for s in sp.solve(nonlinear, c) if s != 0 and not jets_in(s) and not s.has(w)]
        c_star = sols[0] if len(sols) == 1 else None
        why = f"the nonlinear terms cancel for all $w$ exactly when $c = {d.latex(c_star)}$" if c_star is not None else ""
    if c_star is not None and canonical(nonlinear.subs(c, c_star)) != 0:
        c_star = None  # solve returned a root that does not cancel every term: no step may call the rest linear
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
    kappa, drift = _diffusion_and_drift(d, rhs)
    if kappa is None:
        d.add("heat-kernel", "Fundamental solution", (), r"$w_t$ is not $\kappa \Delta w + b \cdot \nabla w$ with constant $\kappa > 0$ "
              "and $b$: no Gaussian kernel derived", ("linear-equation",), "failed")
        return
    x, t = d.x, d.t
    # w_t = kappa Lap w + b . grad w: the heat kernel carried along the drift, K(x + b t, t)
    centre = x[i] + drift.xreplace({d.k: i}) * t
    quad = index_sum(centre ** 2, i)
    log_K = -d.d / 2 * sp.log(4 * sp.pi * kappa * t) - quad / (4 * kappa * t)
    K = (4 * sp.pi * kappa * t) ** (-d.d / 2) * sp.exp(-quad / (4 * kappa * t))
    kk = fresh_free_index(DIM, K, drift)
    transport = index_sum(drift.xreplace({d.k: kk}) * pdiff(K, x[kk]), kk) if drift != 0 else sp.S.Zero
    residual = canonical(pdiff(K, t) - kappa * laplacian(K, x) - transport)
    d.results["kernel"] = K
    d.results["kernel_diffusivity"] = kappa
    d.results["kernel_drift"] = drift
    d.results["log_kernel"] = canonical(log_K)
    if drift == 0:
        title, lhs = "Fundamental solution (heat kernel)", Tex(r"\partial_t K - \kappa \Delta K")
        why = (rf"Gaussian ansatz with diffusivity $\kappa = {d.latex(kappa)}$; substituting it into $w_t = \kappa \Delta w$ "
               f"leaves {d.math(residual)}")
    else:
        title, lhs = "Fundamental solution (heat kernel shifted by the drift)", Tex(r"\partial_t K - \kappa \Delta K - b \cdot \nabla K")
        why = (rf"$w_t = \kappa \Delta w + b \cdot \nabla w$ with $\kappa = {d.latex(kappa)}$ and drift $b_k = {d.latex(drift)}$: "
               rf"the Gaussian centred at $-b t$, $K(x + b t, t)$, solves it; substituting leaves {d.math(residual)}")
    d.add(
        "heat-kernel",
        title,
        (eq(sp.Function("K")(x, t), K), eq(lhs, residual)),
        why,
        ("linear-equation",),
        "verified" if residual == 0 else "failed",
    )


def _diffusion_and_drift(d, rhs):
    """``(kappa, b_k)`` when ``rhs = kappa sum_i w_{x_i x_i} + sum_i b_i w_{x_i}`` with constants (None, None otherwise)."""
    w, i = d.w, bound_index(DIM)
    lap = sp.Sum(Dxx(w, i, i), (i, 1, d.d))
    terms = sp.Add.make_args(canonical(sp.expand(rhs)))
    diffusive = [tm for tm in terms if tm.atoms(Dxx)]
    rest = [tm for tm in terms if not tm.atoms(Dxx)]
    kappa = canonical(sp.Add(*diffusive) / lap) if diffusive else sp.S.Zero
    if kappa == 0 or jets_in(kappa) or kappa.has(w) or free_indices(kappa) or kappa.has(d.x) or not kappa.is_positive:
        return None, None
    drift = sp.S.Zero
    if rest:
        transport = canonical(sp.Add(*rest))
        # sum_i b_i w_{x_i}: the coefficient of the free component w_{x_k} of the contraction, read by differentiating
        z = sp.Dummy("w_x")
        probe = transport.replace(lambda e: isinstance(e, sp.Sum), lambda e: _open_sum(e, d.k)).subs(Dx(w, d.k), z)
        drift = canonical(sp.diff(probe, z))
        if jets_in(drift) or drift.has(w) or drift.has(d.x) or canonical(transport - index_sum(drift.xreplace({d.k: i}) * Dx(w, i), i)) != 0:
            return None, None
    return kappa, drift


def _open_sum(e: sp.Sum, k):
    """The summand of a one-index sum with the bound index replaced by ``k`` (reads coefficients of contractions)."""
    if len(e.limits) != 1:
        return e
    return e.function.xreplace({e.limits[0][0]: k})


def split_linear(expr, w):
    """``(linear, nonlinear)``: the terms of ``expr`` that are additive in the jets of ``w`` and the others.

    A term ``T`` is linear when ``T[w1 + w2] - T[w1] - T[w2]`` canonicalises to zero, with ``w``, ``w_t``,
    ``w_{x_i}``, ``w_{x_i x_l}`` replaced by the sums of those of two independent functions: a test on the
    terms themselves, not on powers of ``w``, so ``|grad w|`` (degree one, not additive) and constants are nonlinear.
    """
    w1, w2 = sp.Symbol("w_1", positive=True), sp.Symbol("w_2", positive=True)

    def split(e, f):
        out = e.replace(lambda a: isinstance(a, (Dt, Dx, Dxx)) and a.args[0] == w, lambda a: type(a)(f, *a.args[1:]))
        return out.xreplace({w: f})

    linear, nonlinear = [], []
    for term in sp.Add.make_args(sp.expand(expr)):
        if not term.has(w):
            nonlinear.append(term)  # a source term: not linear in w (affine at best)
            continue
        both = term.replace(lambda a: isinstance(a, (Dt, Dx, Dxx)) and a.args[0] == w,
                            lambda a: type(a)(w1, *a.args[1:]) + type(a)(w2, *a.args[1:])).xreplace({w: w1 + w2})
        additive = canonical(sp.expand(both - split(term, w1) - split(term, w2))) == 0
        (linear if additive else nonlinear).append(term)
    return canonical(sp.Add(*linear)), canonical(sp.Add(*nonlinear))

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


# ------------------------------------------------------------------ radial Hamiltonians: H = phi(|p|)
def _radial_profile(d):
    """``phi(r)`` (``r = |p|``, a positive symbol) when ``H`` depends on ``p`` only through ``sum_i p_i^2``; else None."""
    if d.A is not None:
        return None
    p, r = d.p, sp.Symbol("r", positive=True)

    def is_norm_sq(e):
        if not (isinstance(e, sp.Sum) and len(e.limits) == 1):
            return False
        idx = e.limits[0][0]
        return canonical(e.function - p[idx] ** 2) == 0

    phi = d.H.replace(is_norm_sq, lambda e: r**2)
    if phi.has(p) or phi.free_symbols & {d.x.label} or free_indices(phi) or not phi.has(r):
        return None
    return sp.simplify(phi)


def _radial_legendre(d, phi, hess):
    """Convexity and the Legendre transform of ``H = phi(|p|)``: convex iff phi is nondecreasing and convex on r > 0.

    Strictly convex and increasing: ``L(q) = psi(|q|)``, ``psi(s) = r* s - phi(r*)`` with ``phi'(r*) = s`` solved by SymPy.
    A norm (phi linear): ``L`` is the indicator of the ball ``|q| <= phi'`` and the Hopf-Lax formula a minimum over it.
    """
    r, s = sp.Symbol("r", positive=True), sp.Symbol("s", positive=True)
    p, q, k, l = d.p, sp.IndexedBase("q"), d.k, d.l
    d1, d2 = sp.simplify(phi.diff(r)), sp.simplify(phi.diff(r, 2))
    shown = (eq(sp.Function("H")(p), phi.subs(r, sp.Function("r")(p))), eq(sp.Symbol(r"\phi'(r)"), d1), eq(sp.Symbol(r"\phi''(r)"), d2))
    if not (d1.is_nonnegative and d2.is_nonnegative):
        d.add("convexity", "Convexity of $H$ in $p$", shown + (eq(Partial(sp.Symbol("H"), p[k], p[l]), hess),),
              rf"$H = \phi(|p|)$ with $\phi(r) = {d.latex(phi)}$; $\phi' = {d.latex(d1)}$ and $\phi'' = {d.latex(d2)}$ are not both "
              "known to be nonnegative for $r > 0$: convexity is not established", ("hj-equation",))
        return
    strict = bool(d2.is_positive)
    sign = "> 0" if strict else r"\ge 0"
    d.add("convexity", "Convexity of $H$ in $p$ (a function of $|p|$)", shown,
          rf"$H = \phi(|p|)$ with $\phi(r) = {d.latex(phi)}$: $\phi' = {d.latex(d1)} \ge 0$ and $\phi'' = {d.latex(d2)} "
          rf"{sign}$ for $r > 0$, so $H$ is a nondecreasing convex function of a norm: "
          f"{'strictly convex' if strict else 'convex (not strictly)'}", ("hj-equation",))
    i = bound_index(DIM)
    qnorm = sp.sqrt(index_sum(q[i] ** 2, i))
    if d2 == 0:  # phi(r) = a r (+ const): H is a multiple of a norm, its conjugate an indicator
        a = d1
        const = sp.simplify(phi - a * r)
        d.results["lagrangian_ball"] = a
        d.add("legendre", "Legendre transform of a norm", (eq(sp.Function("L")(q), Tex(
            rf"{sp.latex(-const)} \text{{ if }} |q| \le {sp.latex(a)}, \; +\infty \text{{ otherwise}}")),),
            rf"$L(q) = \sup_p (p \cdot q - {d.latex(a)} |p|{' - ' + d.latex(const) if const != 0 else ''})$ is finite only on the "
            rf"ball $|q| \le {d.latex(a)}$ (the dual norm's unit ball, scaled): an indicator, not a formula to substitute", ("convexity",))
        yv = sp.IndexedBase("y")
        d.add("hopf-lax", "Hopf–Lax formula (inviscid solution): a minimum over a ball",
              eq(Tex("u_{0}"), InfOver(sp.Function("g")(yv) + (-const) * d.t, Tex(rf"|x - y| \le {sp.latex(a * d.t)}"))),
              rf"$u_0(x, t) = \inf_y g(y) + t L((x - y)/t)$ with $L$ the indicator: the minimum of $g$ over the ball of radius "
              f"${d.latex(a)} t$ (finite speed of propagation)", ("legendre",))
        return
    sols = [sol for sol in sp.solve(sp.Eq(d1, s), r) if sol.is_positive is not False and not sol.has(r)]
    if len(sols) != 1:
        d.add("legendre", "Legendre transform", eq(sp.Symbol(r"\phi'(r)"), s),
              rf"$\phi'(r) = s$ could not be solved for a unique $r > 0$ (solutions: {', '.join(d.math(x) for x in sols) or 'none'})",
              ("convexity",), "failed")
        return
    rstar = sols[0]
    psi = sp.simplify(rstar * s - phi.subs(r, rstar))
    L = canonical(psi.subs(s, qnorm))
    d.results["lagrangian"] = L
    d.L_q = q
    d.add("legendre", "Legendre transform $L = H^*$ (radial)",
          (eq(sp.Symbol(r"\phi'(r^{*})"), s), eq(sp.Symbol("r^{*}"), rstar), eq(sp.Function("L")(q), L)),
          rf"for $H = \phi(|p|)$ the supremum of $p \cdot q - H(p)$ is attained at $p$ parallel to $q$ with $|p| = r^*$, "
          rf"$\phi'(r^*) = |q| = s$, solved by SymPy: $r^* = {d.latex(rstar)}$; $L(q) = r^* s - \phi(r^*)$ at $s = |q|$", ("convexity",))
