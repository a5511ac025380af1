"""Checks of log-sum-exp layers: any spec whose network is an LSE layer with atomic initial data.

Route A is the real module (its forward pass, autograd through it, or the output of its own
``nn.Linear`` recorded by a hook); route B a function generated from the derivation, evaluated
on the weights read out of the module (the generated parameter map turns them into the initial
data ``(y, g)``). The reference networks are ``LSELayer``s trained for 300 Adam steps (``lse``)
or layers after a learned linear map (``lse-aniso``, read with ``A = (L^T L)^-1`` from the
generated ``diffusion_from_map``); a user's module is read the same way.

The checks follow the spec: the tropical checks need a temperature, the ReLU construction an
isotropic Hopf-Lax formula, the residual a diffusion matrix when the spec has one.
"""

from __future__ import annotations

import copy

import torch
from torch.func import functional_call

from ..._resources import Estimate
from ...networks.lse import read_aniso_lse, read_lse, scalar_output, set_eps
from ...networks.perturb import perturb
from ..autograd import grad_and_hessian, jacobian_rows, scalar_derivative
from ..criteria import compare
from ..engine import Case, Check, Generated, Negative, Operator, Suite, Values

__all__ = ["SUITE", "T_VALUES", "EPS_GRID", "N_POINTS", "T0", "read", "points", "atoms", "autograd_residual", "relu_atoms"]

T_VALUES = (0.5, 1.0, 2.0)
EPS_GRID = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)
N_POINTS = 64
T0 = 1.0  # the time at which a module's weights are read as initial data (checks that move t keep this data)


# ----------------------------------------------------------------------------- reading the networks
def read(ctx, module):
    """An LSE layer, or one after a linear map when the spec has an input map (with the generated ``A``)."""
    spec = ctx.spec
    if spec.input_map:
        r = read_aniso_lse(module, ctx.dtype)
        r.fn_args = {spec.diffusion: ctx.call("diffusion_from_map", {spec.input_map: r.L})}
    else:
        r = read_lse(module, ctx.dtype)
    slope, offset = spec.network.weights
    r.names = {"W": slope, "b": offset, "eps": str(spec.viscosity)}
    return r


def points(ctx, d: int, n: int = N_POINTS) -> torch.Tensor:
    """Test points, from a generator separate from the training data's."""
    return torch.randn(n, d, generator=ctx.gen(d), dtype=ctx.dtype)


def atoms(ctx, net, t: float):
    """Initial data ``(y, g)`` read out of the module's weights at PDE time ``t`` (the generated inverse map)."""
    args = {**net.readout.arguments(), "t": t}
    return ctx.call("atoms_y", args), ctx.call("atoms_g", args)


def weights_at(ctx, net, t: float):
    """Effective weights ``(W, b)`` at PDE time ``t`` of the initial data read at ``T0`` (generated maps)."""
    y, g = atoms(ctx, net, T0)
    args = {**net.readout.arguments(), "y": y, "g": g, "t": t}
    return ctx.call("weights_W", args), ctx.call("weights_b", args)


def _names(ctx):
    slope, offset = ctx.spec.network.weights
    return slope, offset, str(ctx.spec.viscosity)


# ----------------------------------------------------------------------------- cases
def fixed_data_cases(ctx, net):
    """For each t: the test points and the atoms read out at that t (the module is the layer at every t)."""
    x = points(ctx, net.readout.d)
    for t in T_VALUES:
        y, g = atoms(ctx, net, t)
        yield Case({"x": x, "t": t, "y": y, "g": g}, point=x[0], info={"d": net.readout.d, "t": t})


def moving_time_cases(ctx, net):
    """For each t: the test points and the atoms read at ``T0`` (the module is re-parametrised to time t)."""
    x = points(ctx, net.readout.d)
    y, g = atoms(ctx, net, T0)
    for t in T_VALUES:
        yield Case({"x": x, "t": t, "y": y, "g": g}, point=x[0], info={"d": net.readout.d, "t": t})


def points_case(ctx, net):
    x = points(ctx, net.readout.d)
    yield Case({"x": x}, point=x[0], info={"d": net.readout.d})


