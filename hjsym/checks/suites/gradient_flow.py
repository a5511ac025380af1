"""Checks of a Wasserstein gradient flow (the Fokker-Planck equation): closed forms against two numerical routes,
the dissipation identity along the numerical flow, and the Gibbs equilibrium on a trained LSE layer's atoms.

Route A is always a computation that knows nothing of the derivation: a finite-volume Crank-Nicolson
solver and a particle JKO scheme (:mod:`hjsym.networks.gradient_flow`, torch modules with a temperature
``eps``), or the real LSE layer under autograd; route B the generated closed forms. Discretisation
checks compare convergence orders (the errors at four resolutions, a log-log fit) with the orders the
methods have, within a stated tolerance:

* ``ou_finite_difference``: ``max |rho_FD - rho_OU|`` at ``t = T`` over cells = 50..400 (time step
  proportional to the cell size): order 2 (within 0.15);
* ``ou_jko``: the variance of the JKO particles against the exact JKO step of a Gaussian iterated
  (``jko_mean``, ``jko_variance``: the time discretisation removed), n = 50..400 particles: order 1
  (within 0.1: the discrete entropy's virial identity ``k sum X_i^2 = eps (n - 1)`` puts the
  particles' equilibrium variance at ``(eps/k)(1 - 1/n)``);
* ``dissipation``: ``dF/dt`` of the solver's own free energy (central difference in time) against
  ``-int rho |d_x dF/drho|^2`` from the generated ``dissipation_density`` on the numerical density
  (central differences in space): order 2 in the cell size (within 0.3);
* ``gibbs_attribution`` (identity, ``k u S``): the equilibrium on the atoms of a trained LSE layer,
  ``gibbs_atoms(V = -(W x + b), eps)``, equals the layer's attribution weights ``df/db`` (autograd).

Negative controls: the solvers run at the temperature ``eps (1 + 1e-2)`` while they report ``eps``
(``temperature``); the LSE layer at a temperature moved by one part in a million.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from ...networks.gradient_flow import FokkerPlanckFD, JKOParticles, gaussian_quantiles
from ...networks.lse import read_lse, scalar_output
from ...networks.perturb import perturb
from ..autograd import jacobian_rows
from ..criteria import statistic
from ..engine import Case, Check, Negative, Operator, RouteB, Suite
from .variational import fit_order

__all__ = ["SUITE", "FOKKER_PLANCK_CHECKS", "OU", "CELLS", "PARTICLES", "DRIFT"]

#: The Ornstein-Uhlenbeck problem: V = k x^2/2, temperature eps, initial N(m0, v0), horizon T, domain [-L, L].
OU = {"k": 1.0, "eps": 0.5, "m0": 1.0, "v0": 0.25, "T": 1.0, "L": 6.0}
CELLS = (50, 100, 200, 400)
PARTICLES = (50, 100, 200, 400)
JKO_TAU, JKO_STEPS = 0.1, 10
DRIFT = 1e-2  # the solvers' negative control: a relative temperature error


def _ou(ctx, name, **values):
    return ctx.call(name, {"k": OU["k"], "eps": OU["eps"], "m0": OU["m0"], "v0": OU["v0"], **values})


def _negative(result, bad, what: str):
    result.details["negative_control"] = {"perturbation": what, "max_abs_err": bad.max_abs_err, "passed": bad.passed, "margin": bad.margin}
    return result


def _order_check(name, title, errors_of, expected, tol, route_a, route_b, step, resolutions):
    """A convergence-order check: ``errors_of(ctx, perturbation)`` -> (errors per resolution, details)."""

    def run(ctx, negative_controls=False):
        def result(delta):
            errors, details = errors_of(ctx, delta)
            order = fit_order(resolutions, errors)
            return statistic(name, title, torch.tensor([order]), torch.tensor([float(expected)]), tol, route_a=route_a, route_b=route_b,
                             criterion=f"|fitted order - {expected:g}| <= {tol:g} (log-log least squares over {', '.join(map(str, resolutions))})",
                             details={"resolutions": list(resolutions), "errors": errors, "fitted_order": order, **details}, step=step)

        res = result(0.0)
        if negative_controls:
            res = _negative(res, result(DRIFT), f"temperature: the solver runs at eps (1 + {DRIFT:g}) and reports eps")
        return res

    return run


def _solver(module, delta):
    return perturb(module, "temperature", delta) if delta else module


def _fd_errors(ctx, delta):
    errors = []
    for cells in CELLS:
        fd = FokkerPlanckFD(OU["k"], OU["eps"], OU["L"], cells, OU["T"], cells // 5)
        rho0 = _ou(ctx, "ou_density", x=fd.x, t=0.0)
        rho = _solver(fd, delta)(rho0)[-1]
        errors.append(float((rho - _ou(ctx, "ou_density", x=fd.x, t=OU["T"])).abs().max()))
    return errors, {"problem": OU, "steps": [c // 5 for c in CELLS]}


def _jko_errors(ctx, delta):
    mean, var = OU["m0"], OU["v0"]
    for _ in range(JKO_STEPS):  # the exact JKO recursion of a Gaussian (generated)
        mean, var = (float(ctx.call("jko_mean", m0=mean, k=OU["k"], tau=JKO_TAU)),
                     float(ctx.call("jko_variance", v0=var, k=OU["k"], eps=OU["eps"], tau=JKO_TAU)))
    errors, iterations = [], []
    for n in PARTICLES:
        scheme = JKOParticles(OU["k"], OU["eps"], JKO_TAU, JKO_STEPS)
        X = _solver(scheme, delta)(gaussian_quantiles(n, OU["m0"], OU["v0"]))[-1]
        errors.append(abs(float(X.var(unbiased=False)) - var))
        iterations.append(max(scheme.newton_iterations) if scheme.newton_iterations else None)
    return errors, {"tau": JKO_TAU, "steps": JKO_STEPS, "exact_jko_mean": mean, "exact_jko_variance": var,
                    "max_newton_iterations": iterations}


def _dissipation_errors(ctx, delta, cells_grid=CELLS[1:]):
    errors = []
    for cells in cells_grid:
        fd = FokkerPlanckFD(OU["k"], OU["eps"], OU["L"], cells, OU["T"], cells // 5)
        traj = _solver(fd, delta)(_ou(ctx, "ou_density", x=fd.x, t=0.0))
        tau = OU["T"] / fd.steps
        energy = fd.free_energy(traj)
        lhs = (energy[2:] - energy[:-2]) / (2 * tau)  # dF/dt at the interior times
        rho = traj[1:-1]
        rho_x = torch.zeros_like(rho)
        rho_x[:, 1:-1] = (rho[:, 2:] - rho[:, :-2]) / (2 * fd.h)
        dens = ctx.call("dissipation_density", rho=rho.clamp_min(torch.finfo(torch.float64).tiny), rho_x=rho_x,
                        V_x=ctx.call("potential_gradient", x=fd.x, k=OU["k"]).expand_as(rho), eps=OU["eps"])
        rhs = -fd.h * dens.sum(-1)
        errors.append(float(((lhs - rhs) / rhs.abs()).abs().max()))
    return errors, {"problem": OU, "cells": list(cells_grid)}


FOKKER_PLANCK_CHECKS = (
    Check("ou_finite_difference", "Ornstein-Uhlenbeck closed form = finite-volume Crank-Nicolson solution, at order 2",
          "ornstein-uhlenbeck:6", "finite volumes + Crank-Nicolson (FokkerPlanckFD), cells = 50..400",
          "generated ou_density(x, T)",
          standalone=_order_check("ou_finite_difference", "closed-form OU density vs finite volumes: error at order 2 in the cell size",
                                  _fd_errors, 2, 0.15, "finite volumes + Crank-Nicolson (FokkerPlanckFD), time step proportional to the cell",
                                  "generated ou_density(x, T) from the derived moment ODEs", "ornstein-uhlenbeck:6", CELLS),
          kind="statistic", requires=("ou_density",)),
    Check("ou_jko", "JKO particles = the exact JKO step of a Gaussian iterated, at order 1 in the number of particles",
          "jko-gaussian-step:6", "JKO scheme in mass coordinates (JKOParticles), n = 50..400", "generated jko_mean, jko_variance",
          standalone=_order_check("ou_jko", "JKO particles vs the exact Gaussian JKO recursion: variance error at order 1 in n",
                                  _jko_errors, 1, 0.1, "JKO in mass coordinates (JKOParticles, Newton per step), tau = 0.1, 10 steps",
                                  "generated jko_mean, jko_variance iterated 10 times", "jko-gaussian-step:6", PARTICLES),
          kind="statistic", requires=("jko_mean", "jko_variance")),
    Check("dissipation", "dF/dt along the numerical flow = -int rho |d_x dF/drho|^2, at order 2", "dissipation:2",
          "central difference in time of the solver's free energy", "generated dissipation_density on the numerical density",
          standalone=_order_check("dissipation", "dissipation identity along the finite-volume flow: relative error at order 2",
                                  _dissipation_errors, 2, 0.3, "dF/dt of FokkerPlanckFD.free_energy (central difference in time)",
                                  "-sum h dissipation_density(rho, d_x rho, V'(x)) (generated; d_x rho by central differences)",
                                  "dissipation:2", CELLS[1:]),
          kind="statistic", requires=("dissipation_density", "potential_gradient", "ou_density")),
)


# ----------------------------------------------------------------------------- the Gibbs equilibrium on an LSE layer's atoms
N_POINTS = 64


class Attribution(Operator):
    """Autograd ``df/db`` of the real LSE layer (its attribution weights pi): ``(M, N)``."""

    description = "torch.autograd derivative of the LSE layer's output with respect to its bias"

    def __call__(self, ctx, net, case):
        x, r = case["x"], net.a
        bias = r.b.clone().requires_grad_(True)
        out = scalar_output(lambda xx: functional_call(net.module, r.parameters_for(r.W, bias), (xx,)))(x)
        return jacobian_rows(out, bias).detach()


class GibbsOnAtoms(RouteB):
    """The generated equilibrium ``gibbs_atoms`` with the atoms' potentials ``V_j = -(W_j . x + b_j)`` read from the layer.

    Its scale adds the rounding of the potentials route B computes (``|x| |W_j| + |b_j|`` per atom), propagated
    through the softmax: ``pi_m (M_m + E_pi[M]) / eps``.
    """

    description = "generated gibbs_atoms(V = -(W x + b), eps): the Gibbs equilibrium of the free energy on the layer's atoms"
    functions = ("gibbs_atoms",)

    def _potentials(self, net, case):
        r = net.readout
        return -(case["x"] @ r.W.T + r.b), case["x"].abs() @ r.W.abs().T + r.b.abs()

    def __call__(self, ctx, net, case):
        V, _ = self._potentials(net, case)
        return ctx.call("gibbs_atoms", V=V, eps=net.readout.eps)

    def scale(self, ctx, net, case):
        V, MV = self._potentials(net, case)
        eps = net.readout.eps
        pi = ctx.call("gibbs_atoms", V=V, eps=eps)
        return ctx.magnitude("gibbs_atoms", V=V, eps=eps) + pi * (MV + (pi * MV).sum(-1, keepdim=True)) / eps


def _points(ctx, net):
    x = torch.randn(N_POINTS, net.readout.d, generator=ctx.gen(60_000 + net.readout.d), dtype=ctx.dtype)
    yield Case({"x": x}, point=x[0], info={"d": net.readout.d, "N": net.readout.n_atoms})


CHECKS = (
    Check("gibbs_attribution", "Gibbs equilibrium of the free energy on the atoms of a trained LSE layer = its attribution weights pi",
          "gibbs-equilibrium:4", Attribution(), GibbsOnAtoms(), cases=_points, rounding="autograd", negative=Negative("temperature")),
)


def read(ctx, module):
    return read_lse(module, ctx.dtype)


SUITE = Suite("gradient-flow", CHECKS, applies=lambda spec: spec.gradient_flow is not None, read=read)
