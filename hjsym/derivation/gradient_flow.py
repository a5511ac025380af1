"""The variational family: the Wasserstein gradient flow of a free energy ``F[rho] = int f(x, rho) dx`` (seed 004).

Passes (run when the spec has a :class:`~hjsym.GradientFlow`), every result computed by SymPy from
the energy density ``f`` with the potential a function ``V(x)``:

* ``free-energy`` and ``density-first-variation``: ``dF/drho = d_rho f`` (Jordan, Kinderlehrer & Otto 1998);
* ``wasserstein-flow``: velocity ``v = -d_x dF/drho`` and the continuity equation
  ``d_t rho = d_x(rho d_x dF/drho)``, verified to be ``d_x(rho V') + d_xx P(rho)`` with the
  pressure ``P = rho h'(rho) - h`` of the internal energy ``h = f - V rho`` (for the entropy
  ``h = eps rho log rho``: ``P = eps rho``, the Fokker-Planck equation);
* ``gibbs-equilibrium``: ``dF/drho = lambda`` solved for ``rho``: ``rho* ~ exp(-V/eps)``, its flux
  verified to vanish; on atoms with potentials ``V_j`` it is ``softmax(-V/eps)`` (the LSE layer's
  attribution weights for ``V_j = -(W_j . x + b_j)``);
* ``dissipation``: ``dF/dt = int dF/drho d_t rho = -int rho |d_x dF/drho|^2`` (the integrand
  identity verified; the boundary term vanishes for a no-flux density);
* ``ornstein-uhlenbeck`` (``GradientFlow.example``, a quadratic potential): the Gaussian ansatz
  reduces the PDE to ODEs for the mean and variance, solved by ``dsolve``; the closed form is
  verified to solve the PDE, its variance tends to the Gibbs one, and ``k -> 0`` gives the heat
  equation;
* ``jko-gaussian-step``: one JKO step ``argmin F[rho] + W_2^2(rho, rho_k)/(2 tau)`` of a Gaussian,
  exactly (expectations of the potential and the entropy integrated, ``W_2`` between Gaussians),
  verified to approach the variance ODE as ``tau -> 0``.
"""

from __future__ import annotations

import sympy as sp

from ..ir import ArgSpec
from ..symbolic.axes import ATOM, free_index
from ..symbolic.calculus import canonical
from ..symbolic.latex import Tex, eq
from ..symbolic.reductions import gibbs_weight
from .derivation import Classification
from .passes import register

__all__ = ["gaussian"]


def _flow(d) -> bool:
    return d.sym.variational.get("kind") == "gradient_flow" and d.sym.variational.get("energy") is not None