def eps_cases(ctx, net):
    x = points(ctx, net.readout.d)
    eps_name = _names(ctx)[2]
    for e in EPS_GRID:
        yield Case({"x": x, eps_name: e}, info={"d": net.readout.d, "eps": e})


# ----------------------------------------------------------------------------- route A
class Forward(Operator):
    """The module's forward pass; its terms are those of the spec's network ``f`` on the read-out weights."""

    description = r"module forward $f_\varepsilon(x)$"

    def __call__(self, ctx, net, case):
        with torch.no_grad():
            return scalar_output(net.module)(case["x"])

    def scale(self, ctx, net, case):
        return ctx.magnitude("f", ctx.arguments(net, case))


def autograd_residual(ctx, net, x: torch.Tensor, t: float) -> torch.Tensor:
    """``u_t + grad u^T A grad u - eps tr(A Hess u)`` by torch autograd through the module re-parametrised in t.

    ``u(x, t) = |x|^2/(4t) - f_t(x)``, where ``f_t`` is the module's forward pass with the
    weights that the parameter map assigns to its initial data at time ``t``; ``A`` is the
    identity, or for a layer after a linear map ``L`` the matrix ``(L^T L)^{-1}`` computed from
    the real weights (and ``|x|^2`` is ``|L x|^2``).
    """
    r = net.a

    def u_of(tt, xx):
        out = functional_call(net.module, r.parameters_for(*weights_at(ctx, net, tt)), (xx,))
        return r.sq_norm(xx) / (4 * tt) - out.reshape(xx.shape[0])

    _, u_t = scalar_derivative(lambda tt: u_of(tt, x), t, ctx.dtype)
    xg = x.detach().clone().requires_grad_(True)
    u = u_of(torch.tensor(t, dtype=ctx.dtype), xg)
    (grad,) = torch.autograd.grad(u.sum(), xg, create_graph=True)
    hess = torch.stack([torch.autograd.grad(grad[:, i].sum(), xg, retain_graph=True)[0] for i in range(x.shape[1])], dim=1)
    A = r.hj_matrix()
    eps = net.readout.eps
    if A is None:
        return (u_t + (grad * grad).sum(-1) - eps * torch.diagonal(hess, dim1=1, dim2=2).sum(-1)).detach()
    return (u_t + torch.einsum("mk,kl,ml->m", grad, A, grad) - eps * torch.einsum("kl,mkl->m", A, hess)).detach()


class Residual(Operator):
    """Autograd ``u_t + H(grad u) - nu tr(D Hess u)`` of the module re-parametrised in t; its terms are the residual's."""

    description = (r"torch.autograd through the module re-parametrised in $t$ ($u = |x|^2/(4t) - f_t$; with a map $L$: $|Lx|^2$, "
                   r"$A = (L^\top L)^{-1}$)")

    def __call__(self, ctx, net, case):
        return autograd_residual(ctx, net, case["x"], case["t"])

    def scale(self, ctx, net, case):
        return ctx.magnitude("residual", ctx.arguments(net, case))


class Hessian(Operator):
    """The autograd Hessian of the module (``(M, d, d)``)."""

    description = "torch.autograd Hessian of the module"

    def __call__(self, ctx, net, case):
        return grad_and_hessian(scalar_output(net.module), case["x"])[2]

    def scale(self, ctx, net, case):
        return ctx.magnitude("hessian_f", ctx.arguments(net, case))


class HessianNorm(Hessian):
    """The spectral norm of the autograd Hessian (``(M,)``); its terms are those of the Hessian's entries."""

    description = "spectral norm of the autograd Hessian of the module"

    def __call__(self, ctx, net, case):
        h = super().__call__(ctx, net, case)
        return torch.linalg.eigvalsh(0.5 * (h + h.transpose(-1, -2))).abs().amax(-1)

    def scale(self, ctx, net, case):
        return super().scale(ctx, net, case).sum(dim=(-1, -2))


class BiasGradient(Operator):
    """Autograd ``df/db`` of the module in the bias of its ``nn.Linear`` (``(M, N)``)."""

    description = "torch.autograd derivative of the module output with respect to its bias"

    def __call__(self, ctx, net, case):
        x, r = case["x"], net.a
        bias = r.b.clone().requires_grad_(True)
        out = functional_call(net.module, r.parameters_for(r.W, bias), (x,)).reshape(x.shape[0])
        return jacobian_rows(out, bias).detach()

    def scale(self, ctx, net, case):
        return ctx.magnitude("attribution", ctx.arguments(net, case))


