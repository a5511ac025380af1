"""Intrinsic dimension: the width exponent of data on a k-dimensional manifold in D dimensions.

A smooth embedding ``Phi(z) = Q1 z + 0.3 sin(Q2 z + phi)`` of ``[-1, 1]^k`` into ``R^D`` (random
``Q1``, ``Q2``, ``phi`` per seed) carries Lipschitz initial data ``g(z) = L min_m |z - c_m|`` with
kinks at random points ``c_m``. The max-plus (tropical LSE) network with ``N = n^k`` atoms
``y_j = Phi(z_j)`` on a jittered grid (one uniform point per cell) and values ``g(z_j)`` is
evaluated at the embedded kinks ``Phi(c_m)``, where the exact Hopf-Lax solution is 0 (``g >= 0``
vanishes there): the sup error is exact, with no reference solution to converge. The fitted
log-log slope against N (one per seed) is compared with ``-1/k`` and ``-1/D``.
"""

from __future__ import annotations

import torch

from .._resources import Estimate
from ._cost import lse_work, total
from ._stats import combine, mean_ci, slopes, verdict

NAME = "intrinsic-dimension"
TITLE = "Scaling exponents follow the data's intrinsic dimension"
CLAIM = ("Through PDE quadrature, the width scaling exponent is set by the intrinsic dimension k of the data, "
         "not the ambient dimension D: error ~ N^{-1/k}.")
CLAIM_TEX = r"\mathrm{err}(N) \sim N^{-1/k},\ k = \dim \mathcal{M} \ll D"
SEEDS = (0, 1, 2, 3, 4)
SEEDS_QUICK = (0, 1)
CASES = ((1, 12), (2, 12), (3, 12), (2, 24))
GRIDS = {1: (32, 64, 128, 256, 512, 1024), 2: (6, 8, 12, 16, 24, 32, 48), 3: (4, 5, 6, 8, 10, 13, 16)}
GRIDS_QUICK = {1: (16, 32, 64), 2: (4, 8, 16), 3: (3, 4, 6)}
KINKS, T = 8, 1.0
MARGIN = 0.2


def embed(z: torch.Tensor, D: int, gen: torch.Generator):
    """A random smooth embedding of ``[-1, 1]^k`` into ``R^D``: ``z`` ``(M, k)`` -> ``(M, D)`` and the map itself."""
    k = z.shape[1]
    q1 = torch.linalg.qr(torch.randn(D, k, generator=gen, dtype=torch.float64))[0]
    q2 = torch.randn(D, k, generator=gen, dtype=torch.float64) * 2 / k**0.5
    phi = 2 * torch.pi * torch.rand(D, generator=gen, dtype=torch.float64)

    def phi_map(zz):
        return zz @ q1.T + 0.3 * torch.sin(zz @ q2.T + phi)

    return phi_map(z), phi_map


def one(cfg: dict) -> dict:
    from ..checks.api import function

    k, D, seed, grids = cfg["k"], cfg["D"], cfg["seed"], cfg["grids"]
    gen = torch.Generator().manual_seed(15485863 * seed + 97 * k + D)
    c = -0.8 + 1.6 * torch.rand(KINKS, k, generator=gen, dtype=torch.float64)
    L = 0.5 + 0.5 * float(torch.rand(1, generator=gen, dtype=torch.float64))
    xq, phi_map = embed(c, D, gen)
    errors = []
    for n in grids:
        cells = torch.cartesian_prod(*([torch.arange(n, dtype=torch.float64)] * k)).reshape(-1, k)
        z = -1 + (cells + torch.rand(cells.shape, generator=gen, dtype=torch.float64)) * 2 / n
        g = L * torch.cdist(z, c).min(-1).values
        errors.append(float(function("lse", "hopf_lax")(x=xq, y=phi_map(z), g=g, t=T).abs().max()))
    return {"k": k, "D": D, "seed": seed, "N": [n**k for n in grids], "error": errors}


