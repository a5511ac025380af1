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

import torch
from torch import nn
from torch.func import functional_call

from ..._errors import ModuleFormError
from ...networks.lse import LSEReadout, read_lse, scalar_output
from ...networks.mlp import MLPReadout, read_mlp, relu_twin, set_softplus_eps
from ..engine import Check, Negative, Suite, Values

__all__ = ["SUITE", "T_VALUES", "EPS_GRID", "SEMIGROUP_TIMES", "slopes", "unit_atoms", "hj_step", "depth_bound_factor",
           "tropical_depth_rows", "semigroup_values"]

T_VALUES = (0.5, 1.0, 2.0)
EPS_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.001)
SEMIGROUP_TIMES = ((0.5, 0.5), (1.0, 0.25))
N_POINTS = 48
#: the activations whose tropical limit is piecewise linear (slopes) rather than a step
LINEAR_KINDS = ("softplus", "relu", "silu", "gelu")


_U0, _UEPS = "u_0", r"u_{\varepsilon}"


def points(ctx, d: int, n: int = N_POINTS) -> torch.Tensor:
    return torch.randn(n, d, generator=ctx.gen(10_000 + d), dtype=ctx.dtype)


def slopes(ctx, kind: str) -> tuple[float, float]:
    """The two atoms ``(alpha, beta)`` of an activation, read from its generated tropical limit."""
    v = ctx.call(f"act0_{kind}", x=torch.tensor([[1.0, -1.0]], dtype=ctx.dtype))[0]
    return (float(v[0]), float(-v[1])) if kind in LINEAR_KINDS else (float(v[0]), float(v[1]))


def unit_atoms(ctx, W: torch.Tensor, c: torch.Tensor, kind: str, t: float):
    """Atoms ``(y, g)`` ``(K, 2, d)``, ``(K, 2)`` of the units ``sigma(w_k.x + c_k)`` of a layer ``W`` ``(K, d)``: each is
    the layer with ``(W, b) = (alpha w, alpha c), (beta w, beta c)`` mapped by the generated parameter map."""
    a, b = slopes(ctx, kind)
    Wt = torch.stack([a * W, b * W], dim=1)
    Bt = torch.stack([a * c, b * c], dim=1)
    fns = ctx.fns
    return torch.vmap(lambda w2, b2: (fns["atoms_y"](W=w2, t=t), fns["atoms_g"](W=w2, b=b2, t=t)))(Wt, Bt)


def hj_step(ctx, x, layer, kind: str, t: float, eps: float, tropical: bool = False, scale: bool = False) -> torch.Tensor:
    """``(M, K)``: every unit of ``layer`` as ``|x|^2/(4t) - u(x, t)`` (Hopf-Lax ``u_0`` when ``tropical``).

    The generated functions take one unit's atoms; ``torch.vmap`` runs them over the units. With ``scale``: the
    generated magnitudes of those terms instead.
    """
    Y, G = unit_atoms(ctx, layer.W, layer.b, kind, t)
    fns = ctx.magnitudes if scale else ctx.fns
    if tropical:
        u = torch.vmap(lambda y, g: fns["hopf_lax"](x=x, y=y, g=g, t=t))(Y, G)
    else:
        u = torch.vmap(lambda y, g: fns["u"](x=x, eps=eps, y=y, g=g, t=t))(Y, G)
    q = fns["identity_rhs"](x=x, t=t)[None, :]
    return ((q + u) if scale else (q - u)).T


def _pre_activation_scale(layer, rec) -> torch.Tensor:
    """The terms of the pre-activation ``z = W x + c`` the unit sees: ``|W| |x| + |c|``."""
    return rec["input"].abs() @ layer.W.abs().T + layer.b.abs()


def _layers(ctx, nets, kind):
    """(net, layer, record) of every hidden layer of activation ``kind``: what route A's module computed (hooks)."""
    for net in nets:
        r = net.readout
        x = points(ctx, r.d_in)
        for layer, rec in zip(r.layers, r.run(x, module=net.module)):
            if layer.kind == kind:
                yield net, layer, rec


def _has(kind):
    return lambda net: isinstance(net.readout, MLPReadout) and kind in net.readout.kinds()


# ----------------------------------------------------------------------------- layer checks
def hj_layer_values(kind: str):
    tropical = kind == "relu"

    def evaluate(ctx, nets):
        out = []
        for net, layer, rec in _layers(ctx, nets, kind):
            for t in T_VALUES:
                b = hj_step(ctx, rec["input"], layer, kind, t, layer.eps, tropical=tropical)
                s = hj_step(ctx, rec["input"], layer, kind, t, layer.eps, tropical=tropical, scale=True)
                out.append(Values(rec["h"], b, s + _pre_activation_scale(layer, rec),
                                  info={"network": net.label, "t": t, "softplus_threshold": layer.threshold}))
        return out

    return evaluate