def tropical_gap(net, x: torch.Tensor, eps: float, params: dict | None = None) -> torch.Tensor:
    """The real module at temperature ``eps`` minus the max of the logits its own ``nn.Linear`` computed (a hook);
    ``params`` replaces its weights (``torch.func.functional_call``)."""
    mod = copy.deepcopy(net.module)
    set_eps(mod, eps)
    seen = {}
    linear = mod.get_submodule(net.a.linear_name)
    handle = linear.register_forward_hook(lambda m, i, o: seen.update(z=o.detach()))
    try:
        with torch.no_grad():
            out = mod(x) if params is None else functional_call(mod, params, (x,))
    finally:
        handle.remove()
    return out.reshape(x.shape[0]) - seen["z"].amax(-1)


class TropicalGap(Operator):
    """The module at temperature eps minus the max of its own logits (its ``nn.Linear``'s output, hooked)."""

    description = r"module forward at each $\varepsilon$ minus $\max_j$ of the logits its nn.Linear computed (forward hook)"

    def __call__(self, ctx, net, case):
        return tropical_gap(net, case["x"], case[_names(ctx)[2]])

    def scale(self, ctx, net, case):
        args = ctx.arguments(net, case)
        return ctx.magnitude("f", args) + ctx.magnitude("f0", args)


def vanishing_forward(ctx, net, x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, size: float):
    """The real module with logits ``W x + b`` at a temperature where the derived sharp tropical bound is negligible: below a
    thousandth of ``u * size`` (or at the smallest temperature where the logits over eps still fit a float). Returns the
    forward pass and that temperature."""
    slope, offset, eps_name = _names(ctx)
    args = {**net.readout.arguments(), "x": x, slope: W, offset: b}
    negligible = 1e-3 * torch.finfo(ctx.dtype).eps * size
    eps = 1e-6
    while eps > 1e-200 and float(ctx.call("tropical_bound_sharp", args, **{eps_name: eps}).max()) > negligible:
        eps /= 1e4
    mod = copy.deepcopy(net.module)
    set_eps(mod, eps)
    with torch.no_grad():
        return functional_call(mod, net.a.parameters_for(W, b), (x,)).reshape(x.shape[0]), eps


class VanishingTemperature(Operator):
    """``|x|^2/(4t)`` minus the module re-parametrised to t at a temperature where the sharp tropical bound is negligible."""

    description = r"$|x|^2/(4t)$ minus the module's forward at $\varepsilon \to 0$ ($\varepsilon$ chosen so the derived sharp bound is below tolerance/1000)"

    def __call__(self, ctx, net, case):
        x, t = case["x"], case["t"]
        W_t, b_t = weights_at(ctx, net, t)
        f_tiny, case.info["eps_used"] = vanishing_forward(ctx, net, x, W_t, b_t, float(1 + (x * x).sum(-1).max() / (4 * t)))
        return ctx.call("identity_rhs", ctx.arguments(net, case)) - f_tiny

    def scale(self, ctx, net, case):
        slope, offset, _ = _names(ctx)
        W_t, b_t = weights_at(ctx, net, case["t"])
        args = {**ctx.arguments(net, case), slope: W_t, offset: b_t}
        return ctx.magnitude("identity_rhs", args) + ctx.magnitude("f", args)


class ZeroTemperature(Operator):
    """The module's forward pass at a temperature where the derived sharp tropical bound is negligible (its eps -> 0 limit)."""

    description = r"the module's forward at $\varepsilon \to 0$ ($\varepsilon$ chosen so the derived sharp bound is below a thousandth of the tolerance)"

    def __call__(self, ctx, net, case):
        x, r = case["x"], net.readout
        f_tiny, case.info["eps_used"] = vanishing_forward(ctx, net, x, r.W, r.b, float(1 + (x @ r.W.T + r.b).abs().max()))
        return f_tiny

    def scale(self, ctx, net, case):
        return ctx.magnitude("f", ctx.arguments(net, case))


