"""Activation classes: which elementwise activations are one Hamilton-Jacobi step, which are its gradient.

For every ``Activation`` of a spec, :func:`run` derives (SymPy, nothing typed in):

* the tropical limit ``sigma_0 = lim_{eps -> 0} sigma_eps``, from the one-sided limits at
  ``z = +s`` and ``z = -s``: slopes ``(alpha, beta)`` give ``max(alpha z, beta z)`` (a two-atom
  max-plus polynomial), constants give a step;
* the nearest exact form with that limit: ``F(z) = eps log(exp(alpha z/eps) + exp(beta z/eps))``,
  the two-atom log-sum-exp (one HJ step), or its derivative ``dF/dz`` (the "nabla-class");
* the class: ``LSE`` when ``sigma - F`` simplifies to zero, ``nabla`` when ``sigma - dF/dz`` does,
  ``tropical`` when sigma is its own limit (ReLU: the Hopf-Lax step), ``open`` otherwise, with
  the symbolic gap ``sigma - F`` printed and, when ``sigma = z q(z)``, the product structure;
* the tropical error: ``eps log 2`` for the LSE class (the layer's ``eps log N`` with N = 2 atoms,
  attained at z = 0), ``c eps`` for degree-one homogeneous families (``c`` computed), and the
  exponential pointwise bound for the nabla-class.

A softplus unit ``eps softplus((w.x + c)/eps)`` is then the spec's log-sum-exp layer with two
atoms ``(W, b) = (alpha w, alpha c), (beta w, beta c)``: verified by expanding the layer over the
two atoms, so every generic result (parameter map, identity, tropical bound with N = 2) applies
to each unit. Depth composes the steps; the tropical error of a network follows by the
1-Lipschitz property of the activation (stated).
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.axes import DIM, bound_index, free_index
from ..symbolic.calculus import canonical, substitute_indexed
from ..symbolic.latex import Limit0, Tex, eq, le
from ..symbolic.reductions import LogSumExp
from .passes import register

__all__ = ["run", "CLASSES", "activation_table", "table_text", "structure_form", "limit_text"]

CLASSES = {
    "LSE": "exact: one Hopf-Cole (HJ) step, a two-atom log-sum-exp",
    "nabla": "exact: nabla-class, the derivative of a two-atom log-sum-exp (a Gibbs weight)",
    "tropical": "exact at eps = 0: the Hopf-Lax (max-plus) step itself",
    "open": "open: no two-atom log-sum-exp or its derivative; the gap is printed",
}

_Z = sp.Symbol("z", real=True)
_S = sp.Symbol("s", positive=True)
_U = sp.Symbol("u", real=True)


def _is_zero(expr, z, eps) -> bool:
    """``expr == 0`` symbolically, confirmed at sample points (a simplification that fails says not shown)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    simplified = sp.simplify(expr.rewrite(sp.exp))
    if simplified != 0:
        return False
    for zv, ev in (("7/10", "3/10"), ("-13/10", "9/10"), ("21/10", "17/10")):  # exact rationals: no float rounding
        at = {z: sp.Rational(zv)} if eps is None else {z: sp.Rational(zv), eps: sp.Rational(ev)}
        value = complex(expr.subs(at).evalf(30))
        if abs(value) > 1e-20:
            return False
    return True


def _limit(expr, eps):
    return expr if eps is None or not expr.has(eps) else sp.limit(expr, eps, 0, "+")


def _sup_scaled_gap(sigma, sigma0, z, eps) -> sp.Expr | None:
    """``sup_z |sigma_eps - sigma_0|`` for a degree-one family ``sigma_eps(z) = eps sigma_1(z/eps)``, or None."""
    scaled = sp.simplify(sigma.subs(z, eps * _U) / eps)
    if scaled.has(eps):
        return None
    expr = scaled - sigma0.subs(z, _U)
    fast = sp.lambdify(_U, expr, "math")
    gap = sp.lambdify(_U, expr, "mpmath")
    import mpmath

    mpmath.mp.dps = 30
    # |gap| is unimodal on each side of 0 for these families: a grid in floats, then mpmath's root
    # of the derivative from the best grid point
    best = max((k / 100 for k in range(-2000, 2001)), key=lambda v: abs(fast(v)))
    try:
        peak = mpmath.findroot(lambda v: mpmath.diff(gap, v), best)
        value = max(abs(gap(peak)), abs(gap(best)))
    except (ValueError, ZeroDivisionError):
        value = abs(gap(best))
    return sp.Float(float(value), 6) * eps


