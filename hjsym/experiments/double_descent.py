"""Double descent and near-shocks: test error against width across the interpolation threshold, and where curvature sits.

The paper's statement: the curvature ``||grad^2 f|| = Var_pi(W)/eps`` of an LSE network peaks at the
Voronoi boundaries between neurons (near-shocks, where two Gibbs weights tie), and at the
interpolation threshold these shocks become dense, which is why test error can rise again there.

Setting (d = 1): n = 20 noisy samples ``Y = T(x) + 0.3 xi`` of ``T(x) = 0.5 sin(3x) + 0.3 |x|`` on
``[-1, 1]``; Hopf-Cole networks with a short PDE time ``t = 0.005`` (so that the semiconcavity bound
``1/(2t) = 100`` lets N >= n atoms interpolate the noise), eps = 0.01, widths N from 2 to 200 across
the interpolation threshold N = n (one network per width; atoms start uniform on ``[-1, 1]``, values
at the data's mean; 2000 full-batch Adam steps, float64). On a grid of 2001 points of ``[-1, 1]``:

* the test RMSE against the noise-free target;
* the curvature ``f'' = Var_pi(W)/eps`` (of the LSE form ``f = x^2/(4t) - u``), its mean over the
  domain (the curvature density) and the number of near-shocks, the boundaries where the dominant
  neuron changes (breakpoints of the max-plus network ``f_0``);
* where the curvature mass sits: its curvature-weighted median of the top-two logit gap in units of eps
  (``ln 3 ~ 1.1`` for an isolated two-neuron boundary, whose curvature profile is a logistic bump).

The double-descent statistic compares the test error at the threshold N = n with the best below it
(a rise) and the best above it (a second descent), on the log scale, per seed.
"""

from __future__ import annotations

import math

import torch

from .._resources import Estimate
from ._cost import bank_work, lse_work, total
from ._models import bank_logits, bank_u, fit, uniform
from ._page import evidence_verdicts, falsifiable, row
from ._stats import combine, mean_ci, spearman

NAME = "double-descent"
TITLE = "Double descent and near-shocks at the interpolation threshold"
CLAIM = ("The curvature ||grad^2 f|| = Var_pi(W)/eps of an LSE network peaks at the Voronoi boundaries between neurons (near-shocks); "
         "at the interpolation threshold these shocks become dense, and the test error rises again there before descending (double descent).")
CLAIM_TEX = r"\|\nabla^2 f\| = \mathrm{Var}_\pi(W)/\varepsilon"
SEEDS = (0, 1, 2, 3, 4)
SEEDS_QUICK = (0, 1)
N_DATA, SIGMA, T_DD, EPS = 20, 0.3, 0.005, 0.01
WIDTHS = (2, 5, 10, 15, 18, 20, 22, 25, 30, 40, 60, 100, 200)
WIDTHS_QUICK = (5, 20, 40)
STEPS, LR, GRID = 2000, 0.01, 2001


def target(x: torch.Tensor) -> torch.Tensor:
    """``0.5 sin(3 x) + 0.3 |x|``: ``(M, 1) -> (M,)``."""
    return 0.5 * torch.sin(3 * x[:, 0]) + 0.3 * x[:, 0].abs()


def curvature_profile(xs, y, g, eps: float, t: float):
    """On the grid ``xs`` ``(M, 1)``: ``f'' = Var_pi(W)/eps`` ``(M,)``, the top-two logit gap over eps ``(M,)`` and the dominant neuron ``(M,)``.

    ``y``: ``(N, 1)`` atoms, ``g``: ``(N,)`` values of one Hopf-Cole network; ``W = y/(2t)``.
    """
    e = torch.tensor([eps], dtype=torch.float64)
    z = bank_logits(xs, y[None], g[None], e, t)[0]  # (M, N), already divided by eps
    pi = torch.softmax(z, -1)
    W = y[:, 0] / (2 * t)
    var = (pi * W * W).sum(-1) - (pi * W).sum(-1) ** 2
    top2 = z.topk(min(2, z.shape[-1]), dim=-1)
    gap = top2.values[:, 0] - top2.values[:, -1] if z.shape[-1] > 1 else torch.full((len(xs),), float("inf"))
    return var.clamp_min(0) / eps, gap, top2.indices[:, 0]


def weighted_median(values: torch.Tensor, weights: torch.Tensor) -> float:
    order = torch.argsort(values)
    c = torch.cumsum(weights[order], 0)
    return float(values[order][int(torch.searchsorted(c, c[-1] / 2))])


