"""The variational family: a functional of curves ``J[y] = int F(x, y, y') dx`` (seed 004).

Passes (run when the spec has a :class:`~hjsym.Functional`), every result computed by SymPy:

* ``first-variation``: ``delta J[y; h] = int (F_y h + F_y' h') dx``, integrated by parts to the
  variational derivative ``dJ/dy = F_y - D_x F_y'`` (``D_x`` the total derivative);
* ``euler-lagrange``: that derivative set to zero, compared with SymPy's own
  ``sympy.calculus.euler.euler_equations`` (an independent implementation): verified when the
  difference simplifies to zero;
* ``beltrami``: when ``F`` has no explicit ``x``, ``B = F - y' F_y'`` with ``D_x B = y' dJ/dy``
  (verified), so ``B`` is constant on extremals (for an action ``L(q, qdot)``: the energy);
* ``parametric-extremal`` (``Functional.parametric``): the Beltrami identity solved with
  ``y' = cot(theta/2)``, ``x = int dy / y'`` (the cycloid for the brachistochrone), verified to
  solve the Euler-Lagrange equation, and the functional along it;
* ``variational-legendre``: ``p = F_y'``, ``H = p y' - F`` as a function of ``p``, with Hamilton's
  equations ``y' = dH/dp``, ``p' = -dH/dy`` verified against the Euler-Lagrange equation, and the
  Hamilton-Jacobi equation ``S_x + H(x, y, S_y) = 0`` (the eikonal equation for the brachistochrone);
* ``free-particle`` (requested in ``Spec.passes``): the same Legendre transform of the exact
  family's Lagrangian ``L(q) = |q|^2/4``: ``H = |p|^2``, straight characteristics and the action
  ``|x - y|^2/(4t)`` of the straight line, the Hopf-Lax kernel.
"""

from __future__ import annotations

import sympy as sp
from sympy.calculus.euler import euler_equations

from ..ir import ArgSpec
from ..symbolic.axes import DIM, bound_index, free_index
from ..symbolic.calculus import canonical, pdiff
from ..symbolic.latex import Tex, eq
from .derivation import Classification
from .passes import register

__all__ = ["first_variation", "total_derivative", "legendre_of", "simplified_zero"]


def _functional(d) -> bool:
    return d.sym.variational.get("kind") == "functional" and d.sym.variational.get("integrand") is not None


class _Curve:
    """The symbols of a curve functional: the variable, each unknown with its first and second derivative."""

    def __init__(self, d):
        sym, part = d.sym, d.sym.spec.functional
        self.x = sym.scalars[part.variable]
        self.unknowns = [(sym.scalars[fn], sym.scalars[der]) for fn, der in part.unknowns]
        self.second = [sp.Symbol(f"{der}p", real=True) for _, der in part.unknowns]
        for (fn, der), s2 in zip(part.unknowns, self.second):
            base = sym.scalar_decl[der].latex or f"{fn}'"
            d.symbol_names[s2] = base + "'"
        self.F = sym.variational["integrand"]


def total_derivative(G, curve: _Curve):
    """``D_x G = G_x + sum_k (y_k' G_{y_k} + y_k'' G_{y_k'})`` along a curve."""
    out = sp.diff(G, curve.x)
    for (y, yp), ypp in zip(curve.unknowns, curve.second):
        out += yp * sp.diff(G, y) + ypp * sp.diff(G, yp)
    return out


def simplified_zero(expr) -> bool:
    """Whether SymPy reduces ``expr`` to zero (``simplify``; never a numeric test)."""
    return sp.simplify(expr) == 0


def first_variation(F, curve: _Curve) -> list:
    """The variational derivatives ``F_{y_k} - D_x F_{y_k'}``, one per unknown, simplified."""
    return [sp.simplify(sp.diff(F, y) - total_derivative(sp.diff(F, yp), curve)) for y, yp in curve.unknowns]


def _point_args(d, *symbols):
    """Per-point arguments for symbols the pass introduced (a second derivative, a momentum)."""
    return [ArgSpec(s.name, s, (), per_point=True) for s in symbols]


