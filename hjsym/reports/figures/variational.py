"""Report figures of the variational family (PNG and PDF through :mod:`hjsym.reports.figures.common`).

* ``brachistochrone-cycloid``: the derived cycloid (generated ``extremal_x``, ``extremal_y``) and the
  direct L-BFGS minimisers of the real travel-time module for several ``n``, with the straight line and
  the circle; ``brachistochrone-convergence``: the minimisers' deviation and time gap against ``n``
  (log-log) with the derived order;
* ``fokker-planck-densities``: the closed-form Ornstein-Uhlenbeck density (generated) against the
  finite-volume solver and the JKO particles over time; ``fokker-planck-convergence``: the errors of both
  solvers against their resolution and the dissipation identity's error;
* ``mean-field-velocity``: the derived velocity field at every neuron against ``-m`` times autograd,
  and the neurons of the tanh network in the ``(w_1, b)`` plane with their velocities.
"""

from __future__ import annotations

import torch

from ...checks.api import context
from ...checks.suites.gradient_flow import OU
from ...checks.engine import Network
from ...checks.suites.mean_field import NeuronGradients, Velocity, data_cases
from ...checks.suites.variational import extremal_through
from ...networks.gradient_flow import FokkerPlanckFD, JKOParticles, gaussian_quantiles
from ...networks.variational import circle_path, line_path, minimise_travel_time
from .common import PALETTE, figure, save

__all__ = ["brachistochrone_figures", "fokker_planck_figures", "mean_field_figures"]


