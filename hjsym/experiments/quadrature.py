"""Width (quadrature) rate: an LSE / Hopf-Cole network with N atoms of Lipschitz initial data.

Initial data ``g(y) = L min_k |y - c_k|`` on ``[-2, 2]^d`` (Lipschitz, with kinks at random
points ``c_k``; L and the ``c_k`` drawn per seed). The network with ``N = n^d`` atoms at the cell
midpoints of a regular grid, each carrying its quadrature weight ``h^d (4 pi eps t)^{-d/2}`` (a
shift of its offset), is the midpoint rule for the Hopf-Cole integral
``u(x) = -eps log int (4 pi eps t)^{-d/2} exp(-(g(y) + |x-y|^2/(4t))/eps) dy``. Three regimes:

* **viscous** (fixed ``eps``): sup error over query points against a converged reference (the
  same rule on a grid 3x finer per axis);
* **tropical** (``eps -> 0``): the max-plus network ``min_j g(y_j) + |x-y_j|^2/(4t)`` against the
  closed-form Hopf-Lax solution (``min_k`` of the cone solutions);
* **endpoint artefact**: the viscous rule on ``linspace(-2, 2, n)`` (endpoints included) with
  weights ``(4/n)^d`` as if the n nodes were n cells, the normalisation slip of DESIGN section 5.

Slopes of log error against log N, one per seed, give a mean and a 95 % interval.
"""

from __future__ import annotations

import math

import torch

from ._stats import combine, mean_ci, slopes, verdict

NAME = "quadrature"
TITLE = "Width (quadrature) rate of LSE / Hopf-Cole networks"
CLAIM = ("An LSE (Hopf-Cole) network with N atoms of Lipschitz initial data approximates the solution at the width "
         "(quadrature) rate O(N^{-1/d}): error slope -1/d against N on log-log axes.")
CLAIM_TEX = r"\|u_N - u\|_\infty = O(N^{-1/d})"
SEEDS = (0, 1, 2, 3, 4)
SEEDS_QUICK = (0, 1)
DIMS = (1, 2, 4)
GRIDS = {1: (16, 24, 32, 48, 64, 96, 128), 2: (8, 12, 16, 24, 32, 48), 4: (4, 5, 6, 8, 10, 12)}
GRIDS_QUICK = {1: (8, 16, 32), 2: (6, 8, 12), 4: (3, 4, 5)}
EPS, T, KINKS, M = 0.2, 1.0, 8, 96
MARGIN = 0.2  # equivalence margin, as a fraction of the claimed exponent 1/d


def _grid(n: int, d: int, endpoints: bool = False) -> torch.Tensor:
    """The ``n^d`` nodes of a grid on ``[-2, 2]^d``: cell midpoints, or ``linspace`` with endpoints."""
    side = torch.linspace(-2, 2, n, dtype=torch.float64) if endpoints else -2 + (torch.arange(n, dtype=torch.float64) + 0.5) * 4 / n
    return torch.cartesian_prod(*([side] * d)).reshape(-1, d)


def _g(y, c, L):
    """``L min_k |y - c_k|``: ``(N, d) -> (N,)``."""
    return L * torch.cdist(y, c).min(-1).values


def _viscous(x, nodes, weight, c, L):
    """The midpoint rule of the normalised Hopf-Cole integral, as an LSE network (generated ``u``)."""
    from ..checks.api import function

    shift = EPS * math.log(weight * (4 * math.pi * EPS * T) ** (-nodes.shape[1] / 2))
    return function("lse", "u")(x=x, eps=EPS, y=nodes, g=_g(nodes, c, L) - shift, t=T)