def one(cfg: dict) -> dict:
    seed, N, steps = cfg["seed"], cfg["N"], cfg["steps"]
    data_gen = torch.Generator().manual_seed(911 * seed)
    x = uniform(N_DATA, 1, data_gen)
    Y = target(x) + SIGMA * torch.randn(N_DATA, generator=data_gen, dtype=torch.float64)
    gen = torch.Generator().manual_seed(911 * seed + 7 * N + 1)
    y = uniform(N, 1, gen)[None].clone().requires_grad_(True)
    g = torch.full((1, N), float(Y.mean()), dtype=torch.float64).requires_grad_(True)
    eps = torch.tensor([EPS], dtype=torch.float64)
    train, _ = fit(lambda: bank_u(x, y, g, eps, T_DD), [y, g], Y, steps=steps, lr=LR)
    xs = torch.linspace(-1, 1, GRID, dtype=torch.float64)[:, None]
    with torch.no_grad():
        test = float(((bank_u(xs, y, g, eps, T_DD)[0] - target(xs)) ** 2).mean().sqrt())
        curv, gap, dominant = curvature_profile(xs, y[0].detach(), g[0].detach(), EPS, T_DD)
    shocks = int((dominant[1:] != dominant[:-1]).sum())
    mass = float(torch.trapezoid(curv, xs[:, 0]))
    return {"seed": seed, "N": N, "train_mse": float(train[0]), "test_rmse": test, "curvature_mean": mass / 2.0, "curvature_max": float(curv.max()),
            "shocks": shocks, "curvature_weighted_gap": weighted_median(gap, curv) if mass > 0 else float("nan")}


def run(ctx) -> dict:
    widths = WIDTHS_QUICK if ctx.quick else WIDTHS
    steps = 200 if ctx.quick else STEPS
    configs = [{"seed": s, "N": N, "steps": steps} for s in ctx.seeds for N in widths]
    res = ctx.map(one, configs, desc="double-descent")

    def curve(s, key):
        return [next(r for r in res if r["seed"] == s and r["N"] == N)[key] for N in widths]

    rows, fits = [], {}
    below = [N for N in widths if N < N_DATA]
    above = [N for N in widths if N > N_DATA]
    at = widths.index(N_DATA)
    rise, descent = [], []
    for s in ctx.seeds:
        E = curve(s, "test_rmse")
        rise.append(math.log(E[at] / min(E[: at])) if below else float("nan"))
        descent.append(math.log(E[at] / min(E[at + 1:])) if above else float("nan"))
    ci_r, ci_d = mean_ci(rise), mean_ci(descent)
    fits["rise"], fits["descent"] = ci_r, ci_d
    rows.append(row(f"log(test RMSE at N = n = {N_DATA} / best test RMSE below n)", "> 0 (error rises at the threshold)", ci_r,
                    "holds" if ci_r["lo"] > 0 else ("does not hold" if ci_r["hi"] < 0 else "inconclusive"),
                    "holds iff the 95 % CI lies above 0; does not hold iff below"))
    rows.append(row(f"log(test RMSE at N = n / best test RMSE above n)", "> 0 (a second descent)", ci_d,
                    "holds" if ci_d["lo"] > 0 else ("does not hold" if ci_d["hi"] < 0 else "inconclusive"),
                    "holds iff the 95 % CI lies above 0; does not hold iff below"))
    rho = mean_ci([float(spearman(torch.tensor(curve(s, "test_rmse")), torch.tensor(curve(s, "curvature_mean")))) for s in ctx.seeds], bounds=(-1.0, 1.0))
    fits["spearman_error_curvature"] = rho
    rows.append(row("Spearman across widths of test RMSE and curvature density (mean of Var_pi(W)/eps over [-1, 1])", "> 0 (curvature explains the error)",
                    rho, "holds" if rho["lo"] > 0 else ("does not hold" if rho["hi"] < 0 else "inconclusive"),
                    "holds iff the 95 % CI lies above 0; does not hold iff below"))
    shock_at = mean_ci([curve(s, "shocks")[at] for s in ctx.seeds], bounds=(0.0, math.inf))
    shock_lo = mean_ci([max(curve(s, "shocks")[: at]) if below else 0 for s in ctx.seeds], bounds=(0.0, math.inf))
    shock_hi = mean_ci([curve(s, "shocks")[-1] for s in ctx.seeds], bounds=(0.0, math.inf))
    fits["shocks_at"], fits["shocks_below"], fits["shocks_widest"] = shock_at, shock_lo, shock_hi
    rows.append(row(f"near-shocks (changes of the dominant neuron in [-1, 1]) at N = n", "dense", shock_at, "inconclusive",
                    f"for comparison: the most below n {shock_lo['mean']:.3g}, at N = {widths[-1]} {shock_hi['mean']:.3g}", kind="context"))
    gaps = [r["curvature_weighted_gap"] for r in res if math.isfinite(r["curvature_weighted_gap"])]
    gap_ci = mean_ci(gaps, bounds=(0.0, math.inf))
    fits["curvature_gap"] = gap_ci
    rows.append(row("where the curvature mass sits: curvature-weighted median of the top-two logit gap / eps", "~ ln 3 = 1.1 (at a boundary)", gap_ci,
                    "holds" if gap_ci["hi"] < 3 else "inconclusive",
                    "Var_pi(W) is non-zero only where two Gibbs weights share the point: a consistency check of the formula (holds iff the "
                    "CI lies below 3, i.e. within a few smoothing widths of a boundary)", kind="consistency"))
    train_at = mean_ci([curve(s, "train_mse")[at] for s in ctx.seeds], bounds=(0.0, math.inf))
    overall = combine(evidence_verdicts(rows))
    measurement = (f"At the threshold N = n = {N_DATA}: log error ratio to the best narrower network {ci_r['mean']:.3f} [{ci_r['lo']:.3f}, {ci_r['hi']:.3f}], "
                   f"to the best wider one {ci_d['mean']:.3f} [{ci_d['lo']:.3f}, {ci_d['hi']:.3f}]; Spearman(test error, curvature density) "
                   f"{rho['mean']:.2f} [{rho['lo']:.2f}, {rho['hi']:.2f}]; near-shocks {shock_at['mean']:.3g} at N = n (most below: "
                   f"{shock_lo['mean']:.3g}, at N = {widths[-1]}: {shock_hi['mean']:.3g}); curvature sits at a median gap of "
                   f"{gap_ci['mean']:.2f} eps from a boundary; training MSE at N = n {train_at['mean']:.3g} (noise variance {SIGMA ** 2:g}).")
    return {
        "verdict": overall,
        "verdict_reason": {"holds": "the test error rises at the interpolation threshold and descends again beyond it, and tracks the curvature",
                           "does not hold": "the test error does not rise at the interpolation threshold, does not descend beyond it, or does not "
                                            "track the curvature",
                           "inconclusive": "the rise, the second descent or the link to curvature is not placed on either side of 0"}[overall],
        "falsifiable": falsifiable(
            f"the log ratio of the test error at the interpolation threshold N = n = {N_DATA} to the best test error at narrower and at wider "
            "widths (one per seed), and the Spearman correlation across widths between the test error and the curvature density",
            "an interval lying wholly below 0 for either ratio (no rise at the threshold, or no second descent) or for the correlation"),
        "measurement": measurement, "rows": rows, "fits": fits,
        "data": {"runs": res, "widths": list(widths), "seeds": list(ctx.seeds),
                 "test_rmse": [curve(s, "test_rmse") for s in ctx.seeds], "train_mse": [curve(s, "train_mse") for s in ctx.seeds],
                 "curvature_mean": [curve(s, "curvature_mean") for s in ctx.seeds], "shocks": [curve(s, "shocks") for s in ctx.seeds]},
        "config": {"n": N_DATA, "sigma": SIGMA, "t": T_DD, "eps": EPS, "widths": widths, "adam_steps": steps, "lr": LR, "grid": GRID,
                   "target": "0.5 sin(3x) + 0.3 |x| on [-1, 1]"},
        "notes": ["One fixed eps, no model selection: double descent is a statement about the unregularised width sweep (choosing eps or "
                  "stopping early on validation data would remove the peak it describes).",
                  "The threshold is N = n, the width at which the network has one atom per data point and can interpolate them; the training "
                  "MSE at each width is recorded to show where interpolation is reached."],
        "method": __doc__,
    }


