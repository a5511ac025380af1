"""Particle and wave: the entropy of the attribution weights across eps, with eps* = N^{-1/d}.

N atoms uniform on ``[-1, 1]^2`` (``g = 0``, t = 1, read as an LSE layer through the generated
parameter map), N in {16, 64, 256, 1024}; ``H(pi(x; eps))`` on a 64 x 64 grid of ``[-1, 1]^2`` for 81
values of eps from 1e-4 to 10, from the generated ``attribution``. Particle regime: ``H ~ 0`` (one
atom carries the point); wave regime: ``H ~ log N`` (all atoms share it).

Where the transition sits is measured without a threshold: ``eps_peak``, the eps at which the mean
entropy rises fastest (the maximum of ``dH/dlog eps``, central differences on the log grid refined by a
parabola). Its slope against N (one fit per seed) and its ratio to ``eps* = N^{-1/d}`` carry the verdict.
A crossing of a fixed fraction q of ``log N`` is a free choice: its slope against N is reported for
q in {0.1, 0.25, 0.5, 0.75, 0.9}, to show how much such a definition fixes the exponent. An
animated GIF shows the map across eps.
"""

from __future__ import annotations

import math

import torch

from .._resources import Estimate
from ._cost import lse_work, total
from ._page import falsifiable, row
from ._stats import combine, geometric_ci, log_grid_extremum, mean_ci, slopes, verdict
from ._stats import combine, mean_ci, slopes, verdict

NAME = "phase"
TITLE = "Particle-wave transition of the attribution weights"
CLAIM = ("As eps grows the Gibbs weights go from particle-like (one atom, H = 0) to wave-like (all atoms, H = log N), "
         "with the transition at the critical viscosity eps* = N^{-1/d}.")
CLAIM_TEX = r"H(\pi) \in [0, \log N],\quad \varepsilon^* = N^{-1/d}"
SEEDS = (0, 1, 2, 3, 4)
SEEDS_QUICK = (0, 1)
WIDTHS = (16, 64, 256, 1024)
WIDTHS_QUICK = (16, 64)
EPS = tuple(float(v) for v in torch.logspace(-4, 1, 81, dtype=torch.float64))
EPS_QUICK = tuple(float(v) for v in torch.logspace(-4, 1, 41, dtype=torch.float64))
THRESHOLDS = (0.1, 0.25, 0.5, 0.75, 0.9)
SIDE, T = 64, 1.0
SLOPE_MARGIN = 0.15


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


def steepest_rise(eps, mean_h) -> tuple[float, bool, list[float]]:
    """``eps_peak``, the maximiser of ``d mean_h / d log eps`` (central differences, parabola-refined).

    ``eps``: a grid uniform in log eps; ``mean_h``: the mean entropy there (any normalisation: the
    maximiser does not depend on it). Returns ``(eps_peak, interior, derivative)``; ``interior`` is False
    when the steepest rise is at an end of the grid (then ``eps_peak`` only bounds it).
    """
    le = [math.log(e) for e in eps]
    deriv = [(mean_h[k + 1] - mean_h[k - 1]) / (le[k + 1] - le[k - 1]) for k in range(1, len(eps) - 1)]
    peak, interior = log_grid_extremum(eps[1:-1], deriv, "max", log_y=False)
    return peak, interior, deriv


def crossing(eps, mean_h, q: float) -> float | None:
    """The eps at which ``mean_h`` first reaches ``q`` (log-linear interpolation), or None."""
    for k in range(1, len(eps)):
        if mean_h[k - 1] < q <= mean_h[k]:
            w = (q - mean_h[k - 1]) / (mean_h[k] - mean_h[k - 1])
            return math.exp(math.log(eps[k - 1]) + w * (math.log(eps[k]) - math.log(eps[k - 1])))
    return None