def one(cfg: dict) -> dict:
    """Errors of the three regimes for one (d, seed) over the grid sizes ``cfg["grids"]``."""
    from ..checks.api import function

    d, seed, grids = cfg["d"], cfg["seed"], cfg["grids"]
    gen = torch.Generator().manual_seed(1000 * d + seed)
    c = -1 + 2 * torch.rand(KINKS, d, generator=gen, dtype=torch.float64)
    L = 0.5 + 0.5 * float(torch.rand(1, generator=gen, dtype=torch.float64))
    x = torch.cat([c, -1.5 + 3 * torch.rand(M - KINKS, d, generator=gen, dtype=torch.float64)])
    # closed-form Hopf-Lax of each cone L|y - c_k| (minimiser inside the box), then the min over k
    r = torch.cdist(x, c)
    exact0 = torch.where(r <= 2 * L * T, r * r / (4 * T), L * r - L * L * T).min(-1).values
    n_ref = 3 * max(grids)
    ref = _viscous(x, _grid(n_ref, d), (4 / n_ref) ** d, c, L)
    viscous, tropical, artefact = [], [], []
    for n in grids:
        nodes, h = _grid(n, d), 4 / n
        viscous.append(float((_viscous(x, nodes, h**d, c, L) - ref).abs().max()))
        tropical.append(float((function("lse", "hopf_lax")(x=x, y=nodes, g=_g(nodes, c, L), t=T) - exact0).abs().max()))
        artefact.append(float((_viscous(x, _grid(n, d, endpoints=True), h**d, c, L) - ref).abs().max()))
    return {"d": d, "seed": seed, "N": [n**d for n in grids], "viscous": viscous, "tropical": tropical, "artefact": artefact,
            "n_ref": n_ref, "L": L}


REGIMES = {
    "viscous": "viscous, fixed eps, midpoint rule (proper normalisation)",
    "tropical": "tropical eps -> 0 (max-plus network vs Hopf-Lax)",
    "artefact": "viscous with the endpoint-grid normalisation slip",
}


def run(ctx) -> dict:
    grids = GRIDS_QUICK if ctx.quick else GRIDS
    configs = [{"d": d, "seed": s, "grids": list(grids[d])} for d in DIMS for s in ctx.seeds]
    res = ctx.map(one, configs, desc="quadrature")
    data, rows, fits = {}, [], {}
    for d in DIMS:
        mine = [r for r in res if r["d"] == d]
        N = mine[0]["N"]
        data[f"d{d}"] = {"N": N, **{k: [r[k] for r in mine] for k in REGIMES}, "n_ref": mine[0]["n_ref"]}
        for k, label in REGIMES.items():
            ci = mean_ci(slopes(N, data[f"d{d}"][k]))
            fits[f"d{d}-{k}"] = ci
            v = verdict(ci, -1 / d, MARGIN / d)
            rows.append({"quantity": f"d = {d}: error slope, {label}", "paper": f"{-1 / d:.3g}", "measured": ci["mean"], "lo": ci["lo"],
                         "hi": ci["hi"], "n": ci["n"], "verdict": v if k != "artefact" else f"artefact ({v})",
                         "rule": f"holds iff the 95 % CI lies within -1/d ± {MARGIN:g}/d; 'does not hold' iff wholly outside"})
    for r in rows:
        if r["verdict"].startswith("artefact"):
            r["verdict"] = "inconclusive" if "inconclusive" in r["verdict"] else r["verdict"].removeprefix("artefact (").rstrip(")")
            r["quantity"] += " [not a test of the claim]"
    v_visc = combine(verdict(fits[f"d{d}-viscous"], -1 / d, MARGIN / d) for d in DIMS)
    v_trop = combine(verdict(fits[f"d{d}-tropical"], -1 / d, MARGIN / d) for d in DIMS)
    two = all(verdict(fits[f"d{d}-viscous"], -2 / d, MARGIN * 2 / d) != "does not hold" for d in DIMS)

    def s(key):
        ci = fits[key]
        return f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"

    measurement = ("Fitted slopes (mean [95 % CI] over seeds): viscous fixed eps "
                   + ", ".join(f"d={d}: {s(f'd{d}-viscous')}" for d in DIMS)
                   + "; tropical " + ", ".join(f"d={d}: {s(f'd{d}-tropical')}" for d in DIMS)
                   + "; endpoint artefact " + ", ".join(f"d={d}: {s(f'd{d}-artefact')}" for d in DIMS) + ".")
    reason = (f"At fixed eps the properly normalised error falls {'as N^{-2/d}' if two else 'faster than N^{-1/d}'} (midpoint "
              f"quadrature of a Lipschitz integrand), so -1/d is an upper bound, not the rate ({v_visc}); the rate -1/d is "
              f"measured in the tropical limit, where the error is set by the distance from a kink of g to the nearest atom ({v_trop}).")
    return {
        "verdict": v_visc, "verdict_reason": reason, "measurement": measurement, "rows": rows, "data": data,
        "fits": fits, "config": {"dims": DIMS, "grids": grids, "eps": EPS, "t": T, "kinks": KINKS, "query_points": M,
                                 "domain": "[-2, 2]^d", "margin_fraction": MARGIN, "reference": "same rule, 3x finer grid per axis"},
        "notes": [
            (f"What does not hold in this run ({v_visc}): at a fixed viscosity the width rate is not $N^{{-1/d}}$. " if v_visc == "does not hold" else
             f"In this run the fixed-viscosity slopes are {v_visc} against $-1/d$. ")
            + r"The Hopf-Cole integrand $e^{-g/\varepsilon}$ is "
            r"Lipschitz and the midpoint rule integrates it with error $O(h^2) = O(N^{-2/d})$, so the claimed $O(N^{-1/d})$ is an upper bound there.",
            "Where -1/d is the rate: as eps -> 0 the network becomes the max-plus (Hopf-Lax) quadrature, whose error at a kink of g is "
            "L times the distance to the nearest atom, i.e. of order h = 4 N^{-1/d}.",
            "The endpoint-grid slip (nodes at linspace(-2, 2, n) weighted as if they were n cells) adds a normalisation error "
            "eps d log(n/(n-1)) ~ eps d / n that also decays like N^{-1/d}: a fit on such a grid reports the claimed slope for the wrong reason.",
        ],
        "method": __doc__,
    }