def _analyse(sigma, z, eps, lse_bound):
    """The derivation of one activation: a dict of SymPy results and display pieces."""
    lp = _limit(sigma.subs(z, _S), eps)
    lm = _limit(sigma.subs(z, -_S), eps)
    out = {"sigma": sigma}
    slopes = (sp.simplify(lp / _S), sp.simplify(-lm / _S))
    if not any(v.has(_S) for v in slopes) and slopes[0] >= slopes[1]:
        alpha, beta = slopes
        kind = "linear"
        sigma0 = sp.Max(alpha * z, beta * z)
    elif not lp.has(_S) and not lm.has(_S) and lp > lm:
        alpha, beta = lp, lm
        kind = "step"
        sigma0 = sp.Piecewise((alpha, z > 0), (beta, z < 0), ((alpha + beta) / 2, True))
    else:
        out.update(kind="none", sigma0=sp.nan, cls="open", structure=sp.nan, gap=sp.nan, error=sp.nan, alpha=sp.nan, beta=sp.nan)
        return out
    eps_ = eps if eps is not None else sp.Symbol("eps", positive=True)
    F = eps_ * sp.log(sp.exp(alpha * z / eps_) + sp.exp(beta * z / eps_))
    dF = sp.diff(F, z)
    out.update(kind=kind, sigma0=sigma0, alpha=alpha, beta=beta, F=F, dF=dF)
    if eps is None or not sigma.has(eps):
        if _is_zero(sigma - sigma0, z, None):
            out.update(cls="tropical", structure=sigma0, gap=sp.S.Zero, error=sp.S.Zero)
            return out
    if kind == "linear":
        if _is_zero(sigma - F, z, eps):
            err = canonical(lse_bound.subs(sp.Symbol("N", integer=True, positive=True), 2)) if lse_bound is not None else None
            out.update(cls="LSE", structure=F, gap=sp.S.Zero, error=err, attained=sp.simplify((sigma - sigma0).subs(z, 0)))
            return out
        gap = sigma - F  # as it stands: "sigma minus the nearest exact form" (and stable to evaluate)
        q = sp.simplify(sigma / z)
        product = None
        if _is_zero(q - dF, z, eps):
            product = (r"z\, \partial_z F", z * dF)
        elif _limit(q.subs(z, _S), eps) != _limit(q.subs(z, -_S), eps):
            product = ("z q(z)", z * q)
        out.update(cls="open", structure=F, gap=gap, product=product, error=_sup_scaled_gap(sigma, sigma0, z, eps))
        return out
    if _is_zero(sigma - dF, z, eps):
        # |dF/dz - sigma_0| = (alpha - beta) / (1 + exp((alpha - beta)|z|/eps)) <= (alpha - beta) exp(-(alpha - beta)|z|/eps)
        jump = alpha - beta
        out.update(cls="nabla", structure=dF, gap=sp.S.Zero, error=jump * sp.exp(-jump * sp.Abs(z) / eps))
        return out
    out.update(cls="open", structure=dF, gap=sigma - dF, product=None, error=sp.nan)
    return out


@register("activations", order=160, when=lambda d: bool(d.sym.activations))
def run(d):
    """Classify every activation of the spec and, for an LSE-class one, derive the unit as a two-atom layer."""
    acts = d.sym.activations
    if not acts:
        return
    eps = d.nu if isinstance(d.nu, sp.Symbol) else None
    table = {}
    for act in d.sym.spec.activations:
        sigma = acts[act.name]
        zsym = d.sym.scalars[act.variable]
        # analyse in a neutral real symbol z so that results print the same for every spec
        info = _analyse(sigma.xreplace({zsym: _Z}), _Z, eps, d.results.get("tropical_bound"))
        info["torch"] = act.torch
        table[act.name] = info
        _step(d, act.name, info, eps)
        _functions(d, act.name, info, eps)
    d.results["activation_table"] = table
    layer = next((n for n, v in table.items() if v["cls"] == "LSE"), None)
    if layer is not None and "f" in d.results and d.has("parameter-map") and d.has("identity"):
        _unit(d, layer, table[layer], eps)