@register("first-variation", order=400, when=_functional)
def first_variation_step(d):
    """delta J = int (F_y h + F_y' h') dx, by parts: dJ/dy = F_y - D_x F_y'."""
    c = _Curve(d)
    F = c.F
    h, hp = Tex("h"), Tex("h'")
    (y, yp), = c.unknowns[:1]
    el = first_variation(F, c)
    d.results["integrand"] = F
    d.results["euler_lagrange"] = el
    d.fn("integrand", F, "the integrand F(x, y, y') of the functional (per point of the curve)")
    d.fn("euler_lagrange", el[0], "variational derivative F_y - D_x F_y' (zero on an extremal), per point",
         extra=_point_args(d, c.second[0]))
    var = c.x
    d.add(
        "first-variation",
        "First variation and the variational derivative",
        (eq(Tex("J[y]"), sp.Integral(F, var)),
         eq(Tex(r"\delta J[y; h]"), sp.Integral(sp.diff(F, y) * h + sp.diff(F, yp) * hp, var)),
         eq(Tex(r"\frac{\delta J}{\delta y}"), el[0])),
        "d/ds J[y + s h] at s = 0 (h vanishing at the endpoints); integrating h' F_y' by parts moves the derivative onto "
        "F_y', whose total derivative D_x = d_x + y' d_y + y'' d_y' is taken by the chain rule",
    )


@register("euler-lagrange", order=410, when=_functional)
def euler_lagrange_step(d):
    """The Euler-Lagrange equation, compared with SymPy's euler_equations (an independent implementation)."""
    c = _Curve(d)
    funcs = [sp.Function(y.name.upper() + "_")(c.x) for y, _ in c.unknowns]
    forward = {}
    for (y, yp), Y in zip(c.unknowns, funcs):
        forward[yp] = Y.diff(c.x)
        forward[y] = Y
    theirs = euler_equations(c.F.xreplace({yp: forward[yp] for _, yp in c.unknowns}).xreplace(
        {y: forward[y] for y, _ in c.unknowns}), funcs, c.x)
    back = {}
    for (y, yp), ypp, Y in zip(c.unknowns, c.second, funcs):
        back[Y.diff(c.x, 2)] = ypp
    back2 = {Y.diff(c.x): yp for (_, yp), Y in zip(c.unknowns, funcs)}
    back3 = {Y: y for (y, _), Y in zip(c.unknowns, funcs)}
    mine = d.results["euler_lagrange"]
    diffs = []
    for e, m in zip(theirs, mine):
        lhs = (e.lhs - e.rhs).subs(back).subs(back2).subs(back3)
        diffs.append(sp.simplify(lhs - m))
    ok = all(x == 0 for x in diffs)
    d.add(
        "euler-lagrange",
        "Euler-Lagrange equation (checked against SymPy's euler_equations)",
        tuple(eq(m, 0) for m in mine) + tuple(eq(Tex(r"\frac{\delta J}{\delta y} - \mathrm{EL}_{\mathrm{SymPy}}"), x) for x in diffs),
        "an extremal makes the first variation vanish for every h, so F_y - D_x F_y' = 0; SymPy's own euler_equations "
        "(an independent implementation on functions y(x)) gives the same equation: their difference simplifies to zero",
        ("first-variation",),
        "verified" if ok else "failed",
    )


@register("beltrami", order=420, when=lambda d: _functional(d) and len(d.sym.spec.functional.unknowns) == 1)
def beltrami_step(d):
    """B = F - y' F_y' is a first integral when F has no explicit x (the energy of an action)."""
    c = _Curve(d)
    (y, yp), ypp = c.unknowns[0], c.second[0]
    if c.x in c.F.free_symbols:
        d.add("beltrami", "No Beltrami identity", (eq(Tex(r"\partial_x F"), sp.diff(c.F, c.x)),),
              "F depends on x explicitly: F - y' F_y' is not conserved", ("first-variation",), "stated")
        return
    B = sp.simplify(c.F - yp * sp.diff(c.F, yp))
    gap = sp.simplify(total_derivative(B, c) - yp * d.results["euler_lagrange"][0])
    d.results["beltrami"] = B
    d.fn("beltrami", B, "Beltrami first integral F - y' F_y' (constant on an extremal), per point")
    d.add(
        "beltrami",
        "Beltrami identity (energy conservation)",
        (eq(Tex("B"), Tex("F - y' F_{y'}")), eq(Tex("B"), B), eq(Tex(r"D_x B - y'\,\frac{\delta J}{\delta y}"), gap)),
        "D_x (F - y' F_y') = F_x + y' (F_y - D_x F_y') and F_x = 0: B is constant along every extremal (for an action "
        "L(q, qdot) with no explicit t it is minus the energy qdot L_qdot - L)",
        ("first-variation",),
        "verified" if gap == 0 else "failed",
    )