def figures(result, folder) -> list[dict]:
    from ._plots import PALETTE, band, fig_entry, figure

    D = result["data"]
    fig, axes = figure(ncols=2, width=4.4, height=3.4)
    band(axes[0], D["widths"], D["test_rmse"], "test RMSE", PALETTE[0])
    band(axes[0], D["widths"], [[max(v, 1e-12) ** 0.5 for v in r] for r in D["train_mse"]], "training RMSE", PALETTE[1], marker="x")
    axes[0].axvline(result["config"]["n"], color="k", ls="--", lw=0.8, label="N = n (interpolation threshold)")
    axes[0].set_xlabel("width N")
    axes[0].set_ylabel("RMSE")
    axes[0].legend(fontsize=7)
    band(axes[1], D["widths"], D["curvature_mean"], "curvature density (mean Var_pi(W)/eps)", PALETTE[2])
    band(axes[1], D["widths"], [[max(v, 1) for v in r] for r in D["shocks"]], "near-shocks in [-1, 1]", PALETTE[3], marker="s")
    axes[1].axvline(result["config"]["n"], color="k", ls="--", lw=0.8)
    axes[1].set_xlabel("width N")
    axes[1].set_ylabel("curvature density; number of near-shocks")
    axes[1].legend(fontsize=7)
    return [fig_entry(fig, folder, "double-descent-width", "Left: test and training RMSE against width across the interpolation threshold N = n "
                      "(mean and range over seeds). Right: the curvature density and the number of near-shocks (boundaries between dominant "
                      "neurons) against width.")]


def estimate(quick: bool) -> Estimate:
    """Per (width, seed): one network trained on the n data points, then the curvature on the grid."""
    seeds = len(SEEDS_QUICK if quick else SEEDS)
    steps = 200 if quick else STEPS
    parts = []
    for N in (WIDTHS_QUICK if quick else WIDTHS):
        b, f = bank_work(1, N_DATA, N, 1, steps, itemsize=8)
        parts += [(b, seeds * f), lse_work(GRID, N, 1)]
    return total(NAME, parts)