def _step(d, name, info, eps):
    sig = sp.Function(r"\sigma_{\mathrm{" + name + "}}")(_Z)
    eqs = [eq(sig, info["sigma"])]
    if info["kind"] == "none":
        d.add(f"activation-{name}", f"Activation {name}: no tropical limit of the two-atom form", tuple(eqs),
              r"the one-sided limits $\varepsilon \to 0$ are neither linear nor constant in $z$", (), "failed")
        return
    eqs.append(eq(Limit0(sig, eps) if eps is not None else Tex(r"\sigma_{0}"), info["sigma0"]))
    cls = info["cls"]
    if cls in ("LSE", "nabla"):
        eqs.append(eq(sig, Tex(r"\varepsilon \log(e^{\alpha z/\varepsilon} + e^{\beta z/\varepsilon})") if cls == "LSE" else
                      Tex(r"\partial_z\, \varepsilon \log(e^{\alpha z/\varepsilon} + e^{\beta z/\varepsilon})")))
        eqs.append(eq(sig, info["structure"]))
    elif cls == "open":
        eqs.append(eq(Tex(r"\sigma - F_{\mathrm{nearest}}"), info["gap"]))
        if info.get("product"):
            eqs.append(eq(sig, info["product"][1]))
    if info.get("error") is not None and info["error"] is not sp.nan and cls != "tropical":
        eqs.append(le(Tex(r"|\sigma_{\varepsilon} - \sigma_{0}|"), info["error"]))
    alpha, beta = info["alpha"], info["beta"]
    limit_text = (rf"the one-sided limits give slopes $(\alpha, \beta) = ({d.latex(alpha)}, {d.latex(beta)})$: $\sigma_0 = \max(\alpha z, \beta z)$"
                  if info["kind"] == "linear" else f"the one-sided limits are the constants ${d.latex(alpha)}$, ${d.latex(beta)}$: a step")
    two_atom = r"\varepsilon \log(e^{\alpha z/\varepsilon} + e^{\beta z/\varepsilon})"
    reasons = {
        "LSE": f"{limit_text}; $\\sigma - {two_atom}$ simplifies to 0: a two-atom log-sum-exp "
               rf"(one HJ step); its tropical error is $\varepsilon \log N$ with $N = 2$, attained at $z = 0$ (value {d.math(info.get('attained'))})",
        "nabla": f"{limit_text}; $\\sigma - \\partial_z {two_atom}$ simplifies to 0: the gradient of a two-atom "
                 r"log-sum-exp, a Gibbs weight ($\nabla$-class); the limit is not uniform at $z = 0$",
        "tropical": f"{limit_text}; $\\sigma$ has no temperature and equals its limit: the max-plus (Hopf-Lax) step",
        "open": f"{limit_text}; neither $\\sigma - F$ nor $\\sigma - \\partial_z F$ vanishes for the two-atom $F$ with this limit: open, the gap "
                "is what is left after subtracting the nearest exact form"
                + (f"; $\\sigma = {info['product'][0]}$ (a product with the state)" if info.get("product") else ""),
    }
    status = "verified" if cls in ("LSE", "nabla", "tropical") else "derived"
    d.add(f"activation-{name}", f"Activation {name}: class " + {"nabla": r"$\nabla$"}.get(cls, cls), tuple(eqs), reasons[cls], (), status)