@register("parametric-extremal", order=430, when=lambda d: _functional(d) and d.sym.spec.functional.parametric is not None
          and "beltrami" in d.results)
def parametric_extremal(d):
    """The Beltrami identity B = C solved with y' = cot(theta/2): the extremal in parametric form, and J along it."""
    c = _Curve(d)
    (y, yp), ypp = c.unknowns[0], c.second[0]
    theta_name, const_name = d.sym.spec.functional.parametric
    th, a = d.sym.scalars[theta_name], d.sym.scalars[const_name]
    C = sp.Symbol("C", positive=True)
    B = d.results["beltrami"]
    sols = sp.solve(sp.Eq(B, C), y)
    why = None
    if len(sols) != 1:
        why = f"solving B = C for {y} gave {len(sols)} solutions"
    else:
        y_of = sp.simplify(sols[0].subs(yp, sp.cot(th / 2)))
        K = sp.simplify(y_of / sp.sin(th / 2) ** 2)
        if th in K.free_symbols:
            why = f"B = C with y' = cot(theta/2) does not give y proportional to sin(theta/2)^2 ({y_of})"
    if why is not None:
        d.add("parametric-extremal", "Parametric extremal", (eq(Tex("B"), C),), why + "; no parametric form derived",
              ("beltrami",), "failed")
        return
    (C_of_a,) = sp.solve(sp.Eq(K, 2 * a), C)
    y_par = sp.simplify(a * (1 - sp.cos(th)))
    half_angle = sp.simplify(y_of.subs(C, C_of_a) - y_par)
    s = sp.Symbol("s", positive=True)
    u = sp.Symbol("u", positive=True)  # theta = 2u (0 < u < pi) makes the half-angle identities polynomial
    dx_du = sp.simplify(sp.expand_trig((sp.diff(y_par, th) / sp.cot(th / 2)).subs(th, 2 * u) * 2))
    x_par = sp.simplify(sp.expand_trig(sp.integrate(dx_du.subs(u, s), (s, 0, th / 2))))
    slope = sp.diff(y_par, th) / sp.diff(x_par, th)
    curvature = sp.diff(slope, th) / sp.diff(x_par, th)
    el_on = sp.simplify(d.results["euler_lagrange"][0].subs({y: y_par, yp: slope, ypp: curvature}))
    # J along the extremal, with the same substitution
    dens = c.F.subs({y: y_par, yp: sp.cot(th / 2)}) * sp.diff(x_par, th)
    dens = sp.simplify(sp.expand_trig(dens.subs(th, 2 * u)))
    value = sp.integrate(dens.subs(u, s / 2), (s, 0, th)) if u in dens.free_symbols else dens * th
    value = sp.simplify(value)
    for name, expr, doc in (("extremal_x", x_par, "x(theta) of the extremal through the origin"),
                            ("extremal_y", y_par, "y(theta) of the extremal through the origin"),
                            ("extremal_value", value, "the functional along the extremal from theta = 0 to theta")):
        d.results[name] = expr
        d.fn(name, expr, doc + " (per point)")
    d.results["extremal_constant"] = C_of_a
    # near the start: x ~ theta^px, y ~ theta^py, so y ~ x^(py/px) (the cusp that limits a polyline's accuracy)
    px, py = (sp.Poly(sp.series(e, th, 0, 6).removeO(), th).monoms()[-1][0] for e in (x_par, y_par))
    exponent = sp.Rational(py, px)
    d.results["extremal_start_exponent"] = exponent
    d.fn("extremal_start_exponent", exponent, "exponent p of y ~ x^p of the extremal at its start (the cusp)")
    ok = half_angle == 0 and el_on == 0 and th not in dens.free_symbols
    d.add(
        "parametric-extremal",
        "The extremal from the Beltrami identity (parametric form)",
        (eq(Tex("B"), C), eq(y, sols[0]), eq(Tex(r"y(\theta)"), y_par), eq(Tex(r"x(\theta)"), x_par), eq(C, C_of_a),
         eq(Tex(r"\frac{\delta J}{\delta y}\big|_{(x(\theta), y(\theta))}"), el_on),
         eq(Tex(r"F\,x'(\theta)"), dens), eq(Tex(r"J(\theta)"), value), eq(Tex(r"y \sim x^{p},\ p"), exponent)),
        "solve B = C for y; y' = cot(theta/2) turns 1 + y'^2 into 1/sin^2(theta/2), so y = 2a sin^2(theta/2) = a(1 - cos theta) "
        "with the constant written through a; x = int dy / y' from the origin; the curve (a cycloid when F is the travel time) "
        "solves the Euler-Lagrange equation (residual simplified to zero), and the integrand of J along it is constant; "
        "near the start x and y are series in theta of leading orders 3 and 2, so y ~ x^(2/3): a cusp",
        ("beltrami", "euler-lagrange"),
        "verified" if ok else "derived",
    )