# ----------------------------------------------------------------------------- the ReLU construction
def relu_atoms(t: float, dtype, construction: str = "correct"):
    """The correct construction (atoms {0, 2t}, values {0, -t}) and the one of the paper's public code."""
    if construction == "correct":
        return torch.tensor([[0.0], [2 * t]], dtype=dtype), torch.tensor([0.0, -t], dtype=dtype)
    if construction == "reference-repo":
        # g = 0 on a grid of [0, 5]: the construction the paper's public code uses
        return torch.linspace(0, 5, 501, dtype=dtype)[:, None], torch.zeros(501, dtype=dtype)
    raise ValueError(f"unknown construction {construction!r}")


def _relu_routes(ctx, relu, construction="correct"):
    x = torch.linspace(-3, 3, 121, dtype=ctx.dtype)[:, None]
    a, b, s = [], [], []
    for t in T_VALUES:
        y, g = relu_atoms(t, ctx.dtype, construction)
        with torch.no_grad():
            a.append(relu(x)[:, 0])
        args = {"x": x, "y": y, "g": g, "t": t}
        b.append(ctx.call("identity_rhs", args) - ctx.call("hopf_lax", args))
        s.append(ctx.magnitude("identity_rhs", args) + ctx.magnitude("hopf_lax", args))
    return torch.cat(a), torch.cat(b), torch.cat(s)


def _relu(ctx, negative_controls: bool):
    """ReLU against the Hopf-Lax formula of the construction; the negative control bumps nn.ReLU, and the paper's
    public construction is recorded beside it (it does not recover ReLU)."""
    relu = torch.nn.ReLU()
    a, b, s = _relu_routes(ctx, relu)
    title = r"$|x|^2/(4t) - u_0(x, t) = \mathrm{ReLU}(x)$ for atoms $\{0, 2t\}$, values $\{0, -t\}$"
    desc = dict(dtype=ctx.dtype, route_a="torch.nn.ReLU on $x \\in [-3, 3]$",
                route_b="generated |x|^2/(4t) minus the Hopf-Lax formula, d = 1, atoms {0, 2t}, values {0, -t}", step="relu:2")
    ra, rb, rs = _relu_routes(ctx, relu, "reference-repo")
    repo = compare("relu", title, ra, rb, rs + ra.abs() + rb.abs(), **desc)
    result = compare("relu", title, a, b, s + a.abs() + b.abs(), details={
        "t": list(T_VALUES), "reference_repo_construction": {"atoms": "g = 0 on a grid of [0, 5] (501 atoms)",
                                                            "max_abs_err": repo.max_abs_err, "passed": repo.passed}}, **desc)
    if negative_controls:
        delta = 1e-6 if ctx.dtype == torch.float64 else 1e-2
        na, nb, ns = _relu_routes(ctx, perturb(relu, "bump", delta))
        bad = compare("relu", title, na, nb, ns + na.abs() + nb.abs(), **desc)
        result.details["negative_control"] = {"perturbation": f"bump ({delta:.3g})", "max_abs_err": bad.max_abs_err,
                                              "passed": bad.passed, "margin": bad.margin}
    return result


# ----------------------------------------------------------------------------- tightness witnesses
def _tropical_witness(sharp: bool):
    """Where the tropical bound is attained, from the derivation's reason for it (every term of
    ``sum_j exp((a_j - max a)/eps)`` at its largest): all logits equal at a point ``x0`` for ``eps log N``; for the sharp
    bound one logit ``Delta = eps`` above the others, all equal. The module's own slopes are kept, its offsets
    set (``b_j = -W_j x0``, plus ``Delta`` on the first atom), and route A is the real module there."""

    def witness(ctx, nets):
        slope, offset, eps_name = _names(ctx)
        out = []
        for net in nets:
            r = net.readout
            x0 = points(ctx, r.d)[:1]
            for eps in EPS_GRID:
                b = -(r.W @ x0[0])
                if sharp:
                    b = b.clone()
                    b[0] += eps
                args = {**r.arguments(), "x": x0, offset: b, eps_name: eps}
                a = tropical_gap(net, x0, eps, params=net.a.parameters_for(r.W, b))
                name = "tropical_bound_sharp" if sharp else "tropical_bound"
                scale = ctx.magnitude("f", args) + ctx.magnitude("f0", args) + ctx.magnitude(name, args)
                out.append(Values(a, ctx.call(name, args).reshape(a.shape), scale,
                                  info={"network": net.label, "eps": eps,
                                        "logits": "top-two gap eps, the others equal" if sharp else "all equal at x0"}))
        return out

    return witness


