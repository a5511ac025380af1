"""Checks of the log-sum-exp layer against real torch modules.

Every check compares the real module (forward pass or autograd through it; route A) with a
function generated from the derivation, evaluated on weights read out of the module (route B).
By default the module is an ``LSELayer`` trained for 300 Adam steps, once for each d in
{1, 2, 8}; ``module=`` runs the same checks on a user's module. ``NEGATIVE_CONTROLS`` names,
for every check, a perturbation of the network that must make it fail; with
``negative_controls=True`` each result records how the perturbed network fared.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch.func import functional_call

from ..engine import (
    CheckReport,
    CheckResult,
    bound,
    compare,
    grad_and_hessian,
    jacobian_rows,
    negative_size,
    run_checks,
    scalar_derivative,
    tolerance,
)
from ...codegen.pipeline import load_functions
from ...networks.lse import LSEReadout, Perturbed, read_lse, scalar_output, set_eps, train_lse_layer

__all__ = ["run", "CHECKS", "CHECK_STEPS", "NEGATIVE_CONTROLS", "REFERENCE_DIMS", "T_VALUES", "EPS_GRID", "reference_modules", "figures"]

REFERENCE_DIMS = (1, 2, 8)
T_VALUES = (0.5, 1.0, 2.0)
EPS_GRID = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)
N_POINTS = 64
T0 = 1.0  # the time at which a module's weights are read as initial data


@dataclass
class Context:
    fns: dict
    dtype: torch.dtype
    seed: int
    details: dict = field(default_factory=dict)
    read: object = read_lse  # module -> readout (a suite for another LSE-type layer passes its own)

    def points(self, r: LSEReadout) -> torch.Tensor:
        """Test points, from a generator separate from the training data's."""
        gen = torch.Generator().manual_seed(10_000 + self.seed * 97 + r.d)
        return torch.randn(N_POINTS, r.d, generator=gen, dtype=self.dtype)

    def call(self, name: str, r: LSEReadout, **kwargs):
        """Generated function ``name`` with the readout's extra arguments (e.g. ``A``) it takes."""
        fn = self.fns[name]
        return fn(**kwargs, **{k: v for k, v in r.fn_args.items() if k in fn.arg_names})

    def atoms(self, r: LSEReadout, t: float = T0):
        """Initial data ``(y, g)`` read out of the module's weights (the generated inverse map)."""
        return self.call("atoms_y", r, W=r.W, t=t), self.call("atoms_g", r, W=r.W, b=r.b, t=t)

    def weights_at(self, r: LSEReadout, t):
        """Effective weights ``(W, b)`` at PDE time ``t`` of the same initial data (generated map)."""
        y, g = self.atoms(r)
        return self.call("weights_W", r, y=y, t=t), self.call("weights_b", r, y=y, g=g, t=t)

    def reparametrised(self, r: LSEReadout, t):
        """The module's parameters at PDE time ``t`` (weights of the same initial data)."""
        return r.parameters_for(*self.weights_at(r, t))


def _cat(parts):
    return torch.cat([p.reshape(-1) for p in parts])


# ----------------------------------------------------------------------------- the checks
def check_identity(ctx: Context, rs) -> CheckResult:
    a, b = [], []
    for r in rs:
        x = ctx.points(r)
        with torch.no_grad():
            fx = scalar_output(r.module)(x)
        for t in T_VALUES:
            y, g = ctx.atoms(r, t)
            a.append(fx)
            b.append(ctx.call("identity_rhs", r, x=x, t=t) - ctx.call("u", r, x=x, eps=r.eps, y=y, g=g, t=t))
    return compare(
        "identity",
        "f_eps(x) + u_eps(x, t) = |x|^2/(4t)",
        _cat(a), _cat(b), tolerance("identity", ctx.dtype),
        "module forward f_eps(x)",
        "generated |x|^2/(4t) - u_eps(x, t) from (y, g) = parameter map of the module's weights",
        {"d": [r.d for r in rs], "t": list(T_VALUES), "points_per_case": N_POINTS},
        point=ctx.points(rs[0])[0],
    )