def gaussian(x, mean, var):
    """The normal density ``N(x; mean, var)``."""
    return sp.exp(-(x - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)


class _Flow:
    """Symbols of a gradient-flow spec: the variable, the density, the potential, and their functions of x."""

    def __init__(self, d):
        part, sym = d.sym.spec.gradient_flow, d.sym
        self.x, self.rho, self.V = sym.scalars[part.variable], sym.scalars[part.density], sym.scalars[part.potential]
        self.t = sym.t
        self.f = sym.variational["energy"]
        self.R = sp.Function("rho_")(self.x)  # the density as a function of x
        self.Vx = sp.Function("V_")(self.x)
        self.rho_x, self.V_x = sp.Symbol(f"{part.density}_x", real=True), sp.Symbol(f"{part.potential}_x", real=True)
        d.symbol_names[self.rho_x] = r"\partial_x \rho"
        d.symbol_names[self.V_x] = r"\partial_x V"

    def of_x(self, e):
        """``e`` with the density and the potential as functions of x."""
        return e.subs({self.rho: self.R, self.V: self.Vx})

    def pointwise(self, e):
        """Back from functions of x to per-point symbols (first derivatives as their own symbols)."""
        e = e.subs({sp.Derivative(self.R, self.x): self.rho_x, sp.Derivative(self.Vx, self.x): self.V_x})
        return e.subs({self.R: self.rho, self.Vx: self.V})

    def extra(self):
        return (ArgSpec(self.rho_x.name, self.rho_x, (), per_point=True), ArgSpec(self.V_x.name, self.V_x, (), per_point=True))


@register("free-energy", order=500, when=_flow)
def free_energy(d):
    """F[rho] = int f(x, rho) dx and its first variation dF/drho."""
    c = _Flow(d)
    if sp.diff(c.f, c.V, 2) != 0 or sp.simplify(sp.diff(c.f, c.V) - c.rho) != 0:
        d.add("free-energy", "Free energy", (eq(Tex(r"\mathcal{F}[\rho]"), sp.Integral(c.f, c.x)),),
              "the energy must be V rho plus an internal energy h(rho) for the flow to be derived", (), "failed")
        return
    phi = sp.expand(sp.diff(c.f, c.rho))
    d.results["free_energy_density"] = c.f
    d.results["first_variation"] = phi
    d.fn("free_energy_density", c.f, "free energy density f(x, rho) (per point)")
    d.fn("first_variation", phi, "first variation dF/drho (per point)")
    d.add(
        "free-energy",
        "Free energy and its first variation",
        (eq(Tex(r"\mathcal{F}[\rho]"), sp.Integral(c.of_x(c.f), c.x)), eq(Tex(r"\frac{\delta \mathcal{F}}{\delta \rho}"), phi)),
        "d/ds F[rho + s chi] at s = 0 is int d_rho f chi dx for every perturbation chi of zero mass: the first variation is "
        "d_rho f (defined up to a constant, which the flow does not see)",
    )


@register("wasserstein-flow", order=510, when=lambda d: _flow(d) and "first_variation" in d.results)
def wasserstein_flow(d):
    """v = -d_x dF/drho; d_t rho = d_x(rho d_x dF/drho) = d_x(rho V') + d_xx P(rho)."""
    c = _Flow(d)
    phi = c.of_x(d.results["first_variation"])
    grad_phi = sp.diff(phi, c.x)
    velocity = -grad_phi
    rhs = sp.diff(c.R * grad_phi, c.x)
    h = sp.expand(c.f - c.V * c.rho)  # the internal energy
    P = sp.simplify(c.rho * sp.diff(h, c.rho) - h)  # its pressure
    form = sp.diff(c.R * sp.diff(c.Vx, c.x), c.x) + sp.diff(P.subs(c.rho, c.R), c.x, 2)
    gap = sp.simplify(sp.expand(rhs - form))
    d.results["pressure"] = P
    d.results["flow_rhs"] = rhs
    v_point = sp.simplify(c.pointwise(velocity))
    diss = sp.expand(c.rho * c.pointwise(grad_phi) ** 2)
    d.results["velocity"] = v_point
    d.fn("velocity", v_point, "Wasserstein velocity -d_x dF/drho from rho, d_x rho and d_x V (per point)", extra=c.extra())
    d.fn("dissipation_density", diss, "dissipation density rho |d_x dF/drho|^2 (per point)", extra=c.extra())
    d.add(
        "wasserstein-flow",
        "Wasserstein gradient flow: the continuity equation",
        (eq(Tex("v"), velocity), eq(Tex(r"\partial_t \rho"), Tex(r"\partial_x\big(\rho\, \partial_x \tfrac{\delta \mathcal{F}}{\delta \rho}\big)")),
         eq(Tex(r"\partial_t \rho"), sp.expand(rhs)), eq(Tex("P(\\rho)"), P),
         eq(Tex(r"\partial_x(\rho\,\partial_x \tfrac{\delta\mathcal{F}}{\delta\rho}) - \partial_x(\rho V') - \partial_{xx} P(\rho)"), gap)),
        "mass moves with the velocity -d_x dF/drho (the steepest descent of F in the Wasserstein metric; the JKO scheme's limit): "
        "d_t rho + d_x(rho v) = 0. With f = V rho + h(rho), rho d_x h'(rho) = d_x P(rho) for the pressure P = rho h' - h, so the "
        "flow is d_x(rho V') + d_xx P: for the entropy h = eps rho log rho, P = eps rho and this is the Fokker-Planck equation",
        ("free-energy",),
        "verified" if gap == 0 else "derived",
    )


@register("gibbs-equilibrium", order=520, when=lambda d: _flow(d) and "first_variation" in d.results)
def gibbs_equilibrium(d):
    """dF/drho = lambda: rho* ~ exp(-V/eps), no flux; on atoms softmax(-V/eps)."""
    c = _Flow(d)
    lam = sp.Symbol("lambda", real=True)
    sols = sp.solve(sp.Eq(d.results["first_variation"], lam), c.rho)
    if len(sols) != 1:
        d.add("gibbs-equilibrium", "Equilibrium", (eq(Tex(r"\frac{\delta \mathcal{F}}{\delta \rho}"), lam),),
              f"dF/drho = lambda has {len(sols)} solutions for rho: no equilibrium derived", ("free-energy",), "failed")
        return
    rho_star = sp.simplify(sols[0])
    flux = sp.simplify(c.of_x(rho_star) * sp.diff(c.of_x(d.results["first_variation"]).subs(c.R, c.of_x(rho_star)), c.x))
    V_atoms = sp.IndexedBase(d.sym.spec.gradient_flow.potential)
    j, m = free_index(ATOM, 1), free_index(ATOM)
    logits = canonical(sp.log(rho_star).subs(c.V, V_atoms[j]))
    pi = canonical(gibbs_weight(sp.expand_log(logits, force=True), j, m))
    free_of_lambda = lam not in pi.free_symbols
    d.results["gibbs_atoms"] = pi
    d.fn("gibbs_atoms", pi, "the equilibrium on atoms with potentials V_j: normalised exp(-V_j/eps) (per query point)", out=(m,),
         extra=(ArgSpec(V_atoms.label.name, V_atoms, ("atom",), batched=True, doc="potential of each atom"),))
    d.add(
        "gibbs-equilibrium",
        "Gibbs equilibrium",
        (eq(Tex(r"\frac{\delta \mathcal{F}}{\delta \rho}"), lam), eq(Tex(r"\rho^{*}"), rho_star),
         eq(Tex(r"\rho^{*}\,\partial_x \tfrac{\delta \mathcal{F}}{\delta \rho}[\rho^{*}]"), flux),
         eq(Tex(r"\pi_m"), pi)),
        "the flow stops where the velocity vanishes, i.e. where dF/drho is constant; solving for rho gives the Gibbs density "
        "(the multiplier lambda is fixed by the mass); on atoms with potentials V_j the normalised weights are softmax(-V/eps), "
        "free of lambda: for V_j = -(W_j . x + b_j) they are the attribution weights pi_j of the log-sum-exp layer",
        ("free-energy",),
        "verified" if flux == 0 and free_of_lambda else "derived",
    )


@register("dissipation", order=530, when=lambda d: _flow(d) and "first_variation" in d.results)
def dissipation(d):
    """dF/dt = -int rho |d_x dF/drho|^2: the integrand identity."""
    c = _Flow(d)
    phi = sp.Function("phi")(c.x)
    identity = sp.simplify(phi * sp.diff(c.R * sp.diff(phi, c.x), c.x) - sp.diff(c.R * phi * sp.diff(phi, c.x), c.x)
                           + c.R * sp.diff(phi, c.x) ** 2)
    d.add(
        "dissipation",
        "Energy dissipation along the flow",
        (eq(Tex(r"\frac{d}{dt}\mathcal{F}[\rho_t]"), Tex(r"\int \tfrac{\delta \mathcal{F}}{\delta \rho}\, \partial_t \rho\, dx")),
         eq(Tex(r"\frac{d}{dt}\mathcal{F}[\rho_t]"), Tex(r"-\int \rho\, \big|\partial_x \tfrac{\delta \mathcal{F}}{\delta \rho}\big|^2 dx \le 0")),
         eq(Tex(r"\phi\,\partial_x(\rho \phi') - \partial_x(\rho \phi \phi') + \rho \phi'^2"), identity)),
        "the chain rule in time, the continuity equation, and integration by parts (the flux rho phi' vanishes at the boundary): "
        "the free energy decreases at the rate of the dissipation int rho |v|^2 (for F = int rho log rho: the Fisher information)",
        ("wasserstein-flow",),
        "verified" if identity == 0 else "derived",
    )


def _example(d):
    return _flow(d) and d.sym.variational.get("example") is not None and "first_variation" in d.results


@register("ornstein-uhlenbeck", order=540, when=_example)
def ornstein_uhlenbeck(d):
    """The Gaussian ansatz for V = example: moment ODEs (dsolve), the closed form, its Gibbs limit and the heat limit."""
    c = _Flow(d)
    part, sym = d.sym.spec.gradient_flow, d.sym
    Vex = sym.variational["example"]
    m0, v0 = sym.scalars[part.initial[0]], sym.scalars[part.initial[1]]
    t = c.t
    m, v = sp.Function("m")(t), sp.Function("v")(t)
    G = gaussian(c.x, m, v)
    rhs = d.results["flow_rhs"].subs(c.Vx, Vex).doit()
    residual = sp.diff(G, t) - rhs.subs(c.R, G).doit()
    poly = sp.Poly(sp.expand(sp.simplify(residual / G) * v ** 2), c.x)
    md, vd = sp.Symbol("m_dot"), sp.Symbol("v_dot")
    coeffs = [co.subs({m.diff(t): md, v.diff(t): vd}) for co in poly.all_coeffs()]
    sol = sp.solve(coeffs, [md, vd], dict=True)
    if len(sol) != 1:
        d.add("ornstein-uhlenbeck", "Gaussian solution", (eq(Tex(r"\partial_t\rho"), rhs),),
              "the Gaussian ansatz does not close (no unique moment ODEs): the potential is not quadratic", ("wasserstein-flow",), "failed")
        return
    mean = sp.dsolve(sp.Eq(m.diff(t), sol[0][md]), m, ics={m.subs(t, 0): m0}).rhs
    var = sp.simplify(sp.dsolve(sp.Eq(v.diff(t), sol[0][vd].subs(m, mean)), v, ics={v.subs(t, 0): v0}).rhs)
    density = gaussian(c.x, mean, var)
    check = sp.simplify(sp.diff(density, t) - rhs.subs(c.R, density).doit())
    k = next(iter(Vex.free_symbols - {c.x}), None)
    # the long-time limit and the Gibbs variance need a confining potential: take its constant positive for them
    kp = sp.Symbol(str(k), positive=True) if k is not None else None
    pos = {k: kp} if k is not None else {}
    gibbs_var = sp.simplify(sp.limit(var.subs(pos), t, sp.oo)).subs(kp, k) if k is not None else None
    rho_gibbs = sp.exp(-Vex.subs(pos) / _eps(d))
    gibbs_variance = sp.simplify(sp.integrate(c.x ** 2 * rho_gibbs, (c.x, -sp.oo, sp.oo))
                                 / sp.integrate(rho_gibbs, (c.x, -sp.oo, sp.oo))).subs(kp, k) if k is not None else None
    heat_var = sp.simplify(sp.limit(var, k, 0)) if k is not None else var
    heat_mean = sp.simplify(sp.limit(mean, k, 0)) if k is not None else mean
    for name, expr, doc in (("ou_mean", mean, "mean of the Gaussian solution at time t"),
                            ("ou_variance", var, "variance of the Gaussian solution at time t"),
                            ("ou_density", density, "the Gaussian solution rho(x, t) (per point)"),
                            ("heat_variance", heat_var, "variance of the heat equation's Gaussian solution (k = 0)"),
                            ("heat_density", gaussian(c.x, heat_mean, heat_var), "the heat equation's Gaussian solution (k = 0, per point)"),
                            ("potential", Vex, "the example potential V(x) (per point)"),
                            ("potential_gradient", sp.diff(Vex, c.x), "its gradient V'(x) (per point)")):
        d.results[name] = expr
        d.fn(name, expr, doc)
    ok = check == 0 and gibbs_var is not None and sp.simplify(gibbs_var - gibbs_variance) == 0
    d.add(
        "ornstein-uhlenbeck",
        "Gaussian solution for the quadratic potential (Ornstein-Uhlenbeck)",
        (eq(Tex("V(x)"), Vex), eq(Tex(r"\partial_t \rho"), sp.expand(rhs)), eq(Tex(r"\dot m"), sol[0][md]), eq(Tex(r"\dot v"), sol[0][vd]),
         eq(Tex("m(t)"), mean), eq(Tex("v(t)"), var),
         eq(Tex(r"\partial_t \rho - \partial_x(\rho V') - \ldots\;\big|_{\rho = \mathcal{N}(m(t), v(t))}"), check),
         eq(Tex(r"\lim_{t\to\infty} v(t)"), gibbs_var), eq(Tex(r"\mathrm{Var}_{\rho^{*}}"), gibbs_variance),
         eq(Tex(r"v(t)\big|_{k \to 0}"), heat_var)),
        "substituting rho = N(m(t), v(t)) into the flow and dividing by rho leaves a polynomial in x whose coefficients must "
        "vanish: two ODEs for the mean and the variance, solved by dsolve from (m0, v0); the closed form solves the PDE "
        "(residual simplified to zero), its variance tends to that of the Gibbs density exp(-V/eps), and k -> 0 is the heat "
        "equation (variance v0 + 2 eps t)",
        ("wasserstein-flow", "gibbs-equilibrium"),
        "verified" if ok else "derived",
    )


def _eps(d):
    """The temperature of the entropy: the coefficient of rho log rho in the energy."""
    c = _Flow(d)
    return sp.simplify(sp.diff(c.f, c.rho, 2) * c.rho)


@register("jko-gaussian-step", order=550, when=lambda d: _example(d) and "ou_variance" in d.results)
def jko_gaussian_step(d):
    """One JKO step of a Gaussian for the quadratic potential, exactly; tau -> 0 gives the moment ODEs."""
    c = _Flow(d)
    part, sym = d.sym.spec.gradient_flow, d.sym
    Vex = sym.variational["example"]
    m0, v0, tau = sym.scalars[part.initial[0]], sym.scalars[part.initial[1]], sym.scalars[part.step]
    eps = _eps(d)
    mn, sn, s0 = sp.Symbol("m_n", real=True), sp.Symbol("s_n", positive=True), sp.Symbol("s_0", positive=True)
    N = gaussian(c.x, mn, sn ** 2)
    potential = sp.simplify(sp.integrate(Vex * N, (c.x, -sp.oo, sp.oo)))
    entropy = sp.simplify(sp.integrate(sp.expand_log(N * sp.log(N), force=True), (c.x, -sp.oo, sp.oo)))
    objective = potential + eps * entropy + ((mn - m0) ** 2 + (sn - s0) ** 2) / (2 * tau)
    sols = sp.solve([sp.diff(objective, mn), sp.diff(objective, sn)], [mn, sn], dict=True)
    sols = [s for s in sols if sp.N(s[sn].subs({s0: 1, tau: sp.Rational(1, 10), **{s: 1 for s in eps.free_symbols | Vex.free_symbols if s != c.x}})) > 0]
    if len(sols) != 1:
        d.add("jko-gaussian-step", "JKO step of a Gaussian", (eq(Tex("J"), objective),), "no unique positive minimiser", ("ornstein-uhlenbeck",),
              "failed")
        return
    new_mean = sp.simplify(sols[0][mn])
    new_var = sp.simplify(sp.expand(sols[0][sn] ** 2).subs(s0, sp.sqrt(v0)))
    rate = sp.simplify(sp.limit((new_var - v0) / tau, tau, 0))
    ode = d.results["ou_variance"]
    tt = sym.t
    ode_rate = sp.simplify(sp.diff(ode, tt).subs(tt, 0))
    consistent = sp.simplify(rate - ode_rate) == 0
    d.results["jko_mean"], d.results["jko_variance"] = new_mean, new_var
    d.fn("jko_mean", new_mean, "mean after one exact JKO step of a Gaussian with mean m0")
    d.fn("jko_variance", new_var, "variance after one exact JKO step of a Gaussian with variance v0")
    d.add(
        "jko-gaussian-step",
        "The JKO step of a Gaussian, exactly",
        (eq(Tex(r"\rho_{n+1}"), Tex(r"\arg\min_{\rho}\ \mathcal{F}[\rho] + \frac{W_2^2(\rho, \rho_n)}{2\tau}")),
         eq(Tex(r"\mathbb{E}_{\mathcal{N}(m, s^2)}[V]"), potential), eq(Tex(r"\int \rho \log \rho"), entropy),
         eq(Tex(r"W_2^2(\mathcal{N}(m_0, s_0^2), \mathcal{N}(m, s^2))"), (mn - m0) ** 2 + (sn - s0) ** 2),
         eq(Tex("m_{n+1}"), new_mean), eq(Tex("v_{n+1}"), new_var),
         eq(Tex(r"\lim_{\tau \to 0} \frac{v_{n+1} - v_0}{\tau} - \dot v(0)"), sp.simplify(rate - ode_rate))),
        "the JKO step of a Gaussian for a quadratic potential is a Gaussian (the optimal map is affine); E[V] and the entropy "
        "integrated over N(m, s^2), W_2 between Gaussians (m - m0)^2 + (s - s0)^2 (monotone affine map), stationarity solved "
        "for (m, s) with the positive root: an implicit Euler step (m = m0/(1 + k tau)), whose variance rate tends to the "
        "ODE's as tau -> 0, so the JKO scheme is consistent of order 1",
        ("ornstein-uhlenbeck",),
        "verified" if consistent else "derived",
    )
    d.classification = Classification(
        "exact",
        "the Wasserstein gradient flow of the free energy is the Fokker-Planck equation; its Gibbs equilibrium, the Gaussian "
        "solution for a quadratic potential and the JKO step of a Gaussian are exact",
        sp.S.Zero,
    )