def nabla_layer_values(kind: str):
    def evaluate(ctx, nets):
        out = []
        alpha, beta = slopes(ctx, kind)
        for net, layer, rec in _layers(ctx, nets, kind):
            z = rec["z"].reshape(-1, 1).clone().requires_grad_(True)
            W = torch.tensor([[alpha], [beta]], dtype=ctx.dtype)
            args = {"x": z, "eps": layer.eps, "W": W, "b": torch.zeros(2, dtype=ctx.dtype)}
            (grad,) = torch.autograd.grad(ctx.call("f", args).sum(), z)
            s = ctx.magnitude("attribution", {**args, "x": z.detach()}).sum(-1).reshape(rec["h"].shape)
            out.append(Values(rec["h"], grad.reshape(rec["h"].shape), s + _pre_activation_scale(layer, rec) / layer.eps,
                              info={"network": net.label, "atoms": [alpha, beta]}))
        return out

    return evaluate


def gap_values(kind: str):
    def evaluate(ctx, nets):
        out = []
        for net, layer, rec in _layers(ctx, nets, kind):
            exact = hj_step(ctx, rec["input"], layer, kind, 1.0, layer.eps)
            s = hj_step(ctx, rec["input"], layer, kind, 1.0, layer.eps, scale=True) + ctx.magnitude(f"gap_{kind}", x=rec["z"], eps=layer.eps)
            out.append(Values(rec["h"] - exact, ctx.call(f"gap_{kind}", x=rec["z"], eps=layer.eps), s + _pre_activation_scale(layer, rec),
                              info={"network": net.label, "max_gap": float((rec["h"] - exact).abs().max())}))
        return out

    return evaluate


# ----------------------------------------------------------------------------- semigroup
def _grid(lo, hi, h):
    n = int(math.ceil((hi - lo) / h)) + 1
    return torch.linspace(lo, lo + (n - 1) * h, n, dtype=torch.float64)


def semigroup_values(ctx, net, t: float, s: float, x: torch.Tensor):
    """(route A, route B, scale, nodes) of the semigroup check for one LSE layer."""
    r, eps, T = net.readout, net.readout.eps, t + s
    y0 = ctx.call("atoms_y", W=r.W, t=1.0)
    g0 = ctx.call("atoms_g", W=r.W, b=r.b, t=1.0)
    # route A: the real module at time t + s (weights of the same initial data), normalised
    params = net.a.parameters_for(ctx.call("weights_W", y=y0, t=T), ctx.call("weights_b", y=y0, g=g0, t=T))
    with torch.no_grad():
        f_T = functional_call(net.module, params, (x,)).reshape(x.shape[0])
    at = dict(eps=eps, y=y0, g=g0)
    const = ctx.call("u_exact", x=x[:1], t=T, **at) - ctx.call("u", x=x[:1], t=T, **at)
    route_a = (x * x).sum(-1) / (4 * T) - f_T + const
    # route B: heat step of time s (trapezoid quadrature with the generated kernel) after the solution at t
    sig_lo, sig_hi = math.sqrt(2 * eps * min(t, s)), math.sqrt(2 * eps * max(t, s))
    both = torch.cat([y0, x])
    axes = [_grid(float(both[:, i].min()) - 9 * sig_hi, float(both[:, i].max()) + 9 * sig_hi, sig_lo / 3) for i in range(r.d)]
    nodes = torch.stack([g.reshape(-1) for g in torch.meshgrid(*axes, indexing="ij")], dim=1).to(ctx.dtype)
    h = torch.tensor([float(a[1] - a[0]) for a in axes], dtype=ctx.dtype)
    log_k = ctx.call("log_kernel", x=x[:, None, :] - nodes[None, :, :], eps=eps, t=s)
    u_t = ctx.call("u_exact", x=nodes, t=t, **at)
    terms = torch.log(h).sum() + log_k - u_t[None, :] / eps
    route_b = -eps * torch.logsumexp(terms, dim=1)
    scale = (ctx.magnitude("f", x=x, eps=eps, W=params[f"{net.a.linear_name}.weight"], b=params[f"{net.a.linear_name}.bias"])
             + (x * x).sum(-1) / (4 * T) + const.abs() + eps * (terms.abs().amax(-1) + math.log(nodes.shape[0])))
    return route_a, route_b, scale, nodes.shape[0]