def legendre_of(F, v, p, sample: dict):
    """``(H, v_of_p)``: ``H(p) = p v - F`` at the root ``v(p)`` of ``p = F_v`` with the sign of ``p`` (checked at ``sample``)."""
    roots = sp.solve(sp.Eq(p, sp.diff(F, v)), v)
    probe = {**sample, p: sp.Rational(1, 10)}
    chosen = [r for r in roots if sp.sign(sp.N(r.subs(probe))) == 1]
    if len(chosen) != 1:
        return None, None
    v_of_p = chosen[0]
    H = p * v_of_p - F.subs(v, v_of_p)
    H2 = sp.simplify(H ** 2)
    sign = sp.sign(sp.N(H.subs(probe)))
    H = sp.simplify(sign * sp.sqrt(H2)) if H2.is_polynomial(p) or sp.denom(H2).is_polynomial(p) else sp.simplify(H)
    return H, v_of_p


@register("variational-legendre", order=440, when=lambda d: _functional(d) and len(d.sym.spec.functional.unknowns) == 1)
def variational_legendre(d):
    """p = F_y', H = p y' - F; Hamilton's equations are the Euler-Lagrange equation; the HJ equation S_x + H(y, S_y) = 0."""
    c = _Curve(d)
    (y, yp), ypp = c.unknowns[0], c.second[0]
    p = sp.Symbol("p", real=True)
    sample = {s: 1 for s in c.F.free_symbols if s not in (yp,)}
    H, v_of_p = legendre_of(c.F, yp, p, sample)
    if H is None:
        d.add("variational-legendre", "Legendre transform", (eq(p, sp.diff(c.F, yp)),),
              "p = F_y' has no unique root y'(p) with the sign of p: no Hamiltonian derived", ("first-variation",), "failed")
        return
    Fyp = sp.diff(c.F, yp)
    legendre_gap = sp.simplify(H.subs(p, Fyp) - (yp * Fyp - c.F))
    dHdp_gap = sp.simplify(sp.diff(H, p).subs(p, Fyp) - yp)
    dHdy_gap = sp.simplify(-sp.diff(H, y).subs(p, Fyp) - sp.diff(c.F, y))
    d.results["variational_hamiltonian"] = H
    d.fn("hamiltonian", H, "Hamiltonian H(y, p) = p y' - F at p = F_y' (per point)", extra=_point_args(d, p))
    d.fn("momentum", Fyp, "momentum p = F_y' (per point)")
    ok = legendre_gap == 0 and dHdp_gap == 0 and dHdy_gap == 0
    d.add(
        "variational-legendre",
        "Legendre transform and Hamilton's equations",
        (eq(p, Fyp), eq(yp, v_of_p), eq(Tex("H(y, p)"), H), eq(Tex(r"H(y, F_{y'}) - (y' F_{y'} - F)"), legendre_gap),
         eq(Tex(r"\partial_p H - y'"), dHdp_gap), eq(Tex(r"-\partial_y H - F_y"), dHdy_gap)),
        "p = F_y' solved for y' (the root with the sign of p), H = p y' - F; at p = F_y', dH/dp = y' and -dH/dy = F_y, so "
        "Hamilton's equations y' = dH/dp, p' = -dH/dy are the Euler-Lagrange equation p' = D_x F_y' = F_y",
        ("first-variation", "euler-lagrange"),
        "verified" if ok else "derived",
    )
    Sx, Sy = Tex(r"S_x"), Tex(r"S_y")
    Q = sp.simplify(H ** 2)
    eikonal = sp.simplify(Q.subs(p, Sy)) if sp.simplify(H + sp.sqrt(Q)) == 0 else None
    rows = [eq(Sx + H.subs(p, Sy), 0)]
    if eikonal is not None:
        rows.append(eq(Sx ** 2, eikonal))
        rows.append(eq(Sx ** 2 + Sy ** 2, sp.simplify(eikonal + Sy ** 2)))
    d.add(
        "variational-hj",
        "Hamilton-Jacobi equation of the functional",
        tuple(rows),
        "the value S(x, y) = min J over curves from the start to (x, y) satisfies S_x + H(x, y, S_y) = 0; with H = -sqrt(Q) "
        "and S_x = -H >= 0 this is S_x^2 = Q(S_y): for the travel time an eikonal equation |grad S|^2 = 1/v^2, the slowness "
        "of the medium",
        ("variational-legendre",),
        "derived",
    )
    d.classification = Classification(
        "exact",
        "the extremal solves the Euler-Lagrange equation exactly (checked against SymPy's euler_equations); its Legendre "
        "transform gives the Hamiltonian whose Hamilton-Jacobi equation the value of the functional solves",
        sp.S.Zero,
    )