def one(cfg: dict) -> dict:
    N, seed, eps = cfg["N"], cfg["seed"], cfg["eps"]
    _, W, b = _layer(N, seed)
    x = grid(cfg["side"])
    mean_h = [float(entropy_map(x, W, b, e).mean()) / math.log(N) for e in eps]
    peak, interior, deriv = steepest_rise(eps, mean_h)
    queries = torch.tensor([[0.0, 0.0], [0.5, 0.5], [-0.9, 0.2], [0.3, -0.7]], dtype=torch.float64)
    at_points = [[float(v) for v in entropy_map(queries, W, b, e)] for e in eps]
    return {"N": N, "seed": seed, "mean_entropy_over_logN": mean_h, "dH_dlogeps_over_logN": deriv, "eps_peak": peak,
            "peak_interior": interior, "crossings": {str(q): crossing(eps, mean_h, q) for q in THRESHOLDS}, "at_points": at_points}


def run(ctx) -> dict:
    widths = WIDTHS_QUICK if ctx.quick else WIDTHS
    side = 24 if ctx.quick else SIDE
    eps = EPS_QUICK if ctx.quick else EPS
    res = ctx.map(one, [{"N": N, "seed": s, "side": side, "eps": eps} for N in widths for s in ctx.seeds], desc="phase")

    def per_seed(key):
        return [[next(r for r in res if r["N"] == N and r["seed"] == s)[key] for N in widths] for s in ctx.seeds]

    peaks = per_seed("eps_peak")
    ci = mean_ci(slopes(widths, peaks))
    ratio = geometric_ci([math.exp(sum(math.log(p * N ** 0.5) for p, N in zip(row_, widths)) / len(widths)) for row_ in peaks])
    v_slope = verdict(ci, -0.5, SLOPE_MARGIN)
    v_ratio = verdict(ratio, 1.0, 0.5)
    edge = sum(not r["peak_interior"] for r in res)
    rows = [row("slope of log eps_peak (steepest entropy rise) against log N (d = 2)", "-0.5", ci, v_slope,
                f"holds iff the 95 % CI lies within -1/2 ± {SLOPE_MARGIN:g}; does not hold iff wholly outside"),
            row("eps_peak / N^(-1/2) (geometric mean over N)", "1", ratio, v_ratio, "holds iff the 95 % CI lies within [0.5, 1.5]")]
    ends = [(r["mean_entropy_over_logN"][0], r["mean_entropy_over_logN"][-1]) for r in res]
    limits_ok = max(a for a, _ in ends) < 0.05 and min(b for _, b in ends) > 0.9
    rows.append(row(f"mean H / log N at eps = {eps[0]:g} (worst over runs)", "0 and 1 (softmax limits)", max(a for a, _ in ends),
                    "holds" if limits_ok else "does not hold",
                    f"the eps -> 0 and eps -> inf limits of a softmax: < 0.05 at the smallest eps and > 0.9 at the largest "
                    f"(min there {min(b for _, b in ends):.3f})", kind="consistency", n=len(ends)))
    by_threshold = {}
    for q in THRESHOLDS:
        cross = per_seed("crossings")
        vals = [[c[str(q)] for c in seed_row] for seed_row in cross]
        if any(v is None for seed_row in vals for v in seed_row):
            continue
        cq = mean_ci(slopes(widths, vals))
        by_threshold[str(q)] = cq
        rows.append(row(f"slope of the eps where mean H reaches {q:g} log N", "-0.5", cq, verdict(cq, -0.5, SLOPE_MARGIN),
                        "a threshold is a free choice: the exponent it gives moves with q (shown for comparison, not used by the verdict)",
                        kind="choice"))
    overall = combine([v_slope, v_ratio])
    spread = [by_threshold[k]["mean"] for k in by_threshold]
    return {
        "verdict": overall,
        "verdict_reason": (f"the steepest entropy rise scales like N^(-1/2): {v_slope}; it sits at eps* itself: {v_ratio}. "
                           + (f"Threshold crossings give slopes from {min(spread):.2f} to {max(spread):.2f} as the threshold moves "
                              "from 0.1 to 0.9 of log N: a threshold fixes the exponent; the steepest rise needs no threshold." if spread else "")),
        "falsifiable": falsifiable(
            "the slope of log eps_peak against log N (eps_peak: where the mean attribution entropy rises fastest in log eps), "
            "fitted per seed, mean and 95 % t-interval; and the geometric-mean ratio eps_peak / N^(-1/2)",
            f"a slope interval wholly outside -1/2 ± {SLOPE_MARGIN:g} (the transition does not follow N^(-1/d)), or a ratio interval wholly "
            "outside [0.5, 1.5] (it is not at eps*)"),
        "measurement": (f"eps_peak scales with slope {ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}] against N and sits at "
                        f"{ratio['mean']:.3g} [{ratio['lo']:.3g}, {ratio['hi']:.3g}] times N^(-1/2)"
                        + (f"; fixed-fraction thresholds q = 0.1 ... 0.9 give slopes " + ", ".join(f"{v:.2f}" for v in spread) if spread else "")
                        + "."),
        "rows": rows, "data": {"eps": eps, "runs": res, "eps_peak": peaks, "widths": widths, "by_threshold": by_threshold},
        "fits": {"peak_slope": ci, "peak_ratio": ratio},
        "config": {"widths": widths, "eps": eps, "grid_side": side, "t": T, "domain": "[-1, 1]^2", "thresholds": THRESHOLDS},
        "notes": [f"The steepest rise lies inside the eps grid in {len(res) - edge} of {len(res)} runs."
                  + (" Where it does not, eps_peak is the grid's end and only a bound." if edge else ""),
                  "With N uniform atoms, the mean entropy grows like log(number of atoms within the kernel's reach) ~ (d/2) log eps + log N "
                  "between the particle and wave limits, so H / log N is close to linear in log eps there and any fixed fraction q of "
                  "log N is crossed at eps ~ N^{-(1-q)·2/d}: the exponent a threshold reports is set by the threshold."],
        "method": __doc__,
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
    fig, axes = figure(ncols=2, width=4.4, height=3.4)
    for n, N in enumerate(widths):
        runs = [r for r in data["runs"] if r["N"] == N]
        band(axes[0], data["eps"][1:-1], [r["dH_dlogeps_over_logN"] for r in runs], f"N = {N}", PALETTE[n], marker="")
        for r in runs:
            axes[0].axvline(r["eps_peak"], color=PALETTE[n], lw=0.5, ls=":")
        axes[0].set_yscale("linear")
    axes[0].set_xlabel("eps (dotted: eps_peak per seed)")
    axes[0].set_ylabel("d(mean H / log N) / d log eps")
    axes[0].legend(fontsize=7)
    qs = [float(q) for q in data["by_threshold"]]
    cis = [data["by_threshold"][str(q)] for q in qs]
    if qs:
        axes[1].errorbar(qs, [c["mean"] for c in cis], yerr=[[c["mean"] - c["lo"] for c in cis], [c["hi"] - c["mean"] for c in cis]], fmt="o-",
                         color=PALETTE[0], capsize=3, label="threshold crossing (a free choice)")
    pk = result["fits"]["peak_slope"]
    axes[1].axhspan(pk["lo"], pk["hi"], color=PALETTE[2], alpha=0.25, lw=0, label="steepest rise (95 % CI)")
    axes[1].axhline(-0.5, color="k", ls="--", lw=0.8, label="-1/d (claim)")
    axes[1].set_xlabel("threshold q (fraction of log N)")
    axes[1].set_ylabel("slope of the transition eps against N")
    axes[1].legend(fontsize=7)
    out.append(fig_entry(fig, folder, "phase-slopes", "Left: how fast the mean entropy rises with log eps (mean and range over seeds); its maximum "
                         "eps_peak is the choice-free transition point. Right: the exponent of the transition against the threshold that "
                         "defines it (95 % intervals over seeds), beside the steepest rise's."))
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