def hessian_witness(ctx, nets):
    """Where ``||Hess f||_2 <= max_j |W_j|^2 / eps`` is attained: the module's longest slope ``w`` and its opposite on the atoms
    (half each; an odd one out gets slope 0 and a negligible weight), equal logits at ``x0 = 0``: there ``Cov_pi(W) = w w^T``,
    whose norm is ``|w|^2`` in the direction of ``w`` (the extremal direction). Route A: autograd Hessian of the real module."""
    slope, offset, eps_name = _names(ctx)
    out = []
    for net in nets:
        r = net.readout
        N, d = r.n_atoms, r.d
        if N < 2:
            continue
        w = r.W[int((r.W * r.W).sum(-1).argmax())]
        signs = torch.tensor([1.0 if j % 2 == 0 else -1.0 for j in range(N)], dtype=ctx.dtype)
        W = signs[:, None] * w[None, :]
        b = torch.zeros(N, dtype=ctx.dtype)
        if N % 2:
            W[-1] = 0
            b[-1] = -1e4 * r.eps  # exp(-1e4) = 0: this atom carries no weight
        x0 = torch.zeros(1, d, dtype=ctx.dtype)
        params = net.a.parameters_for(W, b)
        h = grad_and_hessian(lambda x: functional_call(net.module, params, (x,)).reshape(x.shape[0]), x0)[2]
        a = torch.linalg.eigvalsh(0.5 * (h + h.transpose(-1, -2))).abs().amax(-1)
        args = {**r.arguments(), "x": x0, slope: W, offset: b}
        scale = ctx.magnitude("hessian_f", args).sum(dim=(-1, -2)) + ctx.magnitude("hessian_bound", args)
        out.append(Values(a, ctx.call("hessian_bound", args).reshape(a.shape), scale,
                          info={"network": net.label, "slopes": "+-w, w the longest slope", "|w|^2": float(w @ w)}))
    return out


# ----------------------------------------------------------------------------- the declarations
def _isotropic(ctx) -> bool:
    """The ReLU construction is a d = 1 isotropic Hopf-Lax formula: it applies when hopf_lax takes no matrix."""
    return "hopf_lax" in ctx.fns and set(ctx.fns["hopf_lax"].arg_names) == {"x", "y", "g", "t"}


