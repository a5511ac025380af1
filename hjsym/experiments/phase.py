"""Particle and wave: the entropy of the attribution weights across eps, with eps* = N^{-1/d}.

N atoms uniform on ``[-1, 1]^2`` (``g = 0``, t = 1, read as an LSE layer through the generated
parameter map), N in {16, 64, 256}; ``H(pi(x; eps))`` on a 64 x 64 grid of ``[-1, 1]^2`` for 40
values of eps from 1e-4 to 10, from the generated ``attribution``. Particle regime: ``H ~ 0``
(one atom carries the point); wave regime: ``H ~ log N`` (all atoms share it). The transition
``eps_half``, where the mean entropy is half of ``log N`` (log-linear interpolation), is compared
with ``eps* = N^{-1/d}``: its slope against N, and the ratio. An animated GIF shows the map across eps.
"""

from __future__ import annotations

import math

import torch

from .._resources import Estimate
from ._cost import lse_work, total
from ._stats import combine, mean_ci, slopes, verdict

NAME = "phase"
TITLE = "Particle-wave transition of the attribution weights"
CLAIM = ("As eps grows the Gibbs weights go from particle-like (one atom, H = 0) to wave-like (all atoms, H = log N), "
         "with the transition at the critical viscosity eps* = N^{-1/d}.")
CLAIM_TEX = r"H(\pi) \in [0, \log N],\quad \varepsilon^* = N^{-1/d}"
SEEDS = (0, 1, 2, 3, 4)
SEEDS_QUICK = (0, 1)
WIDTHS = (16, 64, 256)
WIDTHS_QUICK = (16, 64)
EPS = tuple(float(v) for v in torch.logspace(-4, 1, 44, dtype=torch.float64))
SIDE, T = 64, 1.0


def _layer(N: int, seed: int):
    from ..checks.api import function

    gen = torch.Generator().manual_seed(7 * seed + N)
    y = -1 + 2 * torch.rand(N, 2, generator=gen, dtype=torch.float64)
    g = torch.zeros(N, dtype=torch.float64)
    return y, function("lse", "weights_W")(y=y, t=T), function("lse", "weights_b")(y=y, g=g, t=T)


def grid(side: int = SIDE) -> torch.Tensor:
    s = torch.linspace(-1, 1, side, dtype=torch.float64)
    gx, gy = torch.meshgrid(s, s, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)


def entropy_map(x, W, b, eps: float) -> torch.Tensor:
    """``H(pi(x; eps))`` from the generated attribution: ``(M, d) -> (M,)``."""
    from ..checks.api import function

    p = function("lse", "attribution")(x=x, eps=eps, W=W, b=b)
    return -(p * torch.log(p.clamp_min(1e-300))).sum(-1)


def one(cfg: dict) -> dict:
    N, seed = cfg["N"], cfg["seed"]
    _, W, b = _layer(N, seed)
    x = grid(cfg["side"])
    mean_h = [float(entropy_map(x, W, b, e).mean()) / math.log(N) for e in EPS]
    half = None
    for k in range(1, len(EPS)):
        if mean_h[k - 1] < 0.5 <= mean_h[k]:
            w = (0.5 - mean_h[k - 1]) / (mean_h[k] - mean_h[k - 1])
            half = math.exp(math.log(EPS[k - 1]) + w * (math.log(EPS[k]) - math.log(EPS[k - 1])))
    queries = torch.tensor([[0.0, 0.0], [0.5, 0.5], [-0.9, 0.2], [0.3, -0.7]], dtype=torch.float64)
    at_points = [[float(v) for v in entropy_map(queries, W, b, e)] for e in EPS]
    return {"N": N, "seed": seed, "mean_entropy_over_logN": mean_h, "eps_half": half, "at_points": at_points}


def run(ctx) -> dict:
    widths = WIDTHS_QUICK if ctx.quick else WIDTHS
    side = 24 if ctx.quick else SIDE
    res = ctx.map(one, [{"N": N, "seed": s, "side": side} for N in widths for s in ctx.seeds], desc="phase")
    halves = [[next(r for r in res if r["N"] == N and r["seed"] == s)["eps_half"] for N in widths] for s in ctx.seeds]
    ci = mean_ci(slopes(widths, halves))
    ratio = mean_ci([math.exp(sum(math.log(h * N ** 0.5) for h, N in zip(row, widths)) / len(widths)) for row in halves])
    v_slope = verdict(ci, -0.5, 0.15)
    v_ratio = verdict(ratio, 1.0, 0.5)
    rows = [{"quantity": "slope of log eps_half against log N (d = 2)", "paper": "-0.5", "measured": ci["mean"], "lo": ci["lo"], "hi": ci["hi"],
             "n": ci["n"], "verdict": v_slope, "rule": "holds iff the 95 % CI lies within -1/2 ± 0.15"},
            {"quantity": "eps_half / N^(-1/2) (geometric mean over N)", "paper": "1", "measured": ratio["mean"], "lo": ratio["lo"],
             "hi": ratio["hi"], "n": ratio["n"], "verdict": v_ratio, "rule": "holds iff the 95 % CI lies within [0.5, 1.5]"}]
    ends = [(r["mean_entropy_over_logN"][0], r["mean_entropy_over_logN"][-1]) for r in res]
    rows.append({"quantity": "mean H / log N at eps = 1e-4 and at eps = 10 (worst over runs)", "paper": "0 and 1",
                 "measured": max(a for a, _ in ends), "lo": None, "hi": None, "n": len(ends),
                 "verdict": "holds" if max(a for a, _ in ends) < 0.05 and min(b for _, b in ends) > 0.9 else "inconclusive",
                 "rule": f"holds iff < 0.05 at the smallest eps and > 0.9 at the largest (min there {min(b for _, b in ends):.3f})"})
    overall = combine(r["verdict"] for r in rows)
    return {
        "verdict": overall,
        "verdict_reason": f"particle and wave limits: {rows[2]['verdict']}; transition scaling N^(-1/2): {v_slope}; transition at eps* itself: {v_ratio} "
                          "(the prefactor depends on the atoms' spread and on t, as in critical-eps)",
        "measurement": (f"eps_half scales with slope {ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}] against N and sits at "
                        f"{ratio['mean']:.2f} [{ratio['lo']:.2f}, {ratio['hi']:.2f}] times N^(-1/2)."),
        "rows": rows, "data": {"eps": EPS, "runs": res, "eps_half": halves, "widths": widths},
        "config": {"widths": widths, "eps": EPS, "grid_side": side, "t": T, "domain": "[-1, 1]^2"},
        "notes": [], "method": __doc__,
    }


