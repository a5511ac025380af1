"""Checks of MLPs and activations against the derivation of ``softplus-mlp``.

Route A is always the real ``nn.Sequential`` (its hooked forward pass: what each layer received
and returned) or autograd through a real module; route B a function generated from the
derivation, on weights read out of the network:

* ``softplus_layers``: every unit of every ``nn.Softplus(beta=1/eps)`` layer equals one HJ step,
  ``|x|^2/(4t) - u_eps(x, t)`` with the two atoms of the unit (the derived ``(alpha, beta)`` read
  from the generated tropical limit) mapped by the generated parameter map;
* ``relu_layers``: every ``nn.ReLU`` unit is the Hopf-Lax step with the same atoms;
* ``sigmoid_layers`` / ``tanh_layers``: every unit is ``d/dz`` of the generated log-sum-exp
  (torch.autograd through the generated ``f`` with the activation's two atoms), the nabla-class;
* ``silu_gap`` / ``gelu_gap``: the real activation minus the HJ step of its nearest exact form
  equals the generated symbolic gap (the open classes, quantified);
* ``semigroup``: a trained LSE layer re-parametrised to time ``t + s`` equals one heat step of
  time ``s`` (quadrature with the generated heat kernel) after the generated solution at ``t``;
* ``tropical_depth``: softplus networks of depth 1, 2, 3 tend to their ReLU twins as eps -> 0
  within ``eps log 2 * sum_l 1^T |W_out| |W_L| ... |W_{l+1}| 1``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch.func import functional_call

from ..engine import CheckReport, CheckResult, bound, compare, negative_size, run_checks, tolerance
from ...codegen.pipeline import load_functions
from ...networks.lse import Perturbed, read_lse, scalar_output
from ...networks.mlp import perturb_activations, perturb_output, read_mlp, relu_twin, set_softplus_eps, train_mlp

__all__ = ["run", "CHECKS", "NEGATIVE_CONTROLS", "DEPTHS", "EPS_GRID", "reference_modules", "figures"]

T_VALUES = (0.5, 1.0, 2.0)
DEPTHS = (1, 2, 3)
EPS_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.001)
SEMIGROUP_TIMES = ((0.5, 0.5), (1.0, 0.25))
N_POINTS = 48
#: the activations whose tropical limit is piecewise linear (slopes) rather than a step
LINEAR_KINDS = ("softplus", "relu", "silu", "gelu")


@dataclass
class Context:
    fns: dict
    dtype: torch.dtype
    seed: int

    def points(self, d: int, n: int = N_POINTS) -> torch.Tensor:
        gen = torch.Generator().manual_seed(20_000 + self.seed * 97 + d)
        return torch.randn(n, d, generator=gen, dtype=self.dtype)

    def slopes(self, kind: str) -> tuple[float, float]:
        """The two atoms ``(alpha, beta)`` of an activation, read from its generated tropical limit."""
        v = self.fns[f"act0_{kind}"](x=torch.tensor([[1.0, -1.0]], dtype=self.dtype))[0]
        return (float(v[0]), float(-v[1])) if kind in LINEAR_KINDS else (float(v[0]), float(v[1]))

    def unit_atoms(self, W: torch.Tensor, c: torch.Tensor, kind: str, t: float):
        """Atoms ``(y, g)`` ``(K, 2, d)``, ``(K, 2)`` of the units ``sigma(w_k.x + c_k)`` of a layer ``W`` ``(K, d)``:
        each is the layer with ``(W, b) = (alpha w, alpha c), (beta w, beta c)`` mapped by the generated parameter map."""
        a, b = self.slopes(kind)
        Wt = torch.stack([a * W, b * W], dim=1)
        Bt = torch.stack([a * c, b * c], dim=1)
        per_unit = torch.vmap(lambda w2, b2: (self.fns["atoms_y"](W=w2, t=t), self.fns["atoms_g"](W=w2, b=b2, t=t)))
        return per_unit(Wt, Bt)

    def hj_step(self, x, layer, kind: str, t: float, eps: float, tropical: bool = False) -> torch.Tensor:
        """``(M, K)``: every unit of ``layer`` as ``|x|^2/(4t) - u(x, t)`` (Hopf-Lax ``u_0`` when ``tropical``).

        The generated functions take one unit's atoms; ``torch.vmap`` runs them over the units.
        """
        Y, G = self.unit_atoms(layer.W, layer.b, kind, t)
        if tropical:
            u = torch.vmap(lambda y, g: self.fns["hopf_lax"](x=x, y=y, g=g, t=t))(Y, G)
        else:
            u = torch.vmap(lambda y, g: self.fns["u"](x=x, eps=eps, y=y, g=g, t=t))(Y, G)
        return (self.fns["identity_rhs"](x=x, t=t)[None, :] - u).T


def _cat(parts):
    return torch.cat([p.reshape(-1) for p in parts])


# ----------------------------------------------------------------------------- layer checks
def _layer_records(ctx, nets, kind):
    for r in nets:
        x = ctx.points(r.d_in)
        for layer, rec in zip(r.layers, r.run(x)):
            if layer.kind == kind:
                yield r, layer, rec


def check_hj_layers(ctx: Context, nets, kind: str) -> CheckResult:
    tropical = kind == "relu"
    a, b, thresholds = [], [], []
    for r, layer, rec in _layer_records(ctx, nets, kind):
        for t in T_VALUES:
            a.append(rec["h"])
            b.append(ctx.hj_step(rec["input"], layer, kind, t, layer.eps, tropical=tropical))
        thresholds.append(layer.threshold)
    what = "Hopf-Lax step u_0 (max-plus)" if tropical else "Hopf-Cole step u_eps"
    return compare(
        f"{kind}_layers",
        f"every {kind} unit sigma(w.x + c) = |x|^2/(4t) - {'u_0' if tropical else 'u_eps'}(x, t), atoms of (w, c)",
        _cat(a), _cat(b), tolerance("identity", ctx.dtype),
        f"the real nn.{'ReLU' if tropical else 'Softplus'} layers' outputs (forward hooks), on the inputs they received",
        f"generated |x|^2/(4t) minus the {what} of the unit's two atoms (generated parameter map of (alpha w, alpha c), (beta w, beta c))",
        {"depths": [r.depth for r in nets], "t": list(T_VALUES), "softplus_thresholds": thresholds, "atoms": list(ctx.slopes(kind))},
    )


def check_nabla_layers(ctx: Context, nets, kind: str) -> CheckResult:
    a, b = [], []
    alpha, beta = ctx.slopes(kind)
    for r, layer, rec in _layer_records(ctx, nets, kind):
        z = rec["z"].reshape(-1, 1).clone().requires_grad_(True)
        W = torch.tensor([[alpha], [beta]], dtype=ctx.dtype)
        f = ctx.fns["f"](x=z, eps=layer.eps, W=W, b=torch.zeros(2, dtype=ctx.dtype))
        (grad,) = torch.autograd.grad(f.sum(), z)
        a.append(rec["h"])
        b.append(grad.reshape(rec["h"].shape))
    return compare(
        f"{kind}_layers",
        f"every {kind} unit sigma(z) = d/dz eps LSE(alpha z, beta z) (the nabla-class), atoms ({alpha:g}, {beta:g})",
        _cat(a), _cat(b), tolerance("autograd", ctx.dtype),
        f"the real nn.{'Sigmoid' if kind == 'sigmoid' else 'Tanh'} layers' outputs (forward hooks)",
        "torch.autograd derivative in z of the generated log-sum-exp f with the two atoms (alpha, beta) and eps = 1",
        {"depths": [r.depth for r in nets], "atoms": [alpha, beta]},
    )


def check_gap(ctx: Context, nets, kind: str) -> CheckResult:
    a, b, sizes = [], [], []
    for r, layer, rec in _layer_records(ctx, nets, kind):
        exact = ctx.hj_step(rec["input"], layer, kind, 1.0, layer.eps)
        a.append(rec["h"] - exact)
        b.append(ctx.fns[f"gap_{kind}"](x=rec["z"], eps=layer.eps))
        sizes.append(float((rec["h"] - exact).abs().max()))
    return compare(
        f"{kind}_gap",
        f"{kind} (open class) minus its nearest exact form (one HJ step) = the derived symbolic gap",
        _cat(a), _cat(b), tolerance("identity", ctx.dtype),
        f"the real nn.{'SiLU' if kind == 'silu' else 'GELU'} layers' outputs minus the generated HJ step of the unit's two atoms",
        f"generated gap_{kind}(z): sigma(z) - eps log(e^(z/eps) + 1)",
        {"max_gap_per_layer": sizes, "note": "the gap is of order one: this class is not an HJ step"},
    )


# ----------------------------------------------------------------------------- semigroup
def _grid(lo, hi, h):
    n = int(math.ceil((hi - lo) / h)) + 1
    return torch.linspace(lo, lo + (n - 1) * h, n, dtype=lo.dtype if isinstance(lo, torch.Tensor) else torch.float64)


def semigroup_values(ctx: Context, r, t: float, s: float, x: torch.Tensor):
    """(route A, route B) of the semigroup check for one LSE layer readout ``r``."""
    fns, eps, T = ctx.fns, r.eps, t + s
    y0 = fns["atoms_y"](W=r.W, t=1.0)
    g0 = fns["atoms_g"](W=r.W, b=r.b, t=1.0)
    # route A: the real module at time t + s (weights of the same initial data), normalised
    params = r.parameters_for(fns["weights_W"](y=y0, t=T), fns["weights_b"](y=y0, g=g0, t=T))
    with torch.no_grad():
        f_T = functional_call(r.module, params, (x,)).reshape(x.shape[0])
    const = fns["u_exact"](x=x[:1], eps=eps, y=y0, g=g0, t=T) - fns["u"](x=x[:1], eps=eps, y=y0, g=g0, t=T)
    route_a = (x * x).sum(-1) / (4 * T) - f_T + const
    # route B: heat step of time s (trapezoid quadrature with the generated kernel) after the solution at t
    sig_lo, sig_hi = math.sqrt(2 * eps * min(t, s)), math.sqrt(2 * eps * max(t, s))
    both = torch.cat([y0, x])
    axes = [_grid(float(both[:, i].min()) - 9 * sig_hi, float(both[:, i].max()) + 9 * sig_hi, sig_lo / 3) for i in range(r.d)]
    nodes = torch.stack([g.reshape(-1) for g in torch.meshgrid(*axes, indexing="ij")], dim=1).to(ctx.dtype)
    h = torch.tensor([float(a[1] - a[0]) for a in axes], dtype=ctx.dtype)
    log_k = fns["log_kernel"](x=x[:, None, :] - nodes[None, :, :], eps=eps, t=s)
    u_t = fns["u_exact"](x=nodes, eps=eps, y=y0, g=g0, t=t)
    route_b = -eps * torch.logsumexp(torch.log(h).sum() + log_k - u_t[None, :] / eps, dim=1)
    return route_a, route_b, nodes.shape[0]


def check_semigroup(ctx: Context, lse_readouts) -> CheckResult:
    a, b, sizes = [], [], []
    for r in lse_readouts:
        x = ctx.points(r.d, 32)
        for t, s in SEMIGROUP_TIMES:
            ra, rb, n = semigroup_values(ctx, r, t, s, x)
            a.append(ra)
            b.append(rb)
            sizes.append(n)
    return compare(
        "semigroup",
        "u(., t + s) = S_s u(., t): one HJ step of time t + s equals two steps of t and s",
        _cat(a), _cat(b), tolerance("identity", ctx.dtype),
        "the trained LSE layer re-parametrised to time t + s (|x|^2/(4(t+s)) - f_{t+s}(x) + the derived normalisation)",
        "-eps log sum_n h^d K_s(x - z_n) exp(-u_exact(z_n, t)/eps): trapezoid quadrature with the generated log-kernel of "
        "the generated solution at time t",
        {"d": [r.d for r in lse_readouts], "(t, s)": [list(p) for p in SEMIGROUP_TIMES], "quadrature_nodes": sizes},
    )


# ----------------------------------------------------------------------------- depth
def depth_bound_factor(r) -> float:
    """``sum_l 1^T |W_out| |W_L| ... |W_{l+1}| 1``: the propagation factor of per-unit errors."""
    v = r.out_W.abs()  # (1, K_L)
    total = 0.0
    for layer in reversed(r.layers):
        total += float(v.sum())
        v = v @ layer.W.abs()
    return total


def tropical_depth_rows(ctx: Context, nets):
    rows = []
    for r in nets:
        x = ctx.points(r.d_in)
        with torch.no_grad():
            f0 = relu_twin(r)(x).reshape(-1)
        factor = depth_bound_factor(r)
        for eps in EPS_GRID:
            m = copy.deepcopy(r.module)
            set_softplus_eps(m, eps)
            with torch.no_grad():
                gap = (scalar_output(m)(x) - f0).abs()
            per_unit = float(ctx.fns["tropical_bound"](eps=eps, N=2))
            rows.append({"depth": r.depth, "eps": eps, "gap": gap, "bound": per_unit * factor, "factor": factor})
    return rows


def check_tropical_depth(ctx: Context, nets) -> CheckResult:
    rows = tropical_depth_rows(ctx, nets)
    values = _cat([row["gap"] for row in rows])
    bounds = _cat([torch.full_like(row["gap"], row["bound"]) for row in rows])
    curve = [{"depth": row["depth"], "eps": row["eps"], "max_gap": float(row["gap"].max()), "bound": row["bound"],
              "ratio": float(row["gap"].max()) / row["bound"]} for row in rows]
    return bound(
        "tropical_depth",
        "|f_eps - f_0| <= eps log 2 * sum_l 1^T |W_out| |W_L| ... |W_{l+1}| 1 (softplus net -> ReLU net)",
        values, bounds, tolerance("bound", ctx.dtype),
        "the real softplus MLP at each eps (beta = 1/eps) minus its ReLU twin (same weights, nn.ReLU)",
        "derived bound: generated eps log N with N = 2 atoms per unit, propagated through |W| (1-Lipschitz activations)",
        details={"depths": [r.depth for r in nets], "eps_grid": list(EPS_GRID), "curve": curve},
    )


# ----------------------------------------------------------------------------- registry
CHECKS = {
    "softplus_layers": lambda ctx, nets: check_hj_layers(ctx, nets["softplus"], "softplus"),
    "relu_layers": lambda ctx, nets: check_hj_layers(ctx, nets["relu"], "relu"),
    "sigmoid_layers": lambda ctx, nets: check_nabla_layers(ctx, nets["sigmoid"], "sigmoid"),
    "tanh_layers": lambda ctx, nets: check_nabla_layers(ctx, nets["tanh"], "tanh"),
    "silu_gap": lambda ctx, nets: check_gap(ctx, nets["silu"], "silu"),
    "gelu_gap": lambda ctx, nets: check_gap(ctx, nets["gelu"], "gelu"),
    "semigroup": lambda ctx, nets: check_semigroup(ctx, nets["lse"]),
    "tropical_depth": lambda ctx, nets: check_tropical_depth(ctx, nets["softplus"]),
}
#: which networks each check reads
NETWORKS = {"softplus_layers": "softplus", "relu_layers": "relu", "sigmoid_layers": "sigmoid", "tanh_layers": "tanh",
            "silu_gap": "silu", "gelu_gap": "gelu", "semigroup": "lse", "tropical_depth": "softplus"}
NEGATIVE_CONTROLS = {
    "softplus_layers": ("bump", 100),
    "relu_layers": ("bump", 100),
    "sigmoid_layers": ("bump", 100),
    "tanh_layers": ("bump", 100),
    "silu_gap": ("bump", 100),
    "gelu_gap": ("bump", 100),
    "semigroup": ("temperature", 100),
    "tropical_depth": ("offset", "scale"),
}


def perturbed_nets(ctx: Context, nets: dict, name: str) -> dict:
    kind, size = NEGATIVE_CONTROLS[name]
    key = NETWORKS[name]
    if kind == "bump":
        delta = negative_size(name, size, ctx.dtype, ("sigmoid_layers", "tanh_layers"))
        changed = [read_mlp(perturb_activations(r.module, delta), ctx.dtype) for r in nets[key]]
    elif kind == "temperature":
        delta = negative_size(name, size, ctx.dtype)
        changed = [read_lse(Perturbed(r.module, "temperature", delta), ctx.dtype) for r in nets[key]]
    else:  # shift the output by twice the largest derived bound
        delta = 2 * max(row["bound"] for row in tropical_depth_rows(ctx, nets[key]))
        changed = [read_mlp(perturb_output(r.module, delta), ctx.dtype) for r in nets[key]]
    return {**nets, key: changed}


def reference_modules(seed: int = 0, dtype=torch.float64) -> dict:
    """Trained reference networks: per activation a depth-2 MLP (softplus: depths 1, 2, 3), and LSE layers (d = 1, 2)."""
    from . import lse

    nets = {kind: [train_mlp(kind, 2, seed=seed * 100 + 7, dtype=dtype)] for kind in ("relu", "sigmoid", "tanh", "silu", "gelu")}
    nets["softplus"] = [train_mlp("softplus", depth, seed=seed * 100 + depth, dtype=dtype) for depth in DEPTHS]
    nets["lse"] = lse.reference_modules(seed, dtype)[:2]
    return nets


def _readouts(nets: dict, dtype) -> dict:
    return {k: [read_lse(m, dtype) if k == "lse" else read_mlp(m, dtype) for m in v] for k, v in nets.items()}


def run(arch, *, module=None, dtype=torch.float64, seed: int = 0, only=None, negative_controls: bool = False, progress: bool = False) -> CheckReport:
    """Run the MLP and activation checks; with ``module``, the checks that apply to its activations."""
    ctx = Context(load_functions(arch.spec), dtype, seed)
    if module is None:
        nets = _readouts(reference_modules(seed, dtype), dtype)
        network = ("trained MLPs (width 16, d = 2, 200 Adam steps): softplus (eps = 0.5) at depths 1, 2, 3; relu, sigmoid, tanh, "
                   "silu, gelu at depth 2; and LSE layers (d = 1, 2) for the semigroup")
        names = list(CHECKS)
    else:
        r = read_mlp(module, dtype)
        nets = {k: [r] if k in r.kinds() else [] for k in ("softplus", "relu", "sigmoid", "tanh", "silu", "gelu")}
        nets["lse"] = []
        network = r.describe()
        names = [n for n in CHECKS if nets[NETWORKS[n]]]
    if only is not None:
        names = [n for n in names if n in only]
    checks = {n: (lambda n=n: CHECKS[n](ctx, nets)) for n in names}
    notes = [f"nn.Softplus uses threshold={nets['softplus'][0].layers[0].threshold:g}: torch returns z itself where beta z > threshold, "
             "an error of eps log(1 + e^-threshold); at torch's default 20 that is up to 2e-9 eps (1e-10 relative at z = 20 eps, "
             "the size of the float64 tolerance), at 40 below rounding"] if nets.get("softplus") else []
    return run_checks(arch.name, checks, NEGATIVE_CONTROLS, lambda n: CHECKS[n](ctx, perturbed_nets(ctx, nets, n)),
                      dtype=dtype, seed=seed, network=network, negative_controls=negative_controls, progress=progress, notes=notes)


def figures(arch, report: CheckReport, out_dir, *, seed: int = 0):
    from ...reports.figures.common import activation_figures

    return activation_figures(arch, report, out_dir, seed=seed)