def semigroup_check_values(ctx, nets):
    out = []
    for net in nets:
        x = points(ctx, net.readout.d, 32)
        for t, s in SEMIGROUP_TIMES:
            a, b, scale, n = semigroup_values(ctx, net, t, s, x)
            out.append(Values(a, b, scale, info={"d": net.readout.d, "t": t, "s": s, "quadrature_nodes": n}))
    return out


# ----------------------------------------------------------------------------- depth
def depth_bound_factor(r) -> float:
    """``sum_l 1^T |W_out| |W_L| ... |W_{l+1}| 1``: the propagation factor of per-unit errors."""
    v = r.out_W.abs()  # (1, K_L)
    total = 0.0
    for layer in reversed(r.layers):
        total += float(v.sum())
        v = v @ layer.W.abs()
    return total


def tropical_depth_rows(ctx, nets):
    rows = []
    for net in nets:
        r = net.readout
        x = points(ctx, r.d_in)
        with torch.no_grad():
            f0 = relu_twin(r)(x).reshape(-1)
        factor = depth_bound_factor(r)
        for eps in EPS_GRID:
            m = copy.deepcopy(net.module)
            set_softplus_eps(m, eps)
            with torch.no_grad():
                f = scalar_output(m)(x)
            per_unit = float(ctx.call("tropical_bound", eps=eps, N=2))
            rows.append({"depth": r.depth, "eps": eps, "gap": (f - f0).abs(), "scale": f.abs() + f0.abs(), "bound": per_unit * factor,
                         "factor": factor})
    return rows


def depth_witness(ctx, nets):
    """Where the depth bound is attained: one softplus layer whose units all sit at their kink (``z = 0`` at a point
    ``x0``, where ``softplus_eps(0) - relu(0) = eps log 2``, the derived per-unit error ``eps log N`` at ``N = 2``) read out by
    non-negative weights, so that no error cancels: ``f_eps - f_0 = eps log 2 * sum_k |w_k|``, the bound. Built from each
    network's own first layer and activation module (offsets set to ``-W x0``, read-out weights ``|w|``)."""
    out = []
    for net in nets:
        r = net.readout
        first = r.layers[0]
        x0 = points(ctx, r.d_in)[:1]
        lin = nn.Linear(first.W.shape[1], first.W.shape[0], dtype=ctx.dtype)
        read = nn.Linear(first.W.shape[0], 1, dtype=ctx.dtype)
        with torch.no_grad():
            lin.weight.copy_(first.W)
            lin.bias.copy_(-(first.W @ x0[0]))
            read.weight.copy_(r.out_W.abs() if r.depth == 1 else torch.ones_like(read.weight))
            read.bias.zero_()
        witness = nn.Sequential(lin, copy.deepcopy(dict(net.module.named_modules())[first.act_name]), read)
        wr = read_mlp(witness, ctx.dtype)
        with torch.no_grad():
            f0 = relu_twin(wr)(x0).reshape(-1)
        for eps in EPS_GRID:
            m = copy.deepcopy(witness)
            set_softplus_eps(m, eps)
            with torch.no_grad():
                f = scalar_output(m)(x0)
            bound = ctx.call("tropical_bound", eps=eps, N=2) * depth_bound_factor(wr)
            out.append(Values(f - f0, torch.full_like(f, float(bound)), f.abs() + f0.abs() + float(bound),
                              info={"network": net.label, "eps": eps, "units_at_the_kink": first.W.shape[0]}))
    return out


def depth_values(ctx, nets):
    return [Values(row["gap"], torch.full_like(row["gap"], row["bound"]), row["scale"], lower=0.0,
                   info={"depth": row["depth"], "eps": row["eps"], "max_gap": float(row["gap"].max()), "bound": row["bound"],
                         "ratio": float(row["gap"].max()) / row["bound"]}) for row in tropical_depth_rows(ctx, nets)]


