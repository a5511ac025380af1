"""Checks of the anisotropic log-sum-exp layer (an LSE layer after a learned linear map).

The checks are the LSE family's (:mod:`hjsym.checks.suites.lse`) run on :class:`~hjsym.networks.lse.AnisoLSELayer`
networks, with the diffusion matrix of route B taken from the derivation: the generated
``diffusion_from_map(L)`` gives ``A = (L^T L)^{-1}`` from the real map ``L``, and every generated
function that needs ``A`` (the solution, the parameter map, the Hopf-Lax formula) receives it.
Route A never uses the generated ``A``: the autograd PDE residual applies
``torch.linalg.inv(L^T L)`` and ``|L x|^2`` computed from the module's own weights.
"""

from __future__ import annotations

import torch

from ..engine import CheckReport
from ...codegen.pipeline import load_functions
from ...networks.lse import read_aniso_lse, train_aniso_lse_layer
from . import lse

__all__ = ["run", "CHECKS", "NEGATIVE_CONTROLS", "REFERENCE_DIMS", "reference_modules", "figures"]

REFERENCE_DIMS = (2, 4)
#: The LSE family's checks that hold for any diffusion matrix (the ReLU construction is d = 1, A = 1).
CHECKS = {n: lse.CHECKS[n] for n in ("identity", "pde_residual", "tropical_bound", "tropical_bound_sharp", "hopf_lax", "hessian",
                                     "hessian_bound", "attribution")}
NEGATIVE_CONTROLS = {n: lse.NEGATIVE_CONTROLS[n] for n in CHECKS}


def reader(fns):
    """Read a module and attach the generated diffusion matrix ``A = (L^T L)^-1`` (route B's A)."""

    def read(module, dtype=torch.float64):
        r = read_aniso_lse(module, dtype)
        r.fn_args = {"A": fns["diffusion_from_map"](L=r.L)}
        return r

    return read


def reference_modules(seed: int = 0, dtype=torch.float64):
    """The default networks: an AnisoLSELayer (N = 16, eps = 0.5) trained for each d in REFERENCE_DIMS."""
    return [train_aniso_lse_layer(d, seed=seed * 100 + d, dtype=dtype) for d in REFERENCE_DIMS]


def context(arch, dtype=torch.float64, seed: int = 0) -> lse.Context:
    fns = load_functions(arch.spec)
    return lse.Context(fns, dtype, seed, read=reader(fns))


def run(arch, *, module=None, dtype=torch.float64, seed: int = 0, only=None, negative_controls: bool = False, progress: bool = False) -> CheckReport:
    """Run the anisotropic LSE checks; returns a :class:`~hjsym.CheckReport`."""
    ctx = context(arch, dtype, seed)
    nets = reference_modules(seed, dtype) if module is None else [module]
    return lse.run_lse_family(arch, ctx, nets, checks=CHECKS, negatives=NEGATIVE_CONTROLS, module=module, only=only,
                              network=f"AnisoLSELayer (learned L, N=16, eps=0.5) trained 300 Adam steps, d in {list(REFERENCE_DIMS)}",
                              negative_controls=negative_controls, progress=progress)


def figures(arch, report: CheckReport, out_dir, *, seed: int = 0):
    """The kernel metric over the learned layer, the tropical gap and the residual map."""
    from ...reports.figures.common import metric_figure, residual_figure, tropical_figure

    ctx = context(arch, torch.float64, seed)
    rs = [ctx.read(n) for n in reference_modules(seed)]
    r2 = next(r for r in rs if r.d == 2)
    return [
        metric_figure(ctx, r2, out_dir, "lse-aniso-metric"),
        tropical_figure(ctx.fns, rs, out_dir, "lse-aniso-tropical", seed=seed),
        residual_figure(ctx, r2, out_dir, "lse-aniso-residual", n=41),
    ]