def autograd_residual(ctx: Context, r: LSEReadout, x: torch.Tensor, t: float) -> torch.Tensor:
    """``u_t + grad u^T A grad u - eps tr(A Hess u)`` by torch autograd through the module re-parametrised in t.

    ``u(x, t) = |x|^2/(4t) - f_t(x)``, where ``f_t`` is the module's forward pass with the
    weights that the parameter map assigns to its initial data at time ``t``; ``A`` is the
    identity, or for a layer after a linear map ``L`` the matrix ``(L^T L)^{-1}`` computed from
    the real weights (and ``|x|^2`` is ``|L x|^2``).
    """

    def u_of(tt, xx):
        out = functional_call(r.module, ctx.reparametrised(r, tt), (xx,))
        return r.sq_norm(xx) / (4 * tt) - out.reshape(xx.shape[0])

    _, u_t = scalar_derivative(lambda tt: u_of(tt, x), t, ctx.dtype)
    xg = x.detach().clone().requires_grad_(True)
    u = u_of(torch.tensor(t, dtype=ctx.dtype), xg)
    (grad,) = torch.autograd.grad(u.sum(), xg, create_graph=True)
    hess = torch.stack([torch.autograd.grad(grad[:, i].sum(), xg, retain_graph=True)[0] for i in range(x.shape[1])], dim=1)
    A = r.hj_matrix()
    if A is None:
        return (u_t + (grad * grad).sum(-1) - r.eps * torch.diagonal(hess, dim1=1, dim2=2).sum(-1)).detach()
    return (u_t + torch.einsum("mk,kl,ml->m", grad, A, grad) - r.eps * torch.einsum("kl,mkl->m", A, hess)).detach()


def check_pde_residual(ctx: Context, rs) -> CheckResult:
    a, b = [], []
    for r in rs:
        x = ctx.points(r)
        for t in T_VALUES:
            a.append(autograd_residual(ctx, r, x, t))
            b.append(ctx.call("residual", r, eps=r.eps, t=t, d=r.d).expand(x.shape[0]))
    return compare(
        "pde_residual",
        "u_t + H(grad u) - eps tr(D Hess u) = -eps d / (2t)",
        _cat(a), _cat(b), tolerance("autograd", ctx.dtype),
        "torch.autograd through the module re-parametrised in t (u = |x|^2/(4t) - f_t; with a map L: |L x|^2, A = (L^T L)^-1)",
        "derived constant residual -eps d/(2t)",
        {"d": [r.d for r in rs], "t": list(T_VALUES)},
        point=ctx.points(rs[0])[0],
    )


def _tropical_gaps(ctx: Context, r: LSEReadout):
    x = ctx.points(r)
    f0 = ctx.fns["f0"](x=x, W=r.W, b=r.b)
    mod = copy.deepcopy(r.module)
    rows = []
    for e in EPS_GRID:
        set_eps(mod, e)
        with torch.no_grad():
            gap = scalar_output(mod)(x) - f0
        rows.append((e, gap, ctx.fns["tropical_bound"](eps=e, N=r.n_atoms), ctx.fns["tropical_bound_sharp"](x=x, W=r.W, b=r.b, eps=e)))
    return x, rows


def _tropical(ctx: Context, rs, sharp: bool) -> CheckResult:
    values, bounds, curve = [], [], []
    for r in rs:
        _, rows = _tropical_gaps(ctx, r)
        for e, gap, b1, b2 in rows:
            values.append(gap)
            bounds.append((b2 if sharp else b1).expand_as(gap))
            curve.append({"d": r.d, "eps": e, "max_gap": float(gap.max()), "min_gap": float(gap.min()), "bound": float(b1), "max_sharp_bound": float(b2.max())})
    name = "tropical_bound_sharp" if sharp else "tropical_bound"
    title = "0 <= f_eps - f_0 <= eps log(1 + (N-1) exp(-Delta/eps))" if sharp else "0 <= f_eps - f_0 <= eps log N"
    return bound(
        name, title, _cat(values), _cat(bounds), tolerance("bound", ctx.dtype),
        "module forward at each eps minus the generated max-plus network f_0",
        "derived bound " + ("eps log(1 + (N-1) exp(-Delta/eps)), Delta the top-two logit gap" if sharp else "eps log N"),
        details={"eps_grid": list(EPS_GRID), "curve": curve},
    )


def check_tropical_bound(ctx, rs):
    return _tropical(ctx, rs, sharp=False)


def check_tropical_bound_sharp(ctx, rs):
    return _tropical(ctx, rs, sharp=True)


def check_hopf_lax(ctx: Context, rs) -> CheckResult:
    a, b, used = [], [], []
    tol = tolerance("identity", ctx.dtype)
    for r in rs:
        x = ctx.points(r)
        for t in T_VALUES:
            W_t, b_t = ctx.weights_at(r, t)
            params = r.parameters_for(W_t, b_t)
            eps = 1e-6
            # the forward pass at eps equals max-plus up to the derived sharp bound: make it negligible
            while eps > 1e-14 and float(ctx.fns["tropical_bound_sharp"](x=x, W=W_t, b=b_t, eps=eps).max()) > tol * 1e-3:
                eps /= 10
            mod = copy.deepcopy(r.module)
            set_eps(mod, eps)
            with torch.no_grad():
                f_tiny = functional_call(mod, params, (x,)).reshape(x.shape[0])
            y, g = ctx.atoms(r)
            a.append(ctx.call("identity_rhs", r, x=x, t=t) - f_tiny)
            b.append(ctx.call("hopf_lax", r, x=x, y=y, g=g, t=t))
            used.append(eps)
    return compare(
        "hopf_lax",
        "u_0(x, t) = min_j g_j + |x - y_j|^2/(4t) (Hopf-Lax) = |x|^2/(4t) - max-plus network",
        _cat(a), _cat(b), tol,
        "|x|^2/(4t) minus the module's forward at eps -> 0 (eps chosen so the derived sharp bound is < tol/1000)",
        "generated Hopf-Lax formula from the initial data read out of the module",
        {"eps_used": used, "t": list(T_VALUES)},
        point=ctx.points(rs[0])[0],
    )


