"""Passes on the Gibbs weights of a log-sum-exp network (requested in ``Spec.passes``, or by ``Spec.values``).

* ``entropy``: ``H(pi) = -sum_m pi_m log pi_m = LSE(z) - E_pi[z]`` from the definition;
* ``characteristic-step``: the foot of the characteristic through ``(x, t)``,
  ``x - t dH/dp(grad u) = x - 2t grad u``, is the Gibbs average of the atoms ``E_pi[y]``
  (L2 attention with values = keys);
* ``convex-view``: ``eps LSE(z/eps) = max_{pi in simplex} <pi, z> + eps Entropy(pi)``, maximiser
  found by solving the stationarity condition;
* ``values`` (a spec field): the Gibbs average of a value tensor is the gradient of the network
  with respect to its logits contracted with the values, ``sum_m (df/db_m) V_m = E_pi[V]``
  (scaled dot-product attention), and its Jacobian is a Gibbs covariance.
"""

from __future__ import annotations

import sympy as sp

from ..symbolic.axes import ATOM, DIM, VALUE, free_index
from ..symbolic.calculus import canonical, fresh_free_index, pdiff, substitute_indexed
from ..symbolic.latex import Tex, eq
from ..symbolic.reductions import LogSumExp, gibbs_mean, gibbs_weight
from .passes import register

__all__ = ["entropy", "characteristic_step", "convex_view", "values", "uses_present", "lse_parts"]


def uses_present(d, *ids):
    """The steps among ``ids`` that this derivation has (a pass cites only what exists)."""
    return tuple(i for i in ids if d.has(i))


def lse_parts(d):
    split = d._lse_term(d.results["f"]) if "f" in d.results else None
    if split is None:
        return None
    cf, node, _ = split
    return cf, node


@register("entropy", order=200, requested=True)
def entropy(d):
    """H(pi) = LSE(z) - E_pi[z] from the definition -sum pi log pi."""
    parts = lse_parts(d)
    if parts is None:
        return
    cf, node = parts
    z, j = node.logits, node.index
    m = free_index(ATOM)
    log_pi = z.xreplace({j: m}) - node  # log pi_m = z_m - LSE_j z_j (definition of the softmax)
    definition = -sp.Sum(gibbs_weight(z, j, m) * log_pi, (m, 1, d.N))
    H = canonical(definition)
    closed = canonical(node - gibbs_mean(z, z, j))
    diff = canonical(H - closed)
    d.results["entropy"] = H
    d.fn("entropy", H, "entropy H(pi) = -sum_m pi_m log pi_m of the network's Gibbs weights, in [0, log N]")
    d.add(
        "entropy",
        "Entropy of the Gibbs weights",
        (eq(Tex(r"H(\pi)"), definition), eq(Tex(r"H(\pi)"), H), eq(Tex(r"H(\pi) - (\mathrm{LSE}(z) - \mathbb{E}_{\pi}[z])"), diff)),
        r"$\log \pi_m = z_m - \mathrm{LSE}(z)$; $\sum_m \pi_m a_m = \mathbb{E}_\pi[a]$ and $\mathbb{E}_\pi$ of a constant is the constant: $H = \mathrm{LSE}(z) - \mathbb{E}_\pi[z] "
        r"= f/\varepsilon - \mathbb{E}_\pi[z] \in [0, \log N]$ (0: one atom wins, a particle; $\log N$: uniform, a wave)",
        uses_present(d, "attribution", "network"),
        "verified" if diff == 0 else "derived",
    )


@register("characteristic-step", order=210, requested=True)
def characteristic_step(d):
    """The foot of the characteristic through (x, t) is the Gibbs average of the atoms (L2 attention)."""
    if "grad_u" not in d.results or "xdot" not in d.results:
        return
    k = d.k
    grad = d.results["grad_u"]
    velocity = substitute_indexed(d.results["xdot"], d.p, grad, (k,))  # dH/dp at p = grad u
    foot = canonical(d.x[k] - d.t * velocity)
    node = next(iter(d.results["u"].atoms(LogSumExp)))
    Y = d.sym.tensors[d.sym.spec.initial_data.points]
    mean_y = canonical(gibbs_mean(Y[node.index, k], node.logits, node.index))
    diff = canonical(foot - mean_y)
    d.results["characteristic_foot"] = foot
    d.fn("characteristic_foot", foot, "foot of the characteristic through (x, t): x - 2t grad u = E_pi[y]", out=(k,))
    d.add(
        "characteristic-step",
        "One characteristic step is a Gibbs average of the atoms",
        (eq(Tex(r"x_k - t\,\partial_{p_k} H(\nabla u)"), foot), eq(Tex(r"x - 2t\nabla u - \mathbb{E}_{\pi^{u}}[y]"), diff)),
        r"characteristics are straight lines $x(s) = x(0) + s\, \partial_p H(\nabla u)$; through $(x, t)$ they start at $x - t\, \partial_p H(\nabla u) "
        r"= x - 2t \nabla u$, which is the Gibbs average of the atoms: $L^2$ attention (scores $-|x - y_j|^2/(4t)$, values = keys)",
        uses_present(d, "characteristics", "derivatives"),
        "verified" if diff == 0 else "derived",
    )