def figures(result, folder) -> list[dict]:
    from ._plots import PALETTE, band, ci_panel, fig_entry, figure

    data = result["data"]
    fig, axes = figure(ncols=len(DIMS), width=3.6, height=3.2)
    for ax, d in zip(axes, DIMS):
        D = data[f"d{d}"]
        for k, (key, color) in enumerate(zip(REGIMES, PALETTE)):
            band(ax, D["N"], D[key], key, color)
        N = torch.tensor(D["N"], dtype=torch.float64)
        top = torch.tensor(D["viscous"]).mean(0)[0]
        ax.plot(N.numpy(), (top * (N / N[0]) ** (-1 / d)).numpy(), "k--", lw=0.8, label="slope -1/d")
        ax.plot(N.numpy(), (top * (N / N[0]) ** (-2 / d)).numpy(), "k:", lw=0.8, label="slope -2/d")
        ax.set_title(f"d = {d}")
        ax.set_xlabel("atoms N")
        ax.set_ylabel("sup error")
    axes[0].legend(fontsize=7)
    out = [fig_entry(fig, folder, "quadrature-rates", "Sup error against the number of atoms N for the three regimes (line: mean over "
                     "seeds; band: seeds' range), with slopes -1/d and -2/d for reference.")]
    fig, ax = figure(width=6.4, height=3.6)
    labels = [f"d={d} {k}" for d in DIMS for k in REGIMES]
    ci_panel(ax, labels, [result["fits"][f"d{d}-{k}"] for d in DIMS for k in REGIMES], [-1 / d for d in DIMS for _ in REGIMES],
             xlabel="fitted log-log slope", ylabel="dimension and regime")
    out.append(fig_entry(fig, folder, "quadrature-slopes", "Fitted slopes with 95 % intervals over seeds (dots) against the claimed -1/d (crosses)."))
    return out