@register("free-particle", order=450, requested=True)
def free_particle(d):
    """The exact family's Lagrangian |q|^2/4: H = |p|^2, straight characteristics and the Hopf-Lax kernel |x - y|^2/(4t)."""
    i, k = bound_index(DIM), free_index(DIM)
    q, p = sp.IndexedBase("qdot"), sp.IndexedBase("p")
    X, Y = sp.IndexedBase("x"), sp.IndexedBase("y")
    t = sp.Symbol("t", positive=True)
    L = sp.Sum(q[i] ** 2, (i, 1, DIM.extent)) / 4
    p_k = pdiff(L, q[k])  # p_k = qdot_k / 2
    v_k = sp.solve(sp.Eq(p[k], p_k), q[k])[0]
    H = canonical(sp.Sum((p[i] * v_k.xreplace({k: i})), (i, 1, DIM.extent)) - L.xreplace({q[i]: v_k.xreplace({k: i})}))
    exact = canonical(sp.Sum(p[i] ** 2, (i, 1, DIM.extent)))  # the exact family's H(p) = norm2(p)
    gap = canonical(H - exact)
    velocity = canonical((X[i] - Y[i]) / t)
    action = canonical(t * L.xreplace({q[i]: velocity}))
    kernel = canonical(sp.Sum((X[i] - Y[i]) ** 2, (i, 1, DIM.extent)) / (4 * t))
    d.results["free_particle_hamiltonian"] = H
    d.add(
        "free-particle",
        "The exact family's Lagrangian |q|^2/4: H = |p|^2 and the Hopf-Lax kernel",
        (eq(Tex(r"L(\dot q)"), L), eq(p[k], p_k), eq(Tex("H(p)"), H), eq(Tex(r"H(p) - |p|^2"), gap), eq(Tex(r"\ddot q"), 0),
         eq(Tex(r"\int_0^t L(\dot q)\,ds"), action), eq(Tex(r"\int_0^t L\,ds - \frac{|x - y|^2}{4t}"), canonical(action - kernel))),
        "the same Legendre transform on L = |qdot|^2/4: p = qdot/2, H = p.qdot - L = |p|^2, the exact family's Hamiltonian; "
        "L has no q, so the Euler-Lagrange equation is d/dt (qdot/2) = 0: straight characteristics, and the action of the "
        "straight line from y to x in time t is |x - y|^2/(4t), the kernel of the Hopf-Lax formula",
        (),
        "verified" if gap == 0 and canonical(action - kernel) == 0 else "derived",
    )