CHECKS = (
    Check("identity", r"$f_\varepsilon(x) + u_\varepsilon(x, t) = |x|^2/(4t)$", "identity:1", Forward(),
          Generated("identity_rhs", "-u", description=r"generated $|x|^2/(4t) - u_\varepsilon(x, t)$ from $(y, g)$ = parameter map of the module's "
                                                      "weights"),
          cases=fixed_data_cases, requires=("atoms_y", "atoms_g")),
    Check("pde_residual", r"$u_t + H(\nabla u) - \varepsilon\, \mathrm{tr}(D \nabla^2 u) = -\varepsilon d/(2t)$", "residual:1", Residual(),
          Generated("residual", description=r"derived constant residual $-\varepsilon d/(2t)$"),
          cases=moving_time_cases, rounding="autograd", requires=("atoms_y", "atoms_g", "weights_W", "weights_b")),
    Check("tropical_limit", r"$\lim_{\varepsilon \to 0} f_\varepsilon = f_0 = \max_j (W_j x + b_j)$ (the max-plus network)", "tropical-limit:2",
          ZeroTemperature(), Generated("f0", description=r"generated max-plus network $f_0$ on the module's weights"), cases=points_case,
          requires=("tropical_bound_sharp",)),
    Check("tropical_bound", r"$0 \le f_\varepsilon - f_0 \le \varepsilon \log N$", "tropical-bounds:2", TropicalGap(),
          Generated("tropical_bound", description=r"derived bound $\varepsilon \log N$"),
          cases=eps_cases, kind="bound", lower=0.0, negative=Negative("offset", -1e-6), witness=_tropical_witness(False)),
    Check("tropical_bound_sharp", r"$0 \le f_\varepsilon - f_0 \le \varepsilon \log(1 + (N-1) e^{-\Delta/\varepsilon})$", "tropical-bounds:3", TropicalGap(),
          Generated("tropical_bound_sharp", description=r"derived bound $\varepsilon \log(1 + (N-1) e^{-\Delta/\varepsilon})$, $\Delta$ the top-two logit gap"),
          cases=eps_cases, kind="bound", lower=0.0, negative=Negative("offset", -1e-6), witness=_tropical_witness(True)),
    Check("hopf_lax", r"$u_0(x, t) = \min_j g_j + |x - y_j|^2/(4t)$ (Hopf-Lax) $= |x|^2/(4t) - f_0(x)$ (the max-plus network)", "hopf-lax-atomic:1",
          VanishingTemperature(), Generated("hopf_lax", description="generated Hopf-Lax formula from the initial data read out of the module"),
          cases=moving_time_cases, requires=("weights_W", "weights_b", "tropical_bound_sharp", "identity_rhs")),
    Check("relu", r"$|x|^2/(4t) - u_0(x, t) = \mathrm{ReLU}(x)$ for atoms $\{0, 2t\}$, values $\{0, -t\}$", "relu:2", "torch.nn.ReLU on $x \\in [-3, 3]$",
          "generated $|x|^2/(4t)$ minus the Hopf-Lax formula of the construction, $d = 1$", standalone=_relu,
          requires=("hopf_lax", "identity_rhs"), when=_isotropic, formula="hopf_lax"),
    Check("hessian", r"$\nabla^2 f = \mathrm{Cov}_\pi(W)/\varepsilon$", "hessian:1", Hessian(),
          Generated("hessian_f", description=r"generated Gibbs covariance $(\mathbb{E}_\pi[W_k W_l] - \mathbb{E}_\pi[W_k]\, \mathbb{E}_\pi[W_l])/\varepsilon$"),
          cases=points_case, rounding="autograd"),
    Check("hessian_bound", r"$\|\nabla^2 f\|_2 \le \max_j |W_j|^2/\varepsilon$", "hessian-bound:1", HessianNorm(),
          Generated("hessian_bound", description=r"derived bound $\max_j |W_j|^2/\varepsilon$"),
          cases=points_case, kind="bound", lower=0.0, rounding="autograd", negative=Negative("quadratic", "bound"),
          witness=hessian_witness),
    Check("attribution", r"$\partial f/\partial b_j = \pi_j(x)$ (closed-form attribution)", "attribution:1", BiasGradient(),
          Generated("attribution", description=r"generated Gibbs weights $\pi_j(x) = \mathrm{softmax}_j((Wx + b)/\varepsilon)$"),
          cases=points_case, rounding="autograd", negative=Negative("temperature")),
)


def cost(ctx, net) -> Estimate:
    """What the checks of one LSE layer need: the largest intermediate is the ``(M, N)`` logits with their Gibbs weights
    (a few copies for autograd) or the ``(M, d, d)`` Hessians; the work is dominated by the Hessians and the residual
    (``d`` backward passes over ``M N d``) and the attribution (``M`` backward passes)."""
    r = net.readout
    M, N, d = N_POINTS, r.n_atoms, r.d
    item = torch.finfo(ctx.dtype).bits // 8
    big = max(6 * M * N, 4 * M * d * d, 4 * N * d)
    what = "the (M, d, d) Hessians" if 4 * M * d * d >= 6 * M * N else "the (M, N) logits and Gibbs weights"
    return Estimate(f"the checks of {r.describe()} ({what}, M = {M} points)", item * big,
                    8.0 * M * N * d * (2 * d + M + 2 * len(EPS_GRID) + 8))


def _is_lse_spec(spec) -> bool:
    return spec.family == "exact" and spec.network is not None and spec.initial_data is not None


SUITE = Suite("lse", CHECKS, applies=_is_lse_spec, read=read, cost=cost)