def _functions(d, name, info, eps):
    """Elementwise torch functions over the components of x: sigma, its limit, and the gap of an open one."""
    k = free_index(DIM)
    xk = d.x[k]
    d.fn(f"act_{name}", info["sigma"].xreplace({_Z: xk}), f"activation {name} applied to each component of x", out=(k,))
    if info["kind"] != "none":
        d.fn(f"act0_{name}", info["sigma0"].xreplace({_Z: xk}), f"tropical limit of {name}, elementwise", out=(k,))
    if info["cls"] == "open" and info["kind"] != "none":
        d.fn(f"gap_{name}", info["gap"].xreplace({_Z: xk}), f"gap of {name}: sigma minus its nearest exact form, elementwise", out=(k,))


def _unit(d, name, info, eps):
    """``eps sigma((w.x + c)/eps)`` is the layer with atoms (alpha w, alpha c), (beta w, beta c): verified."""
    f = d.results["f"]
    node = next(iter(f.atoms(LogSumExp)))
    net = d.sym.spec.network
    W, b = (d.sym.tensors[n] for n in net.weights)
    w, c = sp.IndexedBase("w"), sp.Symbol("c", real=True)
    i, k, m = bound_index(DIM), free_index(DIM), free_index(DIM, 1)
    wx = sp.Sum(w[i] * d.x[i], (i, 1, d.d))
    terms = []
    for coef in (info["alpha"], info["beta"]):
        z = substitute_indexed(node.logits, W, coef * w[k], (m, k))
        terms.append(sp.exp(substitute_indexed(z, b, coef * c, (m,))))
    explicit = canonical(f / node) * sp.log(sp.Add(*terms))
    unit = info["sigma"].xreplace({_Z: wx + c})
    diff = sp.simplify(explicit - unit)
    d.results["unit_slopes"] = sp.Tuple(info["alpha"], info["beta"])
    d.add(
        f"unit-{name}",
        f"A {name} unit is the layer with two atoms",
        (eq(Tex(r"\sigma_{\varepsilon}(w \cdot x + c)"), unit), eq(Tex(r"f_{\varepsilon}|_{N=2}"), explicit),
         eq(Tex(r"W_{1} = \alpha w,\; b_{1} = \alpha c,\; W_{2} = \beta w,\; b_{2} = \beta c"),
            sp.Tuple(info["alpha"], info["beta"])), eq(Tex(r"\mathrm{difference}"), diff)),
        rf"substitute the two atoms $(\alpha, \beta) = ({d.latex(info['alpha'])}, {d.latex(info['beta'])})$ of step activation-{name} into the network: "
        r"the difference simplifies to 0, so each unit is the Hopf-Cole solution with atoms $y = 2tW$, $g = -b - t|W|^2$ "
        r"(steps parameter-map and identity) and its tropical limit is within $\varepsilon \log 2$",
        (f"activation-{name}", "parameter-map", "identity"),
        "verified" if diff == 0 else "failed",
    )
    _depth(d, name)


def _depth(d, name):
    bound = d.results.get("tropical_bound")
    if bound is None:
        return
    per_unit = canonical(bound.subs(sp.Symbol("N", integer=True, positive=True), 2))
    d.add(
        "depth",
        "Depth composes steps; the tropical error of a network",
        (eq(Tex(r"h^{\ell}"), Tex(r"\sigma_{\varepsilon}(W^{\ell} h^{\ell-1} + b^{\ell}),\quad r^{\ell} = \max(W^{\ell} r^{\ell-1} + b^{\ell}, 0)")),
         le(Tex(r"|h^{\ell} - r^{\ell}|"), Tex(per_unit_tex(per_unit, d.sym.latex_names()) + r"\,\mathbf{1} + |W^{\ell}|\, |h^{\ell-1} - r^{\ell-1}|")),
         le(Tex(r"|f_{\varepsilon} - f_{0}|"),
            Tex(per_unit_tex(per_unit, d.sym.latex_names()) + r"\sum_{\ell=1}^{L} \mathbf{1}^{T} |W^{\mathrm{out}}| |W^{L}| \cdots |W^{\ell+1}| \mathbf{1}"))),
        rf"each layer is one HJ step (step unit-{name}); per unit $|\sigma_\varepsilon(a) - \mathrm{{relu}}(b)| \le |\sigma_\varepsilon(a) - \mathrm{{relu}}(a)| + |a - b| "
        rf"\le {d.latex(per_unit)} + |a - b|$ (relu is 1-Lipschitz), and errors propagate through $|W|$ elementwise",
        (f"unit-{name}", "tropical-bounds"),
        "stated",
    )


