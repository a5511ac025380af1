"""Report figures of the control family (PNG and PDF through :mod:`hjsym.reports.figures.common`).

* ``NAME-costate``: the costate norm across depth or time, generated recursion (lines) against
  torch.autograd (markers), for every layer and state part of the first reference network;
* ``resnet-continuous-depth``: error of the discrete costate against the continuous one over h,
  with the fitted order; ``resnet-kolmogorov``: Monte Carlo of the noisy module with its 99.9%
  interval against the closed form;
* ``ssm-lqr``: the direct optimum and SciPy's DARE cost over the step, converging to the cost
  predicted by the derived Riccati equation;
* ``training-hjb-riccati``: the biases of every step from the Riccati recursion (lines) against the
  trained networks' (markers), and the trained weights against the Pontryagin stationary point.

The exact-piece figures are drawn from the numbers recorded in the check report.
"""

from __future__ import annotations

import torch

from ...checks.api import context
from ...checks.suites.control import evaluate
from ...checks.suites.training import pmp_points, riccati_solution
from .common import PALETTE, figure, save

__all__ = ["control_figures"]


def _costate_figure(arch, out_dir, seed):
    ctx = context(arch, seed=seed)
    label, module = next(iter(arch.networks(seed, torch.float64).items()))
    case = evaluate(label, ctx.suite.read(ctx, module), arch.spec, ctx.fns, torch.float64, seed)
    fig, ax = figure()
    n = 0
    time_word = "block k" if case.x is None else "step k"
    for l, back in enumerate(case.backs):
        for part in case.readout.parts:
            b = [float(p[part].norm(dim=-1).mean()) for p in back.costates]
            a = [float(case.initial_grad_a[l][part].norm(dim=-1).mean())]
            a += [float(st[part].norm(dim=-1).mean()) for st in case.costates_a[l]]
            ks = list(range(len(b)))
            tag = f"layer {l}, {part}" if len(case.backs) > 1 or len(case.readout.parts) > 1 else arch.spec.costate
            ax.plot(ks, b, "-", color=PALETTE[n % len(PALETTE)], lw=1.3, label=f"generated costate, {tag}")
            ax.plot(ks, a, "o", ms=3.5, mfc="none", color=PALETTE[n % len(PALETTE)], label=f"torch.autograd, {tag}")
            n += 1
    ax.set_yscale("log")
    ax.set_xlabel(time_word)
    ax.set_ylabel(r"mean $\|p_k\|$ over the batch")
    ax.set_title(f"{arch.spec.title}: costate across {'depth' if case.x is None else 'time'}", fontsize=9)
    ax.legend(fontsize=6.5, ncol=2)
    stem = f"{arch.name}-costate"
    return {"stem": stem, "caption": f"Costate norm mean_b |p_k| of {case.readout.describe()} ({label}), from the generated costate "
            "recursion (lines) and from torch.autograd through the module run step by step (markers): the two coincide at every "
            f"{time_word.split()[0]}, as the costate recursion is backprop.", **save(fig, out_dir, stem)}


def _continuous_depth_figure(check, out_dir):
    det = check.details
    fig, ax = figure()
    hs, errs = det["h"], det["max_abs_error"]
    ax.loglog(hs, errs, "o-", color=PALETTE[0], label="max |p_0(h) - p_0| (autograd through real ResNets)")
    c = errs[-1] / hs[-1]
    ax.loglog(hs, [c * h for h in hs], "k--", lw=1, label="slope 1")
    neg = det.get("negative_control")
    ax.set_xlabel("step h = T / depth")
    ax.set_ylabel("costate error at s_0")
    ax.set_title(f"Continuous depth: fitted order {det['fitted_order']:.3f}", fontsize=9)
    ax.legend(fontsize=7)
    stem = "resnet-continuous-depth"
    cap = ("Discrete costate of real residual MLPs of depth K = T/h (torch.autograd) against the continuous costate ODE dp/dt = -d_s H_c "
           f"(generated, RK4; {det['reference']}). The fitted order is {det['fitted_order']:.4f}.")
    if neg:
        cap += f" Negative control ({neg['perturbation']}) fails."
    return {"stem": stem, "caption": cap, **save(fig, out_dir, stem)}


def _kolmogorov_figure(check, out_dir):
    det = check.details
    fig, ax = figure()
    lo, hi = det["confidence_interval_99.9"]
    ax.errorbar([0], [det["monte_carlo_mean"]], yerr=[[det["monte_carlo_mean"] - lo], [hi - det["monte_carlo_mean"]]], fmt="o",
                color=PALETTE[0], capsize=6, label=f"Monte Carlo, real noisy module ({det['samples']} samples, 99.9%)")
    ax.axhline(det["V_closed_form"], color="k", lw=1.2, label="closed form (continuous, backward Kolmogorov)")
    ax.axhline(det["V_discrete_exact"], color=PALETTE[3], lw=1, ls="--", label=f"exact law of the discrete module (h = {det['h']:g})")
    ax.set_xticks([0], [f"h = {det['h']:g}, sigma = {det['sigma']:g}"])
    ax.set_xlim(-1, 1)
    ax.set_xlabel("noisy residual MLP (one configuration)")
    ax.set_ylabel(r"$\mathbb{E}\,\Phi(s_T)$")
    ax.set_title(f"Viscous ResNet, linear-Gaussian case, sigma = {det['sigma']:g}", fontsize=9)
    ax.legend(fontsize=7, loc="lower center")
    stem = "resnet-kolmogorov"
    cap = (f"Expected terminal loss of the noisy residual MLP: Monte Carlo mean {det['monte_carlo_mean']:.5f} +- {hi - det['monte_carlo_mean']:.5f} "
           f"(99.9%), closed form {det['V_closed_form']:.5f}, discrete law {det['V_discrete_exact']:.5f} (bias {det['discretisation_bias']:.1e}).")
    return {"stem": stem, "caption": cap, **save(fig, out_dir, stem)}