@register("convex-view", order=220, requested=True)
def convex_view(d):
    """eps LSE(z/eps) = max over the simplex of <pi, z> + eps Entropy(pi), maximiser softmax(z/eps)."""
    parts = lse_parts(d)
    if parts is None:
        return
    cf, node = parts
    eps = d.nu
    z_scaled, j = node.logits, node.index
    pi, lam, S = sp.Symbol(r"pi_j", positive=True), sp.Symbol(r"lambda", real=True), sp.Symbol("S", real=True)
    zj = sp.Symbol("z_j", real=True)
    stationarity = zj - eps * (sp.log(pi) + 1) - lam  # d/dpi_j of <pi, z> + eps Entropy(pi) - lam (sum pi - 1)
    (pi_of,) = sp.solve(stationarity, pi)
    # normalisation: sum_j pi_j = exp(-lam/eps - 1) sum_j exp(z_j/eps) = exp(-lam/eps - 1 + S) = 1, S = LSE(z/eps)
    (lam_of,) = sp.solve(sp.exp(-lam / eps - 1 + S) - 1, lam)
    pi_star = sp.simplify(pi_of.subs(lam, lam_of))
    # value at the maximiser: E_pi[z] - eps E_pi[log pi], with log pi_j = z_j/eps - LSE(z/eps)
    z = canonical(eps * z_scaled)
    value = canonical(gibbs_mean(z, z_scaled, j) - eps * gibbs_mean(z_scaled - node, z_scaled, j))
    diff = canonical(value - d.results["f"])
    d.results["convex_value"] = value
    d.add(
        "convex-view",
        "The convex (entropy-regularised) view",
        (eq(Tex(r"f_{\varepsilon}"), Tex(r"\max_{\pi \in \Delta} \langle \pi, z\rangle + \varepsilon\, \mathrm{Ent}(\pi)")),
         eq(Tex(r"\partial_{\pi_j}\mathcal{L}"), stationarity), eq(pi, pi_star), eq(Tex(r"\mathrm{value} - f_{\varepsilon}"), diff)),
        r"Lagrangian with a multiplier for $\sum_j \pi_j = 1$: stationarity gives $\pi_j = e^{(z_j - \lambda)/\varepsilon - 1}$, the normalisation "
        r"fixes $\lambda = \varepsilon (S - 1)$ with $S = \mathrm{LSE}(z/\varepsilon)$, so $\pi = \mathrm{softmax}(z/\varepsilon)$; the entropy is strictly concave, so this is the "
        r"unique maximiser, and the value is the network. At $\varepsilon = 0$ it is the linear programme $\max_\pi \langle\pi, z\rangle = \max_j z_j = f_0$",
        uses_present(d, "network"),
        "verified" if diff == 0 else "derived",
    )


@register("values", order=240, when=lambda d: bool(d.sym.spec.values))
def values(d):
    """Attention: sum_m (df/db_m) V_m = E_pi[V], and its Jacobian in the query."""
    spec = d.sym.spec
    att_name = next((n for n in d.results if n.startswith("d_f_d_")), None)
    if att_name is None:
        return
    V = d.sym.tensors[spec.values]
    m, c = free_index(ATOM), free_index(VALUE)
    grad_b = d.results[att_name]  # pi_m, a GibbsWeight with free index m
    contracted = canonical(sp.Sum(grad_b * V[m, c], (m, 1, d.N)))
    parts = lse_parts(d)
    cf, node = parts
    expected = canonical(gibbs_mean(V[node.index, c], node.logits, node.index))
    diff = canonical(contracted - expected)
    d.results["attention"] = contracted
    d.fn("attention", contracted, f"Gibbs average of the values E_pi[{spec.values}] (attention output)", out=(c,))
    k = fresh_free_index(DIM, contracted)
    jac = pdiff(contracted, d.x[k])
    d.results["attention_jacobian"] = jac
    d.fn("attention_jacobian", jac, "Jacobian of the attention output in the query: a Gibbs covariance", out=(c, k))
    b_name = att_name.removeprefix("d_f_d_")
    d.add(
        "attention",
        "Attention is the gradient of the log-sum-exp, contracted with the values",
        (eq(Tex(r"\sum_m \frac{\partial f}{\partial " + b_name + r"_m} V_{m c}"), contracted),
         eq(Tex(r"\sum_m \frac{\partial f}{\partial " + b_name + r"_m} V_{m c} - \mathbb{E}_{\pi}[V_{c}]"), diff), eq(Tex(r"\partial_{x_k} \mathbb{E}_{\pi}[V_c]"), jac)),
        rf"$\partial f/\partial {b_name}_m = \pi_m$ (step attribution) is the gradient of the log-sum-exp in its logits; contracting with "
        rf"${spec.values}$ gives the Gibbs average of the values, $\mathrm{{softmax}}(z)\, {spec.values}$; differentiating again gives $\mathrm{{Cov}}_\pi({spec.values}, \partial z/\partial x)$",
        ("attribution",),
        "verified" if diff == 0 else "derived",
    )