def per_unit_tex(expr, names=None) -> str:
    from ..symbolic.latex import to_latex

    return to_latex(expr, names)


# ----------------------------------------------------------------------------- the table
def activation_table(derivation) -> list[dict]:
    """Rows ``{name, torch, sigma, tropical, structure, formula, class, gap, error}`` (LaTeX strings) from a derivation.

    ``structure`` names the finite-eps form through the two-atom log-sum-exp found by the
    derivation (``LSE_eps(z, 0)``, ``d/dz LSE_eps(z, -z)``, ``z d/dz LSE_eps(z, 0)``, ...);
    ``formula`` is the same as an explicit expression.
    """
    table = derivation.results.get("activation_table") or {}
    rows = []
    for name, info in table.items():
        lt = derivation.latex_of
        structure = info.get("structure")
        if info["cls"] == "open" and info.get("product"):
            structure_tex = lt(info["product"][1])
        elif structure is None or structure is sp.nan:
            structure_tex = "-"
        else:
            structure_tex = lt(structure)
        err = info.get("error")
        form = structure_form(info)
        rows.append({
            "name": name,
            "torch": info.get("torch", ""),
            "sigma": lt(info["sigma"]),
            "tropical": lt(info["sigma0"]) if info["sigma0"] is not sp.nan else "-",
            "structure": form,
            "formula": structure_tex,
            "class": info["cls"],
            "class_text": CLASSES[info["cls"]],
            "gap": lt(info["gap"]) if info["gap"] is not sp.nan else "-",
            "gap_text": sp.sstr(info["gap"]),
            "error": lt(err) if err is not None and err is not sp.nan else "-",
        })
    return rows


def _lse_args(alpha, beta) -> str:
    def one(c):
        return "0" if c == 0 else ("z" if c == 1 else ("-z" if c == -1 else f"{sp.latex(c)} z"))

    return f"{one(alpha)}, {one(beta)}"


def structure_form(info, plain: bool = False) -> str:
    """The finite-eps structure in words of the two-atom log-sum-exp, e.g. ``d/dz LSE_eps(z, -z)``.

    LaTeX by default; ``plain`` gives the same as text (for figures and terminals).
    """
    from ..symbolic.latex import to_latex

    if info["kind"] == "none":
        return "-"
    args = _lse_args(info["alpha"], info["beta"])
    lse = f"LSE_eps({args})" if plain else r"\mathrm{LSE}_{\varepsilon}(" + args + ")"
    dz = "d/dz " if plain else r"\partial_z "
    cls = info["cls"]
    product = info.get("product")
    if cls == "LSE":
        return lse
    if cls == "nabla":
        return dz + lse
    if cls == "tropical":
        return f"max({args})" if plain else r"\max(" + args + ")"
    if product and product[0] == r"z\, \partial_z F":
        return "z " + dz + lse if plain else r"z\, " + dz + lse
    if product:
        q = sp.simplify(product[1] / _Z)
        return f"z * ({sp.sstr(q)})" if plain else r"z \left(" + to_latex(q, {sp.Symbol("eps", positive=True): r"\varepsilon"}) + r"\right)"
    return "-"


def limit_text(info) -> str:
    """The tropical limit as text: ``max(z, 0)`` or ``1 (z > 0), -1 (z < 0)``."""
    if info["kind"] == "linear":
        return f"max({_lse_args(info['alpha'], info['beta'])})"
    if info["kind"] == "step":
        return f"{info['alpha']} (z > 0), {info['beta']} (z < 0)"
    return "-"


def table_text(derivation) -> str:
    """The activation table as plain text (``hjsym derive``), or '' when the derivation has none."""
    table = derivation.results.get("activation_table") or {}
    if not table:
        return ""
    rows = [("activation", "tropical limit", "finite-eps structure", "class", "gap")]
    for name, info in table.items():
        rows.append((name, limit_text(info), structure_form(info, plain=True), info["cls"], sp.sstr(info["gap"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)
