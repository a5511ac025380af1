"""The network passes: the network's output, the parameter map and the identity with the Hopf-Cole solution,
its Hessian and curvature bound, attributions, the tropical limit with its bounds, and ReLU as a Hopf-Lax step.
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.axes import ATOM, DIM, bound_index
from ..symbolic.calculus import canonical, index_sum, instantiate, pdiff, substitute_indexed
from ..symbolic.latex import Limit0, Partial, Tex, eq, le
from ..symbolic.reductions import LogSumExp, ReduceMax, TopGap, gibbs_mean
from . import anisotropic
from .passes import register

__all__ = ["network_output", "parameter_map", "hessian", "attribution", "tropical", "relu_construction", "tropical_limit"]


def _has_network(d) -> bool:
    return d.sym.network is not None


@register("network", order=100, when=_has_network)
def network_output(d):
    f = d.sym.network
    d.results["f"] = f
    d.fn("f", f, "network output f_eps(x)")
    d.add("network", "The network", eq(Tex(r"f_{\varepsilon}"), f), "the spec's network output", ())


@register("parameter-map", order=110, when=lambda d: _has_network(d) and "u" in d.results)
def parameter_map(d):
    sym, x, k, m = d.sym, d.x, d.k, d.m
    f_split, u_split = d._lse_term(d.results["f"]), d._lse_term(d.results["u"])
    if f_split is None or u_split is None:
        d.add("parameter-map", "Parameter map", (), "the network or the solution is not a single log-sum-exp", ("network",), "failed")
        return
    (cf, lf, rf), (cu, lu, ru) = f_split, u_split
    if canonical(cf + cu) != 0:
        d.add("parameter-map", "Parameter map", eq(cf, -cu),
                 "the network's temperature differs from the solution's viscosity: no weights can match", ("network",), "failed")
        return
    j = bound_index(ATOM)
    zf, zu = lf.logits.xreplace({lf.index: j}), lu.logits.xreplace({lu.index: j})
    zf, zu = canonical(zf), canonical(zu)
    inst = lambda e: instantiate(e, {j: m})  # noqa: E731
    grad_f, grad_u = inst(pdiff(zf, x[k])), inst(pdiff(zu, x[k]))
    zero_x = lambda e: substitute_indexed(e, x, sp.S.Zero, (k,))  # noqa: E731
    const_f, const_u = inst(zero_x(zf)), inst(zero_x(zu))
    affine = pdiff(grad_f - grad_u, x[d.l]) == 0
    data = sym.spec.initial_data
    Y, G = sym.tensors[data.points], sym.tensors[data.values]
    weights = [sym.tensors[w] for w in sym.spec.network.weights]
    slope = [w for w in weights if tuple(sym.tensor_decl[w.label.name].axes) == ("atom", "dim")]
    offset = [w for w in weights if tuple(sym.tensor_decl[w.label.name].axes) == ("atom",)]
    if not affine or len(slope) != 1 or len(offset) != 1:
        d.add("parameter-map", "Parameter map", (), "the logits are not affine in x with one slope and one offset weight",
                 ("network",), "failed")
        return
    Wb, bb = slope[0], offset[0]
    W_of = sp.solve(eq(grad_f, grad_u), Wb[m, k])
    b_of = sp.solve(eq(const_f, const_u), bb[m])
    y_of = anisotropic.solve_indexed(eq(grad_f, grad_u), Y[m, k])
    if len(W_of) != 1 or len(b_of) != 1 or y_of is None:
        d.add("parameter-map", "Parameter map", (eq(grad_f, grad_u), eq(const_f, const_u)),
                 "matching the logits does not determine the weights uniquely", ("network",), "failed")
        return
    W_of, b_of = canonical(W_of[0]), canonical(b_of[0])
    const_u_y = substitute_indexed(const_u, Y, y_of, (m, k))
    g_of = sp.solve(eq(const_f, const_u_y), G[m])
    g_of = canonical(g_of[0])
    d.results.update(W_of_atoms=W_of, b_of_atoms=b_of, y_of_weights=y_of, g_of_weights=g_of)
    d.fn("weights_W", W_of, "network slopes W from atoms: W_j = dz/dx matched", out=(m, k))
    d.fn("weights_b", b_of, "network offsets b from atoms", out=(m,))
    d.fn("atoms_y", y_of, "atom positions y read out of the network weights", out=(m, k))
    d.fn("atoms_g", g_of, "initial values g read out of the network weights", out=(m,))
    d.add(
        "parameter-map",
        r"Parameter map (weights $\leftrightarrow$ initial data)",
        (eq(Wb[m, k], W_of), eq(bb[m], b_of), eq(Y[m, k], y_of), eq(G[m], g_of)),
        "the two log-sum-exps agree when their logits agree as affine functions of $x$: match the $x$-coefficients and the constants",
        ("network", "unnormalised-solution"),
    )
    f_mapped = substitute_indexed(substitute_indexed(d.results["f"], Wb, W_of, (m, k)), bb, b_of, (m,))
    rhs = canonical(rf + ru)
    diff = canonical(f_mapped + d.results["u"] - rhs)
    d.results["identity_rhs"] = rhs
    d.fn("identity_rhs", rhs, "right-hand side of f_eps + u_eps under the parameter map")
    d.add(
        "identity",
        "The network is the Hopf-Cole solution",
        (eq(Tex(r"f_{\varepsilon}") + Tex(r"u_{\varepsilon}"), rhs), eq(Tex(r"\mathrm{difference}"), diff)),
        "substitute the parameter map into $f$ and add $u$: the log-sum-exps cancel exactly",
        ("parameter-map",),
        "verified" if diff == 0 else "failed",
    )


@register("hessian", order=120, when=_has_network)
def hessian(d):
    split = d._lse_term(d.results["f"])
    if split is None:
        return
    cf, node, rest = split
    x, k, l = d.x, d.k, d.l
    hess = pdiff(pdiff(d.results["f"], x[k]), x[l])
    z, j = node.logits, node.index
    a_k, a_l = pdiff(z, x[k]), pdiff(z, x[l])
    curvature = pdiff(a_k, x[l])
    cov = gibbs_mean(a_k * a_l, z, j) - gibbs_mean(a_k, z, j) * gibbs_mean(a_l, z, j)
    diff = canonical(hess - cf * cov) if curvature == 0 and pdiff(pdiff(rest, x[k]), x[l]) == 0 else None
    d.results["hessian_f"] = hess
    d.fn("hessian_f", hess, "Hessian of the network output", out=(k, l))
    d.add(
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
        bound = canonical(cf * ReduceMax(index_sum(a_k.xreplace({k: i}) ** 2, i), (j, 1, d.N)))
        d.results["hessian_bound"] = bound
        d.fn("hessian_bound", bound, "bound on the spectral norm of the Hessian")
        d.add(
            "hessian-bound",
            "Curvature (robustness) bound",
            le(Tex(r"\|\nabla^2 f\|_2"), bound),
            r"$\mathrm{Cov}_\pi(a) \preceq \mathbb{E}_\pi[a a^\top]$ and $\|\mathbb{E}_\pi[a a^\top]\|_2 \le \mathbb{E}_\pi|a|^2 \le \max_j |a_j|^2$, with $a_j$ the gradient of the $j$-th logit",
            ("hessian",),
            "stated",
        )


@register("attribution", order=130, when=_has_network)
def attribution(d):
    sym = d.sym
    m = d.m
    for name in sym.spec.network.weights:
        if tuple(sym.tensor_decl[name].axes) != ("atom",):
            continue
        b = sym.tensors[name]
        att = pdiff(d.results["f"], b[m])
        d.results[f"d_f_d_{name}"] = att
        d.fn("attribution", att, f"attribution pi_m = df/d{name}_m of each neuron", out=(m,))
        d.add(
            "attribution",
            rf"Attribution: $\partial f/\partial {name}$",
            eq(Partial(sp.Symbol("f"), b[m]), att),
            f"only the $m$-th logit contains ${name}_m$, so the derivative is the $m$-th Gibbs weight (closed form, $O(N)$)",
            ("network",),
        )
        return

# ------------------------------------------------------------------ tropical limit


@register("tropical", order=140, when=_has_network)
def tropical(d):
    eps = d.nu
    split = d._lse_term(d.results["f"])
    if not isinstance(eps, sp.Symbol) or split is None:
        return
    f0 = tropical_limit(d.results["f"], eps)
    d.results["f0"] = f0
    d.fn("f0", f0, "tropical (max-plus) network f_0 = lim_{eps->0} f_eps")
    eqs = [eq(Tex("f_{0}"), Limit0(Tex(r"f_{\varepsilon}"), eps)), eq(Tex("f_{0}"), f0)]
    uses = ["network"]
    status = "derived"
    if "u" in d.results:
        u0 = tropical_limit(d.results["u"], eps)
        d.results["u0"] = u0
        eqs.append(eq(Tex("u_{0}"), u0))
        uses.append("unnormalised-solution")
        if "hopf_lax" in d.results:
            diff = canonical(u0 - d.results["hopf_lax"])
            eqs.append(eq(Tex(r"u_{0} - u_{\mathrm{HL}}"), diff))
            uses.append("hopf-lax-atomic")
            status = "verified" if diff == 0 else "failed"
    d.add(
        "tropical-limit",
        r"Tropical limit $\varepsilon \to 0$",
        tuple(eqs),
        r"$\varepsilon \log \sum_j e^{a_j/\varepsilon} \to \max_j a_j$ (Laplace's principle); the viscous solution tends to the Hopf-Lax one",
        tuple(uses),
        status,
    )
    cf, node, _ = split
    a = canonical(cf * node.logits)
    bound = canonical(cf * sp.log(d.N))
    gap_top = canonical(TopGap(a, *node.limits))
    sharp_display = cf * sp.log(1 + (d.N - 1) * sp.exp(-Tex(r"\Delta") / cf))
    sharp = canonical(cf * sp.log(1 + (d.N - 1) * sp.exp(-gap_top / cf)))
    d.results["top_gap"] = gap_top
    gap = canonical(d.results["f"] - f0)
    d.results.update(tropical_gap=gap, tropical_bound=bound, tropical_bound_sharp=sharp)
    d.fn("tropical_bound", bound, "bound eps log N on f_eps - f_0")
    d.fn("tropical_bound_sharp", sharp, "sharper bound eps log(1 + (N-1) exp(-gap/eps)), gap = top-two logit gap")
    d.add(
        "tropical-bounds",
        "Bounds on the tropical gap",
        (eq(Tex(r"f_{\varepsilon} - f_{0}"), gap),
         le(Tex(r"0 \le f_{\varepsilon} - f_{0}"), bound),
         le(Tex(r"f_{\varepsilon} - f_{0}"), sharp_display)),
        r"$\sum_j e^{(a_j - \max a)/\varepsilon}$ has one term equal to 1 and $N - 1$ terms each $\le e^{-\Delta/\varepsilon}$, $\Delta$ the top-two gap",
        ("tropical-limit",),
        "stated",
    )


@register("relu", order=150, when=lambda d: "lagrangian" in d.results)
def relu_construction(d):
    """The max-plus layer with atoms {0, 2t}, values {0, -t} (d = 1) is ReLU."""
    L = d.results.get("lagrangian")
    if L is None:
        return
    q = d.L_q
    xs, t = sp.Symbol("x", real=True), d.t
    atoms = ((sp.S.Zero, sp.S.Zero), (2 * t, -t))
    L1 = canonical(L).subs(d.d, 1)
    L1 = L1.replace(lambda e: isinstance(e, sp.Sum), lambda e: e.function.subs(e.limits[0][0], 1))
    vals = []
    for y, g in atoms:
        vals.append(g + t * L1.replace(lambda e: isinstance(e, sp.Indexed) and e.base == q, lambda e: (xs - y) / t))
    # -min(a, b) = max(-a, -b), then expand each branch
    f0 = sp.Max(*[sp.expand(xs**2 / (4 * t) - v) for v in vals])
    if f0 != sp.Max(0, xs):
        return
    d.results["relu_f0"] = f0
    d.add(
        "relu",
        "Hopf-Lax recovers ReLU",
        (eq(Tex("u_{0}"), sp.Min(*vals)), eq(xs**2 / (4 * t) - Tex("u_{0}"), f0)),
        r"in $d = 1$ with atoms $\{0, 2t\}$ and values $\{0, -t\}$: $|x|^2/(4t) - \min_j(\cdot) = \max(0, x) = \mathrm{ReLU}(x)$",
        ("hopf-lax-atomic",) if d.has("hopf-lax-atomic") else ("legendre",),
        "verified",
    )

# ------------------------------------------------------------------ classification


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
