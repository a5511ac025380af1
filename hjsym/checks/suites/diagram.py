"""Checks of the commutative diagram on a trained log-sum-exp layer.

Every node of :func:`hjsym.derivation.diagram.diagram_graph` is realised by its own route, at each eps of
:data:`EPS_GRID` (the layer's weights fixed, its temperature set to eps):

* ``f_eps``: the real module's forward pass; ``f_0``: the generated max-plus network;
* ``u_eps`` / ``u_0``: the generated Hopf-Cole / Hopf-Lax solutions from the read-out atoms;
* ``convex``: ``max_{pi in simplex} <pi, z> + eps Ent(pi)`` solved by damped Newton on the
  simplex (:func:`maximise_entropic`; never the softmax formula);
* ``u_eps_h`` / ``u_0_h``: one step of time ``s`` from the solution at ``t0`` sampled on a grid of
  ``N'`` points (trapezoid quadrature with the generated heat kernel / a minimum over the grid).

``edges`` checks each edge's relation (identity within tolerance, limit within its derived
bound) at every eps; ``paths`` transports every node's values along every simple path to every
other node and checks that it lands within the sum of the path's bounds, for every path and
every pair of paths between the same nodes; ``convex_duality`` compares the optimiser's value
with the module.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import replace

import torch
from torch.func import functional_call

from ...networks.lse import read_lse, scalar_output, set_eps
from ..criteria import tolerances
from ..._resources import Estimate
from ..engine import Check, Suite, Values, run_check
from ..formula import DELTA, Custom

__all__ = ["SUITE", "EPS_GRID", "T", "T0", "S", "maximise_entropic", "diagram_rows"]

EPS_GRID = (0.5, 0.2, 0.1, 0.05)
T, T0, S = 1.0, 0.5, 0.5  # the corners' time; the quadrature corners step from t0 by s (t0 + s = T)
N_POINTS = 24


def maximise_entropic(z: torch.Tensor, eps: float, *, iters: int = 400, tol: float = 1e-28):
    """``max_{pi in simplex} <pi, z> + eps Ent(pi)`` for each row of ``z`` ``(M, N)``: value ``(M,)``, iterations.

    Damped Newton with the equality constraint: the Newton direction of the concave objective
    restricted to ``sum pi = 1`` is ``pi (g - E_pi g)/eps`` with ``g = z - eps (log pi + 1)``; steps
    stay inside the simplex (fraction to the boundary 0.99) and are backtracked until they ascend.
    """
    M, N = z.shape
    tiny = torch.finfo(z.dtype).tiny
    pi = torch.full((M, N), 1.0 / N, dtype=z.dtype)

    def objective(p):
        return (p * z).sum(-1) - eps * torch.special.xlogy(p, p).sum(-1)

    it = 0
    for it in range(1, iters + 1):
        g = z - eps * (torch.log(pi.clamp_min(tiny)) + 1)
        centred = g - (pi * g).sum(-1, keepdim=True)
        delta = pi * centred / eps
        decrement = (delta * centred).sum(-1)  # >= 0: the ascent the Newton model predicts
        if float(decrement.max()) < tol:
            break
        shrink = torch.where(delta < 0, -pi / delta.where(delta < 0, -torch.ones_like(delta)), torch.full_like(pi, math.inf))
        alpha = torch.clamp(0.99 * shrink.amin(-1, keepdim=True), max=1.0)
        base = objective(pi)
        for _ in range(40):
            new = pi + alpha * delta
            ok = objective(new) >= base + 0.25 * alpha[:, 0] * decrement - 4 * torch.finfo(z.dtype).eps * base.abs()
            if bool(ok.all()):
                break
            alpha = torch.where(ok[:, None], alpha, alpha / 2)
        pi = (new / new.sum(-1, keepdim=True)).clamp_min(0)
    return objective(pi), it


def _grid(r, y, x, eps_min):
    """Grid nodes ``(N', d)`` and spacing: h = sqrt(2 eps_min min(t0, s))/3, covering atoms and points."""
    sigma_min = math.sqrt(2 * eps_min * min(T0, S))
    sigma_max = math.sqrt(2 * max(EPS_GRID) * max(T0, S))
    h = sigma_min / 3
    pts = torch.cat([y, x])
    axes = []
    for i in range(r.d):
        lo, hi = float(pts[:, i].min()) - 8 * sigma_max, float(pts[:, i].max()) + 8 * sigma_max
        axes.append(torch.arange(lo, hi + h, h, dtype=x.dtype))
    nodes = torch.stack([a.reshape(-1) for a in torch.meshgrid(*axes, indexing="ij")], dim=1)
    return nodes, h


def points(ctx, d: int) -> torch.Tensor:
    return torch.randn(N_POINTS, d, generator=ctx.gen(40_000 + d), dtype=ctx.dtype)


def _args(r, **values):
    return {**r.arguments(), **values}


def diagram_values(ctx, net, eps: float, x: torch.Tensor, grid):
    """Every node's values at the points ``x`` (each by its own route) at temperature ``eps``, and the magnitude of their terms."""
    r = net.readout
    base = _args(r, t=T)
    y, g = ctx.call("atoms_y", base), ctx.call("atoms_g", base)
    mod = copy.deepcopy(net.module)
    set_eps(mod, eps)
    with torch.no_grad():
        f_eps = scalar_output(mod)(x)
    z = x @ r.W.T + r.b
    convex, iters = maximise_entropic(z, eps)
    nodes, h = grid
    d = r.d
    at = dict(x=x, eps=eps, y=y, g=g)
    # viscous: u(x, T) = -eps log sum_k h^d K_s(x - z_k) exp(-u_exact(z_k, t0)/eps), minus the normalisation at T
    log_k = ctx.call("log_kernel", x=x[:, None, :] - nodes[None, :, :], eps=eps, t=S)
    u_ex_t0 = ctx.call("u_exact", x=nodes, eps=eps, y=y, g=g, t=T0)
    norm_T = ctx.call("u_exact", **{**at, "x": x[:1]}, t=T) - ctx.call("u", **{**at, "x": x[:1]}, t=T)
    terms = d * math.log(h) + log_k - u_ex_t0[None, :] / eps
    u_eps_h = -eps * torch.logsumexp(terms, dim=1) - norm_T
    # Hopf-Lax: u_0(x, T) = min_k u_0(z_k, t0) + |x - z_k|^2/(4s)
    u0_t0 = ctx.call("hopf_lax", x=nodes, y=y, g=g, t=T0)
    hl_terms = u0_t0[None, :].abs() + ((x[:, None, :] - nodes[None, :, :]) ** 2).sum(-1) / (4 * S)
    u_0_h = (u0_t0[None, :] + ((x[:, None, :] - nodes[None, :, :]) ** 2).sum(-1) / (4 * S)).amin(dim=1)
    values = {
        "f_eps": f_eps,
        "f_0": ctx.call("f0", _args(r, x=x)),
        "u_eps": ctx.call("u", t=T, **at),
        "u_0": ctx.call("hopf_lax", x=x, y=y, g=g, t=T),
        "convex": convex,
        "u_eps_h": u_eps_h,
        "u_0_h": u_0_h,
    }
    scales = {
        "f_eps": ctx.magnitude("f", _args(r, x=x, eps=eps)),
        "f_0": ctx.magnitude("f0", _args(r, x=x)),
        "u_eps": ctx.magnitude("u", t=T, **at),
        "u_0": ctx.magnitude("hopf_lax", x=x, y=y, g=g, t=T),
        # the Newton objective <pi, z> + eps Ent(pi): its terms are |z| and eps log N
        "convex": z.abs().amax(-1) + eps * math.log(r.n_atoms) + convex.abs(),
        # a log-sum-exp over the nodes: its largest term, log N', and the normalisation
        "u_eps_h": eps * (terms.abs().amax(-1) + math.log(nodes.shape[0])) + norm_T.abs() + u_eps_h.abs(),
        "u_0_h": hl_terms.amin(-1) + hl_terms.amax(-1),
    }
    return values, scales, {"newton_iterations": iters, "grid_points": nodes.shape[0], "h": h}


def edge_bounds(ctx, r, eps: float, grid) -> dict:
    """The derived bound of every edge at ``eps`` (0 for identities)."""
    nodes, h = grid
    lse_N = float(ctx.call("tropical_bound", eps=eps, N=r.n_atoms))
    lse_grid = float(ctx.call("tropical_bound", eps=eps, N=nodes.shape[0]))
    c_eps = eps * r.d * (-math.log(h) + 0.5 * math.log(4 * math.pi * eps * S * T0 / T))
    return {
        "eps log N": lse_N,
        "0": 0.0,
        "quadrature (spectral)": 0.0,
        "(1/t0 + 1/s) d h^2 / 16": (1 / T0 + 1 / S) * r.d * h * h / 16,
        "eps log N + eps log N' + |c_eps|": lse_N + lse_grid + abs(c_eps),
    }


def _q(x):
    return (x * x).sum(-1) / (4 * T)


def _transport(values, scales, x, path, graph):
    """A node's values moved along ``path`` (``q - v`` across an identity) and the magnitude of what was added."""
    v, s = values[path[0]], scales[path[0]]
    for a, b in zip(path, path[1:]):
        if graph.edges[a, b]["map"] == "flip":
            v, s = _q(x) - v, s + _q(x)
    return v, s


def diagram_rows(ctx, net):
    """Per eps: node values, the edge measurements and the path compositions (memoised per network)."""
    return ctx.cached(("diagram", id(net.readout), id(net.a)), lambda: _diagram_rows(ctx, net))


def _diagram_rows(ctx, net):
    # deferred: the diagram's graph needs SymPy and networkx, which no other suite's check loads
    import networkx as nx

    from ...derivation.diagram import EDGES, diagram_graph

    r = net.readout
    graph = diagram_graph()
    x = points(ctx, r.d)
    y = ctx.call("atoms_y", _args(r, t=T))
    grid = _grid(r, y, x, min(EPS_GRID))
    rows = []
    for eps in EPS_GRID:
        values, scales, info = diagram_values(ctx, net, eps, x, grid)
        bounds = edge_bounds(ctx, r, eps, grid)
        edges = []
        for a, b, kind, m, bname in EDGES:
            moved = _q(x) - values[a] if m == "flip" else values[a]
            scale = scales[a] + scales[b] + (_q(x) if m == "flip" else 0)
            diff = moved - values[b]
            if bname == "0" or bname.startswith("quadrature"):
                measured, upper = diff.abs(), 0.0
            elif (kind.startswith("eps") and a in ("f_eps", "convex")) or a == "u_0_h":
                measured, upper = diff, bounds[bname]  # one-sided: f_eps - f_0 and u_0^h - u_0 lie in [0, bound]
            elif a == "u_eps" and b == "u_0":
                measured, upper = -diff, bounds[bname]  # one-sided: u_0 - u_eps in [0, eps log N]
            else:
                measured, upper = diff.abs(), bounds[bname]
            edges.append({"a": a, "b": b, "kind": kind, "bound_name": bname, "measured": measured, "upper": upper, "scale": scale})
        paths = []
        for a, b in itertools.combinations(graph.nodes, 2):
            transported = []
            for p in nx.all_simple_paths(graph, a, b):
                v, s = _transport(values, scales, x, p, graph)
                budget = sum(_edge(edges, u, w)["upper"] for u, w in zip(p, p[1:]))
                s = s + scales[b] + sum(_edge(edges, u, w)["scale"] for u, w in zip(p, p[1:]))
                transported.append((p, v, budget, s))
                paths.append({"path": p, "measured": (v - values[b]).abs(), "upper": budget, "scale": s})
            for (p1, v1, b1, s1), (p2, v2, b2, s2) in itertools.combinations(transported, 2):
                paths.append({"path": p1 + ["|"] + p2, "measured": (v1 - v2).abs(), "upper": b1 + b2, "scale": s1 + s2, "pair": True})
        rows.append({"eps": eps, "values": values, "edges": edges, "paths": paths, "info": info})
    return rows


def _edge(edges, u, w):
    return next(e for e in edges if {e["a"], e["b"]} == {u, w})


# ----------------------------------------------------------------------------- checks
def edge_values(ctx, nets):
    out = []
    for net in nets:
        for row in diagram_rows(ctx, net):
            for e in row["edges"]:
                out.append(Values(e["measured"], torch.full_like(e["measured"], e["upper"]), e["scale"], lower=0.0,
                                  info={"eps": row["eps"], "edge": f"{e['a']} -- {e['b']}", "kind": e["kind"], "bound": e["bound_name"],
                                        "max_measured": float(e["measured"].abs().max()), "bound_value": e["upper"]}))
    return out


def _edge_details(ctx, nets, values):
    table = [v.info for v in values]
    return {"eps_grid": list(EPS_GRID), "table": table, "fitted_loglog_slopes": _rates(table), "cases": None}


def _rates(table):
    """Log-log slope of the largest measured gap of each eps -> 0 edge against eps (the derived rate is 1)."""
    out = {}
    for name in sorted({t["edge"] for t in table if t["kind"].startswith("eps")}):
        pts = [(math.log(t["eps"]), math.log(max(t["max_measured"], 1e-300))) for t in table if t["edge"] == name]
        n = len(pts)
        mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
        out[name] = sum((p[0] - mx) * (p[1] - my) for p in pts) / sum((p[0] - mx) ** 2 for p in pts)
    return out


def path_values(ctx, nets):
    out = []
    for net in nets:
        for row in diagram_rows(ctx, net):
            for p in row["paths"]:
                # measured against the bound plus the rounding of the terms (identity paths have bound 0)
                budget = p["upper"] + tolerances(p["scale"], ctx.dtype)
                out.append(Values(p["measured"], torch.full_like(p["measured"], p["upper"]), p["scale"], lower=0.0,
                                  info={"eps": row["eps"], "path": " -> ".join(p["path"]), "pair": bool(p.get("pair")),
                                        "ratio": float((p["measured"] / budget).max())}))
    return out


def _path_details(ctx, nets, values):
    infos = [v.info for v in values]
    worst = sorted(infos, key=lambda i: -i["ratio"])[:5]
    n_pairs = sum(i["pair"] for i in infos)
    per_eps = max(1, len(EPS_GRID) * max(1, len(nets)))
    return {"paths": (len(infos) - n_pairs) // per_eps, "pairs_of_paths": n_pairs // per_eps,
            "worst_ratio_measured_over_bound": [{"ratio": w["ratio"], "eps": w["eps"], "path": w["path"]} for w in worst],
            "cases": None}


def tropical_edge_witness(ctx, nets):
    """Where the edge ``f_eps -- f_0`` attains its bound ``eps log N``: the layer's slopes with offsets ``b_j = -W_j x0``, so that
    every logit is equal at ``x0`` (each term of the log-sum-exp at its largest). ``f_eps`` is the real module there, ``f_0``
    the generated max-plus network, the bound the generated ``tropical_bound``."""
    out = []
    for net in nets:
        r = net.readout
        x0 = points(ctx, r.d)[:1]
        b = -(r.W @ x0[0])
        for eps in EPS_GRID:
            mod = copy.deepcopy(net.module)
            set_eps(mod, eps)
            with torch.no_grad():
                f_eps = functional_call(mod, net.a.parameters_for(r.W, b), (x0,)).reshape(1)
            args = _args(r, x=x0, b=b, eps=eps)
            f_0 = ctx.call("f0", args)
            bound = ctx.call("tropical_bound", eps=eps, N=r.n_atoms)
            scale = ctx.magnitude("f", args) + ctx.magnitude("f0", args) + ctx.magnitude("tropical_bound", eps=eps, N=r.n_atoms)
            out.append(Values(f_eps - f_0, torch.full_like(f_eps, float(bound)), scale,
                              info={"eps": eps, "edge": "f_eps -- f_0", "logits": "all equal at x0"}))
    return out


def _convex_values(ctx, nets, weight: float = 1.0):
    """The module against the entropy-regularised problem with entropic weight ``weight * eps`` (1: the derived one)."""
    out = []
    for net in nets:
        r = net.readout
        x = points(ctx, r.d)
        z = x @ r.W.T + r.b
        for eps in EPS_GRID:
            mod = copy.deepcopy(net.module)
            set_eps(mod, eps)
            with torch.no_grad():
                a = scalar_output(mod)(x)
            value, it = maximise_entropic(z, eps * weight)
            scale = ctx.magnitude("f", _args(r, x=x, eps=eps)) + z.abs().amax(-1) + eps * math.log(r.n_atoms)
            out.append(Values(a, value, scale, info={"eps": eps, "newton_iterations": it}))
    return out


def convex_values(ctx, nets):
    return _convex_values(ctx, nets)


def _convex_mutated(ctx, nets):
    """The formula control of the convex view (its route B is a Newton solve, not a generated function): the entropic
    weight of the problem moved from eps to (1 + delta) eps, delta the check's resolution."""
    delta = DELTA[ctx.dtype]
    check = replace(next(c for c in CHECKS if c.name == "convex_duality"), formula=None,
                    evaluate=lambda c, n: _convex_values(c, n, 1 + delta))
    return run_check(check, ctx, nets)


_DIAGRAM = ("f0", "u", "hopf_lax", "u_exact", "log_kernel", "atoms_y", "atoms_g", "tropical_bound")
CHECKS = (
    Check("edges", r"every edge of the diagram: identities to rounding, $\varepsilon \to 0$ limits within $\varepsilon \log N$, quadratures within their bounds",
          "diagram:1", r"each node by its own route (module forward; generated $f_0$, $u_\varepsilon$, $u_0$; Newton on the simplex; quadrature of "
          r"the generated solution at $t_0$), moved across the edge by its map",
          "the derived bound of the edge (identities: 0)", evaluate=edge_values, kind="bound", requires=_DIAGRAM,
          details=_edge_details, witness=tropical_edge_witness),
    Check("paths", "every path between two nodes (and every pair of such paths) agrees within the sum of its edges' bounds", "diagram:1",
          "a node's values transported along the path ($q - v$ across an identity, $v$ across a limit)",
          "sum of the derived bounds of the path's edges (for a pair of paths, of both)", evaluate=path_values, kind="bound",
          requires=_DIAGRAM, details=_path_details, witness=tropical_edge_witness),
    Check("convex_duality", r"$f_\varepsilon(x) = \max_{\pi \in \Delta} \langle \pi, Wx + b\rangle + \varepsilon\, \mathrm{Ent}(\pi)$ (the convex view)", "convex-view:4",
          r"the real module's forward at each $\varepsilon$",
          "the entropy-regularised problem solved by damped Newton on the simplex (no softmax formula)", evaluate=convex_values,
          requires=("f",), formula=Custom("the entropic weight of the convex problem eps -> (1 + delta) eps, delta the resolution "
                                          "(1e-6 in float64)", _convex_mutated)),
)


def cost(ctx, net) -> Estimate:
    """The quadrature corners dominate: ``M`` points against every node of the grid (:func:`_grid`, whose node count grows
    like ``(width / h)^d``), as ``(M, N', d)`` differences for the heat kernel; counted without building the grid."""
    r = net.readout
    x = points(ctx, r.d)
    y = ctx.call("atoms_y", _args(r, t=T))
    h = math.sqrt(2 * min(EPS_GRID) * min(T0, S)) / 3
    margin = 16 * math.sqrt(2 * max(EPS_GRID) * max(T0, S))
    both = torch.cat([y, x])
    nodes = math.prod(int((float(both[:, i].max() - both[:, i].min()) + margin) / h) + 2 for i in range(r.d))
    item = torch.finfo(ctx.dtype).bits // 8
    return Estimate(f"the diagram of {r.describe()} (a quadrature grid of {nodes:.3g} nodes in d = {r.d})",
                    item * 3 * N_POINTS * nodes * (r.d + 1), 20.0 * len(EPS_GRID) * N_POINTS * nodes * (r.d + 1))


def read(ctx, module):
    r = read_lse(module, ctx.dtype)
    slope, offset = ctx.spec.network.weights
    r.names = {"W": slope, "b": offset, "eps": str(ctx.spec.viscosity)}
    return r


SUITE = Suite("diagram", CHECKS, applies=lambda spec: spec.family == "exact" and "convex-view" in spec.passes and "semigroup" in spec.passes,
              read=read, cost=cost)
