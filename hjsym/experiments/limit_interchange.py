"""The limits eps -> 0 and N -> infinity commute for Lipschitz initial data (the paper's Theorem 7.1).

Initial data ``g(y) = L min_k |y - c_k|`` on ``[-2, 2]^d`` (Lipschitz with kinks, L and the ``c_k``
drawn per seed), t = 1, d in {1, 2}. The network ``u_{eps,N}`` is the midpoint rule of the
normalised Hopf-Cole integral with ``N = n^d`` atoms (quadrature weights ``h^d (4 pi eps t)^{-d/2}``),
an LSE network from the generated ``u``; its two limits are

* ``N -> infinity`` at fixed eps: the viscous solution ``u_eps`` (the same rule on a grid 3x finer per
  axis than the finest network, fine enough to resolve the smallest eps: ``h << sqrt(eps t)``);
* ``eps -> 0`` at fixed N: the max-plus network ``u_{0,N} = min_j g(y_j) + |x - y_j|^2/(4t)`` (the
  generated ``hopf_lax`` on the atoms), exactly.

Both iterated limits should be the Hopf-Lax solution ``u_0`` of the continuous data (closed form):
``u_eps -> u_0`` as eps -> 0 and ``u_{0,N} -> u_0`` as N -> infinity. That is the theorem, and checking
it is a consistency check. What is measured is **uniformity**, the condition under which the two
limits may be exchanged (Moore-Osgood): how the worst error of the N-limit over all eps of the grid
(eps = 0 included), ``U_N = max_eps |u_{eps,N} - u_eps|``, falls with N, and how the worst error of the
eps-limit over all widths (N = infinity included), ``U_eps = max_N |u_{eps,N} - u_{0,N}|``, falls with
eps; each a log-log slope, one fit per seed. Errors are sup norms over 64 query points (the kinks and
points uniform in ``[-1.5, 1.5]^d``).
"""

from __future__ import annotations

import torch

from .._resources import Estimate
from ._cost import lse_work, total
from ._models import cell_grid, cone_hopf_lax, cone_values, quadrature_u
from ._page import evidence_verdicts, falsifiable, row
from ._stats import combine, mean_ci, slopes

NAME = "limit-interchange"
TITLE = "The limits eps -> 0 and N -> infinity commute"
CLAIM = ("For Lipschitz initial data the square commutes in its limits: eps -> 0 and N -> infinity can be taken in either order and give "
         "the same Hopf-Lax solution (Theorem 7.1).")
CLAIM_TEX = r"\lim_{\varepsilon\to 0}\lim_{N\to\infty} u_{\varepsilon,N} = \lim_{N\to\infty}\lim_{\varepsilon\to 0} u_{\varepsilon,N} = u_0"
SEEDS = (0, 1, 2, 3, 4)
SEEDS_QUICK = (0, 1)
DIMS = (1, 2)
GRIDS = {1: (8, 16, 32, 64, 128, 256, 512), 2: (8, 12, 16, 24, 32, 48, 64, 96, 128)}
GRIDS_QUICK = {1: (8, 16, 32, 64), 2: (6, 8, 12, 16)}
EPS = {1: tuple(float(v) for v in torch.logspace(-3, 0, 7, dtype=torch.float64)),
       2: tuple(float(v) for v in torch.logspace(-2.5, 0, 6, dtype=torch.float64))}
EPS_QUICK = {1: (0.01, 0.1, 1.0), 2: (0.03, 0.3)}
T, KINKS, M = 1.0, 4, 64


def one(cfg: dict) -> dict:
    d, seed, grids, eps_grid = cfg["d"], cfg["seed"], cfg["grids"], cfg["eps"]
    from ..checks.api import function

    gen = torch.Generator().manual_seed(2003 * seed + d)
    c = -1 + 2 * torch.rand(KINKS, d, generator=gen, dtype=torch.float64)
    L = 0.5 + 0.5 * float(torch.rand(1, generator=gen, dtype=torch.float64))
    x = torch.cat([c, -1.5 + 3 * torch.rand(M - KINKS, d, generator=gen, dtype=torch.float64)])
    u0 = cone_hopf_lax(x, c, L, T)
    n_ref = 3 * max(grids)
    ref_nodes = cell_grid(n_ref, d)
    u_eps = [quadrature_u(x, ref_nodes, (4 / n_ref) ** d, cone_values(ref_nodes, c, L), e, T) for e in eps_grid]  # N = infinity
    u_0N, u_eN = [], []
    for n in grids:
        nodes = cell_grid(n, d)
        vals = cone_values(nodes, c, L)
        u_0N.append(function("lse", "hopf_lax")(x=x, y=nodes, g=vals, t=T))  # eps = 0
        u_eN.append([quadrature_u(x, nodes, (4 / n) ** d, vals, e, T) for e in eps_grid])

    def sup(a, b):
        return float((a - b).abs().max())

    E = [[sup(u_eN[i][k], u0) for k in range(len(eps_grid))] for i in range(len(grids))]  # the error surface
    A = [[sup(u_eN[i][k], u_eps[k]) for k in range(len(eps_grid))] + [sup(u_0N[i], u0)] for i in range(len(grids))]  # N-limit error, eps = 0 last
    B = [[sup(u_eN[i][k], u_0N[i]) for i in range(len(grids))] + [sup(u_eps[k], u0)] for k in range(len(eps_grid))]  # eps-limit error, N = inf last
    return {"d": d, "seed": seed, "N": [n**d for n in grids], "eps": list(eps_grid), "L": L, "error_surface": E,
            "viscous_to_inviscid": [sup(u, u0) for u in u_eps], "hopf_lax_quadrature": [sup(u, u0) for u in u_0N],
            "uniform_N": [max(a) for a in A], "uniform_eps": [max(b) for b in B], "n_ref": n_ref,
            "uniform_N_at_eps0": sum(max(a) == a[-1] for a in A), "uniform_eps_at_infinity": sum(max(b) == b[-1] for b in B)}


