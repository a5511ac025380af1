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
from dataclasses import dataclass, field

import torch

from ..engine import CheckReport, CheckResult, bound, compare, negative_size, run_checks, tolerance
from ...codegen.pipeline import load_functions
from ...derivation.diagram import EDGES, diagram_graph
from ...networks.lse import Perturbed, read_lse, scalar_output, set_eps

__all__ = ["run", "CHECKS", "NEGATIVE_CONTROLS", "EPS_GRID", "maximise_entropic", "diagram_values", "figures"]

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


@dataclass
class Context:
    fns: dict
    dtype: torch.dtype
    seed: int
    rows: dict = field(default_factory=dict)  # diagram_rows per readout: the checks share one evaluation

    def points(self, d: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(50_000 + self.seed * 97 + d)
        return torch.randn(N_POINTS, d, generator=gen, dtype=self.dtype)


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


def diagram_values(ctx: Context, r, eps: float, x: torch.Tensor, grid) -> dict:
    """Every node's values at the points ``x`` (each by its own route), at temperature ``eps``."""
    fns = ctx.fns
    y, g = fns["atoms_y"](W=r.W, t=T), fns["atoms_g"](W=r.W, b=r.b, t=T)
    mod = copy.deepcopy(r.module)
    set_eps(mod, eps)
    with torch.no_grad():
        f_eps = scalar_output(mod)(x)
    convex, iters = maximise_entropic(x @ r.W.T + r.b, eps)
    nodes, h = grid
    d = r.d
    # viscous: u(x, T) = -eps log sum_k h^d K_s(x - z_k) exp(-u_exact(z_k, t0)/eps), minus the normalisation at T
    log_k = fns["log_kernel"](x=x[:, None, :] - nodes[None, :, :], eps=eps, t=S)
    u_ex_t0 = fns["u_exact"](x=nodes, eps=eps, y=y, g=g, t=T0)
    norm_T = fns["u_exact"](x=x[:1], eps=eps, y=y, g=g, t=T) - fns["u"](x=x[:1], eps=eps, y=y, g=g, t=T)
    u_eps_h = -eps * torch.logsumexp(d * math.log(h) + log_k - u_ex_t0[None, :] / eps, dim=1) - norm_T
    # Hopf-Lax: u_0(x, T) = min_k u_0(z_k, t0) + |x - z_k|^2/(4s)
    u0_t0 = fns["hopf_lax"](x=nodes, y=y, g=g, t=T0)
    u_0_h = (u0_t0[None, :] + ((x[:, None, :] - nodes[None, :, :]) ** 2).sum(-1) / (4 * S)).amin(dim=1)
    values = {
        "f_eps": f_eps,
        "f_0": fns["f0"](x=x, W=r.W, b=r.b),
        "u_eps": fns["u"](x=x, eps=eps, y=y, g=g, t=T),
        "u_0": fns["hopf_lax"](x=x, y=y, g=g, t=T),
        "convex": convex,
        "u_eps_h": u_eps_h,
        "u_0_h": u_0_h,
    }
    return values, {"newton_iterations": iters, "grid_points": nodes.shape[0], "h": h}


def edge_bounds(ctx: Context, r, eps: float, grid) -> dict:
    """The derived bound of every edge at ``eps`` (0 for identities)."""
    nodes, h = grid
    lse_N = float(ctx.fns["tropical_bound"](eps=eps, N=r.n_atoms))
    lse_grid = float(ctx.fns["tropical_bound"](eps=eps, N=nodes.shape[0]))
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


def _transport(values, x, path, graph):
    v = values[path[0]]
    for a, b in zip(path, path[1:]):
        if graph.edges[a, b]["map"] == "flip":
            v = _q(x) - v
    return v


def diagram_rows(ctx: Context, r):
    """Per eps: node values, the edge measurements and the path compositions (memoised per readout)."""
    if id(r) not in ctx.rows:
        ctx.rows[id(r)] = (r, _diagram_rows(ctx, r))  # keep r alive: its id stays unique
    return ctx.rows[id(r)][1]


def _diagram_rows(ctx: Context, r):
    graph = diagram_graph()
    x = ctx.points(r.d)
    y = ctx.fns["atoms_y"](W=r.W, t=T)
    grid = _grid(r, y, x, min(EPS_GRID))
    tol = tolerance("identity", ctx.dtype)
    rows = []
    for eps in EPS_GRID:
        values, info = diagram_values(ctx, r, eps, x, grid)
        bounds = edge_bounds(ctx, r, eps, grid)
        edges = []
        for a, b, kind, m, bname in EDGES:
            moved = _q(x) - values[a] if m == "flip" else values[a]
            diff = moved - values[b]
            if bname == "0" or bname.startswith("quadrature"):
                measured, upper = diff.abs(), tol * max(1.0, float(values[b].abs().max()))
            elif (kind.startswith("eps") and a in ("f_eps", "convex")) or a == "u_0_h":
                measured, upper = diff, bounds[bname]  # one-sided: f_eps - f_0 and u_0^h - u_0 lie in [0, bound]
            elif a == "u_eps" and b == "u_0":
                measured, upper = -diff, bounds[bname]  # one-sided: u_0 - u_eps in [0, eps log N]
            else:
                measured, upper = diff.abs(), bounds[bname]
            edges.append({"a": a, "b": b, "kind": kind, "bound_name": bname, "measured": measured, "upper": upper})
        paths = []
        for a, b in itertools.combinations(graph.nodes, 2):
            found = list(_simple_paths(graph, a, b))
            transported = []
            for p in found:
                v = _transport(values, x, p, graph)
                budget = sum(_edge_budget(edges, u, w, tol, values) for u, w in zip(p, p[1:]))
                transported.append((p, v, budget))
                paths.append({"path": p, "measured": (v - values[b]).abs(), "upper": budget})
            for (p1, v1, b1), (p2, v2, b2) in itertools.combinations(transported, 2):
                paths.append({"path": p1 + ["|"] + p2, "measured": (v1 - v2).abs(), "upper": b1 + b2, "pair": True})
        rows.append({"eps": eps, "values": values, "edges": edges, "paths": paths, "info": info})
    return rows


def _simple_paths(graph, a, b):
    import networkx as nx

    return nx.all_simple_paths(graph, a, b)


def _edge_budget(edges, u, w, tol, values):
    e = next(e for e in edges if {e["a"], e["b"]} == {u, w})
    return e["upper"] + tol * max(1.0, float(values[w].abs().max()), float(values[u].abs().max()))


def _cat(parts):
    return torch.cat([p.reshape(-1) for p in parts])


# ----------------------------------------------------------------------------- checks
def check_edges(ctx: Context, rs) -> CheckResult:
    vals, ups, table = [], [], []
    for r in rs:
        for row in diagram_rows(ctx, r):
            for e in row["edges"]:
                vals.append(e["measured"])
                ups.append(torch.full_like(e["measured"], e["upper"]))
                table.append({"eps": row["eps"], "edge": f"{e['a']} -- {e['b']}", "kind": e["kind"], "bound": e["bound_name"],
                              "max_measured": float(e["measured"].abs().max()), "bound_value": e["upper"]})
    slopes = _rates(table)
    return bound(
        "edges",
        "every edge of the diagram: identities to tolerance, eps -> 0 limits within eps log N, quadratures within their bounds",
        _cat(vals), _cat(ups), tolerance("bound", ctx.dtype),
        "each node by its own route (module forward; generated f_0, u_eps, u_0; Newton on the simplex; quadrature of the "
        "generated solution at t0), moved across the edge by its map",
        "the derived bound of the edge (identities: the float64 identity tolerance)",
        details={"eps_grid": list(EPS_GRID), "table": table, "fitted_loglog_slopes": slopes},
    )


def _rates(table):
    """Log-log slope of the largest measured gap of each eps -> 0 edge against eps (the derived rate is 1)."""
    out = {}
    for name in sorted({t["edge"] for t in table if t["kind"].startswith("eps")}):
        pts = [(math.log(t["eps"]), math.log(max(t["max_measured"], 1e-300))) for t in table if t["edge"] == name]
        n = len(pts)
        mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
        out[name] = sum((p[0] - mx) * (p[1] - my) for p in pts) / sum((p[0] - mx) ** 2 for p in pts)
    return out


def check_paths(ctx: Context, rs) -> CheckResult:
    vals, ups, worst = [], [], []
    n_paths = n_pairs = 0
    for r in rs:
        for row in diagram_rows(ctx, r):
            for p in row["paths"]:
                vals.append(p["measured"])
                ups.append(torch.full_like(p["measured"], p["upper"]))
                n_pairs += bool(p.get("pair"))
                n_paths += not p.get("pair")
                worst.append((float(p["measured"].max()) / max(p["upper"], 1e-300), row["eps"], " -> ".join(p["path"])))
    worst.sort(reverse=True)
    return bound(
        "paths",
        "every path between two nodes (and every pair of such paths) agrees within the sum of its edges' bounds",
        _cat(vals), _cat(ups), tolerance("bound", ctx.dtype),
        "a node's values transported along the path (q - v across an identity, v across a limit)",
        "sum of the derived bounds of the path's edges (for a pair of paths, of both)",
        details={"paths": n_paths // max(1, len(EPS_GRID)), "pairs_of_paths": n_pairs // max(1, len(EPS_GRID)),
                 "worst_ratio_measured_over_bound": [{"ratio": w[0], "eps": w[1], "path": w[2]} for w in worst[:5]]},
    )


def check_convex_duality(ctx: Context, rs) -> CheckResult:
    a, b, iters = [], [], []
    for r in rs:
        x = ctx.points(r.d)
        for eps in EPS_GRID:
            mod = copy.deepcopy(r.module)
            set_eps(mod, eps)
            with torch.no_grad():
                a.append(scalar_output(mod)(x))
            value, it = maximise_entropic(x @ r.W.T + r.b, eps)
            b.append(value)
            iters.append(it)
    return compare(
        "convex_duality",
        "f_eps(x) = max_{pi in simplex} <pi, W x + b> + eps Ent(pi) (the convex view)",
        _cat(a), _cat(b), tolerance("identity", ctx.dtype),
        "the real module's forward at each eps",
        "the entropy-regularised problem solved by damped Newton on the simplex (no softmax formula)",
        {"eps_grid": list(EPS_GRID), "newton_iterations": iters},
    )


CHECKS = {"edges": check_edges, "paths": check_paths, "convex_duality": check_convex_duality}
NEGATIVE_CONTROLS = {"edges": ("bump", 100), "paths": ("bump", 100), "convex_duality": ("bump", 100)}


def reference_modules(seed: int = 0, dtype=torch.float64):
    """The trained LSE layer of the ``lse`` suite with d = 2 (N = 16)."""
    from . import lse

    return [lse.reference_modules(seed, dtype)[1]]


def run(arch, *, module=None, dtype=torch.float64, seed: int = 0, only=None, negative_controls: bool = False, progress: bool = False) -> CheckReport:
    """Check every edge and every composition of the diagram on a trained LSE layer (or ``module``)."""
    ctx = Context(load_functions(arch.spec), dtype, seed)
    nets = reference_modules(seed, dtype) if module is None else [module]
    rs = [read_lse(n, dtype) for n in nets]
    network = rs[0].describe() + (" trained 300 Adam steps (the lse suite's d = 2 layer)" if module is None else "")

    def negative(name):
        kind, size = NEGATIVE_CONTROLS[name]
        prs = [read_lse(Perturbed(r.module, kind, negative_size(name, size, dtype)), dtype) for r in rs]
        return CHECKS[name](ctx, prs)

    return run_checks(arch.name, {n: (lambda n=n: CHECKS[n](ctx, rs)) for n in CHECKS}, NEGATIVE_CONTROLS, negative, dtype=dtype,
                      seed=seed, network=network, only=only, negative_controls=negative_controls, progress=progress)


def figures(arch, report: CheckReport, out_dir, *, seed: int = 0):
    from ...reports.figures.common import diagram_figure

    return diagram_figure(arch, report, out_dir, seed=seed)