def _lqr_figure(report, out_dir):
    fin, dare = report.check("lqr_finite_horizon").details, report.check("lqr_dare").details
    fig, axes = figure(ncols=2, width=4.0)
    T = fin["T"]
    dts = [T / K for K in fin["steps"]]
    ax = axes[0]
    ax.plot(dts, fin["J_direct"], "o-", color=PALETTE[0], label="direct optimisation (real SSM)")
    ax.axhline(fin["J_riccati"], color="k", lw=1.2, label="derived Riccati ODE")
    ax.plot([0], [fin["J_direct_extrapolated"]], "s", color=PALETTE[1], label="Richardson extrapolation")
    ax.set_xlabel("step dt = T / K")
    ax.set_ylabel("optimal cost")
    ax.set_title("finite horizon", fontsize=9)
    ax.legend(fontsize=6.5)
    ax = axes[1]
    ax.plot(dare["dt"], dare["J_dare"], "o-", color=PALETTE[2], label="SciPy DARE of the real module")
    ax.axhline(dare["J_steady_state"], color="k", lw=1.2, label="derived Riccati, steady state")
    ax.plot([0], [dare["J_dare_extrapolated"]], "s", color=PALETTE[1], label="Richardson extrapolation")
    ax.set_xlabel("step dt")
    ax.set_ylabel("optimal cost")
    ax.set_title("infinite horizon", fontsize=9)
    ax.legend(fontsize=6.5)
    stem = "ssm-lqr"
    cap = (f"LQR on the SSM: the cost predicted by the Riccati equation derived from the HJB equation ({fin['J_riccati']:.8f}) against "
           f"direct optimisation of the control sequence through the real module (extrapolated {fin['J_direct_extrapolated']:.8f}, "
           f"order of the raw values {fin['fitted_order_of_J_K']:.2f}), and, for the infinite horizon ({dare['J_steady_state']:.8f}), "
           f"SciPy's discrete algebraic Riccati solution of the module (extrapolated {dare['J_dare_extrapolated']:.8f}).")
    return {"stem": stem, "caption": cap, **save(fig, out_dir, stem)}


def _training_figure(arch, out_dir, seed):
    ctx = context(arch, seed=seed)
    nets = arch.networks(seed, torch.float64)
    fig, axes = figure(ncols=2, width=4.0)
    ax = axes[0]
    markers = ("o", "s")
    for n, (label, module) in enumerate(nets.items()):
        r = ctx.suite.read(ctx, module)
        sol = riccati_solution(ctx, r)
        trained = torch.stack([c["b"] for c in r.layers[0].controls])
        ks = list(range(len(trained)))
        for i in range(trained.shape[1]):
            color = PALETTE[i % len(PALETTE)]
            ax.plot(ks, sol["b"][:, i].tolist(), "-" if n == 0 else "--", color=color, lw=1.2,
                    label=f"Riccati feedback, b[{i}]" if n == 0 else None)
            ax.plot(ks, trained[:, i].tolist(), markers[n], mfc="none", ms=5, color=color,
                    label=f"trained ({label.split(',')[0]})" if i == 0 else None)
    ax.set_xlabel("block k")
    ax.set_ylabel("bias b_k")
    ax.set_title("optimal bias: recursion vs training", fontsize=9)
    ax.legend(fontsize=6)
    ax = axes[1]
    label, module = list(nets.items())[-1]
    a, b = pmp_points(ctx, ctx.suite.read(ctx, module))
    ax.plot(b, a, "o", ms=3.5, mfc="none", color=PALETTE[0], label="every entry of theta_k, b_k")
    lo, hi = min(a + b), max(a + b)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="equality")
    ax.set_xlabel("Pontryagin stationary point (generated)")
    ax.set_ylabel("trained control")
    ax.set_title("stationarity of the augmented Hamiltonian", fontsize=9)
    ax.legend(fontsize=6.5)
    stem = f"{arch.name}-riccati"
    cap = ("Left: the bias of every block from the Riccati recursion and its feedback (generated, lines) against the biases the "
           "training converged to (markers), for the network with fixed weights (solid) and with trained weights (dashed). Right: "
           f"every trained weight and bias of the second network ({label}) against the Pontryagin stationary point computed from the "
           "generated states and costates of the training loss.")
    return {"stem": stem, "caption": cap, **save(fig, out_dir, stem)}


def control_figures(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    """Every figure that applies to ``arch`` (see the module docstring)."""
    out = [_costate_figure(arch, out_dir, seed)]
    names = {c.name for c in report.checks}
    if "continuous_depth" in names:
        out.append(_continuous_depth_figure(report.check("continuous_depth"), out_dir))
    if "kolmogorov_monte_carlo" in names:
        out.append(_kolmogorov_figure(report.check("kolmogorov_monte_carlo"), out_dir))
    if {"lqr_finite_horizon", "lqr_dare"} <= names:
        out.append(_lqr_figure(report, out_dir))
    if {"bias_riccati", "pmp_stationarity"} <= names:
        out.append(_training_figure(arch, out_dir, seed))
    return out