def run(ctx) -> dict:
    grids, eps = (GRIDS_QUICK, EPS_QUICK) if ctx.quick else (GRIDS, EPS)
    res = ctx.map(one, [{"d": d, "seed": s, "grids": list(grids[d]), "eps": list(eps[d])} for d in DIMS for s in ctx.seeds], desc="limit-interchange")
    rows, fits, data = [], {}, {"runs": res}
    for d in DIMS:
        mine = sorted((r for r in res if r["d"] == d), key=lambda r: r["seed"])
        N, E = mine[0]["N"], mine[0]["eps"]
        ci_n = mean_ci(slopes(N, [r["uniform_N"] for r in mine]))
        ci_e = mean_ci(slopes(E, [r["uniform_eps"] for r in mine]))
        fits[f"d{d}-uniform_N"], fits[f"d{d}-uniform_eps"] = ci_n, ci_e
        rows.append(row(f"d = {d}: slope against N of U_N = max over eps (0 included) of |u_eps,N - u_eps|", "< 0 (the N-limit is uniform in eps)",
                        ci_n, "holds" if ci_n["hi"] < 0 else ("does not hold" if ci_n["lo"] >= 0 else "inconclusive"),
                        "holds iff the 95 % CI lies below 0; does not hold iff at or above 0 (the worst case over eps does not shrink)"))
        rows.append(row(f"d = {d}: slope against eps of U_eps = max over N (infinity included) of |u_eps,N - u_0,N|", "> 0 (the eps-limit is uniform in N)",
                        ci_e, "holds" if ci_e["lo"] > 0 else ("does not hold" if ci_e["hi"] <= 0 else "inconclusive"),
                        "holds iff the 95 % CI lies above 0; does not hold iff at or below 0"))
        v1 = mean_ci(slopes(E, [r["viscous_to_inviscid"] for r in mine]))
        v2 = mean_ci(slopes(N, [r["hopf_lax_quadrature"] for r in mine]))
        fits[f"d{d}-viscous"], fits[f"d{d}-hopf_lax"] = v1, v2
        rows.append(row(f"d = {d}: eps -> 0 after N -> inf: slope of |u_eps - u_0| against eps", "> 0 (tends to u_0)", v1,
                        "holds" if v1["lo"] > 0 else ("does not hold" if v1["hi"] <= 0 else "inconclusive"), "the viscous solution tends to the Hopf-Lax one (vanishing viscosity): "
                        "holds iff the CI lies above 0", kind="consistency"))
        rows.append(row(f"d = {d}: N -> inf after eps -> 0: slope of |u_0,N - u_0| against N", "< 0 (tends to u_0)", v2,
                        "holds" if v2["hi"] < 0 else ("does not hold" if v2["lo"] >= 0 else "inconclusive"), "the max-plus quadrature tends to the Hopf-Lax solution: holds iff the CI "
                        "lies below 0", kind="consistency"))
    overall = combine(evidence_verdicts(rows))
    at_end_N = sum(r["uniform_N_at_eps0"] for r in res)
    at_end_e = sum(r["uniform_eps_at_infinity"] for r in res)

    def fmt(key):
        ci = fits[key]
        return f"{ci['mean']:.2f} [{ci['lo']:.2f}, {ci['hi']:.2f}]"

    measurement = ("Uniformity (log-log slopes, mean [95 % CI] over seeds): " + "; ".join(
        f"d={d}: worst N-limit error over eps falls with slope {fmt(f'd{d}-uniform_N')} in N, worst eps-limit error over N with slope "
        f"{fmt(f'd{d}-uniform_eps')} in eps" for d in DIMS) + ". Both iterated limits reach u_0: " + "; ".join(
        f"d={d}: |u_eps - u_0| ~ eps^{fmt(f'd{d}-viscous')}, |u_0,N - u_0| ~ N^{fmt(f'd{d}-hopf_lax')}" for d in DIMS) + ".")
    return {
        "verdict": overall,
        "verdict_reason": {"holds": "both limits are uniform in the other parameter over the ranges measured, so they commute (Moore-Osgood); "
                                    "both iterated limits reach the Hopf-Lax solution (a consistency check of the theorem)",
                           "does not hold": "a limit is not uniform in the other parameter: its worst-case error does not shrink",
                           "inconclusive": "the uniformity of some limit is not placed on either side of 0"}[overall],
        "falsifiable": falsifiable(
            "the log-log slopes of the two uniformity moduli, U_N = max over eps (0 included) of |u_eps,N - u_eps| against N, and U_eps = max over "
            "N (infinity included) of |u_eps,N - u_0,N| against eps, one fit per seed, in d = 1 and 2",
            "an interval at or beyond 0 (U_N not falling with N, or U_eps not falling as eps -> 0): the limit is not uniform and the exchange "
            "is not justified by it"),
        "measurement": measurement, "rows": rows, "data": data, "fits": fits,
        "config": {"dims": DIMS, "grids": grids, "eps": eps, "t": T, "kinks": KINKS, "query_points": M, "domain": "[-2, 2]^d",
                   "reference": "same rule, 3x finer grid per axis than the finest network"},
        "notes": ["Both iterated limits ending at u_0 is the theorem itself; a measurement can only confirm it (consistency rows). The rates "
                  "say how fast: the viscous correction is of order eps log(1/eps) in the sup norm, the max-plus quadrature error of order "
                  "h = 4 N^{-1/d} at the kinks.",
                  f"Where the worst cases sit: the N-limit's worst error over eps is attained at eps = 0 in {at_end_N} of "
                  f"{sum(len(r['N']) for r in res)} (width, seed) pairs, the eps-limit's worst error over N at N = infinity in {at_end_e} of "
                  f"{sum(len(r['eps']) for r in res)} (eps, seed) pairs: where it is, the modulus is the other iterated limit's own error.",
                  "A finite grid of eps and N can show uniformity only over its range; eps = 0 and N = infinity are included exactly "
                  "(max-plus network; converged reference), so the moduli are the worst cases over the closed ranges [0, eps_max] and "
                  "[N_min, infinity]."],
        "method": __doc__,
    }