# ----------------------------------------------------------------------------- the declarations
def _act(kind: str) -> str:
    return {"softplus": "Softplus", "relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "silu": "SiLU", "gelu": "GELU"}[kind]


def _hj_check(kind):
    tropical = kind == "relu"
    what = "Hopf-Lax step $u_0$ (max-plus)" if tropical else r"Hopf-Cole step $u_\varepsilon$"
    return Check(f"{kind}_layers", f"every {kind} unit $\\sigma(w\\cdot x + c) = |x|^2/(4t) - {_U0 if tropical else _UEPS}(x, t)$, atoms of $(w, c)$",
                 f"unit-{kind}:1" if kind == "softplus" else f"activation-{kind}:1", f"the real nn.{_act(kind)} layers' outputs (forward hooks), on the inputs they received",
                 f"generated $|x|^2/(4t)$ minus the {what} of the unit's two atoms (generated parameter map of $(\\alpha w, \\alpha c)$, "
                 r"$(\beta w, \beta c)$)", evaluate=hj_layer_values(kind), negative=Negative("activations"), applies_to=_has(kind),
                 requires=(f"act0_{kind}", "atoms_y", "atoms_g", "identity_rhs", "hopf_lax" if tropical else "u"))


def _nabla_check(kind):
    return Check(f"{kind}_layers", f"every {kind} unit $\\sigma(z) = \\partial_z\\, \\varepsilon\\, \\mathrm{{LSE}}(\\alpha z, \\beta z)$ (the $\\nabla$-class)", f"activation-{kind}:3",
                 f"the real nn.{_act(kind)} layers' outputs (forward hooks)",
                 r"torch.autograd derivative in $z$ of the generated log-sum-exp $f$ with the two atoms $(\alpha, \beta)$ and $\varepsilon = 1$",
                 evaluate=nabla_layer_values(kind), rounding="autograd", negative=Negative("activations"), applies_to=_has(kind),
                 requires=(f"act0_{kind}", "f"))


def _gap_check(kind):
    return Check(f"{kind}_gap", f"{kind} (open class) minus its nearest exact form (one HJ step) = the derived symbolic gap",
                 f"activation-{kind}:3", f"the real nn.{_act(kind)} layers' outputs minus the generated HJ step of the unit's two atoms",
                 f"generated gap_{kind}: $\\sigma(z) - \\varepsilon \\log(e^{{z/\\varepsilon}} + 1)$", evaluate=gap_values(kind), negative=Negative("activations"),
                 applies_to=_has(kind), requires=(f"act0_{kind}", f"gap_{kind}", "atoms_y", "atoms_g", "identity_rhs", "u"),
                 formula=f"gap_{kind}",
                 details=lambda ctx, nets, values: {"note": "the gap is of order one: this class is not an HJ step"})


CHECKS = (
    _hj_check("softplus"), _hj_check("relu"), _nabla_check("sigmoid"), _nabla_check("tanh"), _gap_check("silu"), _gap_check("gelu"),
    Check("semigroup", r"$u(\cdot, t + s) = S_s u(\cdot, t)$: one HJ step of time $t + s$ equals two steps of $t$ and $s$", "semigroup:2",
          r"the trained LSE layer re-parametrised to time $t + s$ ($|x|^2/(4(t+s)) - f_{t+s}(x)$ + the derived normalisation)",
          r"$-\varepsilon \log \sum_n h^d K_s(x - z_n)\, e^{-u_{\mathrm{exact}}(z_n, t)/\varepsilon}$: trapezoid quadrature with the generated log-kernel of "
          "the generated solution at time t", evaluate=semigroup_check_values, negative=Negative("temperature"),
          applies_to=lambda net: isinstance(net.readout, LSEReadout), requires=("log_kernel", "u_exact", "weights_W", "weights_b"),
          formula="log_kernel"),
    Check("tropical_depth", r"$|f_\varepsilon - f_0| \le \varepsilon \log 2 \sum_\ell \mathbf{1}^\top |W^{\mathrm{out}}| |W^L| \cdots |W^{\ell+1}| \mathbf{1}$ (softplus net vs ReLU net)",
          "depth:1", r"the real softplus MLP at each $\varepsilon$ (beta $= 1/\varepsilon$) minus its ReLU twin (same weights, nn.ReLU)",
          r"derived bound: generated $\varepsilon \log N$ with $N = 2$ atoms per unit, propagated through $|W|$ (1-Lipschitz activations)",
          evaluate=depth_values, kind="bound", negative=Negative("offset", "bound"), applies_to=_has("softplus"),
          requires=("tropical_bound",), details=lambda ctx, nets, values: {"eps_grid": list(EPS_GRID), "curve": [v.info for v in values],
                                                                         "cases": None}, witness=depth_witness),
)


def read(ctx, module):
    """An MLP (nn.Sequential of nn.Linear and activations), or an LSE layer (for the semigroup)."""
    try:
        return read_mlp(module, ctx.dtype)
    except ModuleFormError as mlp_error:
        try:
            return read_lse(module, ctx.dtype)
        except ModuleFormError:
            raise mlp_error from None


def _notes(ctx, nets):
    thresholds = {layer.threshold for n in nets if isinstance(n.readout, MLPReadout) for layer in n.readout.layers if layer.kind == "softplus"}
    return [f"nn.Softplus uses threshold={t:g}: torch returns z itself where beta z > threshold, an error of eps log(1 + e^-threshold); "
            "at torch's default 20 that is up to 2e-9 eps, at 40 below float64 rounding" for t in sorted(thresholds)]


SUITE = Suite("activations", CHECKS, applies=lambda spec: spec.family == "exact" and bool(spec.activations), read=read, notes=_notes)