#: The correct construction (atoms {0, 2t}, values {0, -t}) and the reference repository's.
def relu_atoms(t: float, dtype, construction: str = "correct"):
    if construction == "correct":
        return torch.tensor([[0.0], [2 * t]], dtype=dtype), torch.tensor([0.0, -t], dtype=dtype)
    if construction == "reference-repo":
        # g = 0 on a grid of [0, 5]: the construction the paper's public code uses
        return torch.linspace(0, 5, 501, dtype=dtype)[:, None], torch.zeros(501, dtype=dtype)
    raise ValueError(f"unknown construction {construction!r}")


def check_relu(ctx: Context, rs, construction: str = "correct") -> CheckResult:
    x = torch.linspace(-3, 3, 121, dtype=ctx.dtype)[:, None]
    a, b = [], []
    for t in T_VALUES:
        y, g = relu_atoms(t, ctx.dtype, construction)
        a.append(torch.nn.ReLU()(x[:, 0]))
        b.append(ctx.fns["identity_rhs"](x=x, t=t) - ctx.fns["hopf_lax"](x=x, y=y, g=g, t=t))
    return compare(
        "relu",
        "|x|^2/(4t) - Hopf-Lax(atoms {0, 2t}, values {0, -t}) = ReLU(x)",
        _cat(a), _cat(b), tolerance("identity", ctx.dtype),
        "torch.nn.ReLU on x in [-3, 3]",
        f"generated Hopf-Lax formula, d = 1, {construction} construction",
        {"t": list(T_VALUES), "construction": construction},
    )


def _hessians(ctx: Context, r: LSEReadout):
    x = ctx.points(r)
    _, _, hess = grad_and_hessian(scalar_output(r.module), x)
    return x, hess


def check_hessian(ctx: Context, rs) -> CheckResult:
    a, b = [], []
    for r in rs:
        x, hess = _hessians(ctx, r)
        a.append(hess)
        b.append(ctx.fns["hessian_f"](x=x, eps=r.eps, W=r.W, b=r.b))
    return compare(
        "hessian",
        "Hessian of f = Cov_pi(W) / eps",
        _cat(a), _cat(b), tolerance("autograd", ctx.dtype),
        "torch.autograd Hessian of the module",
        "generated Gibbs covariance (E_pi[W_k W_l] - E_pi[W_k] E_pi[W_l]) / eps",
        {"d": [r.d for r in rs]},
        point=ctx.points(rs[0])[0],
    )


def check_hessian_bound(ctx: Context, rs) -> CheckResult:
    a, b = [], []
    for r in rs:
        _, hess = _hessians(ctx, r)
        norms = torch.linalg.eigvalsh(0.5 * (hess + hess.transpose(-1, -2))).abs().amax(-1)
        a.append(norms)
        b.append(ctx.fns["hessian_bound"](eps=r.eps, W=r.W).expand_as(norms))
    return bound(
        "hessian_bound",
        "||Hessian f||_2 <= max_j |W_j|^2 / eps",
        _cat(a), _cat(b), tolerance("bound", ctx.dtype),
        "spectral norm of the autograd Hessian of the module",
        "derived bound max_j |W_j|^2 / eps",
        details={"d": [r.d for r in rs]},
    )


def check_attribution(ctx: Context, rs) -> CheckResult:
    a, b = [], []
    for r in rs:
        x = ctx.points(r)
        bias = r.b.clone().requires_grad_(True)
        params = r.parameters_for(r.W, bias)
        out = functional_call(r.module, params, (x,)).reshape(x.shape[0])
        a.append(jacobian_rows(out, bias).detach())
        b.append(ctx.fns["attribution"](x=x, eps=r.eps, W=r.W, b=r.b))
    return compare(
        "attribution",
        "df/db_j = pi_j(x) (closed-form attribution)",
        _cat(a), _cat(b), tolerance("autograd", ctx.dtype),
        "torch.autograd derivative of the module output with respect to its bias",
        "generated Gibbs weights pi_j(x) = softmax_j((W x + b)/eps)",
        {"d": [r.d for r in rs]},
        point=ctx.points(rs[0])[0],
    )