def figures(result, folder) -> list[dict]:
    from ._plots import PALETTE, band, fig_entry, figure

    runs = result["data"]["runs"]
    out = []
    fig, axes = figure(ncols=2, width=4.4, height=3.4)
    for n, d in enumerate(DIMS):
        r = next(r for r in runs if r["d"] == d and r["seed"] == min(q["seed"] for q in runs))
        im = axes[n].pcolormesh(r["eps"], r["N"], torch.tensor(r["error_surface"]).log10().numpy(), shading="nearest", cmap="cividis")
        axes[n].set_xscale("log")
        axes[n].set_yscale("log")
        axes[n].set_xlabel("eps")
        axes[n].set_ylabel("atoms N")
        axes[n].set_title(f"d = {d}, seed {r['seed']}")
        axes[n].grid(False)
        fig.colorbar(im, ax=axes[n], label="log10 sup |u_eps,N - u_0|")
    out.append(fig_entry(fig, folder, "limit-interchange-surface", "The error surface: sup over the query points of |u_eps,N - u_0| over (eps, N)."))
    fig, axes = figure(ncols=2, width=4.4, height=3.4)
    for n, d in enumerate(DIMS):
        mine = [r for r in runs if r["d"] == d]
        band(axes[0], mine[0]["N"], [r["uniform_N"] for r in mine], f"d = {d}: U_N (max over eps)", PALETTE[n])
        band(axes[0], mine[0]["N"], [r["hopf_lax_quadrature"] for r in mine], f"d = {d}: |u_0,N - u_0|", PALETTE[n], marker="x")
        band(axes[1], mine[0]["eps"], [r["uniform_eps"] for r in mine], f"d = {d}: U_eps (max over N)", PALETTE[n])
        band(axes[1], mine[0]["eps"], [r["viscous_to_inviscid"] for r in mine], f"d = {d}: |u_eps - u_0|", PALETTE[n], marker="x")
    axes[0].set_xlabel("atoms N")
    axes[0].set_ylabel("sup error")
    axes[0].legend(fontsize=6)
    axes[1].set_xlabel("eps")
    axes[1].set_ylabel("sup error")
    axes[1].legend(fontsize=6)
    out.append(fig_entry(fig, folder, "limit-interchange-uniformity", "Left: the N-limit's worst error over eps, and the eps = 0 column (max-plus "
                         "quadrature against u_0). Right: the eps-limit's worst error over N, and the N = infinity row (viscous against inviscid); "
                         "mean and range over seeds."))
    return out


def estimate(quick: bool) -> Estimate:
    """Per (d, seed, eps): the midpoint-rule network at every width and the reference 3x finer, at the query points."""
    grids, eps = (GRIDS_QUICK, EPS_QUICK) if quick else (GRIDS, EPS)
    seeds = len(SEEDS_QUICK if quick else SEEDS)
    parts = []
    for d in DIMS:
        for n in grids[d] + (3 * max(grids[d]),):
            b, f = lse_work(M + KINKS, n ** d, d)
            parts.append((b, seeds * len(eps[d]) * f))
    return total(NAME, parts)
