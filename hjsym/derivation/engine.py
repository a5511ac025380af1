"""The derivation engine: from a validated spec to numbered, reasoned steps and named results.

Each pass below adds steps (equation, LaTeX, one-line reason, the steps it uses) and named
results; a pass that does not apply to a spec is skipped, and one that fails says so in a step
of its own. Nothing here asserts a formula: each result is computed by SymPy from the spec
(derivatives by the rules of :mod:`hjsym.symbolic.reductions`, equalities by canonicalising a
difference to zero, the Hopf-Cole constant by ``solve``).

Passes, in order: Hamilton-Jacobi equation; characteristics; convexity and Legendre transform;
Hopf-Lax formula; Hopf-Cole search and the linear equation; heat kernel; atomic initial data
(solution, residual, derivatives); network (parameter map, identity, Hessian and its bound,
attributions); tropical limit and its bounds; the ReLU construction; classification.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from . import activations
from . import anisotropic
from . import gibbs
from ..symbolic.calculus import canonical, free_indices, index_sum, instantiate, laplacian, pdiff, substitute_indexed
from ..codegen.printer import FunctionSpec
from ..symbolic.axes import ATOM, DIM, bound_index, free_index
from ..symbolic.jets import Dt, Dx, Dxx
from ..symbolic.latex import InfOver, Limit0, Partial, Tex, eq, le
from ..symbolic.reductions import LogSumExp, ReduceMax, ReduceMin, TopGap, gibbs_mean, lse
from ..spec.validate import SymbolicSpec

__all__ = ["Step", "Classification", "derive_symbolic"]

STATUSES = ("derived", "verified", "stated", "failed")


@dataclass
class Step:
    """One step of a derivation.

    ``status`` is ``derived`` (SymPy computed the right-hand side), ``verified`` (a claimed
    equality whose difference SymPy reduced to zero), ``stated`` (a definition, or an
    inequality justified by ``reason``) or ``failed`` (the pass could not complete; ``reason``
    says why and what is left).
    """

    id: str
    title: str
    equations: tuple
    reason: str
    uses: tuple[str, ...] = ()
    status: str = "derived"


@dataclass
class Classification:
    """Exact / structural / open, with the statement and the symbolic gap term."""

    kind: str
    statement: str
    gap: sp.Expr = sp.S.Zero


@dataclass
class SymbolicDerivation:
    """What :func:`derive_symbolic` returns; :class:`hjsym.Derivation` wraps it."""

    steps: list[Step]
    results: dict[str, sp.Expr]
    functions: dict[str, FunctionSpec]
    classification: Classification
    symbol_names: dict = field(default_factory=dict)


def derive_symbolic(sym: SymbolicSpec) -> SymbolicDerivation:
    """Run every applicable pass on a validated spec."""
    d = _Deriver(sym)
    d.run()
    return SymbolicDerivation(d.steps, d.results, d.fns, d.classify(), {**sym.latex_names(), **d.symbol_names})


class _Deriver:
    def __init__(self, sym: SymbolicSpec):
        self.sym = sym
        self.steps: list[Step] = []
        self.results: dict[str, sp.Expr] = {}
        self.fns: dict[str, FunctionSpec] = {}  # or ProgramSpec (several outputs; hjsym.codegen.program)
        self.symbol_names: dict = {}  # LaTeX names of symbols a pass introduces
        self.classification: Classification | None = None  # set by a pass that classifies itself
        self.x, self.p, self.t = sym.x, sym.p, sym.t
        self.H, self.nu = sym.hamiltonian, sym.viscosity
        spec = sym.spec
        self.A = sym.tensors[spec.diffusion] if spec.diffusion else None
        self.k, self.l = free_index(DIM, 0), free_index(DIM, 1)
        self.m = free_index(ATOM, 0)
        self.u = sp.Symbol("u")
        self.w = sp.Symbol("w", positive=True)
        self.d = DIM.extent
        self.N = ATOM.extent

    # ------------------------------------------------------------------ bookkeeping
    def add(self, id, title, equations, reason, uses=(), status="derived"):
        if status not in STATUSES:
            raise ValueError(status)
        if isinstance(equations, sp.Basic):
            equations = (equations,)
        for u in uses:
            if not any(s.id == u for s in self.steps):
                raise RuntimeError(f"step {id} uses unknown step {u}")
        self.steps.append(Step(id, title, tuple(equations), reason, tuple(uses), status))

    def has(self, id) -> bool:
        return any(s.id == id for s in self.steps)

    def fn(self, name, expr, doc, out=()):
        self.fns[name] = FunctionSpec(name, expr, self.sym.args_of(expr), tuple(out), doc)

    def run(self):
        if self.H is not None:
            self.results["hamiltonian"] = self.H
        if self.nu is not None:
            self.results["viscosity"] = self.nu
        if self.H is not None:
            self.hj_equation()
            self.characteristics()
            self.convexity_and_legendre()
            anisotropic.input_map(self)
            self.hopf_cole()
        if self.sym.spec.initial_data is not None and self.H is not None:
            self.hopf_lax()
            self.atomic_solution()
        if self.sym.network is not None:
            self.network_output()
            if "u" in self.results:
                self.parameter_map()
            self.hessian()
            self.attribution()
            self.tropical()
        self.relu_construction()
        activations.run(self)
        gibbs.run(self)
        if self.sym.spec.dynamics is not None:
            from .pontryagin import control_pass

            control_pass(self)

    # ------------------------------------------------------------------ the PDE
    def diffusion_of(self, jet_xx):
        """``nu * sum_{il} D_il jet(i, l)`` (``D`` the identity unless the spec sets it)."""
        i, l = bound_index(DIM, 0), bound_index(DIM, 1)
        if self.A is None:
            return self.nu * sp.Sum(jet_xx(i, i), (i, 1, self.d))
        return self.nu * sp.Sum(sp.Sum(self.A[i, l] * jet_xx(i, l), (l, 1, self.d)), (i, 1, self.d))

    def hamiltonian_at(self, grad_template, index):
        """``H(x, p)`` with ``p_k`` replaced by ``grad_template`` (free index ``index``)."""
        return substitute_indexed(self.H, self.p, grad_template, (index,))

    def hj_equation(self):
        u, k = self.u, self.k
        lhs = canonical(Dt(u) + self.hamiltonian_at(Dx(u, k), k))
        rhs = canonical(self.diffusion_of(lambda i, l: Dxx(u, i, l)))
        self.results["hj_equation"] = eq(lhs, rhs)
        metric = "" if self.A is None else f" with diffusion matrix {self.sym.spec.diffusion}"
        self.add(
            "hj-equation",
            "Viscous Hamilton-Jacobi equation",
            eq(lhs, rhs),
            f"u_t + H(x, grad u) = nu * div(D grad u) with the spec's Hamiltonian and viscosity{metric}",
        )

    def hj_residual(self, u_expr):
        """``u_t + H(x, grad u) - nu * div(D grad u)`` for an explicit ``u(x, t)``."""
        k = self.k
        grad_k = pdiff(u_expr, self.x[k])
        metric = None if self.A is None else self.A
        return canonical(pdiff(u_expr, self.t) + self.hamiltonian_at(grad_k, k) - self.nu * laplacian(u_expr, self.x, metric))

    def characteristics(self):
        k, x, p = self.k, self.x, self.p
        xdot = pdiff(self.H, p[k])
        pdot = canonical(-pdiff(self.H, x[k]))
        self.results["xdot"], self.results["pdot"] = xdot, pdot
        eqs = [eq(sp.IndexedBase(r"\dot{x}")[k], xdot), eq(sp.IndexedBase(r"\dot{p}")[k], pdot)]
        reason = "Hamilton's equations x' = dH/dp, p' = -dH/dx"
        if pdot == 0:
            reason += "; H does not depend on x, so p is constant and characteristics are straight lines"
        self.add("characteristics", "Characteristics (Hamilton's equations)", eqs, reason, uses=("hj-equation",))

    def convexity_and_legendre(self):
        if self.A is not None:  # a quadratic form with a diffusion matrix: contract with its inverse
            return anisotropic.convexity_and_legendre(self)
        k, l, p = self.k, self.l, self.p
        hess = pdiff(pdiff(self.H, p[k]), p[l])
        self.results["hamiltonian_hessian"] = hess
        convex, why = self._positive_definite(hess)
        display = eq(Partial(sp.Symbol("H"), p[k], p[l]), hess)
        self.add("convexity", "Convexity of H in p", display, why, uses=("hj-equation",), status="derived")
        if not convex:
            return
        if self.results["pdot"] != 0:
            self.add("legendre", "Legendre transform", (), "H depends on x: no x-independent Lagrangian", ("convexity",), "failed")
            return
        q = sp.IndexedBase("q")
        grad = pdiff(self.H, p[k])
        sol = sp.solve(eq(q[k], grad), p[k], dict=True)
        if len(sol) != 1 or sol[0][p[k]].has(p):
            self.add(
                "legendre",
                "Legendre transform",
                eq(q[k], grad),
                "the stationarity condition q = dH/dp could not be solved componentwise for p",
                ("convexity",),
                "failed",
            )
            return
        self.legendre(q, grad, sol[0][p[k]], "L(q) = sup_p (p.q - H(p)): solve the stationarity condition q = dH/dp for p and substitute")

    def legendre(self, q, grad, pk, reason):
        """``L(q) = p.q - H(p)`` at the solution ``p_k = pk`` of ``q_k = grad``; records the step."""
        p, k = self.p, self.k
        i = bound_index(DIM)
        L = substitute_indexed(sp.Sum(p[i] * q[i], (i, 1, self.d)) - self.H, p, pk, (k,))
        self.results["lagrangian"] = L
        self.L_q = q
        self.add("legendre", "Legendre transform L = H*", (eq(q[k], grad), eq(p[k], pk), eq(sp.Function("L")(q), L)), reason, ("convexity",))

    def _positive_definite(self, hess):
        if hess.has(self.p):
            return False, "d2H/dp2 depends on p; convexity is not established symbolically"
        delta = sp.KroneckerDelta(self.k, self.l)
        c = canonical(hess / delta)
        if not free_indices(c) and c.is_positive:
            return True, f"d2H/dp2 = {c} * identity is positive definite: H is strictly convex"
        if self.A is not None:
            decl = self.sym.tensor_decl[self.sym.spec.diffusion]
            coeffs = [sp.Wild("a"), sp.Wild("b")]
            m = canonical(hess).match(coeffs[0] * self.A[self.k, self.l] + coeffs[1] * self.A[self.l, self.k])
            if m and decl.positive_definite and all(m[w].is_nonnegative for w in coeffs) and any(m[w].is_positive for w in coeffs):
                return True, f"d2H/dp2 is a positive multiple of {decl.name}, declared symmetric positive definite (re-checked on real weights)"
        return False, "d2H/dp2 is not recognisably positive definite; convexity is not established"

    # ------------------------------------------------------------------ Hopf-Cole
    def hopf_cole(self):
        u, w, k = self.u, self.w, self.k
        c = sp.Symbol("c", nonzero=True, real=True)
        ansatz = {
            Dt: lambda f: -c * Dt(w) / w,
            Dx: lambda f, i: -c * Dx(w, i) / w,
            Dxx: lambda f, i, l: -c * Dxx(w, i, l) / w + c * Dx(w, i) * Dx(w, l) / w**2,
        }
        hj = self.results["hj_equation"]
        pde = hj.lhs - hj.rhs
        for cls, rule in ansatz.items():
            pde = pde.replace(lambda e, cls=cls: isinstance(e, cls) and e.args[0] == u, lambda e, rule=rule: rule(*e.args))
        scaled = canonical(w * pde)
        parts = sp.collect(sp.expand(scaled), w, evaluate=False)
        linear_part = parts.pop(sp.S.One, sp.S.Zero)
        nonlinear = canonical(sum((coef * key for key, coef in parts.items()), sp.S.Zero))
        self.add(
            "hopf-cole-ansatz",
            "Hopf-Cole substitution",
            (
                eq(u, -c * sp.log(w)),
                eq(Dt(u), -c * Dt(w) / w),
                eq(Dx(u, k), -c * Dx(w, k) / w),
                eq(Dxx(u, k, self.l), ansatz[Dxx](u, k, self.l)),
            ),
            "substitute u = -c log w with an unknown constant c; the chain rule gives the jets of u",
            ("hj-equation",),
        )
        self.add(
            "hopf-cole-split",
            "The equation for w, split by powers of w",
            (eq(Tex(r"\mathrm{linear}"), linear_part), eq(Tex(r"\mathrm{nonlinear}"), nonlinear)),
            "multiply the equation by w: terms with 1/w are nonlinear in w, the rest is linear",
            ("hopf-cole-ansatz",),
        )
        jets = lambda e: bool(e.atoms(Dx) or e.atoms(Dxx) or e.atoms(Dt))  # noqa: E731
        if nonlinear == 0:
            c_star = sp.S.One
            why = "there is no nonlinear term: any c works; take c = 1"
        else:
            sols = [s for s in sp.solve(nonlinear, c) if s != 0 and not jets(s) and not s.has(w)]
            c_star = sols[0] if len(sols) == 1 else None
            why = f"the nonlinear terms cancel for all w exactly when c = {sp.sstr(c_star)}" if c_star is not None else ""
        if c_star is None:
            guess = self.nu if self.nu != 0 else sp.S.One
            leftover = canonical(nonlinear.subs(c, guess) / w)
            self.results["hopf_cole_leftover"] = leftover
            self.add(
                "hopf-cole-solve",
                "Hopf-Cole: does not linearise",
                eq(Tex(r"\mathrm{leftover}"), leftover),
                f"no constant c removes the nonlinear terms for every w; with c = {sp.sstr(guess)} this term remains",
                ("hopf-cole-split",),
                "failed",
            )
            return
        self.results["hopf_cole_c"] = c_star
        linear = canonical(linear_part.subs(c, c_star))
        wt = sp.solve(linear, Dt(w))
        if len(wt) != 1:
            self.add("hopf-cole-solve", "Hopf-Cole constant", eq(c, c_star), why + "; the linear part has no w_t to solve for",
                     ("hopf-cole-split",), "failed")
            return
        rhs = canonical(wt[0])
        self.results["linear_equation"] = eq(Dt(w), rhs)
        self.add("hopf-cole-solve", "Hopf-Cole constant", eq(c, c_star), why, ("hopf-cole-split",))
        self.add(
            "linear-equation",
            "The linear equation for w",
            eq(Dt(w), rhs),
            "the remaining (linear) part with c substituted, solved for w_t",
            ("hopf-cole-solve",),
        )
        self.heat_kernel(rhs)

    def heat_kernel(self, rhs):
        if self.A is not None:
            return anisotropic.heat_kernel(self, rhs)
        w, i = self.w, bound_index(DIM)
        kappa = canonical(rhs / sp.Sum(Dxx(w, i, i), (i, 1, self.d)))
        if self.A is not None or jets_in(kappa) or kappa.has(w) or free_indices(kappa):
            self.add("heat-kernel", "Fundamental solution", (), "w_t is not a multiple of the Laplacian of w: no Gaussian kernel derived",
                     ("linear-equation",), "failed")
            return
        x, t = self.x, self.t
        K = (4 * sp.pi * kappa * t) ** (-self.d / 2) * sp.exp(-index_sum(x[i] ** 2, i) / (4 * kappa * t))
        residual = canonical(pdiff(K, t) - kappa * laplacian(K, x))
        self.results["kernel"] = K
        self.results["kernel_diffusivity"] = kappa
        self.results["log_kernel"] = canonical(-self.d / 2 * sp.log(4 * sp.pi * kappa * t) - index_sum(x[i] ** 2, i) / (4 * kappa * t))
        self.add(
            "heat-kernel",
            "Fundamental solution (heat kernel)",
            (eq(sp.Function("K")(x, t), K), eq(Tex(r"\partial_t K - \kappa \Delta K"), residual)),
            f"Gaussian ansatz with diffusivity kappa = {sp.sstr(kappa)}; substituting it into w_t = kappa Lap w leaves {sp.sstr(residual)}",
            ("linear-equation",),
            "verified" if residual == 0 else "failed",
        )

    # ------------------------------------------------------------------ Hopf-Lax
    def hopf_lax(self):
        if "lagrangian" not in self.results:
            return
        k, x, t = self.k, self.x, self.t
        q = self.L_q
        yv = sp.IndexedBase("y")
        tl_cont = substitute_indexed(t * self.results["lagrangian"], q, (x[k] - yv[k]) / t, (k,))
        self.add(
            "hopf-lax",
            "Hopf-Lax formula (inviscid solution)",
            eq(Tex("u_{0}"), InfOver(sp.Function("g")(yv) + tl_cont, yv)),
            "the viscosity solution of u_t + H(grad u) = 0 with convex H: u0(x,t) = inf_y g(y) + t L((x - y)/t)",
            ("legendre",),
        )
        data = self.sym.spec.initial_data
        Y, G = self.sym.tensors[data.points], self.sym.tensors[data.values]
        j = bound_index(ATOM)
        tl = substitute_indexed(t * self.results["lagrangian"], q, (x[k] - Y[j, k]) / t, (k,))
        u0 = canonical(ReduceMin(G[j] + tl, (j, 1, self.N)))
        self.results["hopf_lax"] = u0
        self.fn("hopf_lax", u0, "Hopf-Lax solution u0(x, t) = min_j g_j + t L((x - y_j)/t) for atomic initial data")
        self.add(
            "hopf-lax-atomic",
            "Hopf-Lax formula for atomic initial data",
            eq(Tex("u_{0}"), u0),
            "g is +inf away from the atoms y_j, so the infimum is a minimum over j",
            ("hopf-lax",),
        )

    # ------------------------------------------------------------------ atomic initial data
    def atomic_solution(self):
        if "kernel" not in self.results:
            return
        data = self.sym.spec.initial_data
        Y, G = self.sym.tensors[data.points], self.sym.tensors[data.values]
        x, t, k = self.x, self.t, self.k
        j = bound_index(ATOM)
        c, log_kernel = self.results["hopf_cole_c"], self.results["log_kernel"]
        log_k = substitute_indexed(log_kernel, x, x[k] - Y[j, k], (k,))  # the kernel centred at y_j
        u_exact = canonical(-c * lse(-G[j] / c + log_k, j))
        const = canonical(-c * substitute_indexed(log_kernel, x, sp.S.Zero, (k,)))
        u = canonical(u_exact - const)
        self.results["u_exact"], self.results["u"] = u_exact, u
        self.add(
            "atomic-solution",
            "Solution for atomic initial data",
            (
                eq(sp.Function("w")(x, 0), sp.Sum(sp.exp(-G[j] / c) * sp.Function(r"\delta")(x - Y[j]), (j, 1, self.N))),
                eq(Tex(r"u_{\mathrm{exact}}"), u_exact),
            ),
            "w(., 0) = exp(-g/c) on the atoms; w(., t) is the superposition of kernels, and u = -c log w",
            ("heat-kernel", "hopf-cole-solve"),
        )
        self.add(
            "unnormalised-solution",
            "The unnormalised solution u_eps (the paper's form)",
            eq(Tex(r"u_{\varepsilon}"), u),
            f"drop the constant {sp.sstr(const)} (it does not depend on x); u_eps is what the network computes",
            ("atomic-solution",),
        )
        self.fn("u", u, "Hopf-Cole solution u_eps(x, t) for atomic initial data (unnormalised)")
        self.fn("u_exact", u_exact, "exact Hopf-Cole solution (normalised kernel)")
        res = self.hj_residual(u)
        # u_exact = u + const(t): the gradient and the second derivatives agree, only u_t gains d const/dt
        res_exact = canonical(res + pdiff(const, t)) if not const.has(x) else self.hj_residual(u_exact)
        self.results["residual"], self.results["residual_exact"] = res, res_exact
        self.fn("residual", res, "PDE residual u_t + H(grad u) - eps Lap u of the unnormalised solution (a constant)")
        self.add(
            "residual",
            "PDE residual of u_eps",
            (eq(Tex(r"\mathcal{R}[u_{\varepsilon}]"), res), eq(Tex(r"\mathcal{R}[u_{\mathrm{exact}}]"), res_exact)),
            "substitute u into the PDE and differentiate through the log-sum-exp (Gibbs averages); everything cancels but a constant; "
            "u_exact differs from u by a function of t alone, which adds its t-derivative",
            ("unnormalised-solution", "hj-equation"),
            "verified" if res_exact == 0 else "derived",
        )
        grad = pdiff(u, x[k])
        lap = laplacian(u, x, self.A)  # tr(A Hess u) when the spec has a diffusion matrix
        ut = pdiff(u, t)
        self.results.update(grad_u=grad, laplacian_u=lap, u_t=ut)
        self.fn("grad_u", grad, "gradient of u_eps", out=(k,))
        self.fn("laplacian_u", lap, "Laplacian of u_eps")
        self.fn("u_t", ut, "time derivative of u_eps")
        self.add(
            "derivatives",
            "Derivatives of u_eps",
            (eq(Dx(Tex(r"u_{\varepsilon}"), k), grad), eq(Tex(r"\Delta u_{\varepsilon}"), lap),
             eq(Dt(Tex(r"u_{\varepsilon}")), ut)),
            "d LSE = E_pi[d logits] and d E_pi[a] = E_pi[da] + Cov_pi(a, d logits): the gradient is an average over atoms",
            ("unnormalised-solution",),
        )

    # ------------------------------------------------------------------ network
    def network_output(self):
        f = self.sym.network
        self.results["f"] = f
        self.fn("f", f, "network output f_eps(x)")
        self.add("network", "The network", eq(Tex(r"f_{\varepsilon}"), f), "the spec's network output", ())

    def _lse_term(self, expr):
        """``(coefficient, LogSumExp node, rest)`` of an expression with one log-sum-exp term."""
        terms = sp.Add.make_args(canonical(expr))
        with_lse = [t for t in terms if t.atoms(LogSumExp)]
        if len(with_lse) != 1:
            return None
        node = next(iter(with_lse[0].atoms(LogSumExp)))
        coeff = canonical(with_lse[0] / node)
        if coeff.atoms(LogSumExp):
            return None
        rest = canonical(sp.Add(*[t for t in terms if t is not with_lse[0]]))
        return coeff, node, rest

    def parameter_map(self):
        sym, x, k, m = self.sym, self.x, self.k, self.m
        f_split, u_split = self._lse_term(self.results["f"]), self._lse_term(self.results["u"])
        if f_split is None or u_split is None:
            self.add("parameter-map", "Parameter map", (), "the network or the solution is not a single log-sum-exp", ("network",), "failed")
            return
        (cf, lf, rf), (cu, lu, ru) = f_split, u_split
        if canonical(cf + cu) != 0:
            self.add("parameter-map", "Parameter map", eq(cf, -cu),
                     "the network's temperature differs from the solution's viscosity: no weights can match", ("network",), "failed")
            return
        j = bound_index(ATOM)
        zf, zu = lf.logits.xreplace({lf.index: j}), lu.logits.xreplace({lu.index: j})
        zf, zu = canonical(zf), canonical(zu)
        inst = lambda e: instantiate(e, {j: m})  # noqa: E731
        grad_f, grad_u = inst(pdiff(zf, x[k])), inst(pdiff(zu, x[k]))
        zero_x = lambda e: substitute_indexed(e, x, sp.S.Zero, (k,))  # noqa: E731
        const_f, const_u = inst(zero_x(zf)), inst(zero_x(zu))
        affine = pdiff(grad_f - grad_u, x[self.l]) == 0
        data = sym.spec.initial_data
        Y, G = sym.tensors[data.points], sym.tensors[data.values]
        weights = [sym.tensors[w] for w in sym.spec.network.weights]
        slope = [w for w in weights if tuple(sym.tensor_decl[w.label.name].axes) == ("atom", "dim")]
        offset = [w for w in weights if tuple(sym.tensor_decl[w.label.name].axes) == ("atom",)]
        if not affine or len(slope) != 1 or len(offset) != 1:
            self.add("parameter-map", "Parameter map", (), "the logits are not affine in x with one slope and one offset weight",
                     ("network",), "failed")
            return
        Wb, bb = slope[0], offset[0]
        W_of = sp.solve(eq(grad_f, grad_u), Wb[m, k])
        b_of = sp.solve(eq(const_f, const_u), bb[m])
        y_of = anisotropic.solve_indexed(eq(grad_f, grad_u), Y[m, k])
        if len(W_of) != 1 or len(b_of) != 1 or y_of is None:
            self.add("parameter-map", "Parameter map", (eq(grad_f, grad_u), eq(const_f, const_u)),
                     "matching the logits does not determine the weights uniquely", ("network",), "failed")
            return
        W_of, b_of = canonical(W_of[0]), canonical(b_of[0])
        const_u_y = substitute_indexed(const_u, Y, y_of, (m, k))
        g_of = sp.solve(eq(const_f, const_u_y), G[m])
        g_of = canonical(g_of[0])
        self.results.update(W_of_atoms=W_of, b_of_atoms=b_of, y_of_weights=y_of, g_of_weights=g_of)
        self.fn("weights_W", W_of, "network slopes W from atoms: W_j = dz/dx matched", out=(m, k))
        self.fn("weights_b", b_of, "network offsets b from atoms", out=(m,))
        self.fn("atoms_y", y_of, "atom positions y read out of the network weights", out=(m, k))
        self.fn("atoms_g", g_of, "initial values g read out of the network weights", out=(m,))
        self.add(
            "parameter-map",
            "Parameter map (weights <-> initial data)",
            (eq(Wb[m, k], W_of), eq(bb[m], b_of), eq(Y[m, k], y_of), eq(G[m], g_of)),
            "the two log-sum-exps agree when their logits agree as affine functions of x: match the x-coefficients and the constants",
            ("network", "unnormalised-solution"),
        )
        f_mapped = substitute_indexed(substitute_indexed(self.results["f"], Wb, W_of, (m, k)), bb, b_of, (m,))
        rhs = canonical(rf + ru)
        diff = canonical(f_mapped + self.results["u"] - rhs)
        self.results["identity_rhs"] = rhs
        self.fn("identity_rhs", rhs, "right-hand side of f_eps + u_eps under the parameter map")
        self.add(
            "identity",
            "The network is the Hopf-Cole solution",
            (eq(Tex(r"f_{\varepsilon}") + Tex(r"u_{\varepsilon}"), rhs), eq(Tex(r"\mathrm{difference}"), diff)),
            "substitute the parameter map into f and add u: the log-sum-exps cancel exactly",
            ("parameter-map",),
            "verified" if diff == 0 else "failed",
        )

    def hessian(self):
        split = self._lse_term(self.results["f"])
        if split is None:
            return
        cf, node, rest = split
        x, k, l = self.x, self.k, self.l
        hess = pdiff(pdiff(self.results["f"], x[k]), x[l])
        z, j = node.logits, node.index
        a_k, a_l = pdiff(z, x[k]), pdiff(z, x[l])
        curvature = pdiff(a_k, x[l])
        cov = gibbs_mean(a_k * a_l, z, j) - gibbs_mean(a_k, z, j) * gibbs_mean(a_l, z, j)
        diff = canonical(hess - cf * cov) if curvature == 0 and pdiff(pdiff(rest, x[k]), x[l]) == 0 else None
        self.results["hessian_f"] = hess
        self.fn("hessian_f", hess, "Hessian of the network output", out=(k, l))
        self.add(
            "hessian",
            "Hessian of the network: a Gibbs covariance",
            (eq(Partial(sp.Symbol("f"), x[k], x[l]), hess),
             eq(Tex(r"\nabla^2 f - c\,\mathrm{Cov}_{\pi}(\nabla z)"), diff if diff is not None else sp.nan)),
            "differentiate twice through the log-sum-exp; with affine logits only the covariance term survives",
            ("network",),
            "verified" if diff == 0 else "derived",
        )
        if diff == 0:
            i = bound_index(DIM)
            bound = canonical(cf * ReduceMax(index_sum(a_k.xreplace({k: i}) ** 2, i), (j, 1, self.N)))
            self.results["hessian_bound"] = bound
            self.fn("hessian_bound", bound, "bound on the spectral norm of the Hessian")
            self.add(
                "hessian-bound",
                "Curvature (robustness) bound",
                le(Tex(r"\|\nabla^2 f\|_2"), bound),
                "Cov_pi(a) <= E_pi[a a^T] and ||E_pi[a a^T]||_2 <= E_pi|a|^2 <= max_j |a_j|^2, with a_j = grad of the j-th logit",
                ("hessian",),
                "stated",
            )

    def attribution(self):
        sym = self.sym
        m = self.m
        for name in sym.spec.network.weights:
            if tuple(sym.tensor_decl[name].axes) != ("atom",):
                continue
            b = sym.tensors[name]
            att = pdiff(self.results["f"], b[m])
            self.results[f"d_f_d_{name}"] = att
            self.fn("attribution", att, f"attribution pi_m = df/d{name}_m of each neuron", out=(m,))
            self.add(
                "attribution",
                f"Attribution: df/d{name}",
                eq(Partial(sp.Symbol("f"), b[m]), att),
                f"only the m-th logit contains {name}_m, so the derivative is the m-th Gibbs weight (closed form, O(N))",
                ("network",),
            )
            return

    # ------------------------------------------------------------------ tropical limit
    def tropical(self):
        eps = self.nu
        split = self._lse_term(self.results["f"])
        if not isinstance(eps, sp.Symbol) or split is None:
            return
        f0 = tropical_limit(self.results["f"], eps)
        self.results["f0"] = f0
        self.fn("f0", f0, "tropical (max-plus) network f_0 = lim_{eps->0} f_eps")
        eqs = [eq(Tex("f_{0}"), Limit0(Tex(r"f_{\varepsilon}"), eps)), eq(Tex("f_{0}"), f0)]
        uses = ["network"]
        status = "derived"
        if "u" in self.results:
            u0 = tropical_limit(self.results["u"], eps)
            self.results["u0"] = u0
            eqs.append(eq(Tex("u_{0}"), u0))
            uses.append("unnormalised-solution")
            if "hopf_lax" in self.results:
                diff = canonical(u0 - self.results["hopf_lax"])
                eqs.append(eq(Tex(r"u_{0} - u_{\mathrm{HL}}"), diff))
                uses.append("hopf-lax-atomic")
                status = "verified" if diff == 0 else "failed"
        self.add(
            "tropical-limit",
            "Tropical limit eps -> 0",
            tuple(eqs),
            "eps log sum_j exp(a_j/eps) -> max_j a_j (Laplace's principle); the viscous solution tends to the Hopf-Lax one",
            tuple(uses),
            status,
        )
        cf, node, _ = split
        a = canonical(cf * node.logits)
        bound = canonical(cf * sp.log(self.N))
        gap_top = canonical(TopGap(a, *node.limits))
        sharp_display = cf * sp.log(1 + (self.N - 1) * sp.exp(-Tex(r"\Delta") / cf))
        sharp = canonical(cf * sp.log(1 + (self.N - 1) * sp.exp(-gap_top / cf)))
        self.results["top_gap"] = gap_top
        gap = canonical(self.results["f"] - f0)
        self.results.update(tropical_gap=gap, tropical_bound=bound, tropical_bound_sharp=sharp)
        self.fn("tropical_bound", bound, "bound eps log N on f_eps - f_0")
        self.fn("tropical_bound_sharp", sharp, "sharper bound eps log(1 + (N-1) exp(-gap/eps)), gap = top-two logit gap")
        self.add(
            "tropical-bounds",
            "Bounds on the tropical gap",
            (eq(Tex(r"f_{\varepsilon} - f_{0}"), gap),
             le(Tex(r"0 \le f_{\varepsilon} - f_{0}"), bound),
             le(Tex(r"f_{\varepsilon} - f_{0}"), sharp_display)),
            "sum_j exp((a_j - max a)/eps) has one term equal to 1 and N - 1 terms each <= exp(-Delta/eps), Delta the top-two gap",
            ("tropical-limit",),
            "stated",
        )

    def relu_construction(self):
        """The max-plus layer with atoms {0, 2t}, values {0, -t} (d = 1) is ReLU."""
        L = self.results.get("lagrangian")
        if L is None:
            return
        q = self.L_q
        xs, t = sp.Symbol("x", real=True), self.t
        atoms = ((sp.S.Zero, sp.S.Zero), (2 * t, -t))
        L1 = canonical(L).subs(self.d, 1)
        L1 = L1.replace(lambda e: isinstance(e, sp.Sum), lambda e: e.function.subs(e.limits[0][0], 1))
        vals = []
        for y, g in atoms:
            vals.append(g + t * L1.replace(lambda e: isinstance(e, sp.Indexed) and e.base == q, lambda e: (xs - y) / t))
        # -min(a, b) = max(-a, -b), then expand each branch
        f0 = sp.Max(*[sp.expand(xs**2 / (4 * t) - v) for v in vals])
        if f0 != sp.Max(0, xs):
            return
        self.results["relu_f0"] = f0
        self.add(
            "relu",
            "Hopf-Lax recovers ReLU",
            (eq(Tex("u_{0}"), sp.Min(*vals)), eq(xs**2 / (4 * t) - Tex("u_{0}"), f0)),
            "in d = 1 with atoms {0, 2t} and values {0, -t}: |x|^2/(4t) - min_j(...) = max(0, x) = ReLU(x)",
            ("hopf-lax-atomic",) if self.has("hopf-lax-atomic") else ("legendre",),
            "verified",
        )

    # ------------------------------------------------------------------ classification
    def classify(self) -> Classification:
        if self.classification is not None:
            return self.classification
        ident = next((s for s in self.steps if s.id == "identity"), None)
        if ident is not None and ident.status == "verified":
            return Classification(
                "exact",
                "the network output plus the Hopf-Cole solution equals a fixed quadratic: the correspondence is an identity",
                sp.S.Zero,
            )
        if "hopf_cole_leftover" in self.results:
            return Classification("open", "the Hamilton-Jacobi equation does not linearise", self.results["hopf_cole_leftover"])
        return Classification("structural", "the derivation does not establish an identity with a Hopf-Cole solution", sp.nan)


def jets_in(e) -> bool:
    return bool(e.atoms(Dx) or e.atoms(Dxx) or e.atoms(Dt))


def tropical_limit(expr, eps: sp.Symbol):
    """``lim_{eps -> 0}``: ``eps LSE(a/eps) -> max a``, then ordinary limits of what is left."""
    expr = canonical(expr)

    def to_max(node):
        a = canonical(eps * node.logits)
        if a.has(eps):
            raise ValueError(f"logits {node.logits} are not of the form a/eps")
        return ReduceMax(a, *node.limits) / eps

    replaced = canonical(expr.replace(lambda e: isinstance(e, LogSumExp), to_max))
    out = []
    for term in sp.Add.make_args(replaced):
        if not term.has(eps):
            out.append(term)
        elif term.atoms(ReduceMax) or term.atoms(sp.Sum):
            raise ValueError(f"cannot take eps -> 0 in {term}")
        else:
            out.append(sp.limit(term, eps, 0, "+"))
    return canonical(sp.Add(*out))