def brachistochrone_figures(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    ctx = context(arch, seed=seed)
    modules = arch.networks(seed, torch.float64)
    fig, axes = figure(ncols=len(modules), width=4.2, height=3.4)
    axes = list(axes) if len(modules) > 1 else [axes]
    for ax, (label, mod) in zip(axes, modules.items()):
        theta, a = extremal_through(ctx, mod.end)
        th = torch.linspace(0, theta, 400, dtype=torch.float64)
        ax.plot(ctx.call("extremal_x", theta=th, a=a), ctx.call("extremal_y", theta=th, a=a), "k-", lw=1.6, label="derived cycloid")
        for n, colour in zip((8, 16, 64), PALETTE):
            path, _, _ = minimise_travel_time(mod, n)
            ax.plot(path[:, 0], path[:, 1], "o-", ms=2.5, lw=0.8, color=colour, label=f"L-BFGS minimiser, n = {n}")
        line, circ = line_path(mod.end, 1), circle_path(mod.end, 400)
        ax.plot(line[:, 0], line[:, 1], "--", color="0.5", lw=0.8, label="straight line")
        ax.plot(circ[:, 0], circ[:, 1], ":", color="0.3", lw=0.9, label="circle (vertical start)")
        ax.invert_yaxis()
        ax.set_xlabel("x (horizontal)")
        ax.set_ylabel("y (depth below the start)")
        ax.set_title(f"to ({mod.end[0]:.3g}, {mod.end[1]:.3g})", fontsize=9)
        ax.legend(fontsize=6.5)
    out = [{"stem": "brachistochrone-cycloid", "caption": "The cycloid derived from the Beltrami identity (black) and the direct "
            "minimisers of the real discretised travel time (L-BFGS over the depths of n-segment paths) for two endpoints; the "
            "straight line and the circle through both ends are slower (check cycloid_fastest).",
            **save(fig, out_dir, "brachistochrone-cycloid")}]
    runs = report.check("cycloid_minimiser").details["runs"]
    times = report.check("cycloid_time").details["runs"]
    expected = report.check("cycloid_minimiser").details["expected_order"]
    fig, axes = figure(ncols=2, width=4.0, height=3.2)
    for n_run, (run, trun) in enumerate(zip(runs, times)):
        ns = run["n"]
        axes[0].loglog(ns, run["deviation"], "o-", color=PALETTE[n_run], label=f"{run['network']}: order {run['order']:.3f}")
        gaps = [t - trun["T_cycloid"] for t in trun["competitors"].values()]
        axes[1].loglog(ns, gaps, "s-", color=PALETTE[n_run], label=f"{run['network']}: order {trun['tightness_order']:.3f}")
    ns = runs[0]["n"]
    axes[0].loglog(ns, [runs[0]["deviation"][0] * (ns[0] / n) ** expected for n in ns], "k--", lw=0.8, label=f"n^-{expected:.3g} (derived)")
    axes[1].loglog(ns, [gaps[0] * ns[0] / n for n in ns], "k--", lw=0.8, label="n^-1")
    axes[0].set_xlabel("segments n")
    axes[0].set_ylabel("max depth deviation from the cycloid")
    axes[1].set_xlabel("segments n")
    axes[1].set_ylabel("T_n - T_cycloid (s)")
    for ax in axes:
        ax.legend(fontsize=6.5)
    out.append({"stem": "brachistochrone-convergence", "caption": f"Left: the minimisers approach the derived cycloid at order "
                f"n^-{expected:.3g}, the exponent of the cusp y ~ x^(2/3) at the start (derived from the series of the extremal). Right: "
                "their times stay above the cycloid's (every polyline is an admissible curve) and approach it at order 1.",
                **save(fig, out_dir, "brachistochrone-convergence")})
    return out


def fokker_planck_figures(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    ctx = context(arch, seed=seed)
    params = {"k": OU["k"], "eps": OU["eps"], "m0": OU["m0"], "v0": OU["v0"]}
    fd = FokkerPlanckFD(OU["k"], OU["eps"], OU["L"], 200, OU["T"], 40)
    traj = fd(ctx.call("ou_density", x=fd.x, t=0.0, **params))
    tau, steps = 0.05, 20
    jko = JKOParticles(OU["k"], OU["eps"], tau, steps)(gaussian_quantiles(200, OU["m0"], OU["v0"]))
    fig, ax = figure(width=5.6, height=3.4)
    x = torch.linspace(-3, 4, 400, dtype=torch.float64)
    for n, t in enumerate((0.0, 0.25, 0.5, 1.0)):
        colour = PALETTE[n]
        ax.plot(x, ctx.call("ou_density", x=x, t=t, **params), "-", color=colour, lw=1.4, label=f"closed form, t = {t:g}")
        j = int(round(t / OU["T"] * fd.steps))
        ax.plot(fd.x[::4], traj[j][::4], "o", ms=2.5, mfc="none", color=colour, label=f"finite volumes, t = {t:g}")
        X = jko[int(round(t / tau))]
        mid, dens = (X[1:] + X[:-1]) / 2, 1 / (X.numel() * (X[1:] - X[:-1]))
        ax.plot(mid[::6], dens[::6], "x", ms=3, color=colour, label=f"JKO particles, t = {t:g}")
    ax.plot(x, ctx.call("ou_density", x=x, t=50.0, **params), "k:", lw=1, label="Gibbs equilibrium exp(-V/eps)/Z")
    ax.set_xlabel("x")
    ax.set_ylabel("density rho(x, t)")
    ax.set_xlim(-3, 4)
    ax.legend(fontsize=5.8, ncol=2)
    out = [{"stem": "fokker-planck-densities", "caption": f"Ornstein-Uhlenbeck flow (k = {OU['k']:g}, eps = {OU['eps']:g}, from "
            f"N({OU['m0']:g}, {OU['v0']:g})): the derived closed form (lines), the finite-volume Crank-Nicolson solver (circles) "
            f"and the JKO particle scheme (tau = {tau:g}, crosses: the particles' density), relaxing towards the Gibbs density.",
            **save(fig, out_dir, "fokker-planck-densities")}]
    fig, ax = figure(width=5.2, height=3.4)
    for n, (name, label) in enumerate((("ou_finite_difference", "finite volumes vs closed form (cells)"),
                                       ("ou_jko", "JKO particles vs exact Gaussian JKO (particles)"),
                                       ("dissipation", "dissipation identity along the flow (cells)"))):
        det = report.check(name).details
        ax.loglog(det["resolutions"], det["errors"], "o-", color=PALETTE[n], label=f"{label}: order {det['fitted_order']:.3f}")
    ax.set_xlabel("resolution (cells or particles)")
    ax.set_ylabel("error (max abs; variance; relative)")
    ax.legend(fontsize=6.5)
    out.append({"stem": "fokker-planck-convergence", "caption": "Convergence of the two numerical routes and of the dissipation identity "
                "dF/dt = -int rho |d_x dF/drho|^2: second order for the finite volumes, first order for the particle JKO scheme against "
                "the exact JKO step of a Gaussian (the particles' discrete entropy shifts the variance by -v/n).",
                **save(fig, out_dir, "fokker-planck-convergence")})
    return out


def mean_field_figures(arch, report, out_dir, *, seed: int = 0) -> list[dict]:
    ctx = context(arch, seed=seed)
    fig, axes = figure(ncols=2, width=4.0, height=3.4)
    nets = []
    for n, (label, module) in enumerate(arch.networks(seed, torch.float64).items()):
        net = Network(label, ctx.suite.read(ctx, module))
        case = next(data_cases(ctx, net))
        a, b = NeuronGradients()(ctx, net, case), Velocity()(ctx, net, case)
        axes[0].plot(a, b, ".", ms=3, color=PALETTE[n], label=f"{net.readout.activation} (m = {net.readout.width})")
        nets.append((net, case))
    lim = float(max(abs(v) for line in axes[0].lines for v in line.get_xdata()))
    axes[0].plot([-lim, lim], [-lim, lim], "k-", lw=0.6)
    axes[0].set_xlabel("-m x autograd gradient of the loss")
    axes[0].set_ylabel("derived velocity v(theta_i)")
    axes[0].legend(fontsize=7)
    net, case = nets[0]
    r = net.readout
    v = Velocity()(ctx, net, case)
    m = r.width
    vw, vb = v[m:m + m * r.d].reshape(m, r.d), v[m + m * r.d:]
    axes[1].quiver(r.w[:, 0], r.b, vw[:, 0], vb, color=PALETTE[2], angles="xy", width=0.004)
    axes[1].scatter(r.w[:, 0], r.b, c=r.a, cmap="coolwarm", s=10)
    axes[1].set_xlabel("w_1 of each neuron")
    axes[1].set_ylabel("b of each neuron")
    axes[1].set_title(f"{r.activation} neurons and their velocity (colour: a)", fontsize=9)
    return [{"stem": "mean-field-velocity", "caption": "Left: the derived mean-field velocity at every neuron and parameter against -m "
             "times torch.autograd through the real networks (they agree to rounding: check velocity). Right: the neurons of the tanh "
             "network in the (w_1, b) plane, coloured by their output weight a, with the velocity field that transports their measure.",
             **save(fig, out_dir, "mean-field-velocity")}]