def figures(result, folder) -> list[dict]:
    from .._cache import atomic_write
    from ._plots import PALETTE, band, fig_entry, figure

    data = result["data"]
    widths = data["widths"]
    fig, axes = figure(ncols=2, width=4.4, height=3.4)
    for n, N in enumerate(widths):
        runs = [r for r in data["runs"] if r["N"] == N]
        band(axes[0], data["eps"], [r["mean_entropy_over_logN"] for r in runs], f"N = {N}", PALETTE[n], marker="")
        axes[0].axvline(N ** -0.5, color=PALETTE[n], ls="--", lw=0.8)
        axes[0].set_yscale("linear")
    axes[0].set_xlabel("eps (dashed: eps* = N^(-1/2))")
    axes[0].set_ylabel("mean H / log N")
    axes[0].legend(fontsize=7)
    r = next(r for r in data["runs"] if r["N"] == widths[-1])
    for q in range(4):
        axes[1].plot(data["eps"], [row[q] for row in r["at_points"]], color=PALETTE[q], label=f"query point {q + 1}")
    axes[1].axhline(math.log(widths[-1]), color="k", lw=0.6, ls=":")
    axes[1].axvline(widths[-1] ** -0.5, color="k", ls="--", lw=0.8)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("eps")
    axes[1].set_ylabel(f"H at a point (N = {widths[-1]})")
    axes[1].legend(fontsize=7)
    out = [fig_entry(fig, folder, "phase-curves", "Left: mean entropy over [-1, 1]^2 divided by log N against eps (mean and range over seeds), "
                     "eps* = N^(-1/2) dashed. Right: entropy at four query points.")]
    N = 64 if 64 in widths else widths[-1]
    y, W, b = _layer(N, 0)
    side = result["config"]["grid_side"]
    x = grid(side)
    es = N ** -0.5
    fig, axes = figure(ncols=3, width=3.2, height=3.0)
    for ax, e in zip(axes, (es / 10, es, es * 10)):
        ax.grid(False)
        im = ax.pcolormesh(x[:, 0].reshape(side, side).numpy(), x[:, 1].reshape(side, side).numpy(),
                           entropy_map(x, W, b, e).reshape(side, side).numpy(), shading="auto", cmap="cividis", vmin=0, vmax=math.log(N))
        ax.plot(y[:, 0].numpy(), y[:, 1].numpy(), "w.", ms=2)
        ax.set_title(f"eps = {e / es:g} eps*")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    fig.colorbar(im, ax=axes, label="entropy H of the Gibbs weights pi")
    out.append(fig_entry(fig, folder, "phase-maps", f"Entropy maps for N = {N} at eps*/10, eps* and 10 eps* (dots: atoms)."))
    # the animation across eps
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, ax = figure(width=3.6, height=3.4)
    ax.grid(False)
    frames = [float(v) for v in torch.logspace(-2.5, 0.5, 6 if result["quick"] else 24, dtype=torch.float64)]
    mesh = ax.pcolormesh(x[:, 0].reshape(side, side).numpy(), x[:, 1].reshape(side, side).numpy(), torch.zeros(side, side).numpy(),
                         shading="auto", cmap="cividis", vmin=0, vmax=math.log(N))
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    fig.colorbar(mesh, ax=ax, label="entropy H of the Gibbs weights pi")

    def draw(e):
        mesh.set_array(entropy_map(x, W, b, e).reshape(side, side).numpy().ravel())
        ax.set_title(f"N = {N}: eps = {e:.3g} ({e / es:.2g} eps*)")
        return (mesh,)

    anim = FuncAnimation(fig, draw, frames=frames, blit=False)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "phase.gif"
        anim.save(path, writer=PillowWriter(fps=4))
        atomic_write(Path(folder) / "phase-animation.gif", path.read_bytes())
    import matplotlib.pyplot as plt

    plt.close(fig)
    out.append({"stem": "phase-animation", "gif": "phase-animation.gif", "caption": f"Animation: the entropy map of N = {N} atoms as eps "
                "sweeps from 10^-2.5 to 10^0.5."})
    return out


def estimate(quick: bool) -> Estimate:
    """Per (N, seed): the entropy of the Gibbs weights on a ``side^2`` grid at every eps."""
    widths = WIDTHS_QUICK if quick else WIDTHS
    seeds = len(SEEDS_QUICK if quick else SEEDS)
    side = 24 if quick else SIDE
    parts = []
    for N in widths:
        b, f = lse_work(side * side, N, 2)
        parts.append((b, seeds * len(EPS) * f))
    return total(NAME, parts)