def run(ctx) -> dict:
    grids = GRIDS_QUICK if ctx.quick else GRIDS
    configs = [{"k": k, "D": D, "seed": s, "grids": list(grids[k])} for k, D in CASES for s in ctx.seeds]
    res = ctx.map(one, configs, desc="intrinsic-dimension")
    data, rows, fits = {}, [], {}
    for k, D in CASES:
        mine = [r for r in res if r["k"] == k and r["D"] == D]
        N = mine[0]["N"]
        data[f"k{k}-D{D}"] = {"N": N, "error": [r["error"] for r in mine]}
        ci = mean_ci(slopes(N, [r["error"] for r in mine]))
        fits[f"k{k}-D{D}"] = ci
        v = verdict(ci, -1 / k, MARGIN / k)
        ambient = verdict(ci, -1 / D, MARGIN / k)
        rows.append({"quantity": f"k = {k}, D = {D}: error slope against N", "paper": f"{-1 / k:.3g} (not {-1 / D:.3g})", "measured": ci["mean"],
                     "lo": ci["lo"], "hi": ci["hi"], "n": ci["n"], "verdict": v if ambient != "holds" else "does not hold",
                     "rule": f"holds iff the 95 % CI lies within -1/k ± {MARGIN:g}/k (and so away from -1/D)"})
    overall = combine(r["verdict"] for r in rows)
    measurement = "Fitted slopes (mean [95 % CI]): " + ", ".join(
        f"k={k}, D={D}: {fits[f'k{k}-D{D}']['mean']:.3f} [{fits[f'k{k}-D{D}']['lo']:.3f}, {fits[f'k{k}-D{D}']['hi']:.3f}]" for k, D in CASES) + "."
    return {
        "verdict": overall,
        "verdict_reason": {"holds": "each slope's interval sits within the margin of -1/k, far from -1/D",
                           "does not hold": "some slope's interval lies outside the margin of -1/k",
                           "inconclusive": "some slope's interval overlaps the margin's edge"}[overall],
        "measurement": measurement, "rows": rows, "data": data, "fits": fits,
        "config": {"cases": CASES, "grids": grids, "kinks": KINKS, "t": T, "margin_fraction": MARGIN,
                   "embedding": "Q1 z + 0.3 sin(Q2 z + phi), Q1 orthonormal columns, Q2 ~ N(0, 4/k)"},
        "notes": ["This measures the tropical (eps -> 0) quadrature, where the error at a kink is L times the distance to the nearest atom; "
                  "that distance shrinks like the atom spacing on the manifold, N^{-1/k}, whatever D is."],
        "method": __doc__,
    }


def figures(result, folder) -> list[dict]:
    from ._plots import PALETTE, band, ci_panel, fig_entry, figure

    data = result["data"]
    fig, axes = figure(ncols=2, width=4.4, height=3.4)
    for n, (k, D) in enumerate(CASES):
        band(axes[0], data[f"k{k}-D{D}"]["N"], data[f"k{k}-D{D}"]["error"], f"k = {k}, D = {D}", PALETTE[n])
    axes[0].set_xlabel("atoms N")
    axes[0].set_ylabel("sup error at the kinks")
    axes[0].legend(fontsize=7)
    ci_panel(axes[1], [f"k={k}, D={D}" for k, D in CASES], [result["fits"][f"k{k}-D{D}"] for k, D in CASES], [-1 / k for k, _ in CASES],
             xlabel="fitted slope (crosses: -1/k)", ylabel="manifold (intrinsic k, ambient D)")
    for n, (k, D) in enumerate(CASES):
        axes[1].plot([-1 / D], [n], "s", color=PALETTE[1], ms=4, label="-1/D" if n == 0 else None)
    axes[1].legend(fontsize=7)
    return [fig_entry(fig, folder, "intrinsic-dimension-rates", "Left: sup error against N on k-dimensional manifolds in R^D (mean and range over "
                      "seeds). Right: fitted slopes with 95 % intervals against -1/k (crosses) and -1/D (squares).")]


def estimate(quick: bool) -> Estimate:
    """Per (k, D, seed): the generated Hopf-Lax formula at the query points against ``n^k`` atoms in ``R^D``."""
    grids = GRIDS_QUICK if quick else GRIDS
    seeds = len(SEEDS_QUICK if quick else SEEDS)
    parts = []
    for k, D in CASES:
        for n in grids[k]:
            b, f = lse_work(KINKS + 256, n**k, D)
            parts.append((b, seeds * f))
    return total(NAME, parts)