CHECKS = {
    "identity": check_identity,
    "pde_residual": check_pde_residual,
    "tropical_bound": check_tropical_bound,
    "tropical_bound_sharp": check_tropical_bound_sharp,
    "hopf_lax": check_hopf_lax,
    "relu": check_relu,
    "hessian": check_hessian,
    "hessian_bound": check_hessian_bound,
    "attribution": check_attribution,
}

#: The derivation step (and equation, "step-id:k") each check tests; reports show that equation
#: beside the check's numbers.
CHECK_STEPS = {
    "identity": "identity:1",
    "pde_residual": "residual:1",
    "tropical_bound": "tropical-bounds:2",
    "tropical_bound_sharp": "tropical-bounds:3",
    "hopf_lax": "hopf-lax-atomic:1",
    "relu": "relu:2",
    "hessian": "hessian:1",
    "hessian_bound": "hessian-bound:1",
    "attribution": "attribution:1",
}

#: For every check, the perturbation of the network that must make it fail: (kind, size).
#: Sizes are multiples of the dtype's tolerance; "scale" means "twice the derived bound".
NEGATIVE_CONTROLS = {
    "identity": ("bump", 100),
    "pde_residual": ("bump", 100),
    "tropical_bound": ("offset", -100),
    "tropical_bound_sharp": ("offset", -100),
    "hopf_lax": ("bump", 100),
    "relu": ("construction", "reference-repo"),
    "hessian": ("temperature", 100),
    "hessian_bound": ("quadratic", "scale"),
    "attribution": ("temperature", 100),
}


AUTOGRAD_CHECKS = ("pde_residual", "hessian", "attribution")


def perturbed_readouts(ctx: Context, rs, name: str):
    """The readouts of the networks perturbed as ``NEGATIVE_CONTROLS[name]`` says."""
    kind, size = NEGATIVE_CONTROLS[name]
    out = []
    for r in rs:
        if size == "scale":
            delta = float(ctx.fns["hessian_bound"](eps=r.eps, W=r.W))
        else:
            delta = negative_size(name, size, ctx.dtype, AUTOGRAD_CHECKS)
        out.append(ctx.read(Perturbed(r.module, kind, delta), ctx.dtype))
    return out, kind


def run_negative_control(ctx: Context, rs, name: str) -> CheckResult:
    """Run check ``name`` on perturbed networks (it should fail)."""
    kind, size = NEGATIVE_CONTROLS[name]
    if kind == "construction":
        return check_relu(ctx, rs, construction=size)
    prs, _ = perturbed_readouts(ctx, rs, name)
    return CHECKS[name](ctx, prs)


def reference_modules(seed: int = 0, dtype=torch.float64):
    """The default networks: an LSELayer (N = 16, eps = 0.5) trained for each d in REFERENCE_DIMS."""
    return [train_lse_layer(d, seed=seed * 100 + d, dtype=dtype) for d in REFERENCE_DIMS]


def run_lse_family(arch, ctx: Context, nets, *, checks, negatives, network, module=None, only=None, negative_controls=False,
                   progress=False) -> CheckReport:
    """Run ``checks`` (names of :data:`CHECKS`) on LSE-type networks; shared with ``lse-aniso``."""
    rs = [ctx.read(n, ctx.dtype) for n in nets]
    if module is not None:
        network = rs[0].describe()
    notes = []
    if module is None:
        notes.append("train losses: " + ", ".join(f"d={r.d}: {getattr(n, 'train_loss', float('nan')):.3g}" for r, n in zip(rs, nets)))
    return run_checks(
        arch.name, {n: (lambda n=n: CHECKS[n](ctx, rs)) for n in checks}, negatives, lambda n: run_negative_control(ctx, rs, n),
        dtype=ctx.dtype, seed=ctx.seed, network=network, only=only, negative_controls=negative_controls, progress=progress, notes=notes,
    )


def run(arch, *, module=None, dtype=torch.float64, seed: int = 0, only=None, negative_controls: bool = False, progress: bool = False) -> CheckReport:
    """Run the LSE checks (see the module docstring); returns a :class:`~hjsym.CheckReport`."""
    ctx = Context(load_functions(arch.spec), dtype, seed)
    nets = reference_modules(seed, dtype) if module is None else [module]
    return run_lse_family(arch, ctx, nets, checks=CHECKS, negatives=NEGATIVE_CONTROLS, module=module, only=only,
                          network=f"LSELayer (N=16, eps=0.5) trained 300 Adam steps, d in {list(REFERENCE_DIMS)}",
                          negative_controls=negative_controls, progress=progress)


def figures(arch, report: CheckReport, out_dir, *, seed: int = 0):
    """Report figures (see :mod:`hjsym.reports.figures.common`); returns ``{name: (caption, stem)}``."""
    from ...reports.figures.common import lse_figures

    return lse_figures(arch, report, out_dir, seed=seed)
