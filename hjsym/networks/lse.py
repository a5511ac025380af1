"""Log-sum-exp layers: the reference modules (plain and after a learned linear map), trained on a
Lipschitz target, and their readouts (the single ``nn.Linear`` and the temperature).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .._errors import InputError, ModuleFormError
from .readout import Readout
from .training import train_regression

__all__ = [
    "LSELayer",
    "train_lse_layer",
    "LSEReadout",
    "read_lse",
    "get_eps",
    "set_eps",
    "lipschitz_target",
    "AnisoLSELayer",
    "train_aniso_lse_layer",
    "AnisoLSEReadout",
    "read_aniso_lse",
    "lse_references",
    "aniso_references",
    "REFERENCE_DIMS",
    "ANISO_DIMS",
]

EPS_ATTRIBUTES = ("eps", "epsilon", "temperature")


class LSELayer(nn.Module):
    """``f(x) = eps * logsumexp((x W^T + b) / eps)``: an ``nn.Linear`` and a log-sum-exp.

    Shapes: ``x`` is ``(*batch, d)``; the output is ``(*batch,)``.
    """

    def __init__(self, d: int, n_atoms: int, eps: float, *, dtype=torch.float64, generator: torch.Generator | None = None):
        super().__init__()
        if eps <= 0 or not math.isfinite(eps):
            raise InputError(f"eps must be a finite number > 0, got {eps}", "pass e.g. eps=0.5")
        self.linear = nn.Linear(d, n_atoms, dtype=dtype)
        if generator is not None:
            with torch.no_grad():
                bound = 1 / math.sqrt(d)
                self.linear.weight.uniform_(-bound, bound, generator=generator)
                self.linear.bias.uniform_(-bound, bound, generator=generator)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eps * torch.logsumexp(self.linear(x) / self.eps, dim=-1)


def lipschitz_target(x: torch.Tensor) -> torch.Tensor:
    """A Lipschitz (not convex) training target: ``|x|_2 + 0.3 cos(2 x_1)``."""
    return x.norm(dim=-1) + 0.3 * torch.cos(2 * x[..., 0])


def train_lse_layer(
    d: int,
    n_atoms: int = 16,
    eps: float = 0.5,
    *,
    steps: int = 300,
    seed: int = 0,
    dtype=torch.float64,
    n_train: int = 512,
    cache: bool = True,
) -> LSELayer:
    """An :class:`LSELayer` trained for ``steps`` Adam steps on :func:`lipschitz_target`.

    Everything is seeded from ``seed`` (weights and data), so the result is deterministic; it is
    cached on disk (``torch.optim`` alone takes seconds to import, the training itself less).
    """
    key = f"lse-layer-{d}-{n_atoms}-{eps!r}-{steps}-{seed}-{str(dtype)[6:]}-{n_train}"

    def make(gen):
        return LSELayer(d, n_atoms, eps, dtype=dtype, generator=gen)

    return train_regression(key, make, lambda x: lipschitz_target(x), d, steps=steps, seed=seed, dtype=dtype, n_train=n_train,
                            cache=cache)


class AnisoLSELayer(nn.Module):
    """``f(x) = eps * logsumexp(V (L x) + b) / eps)``: a learned linear map, then an LSE layer.

    ``self.map`` is ``L`` (a bias-free ``(d, d)`` ``nn.Linear``), ``self.linear`` holds ``V, b``.
    Shapes: ``x`` is ``(*batch, d)``; the output is ``(*batch,)``.
    """

    def __init__(self, d: int, n_atoms: int, eps: float, *, dtype=torch.float64, generator: torch.Generator | None = None):
        super().__init__()
        if eps <= 0 or not math.isfinite(eps):
            raise InputError(f"eps must be a finite number > 0, got {eps}", "pass e.g. eps=0.5")
        self.map = nn.Linear(d, d, bias=False, dtype=dtype)
        self.linear = nn.Linear(d, n_atoms, dtype=dtype)
        if generator is not None:
            with torch.no_grad():
                # start near the identity so that training has a well-conditioned L to move
                self.map.weight.copy_(torch.eye(d, dtype=dtype) + 0.3 * torch.randn(d, d, generator=generator, dtype=dtype) / math.sqrt(d))
                bound = 1 / math.sqrt(d)
                self.linear.weight.uniform_(-bound, bound, generator=generator)
                self.linear.bias.uniform_(-bound, bound, generator=generator)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eps * torch.logsumexp(self.linear(self.map(x)) / self.eps, dim=-1)


def anisotropic_target(x: torch.Tensor) -> torch.Tensor:
    """A Lipschitz target with a preferred direction: ``|(3 x_1, x_2, ...)| + 0.3 cos(2 x_1 + x_2)``."""
    scale = torch.ones(x.shape[-1], dtype=x.dtype)
    scale[0] = 3.0
    phase = 2 * x[..., 0] + (x[..., 1] if x.shape[-1] > 1 else 0)
    return (x * scale).norm(dim=-1) + 0.3 * torch.cos(phase)


def train_aniso_lse_layer(d: int, n_atoms: int = 16, eps: float = 0.5, *, steps: int = 300, seed: int = 0,
                          dtype=torch.float64, cache: bool = True) -> AnisoLSELayer:
    """An :class:`AnisoLSELayer` trained for ``steps`` Adam steps on :func:`anisotropic_target` (seeded, cached)."""
    key = f"aniso-lse-layer-{d}-{n_atoms}-{eps!r}-{steps}-{seed}-{str(dtype)[6:]}"
    return train_regression(key, lambda gen: AnisoLSELayer(d, n_atoms, eps, dtype=dtype, generator=gen), anisotropic_target, d,
                            steps=steps, seed=seed, dtype=dtype, cache=cache)


# ----------------------------------------------------------------------------- readout
def _eps_attribute(module: nn.Module) -> str | None:
    for name in EPS_ATTRIBUTES:
        if hasattr(module, name):
            return name
    return None


def get_eps(module: nn.Module) -> float:
    """The temperature of an LSE-type module (attribute ``eps``, ``epsilon`` or ``temperature``)."""
    name = _eps_attribute(module)
    if name is None:
        raise ModuleFormError(
            f"{type(module).__name__} has no temperature attribute ({', '.join(EPS_ATTRIBUTES)})",
            "store the temperature on the module, e.g. self.eps = 0.5, and use it in forward",
        )
    value = getattr(module, name)
    value = float(value.detach()) if isinstance(value, torch.Tensor) else value
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{type(module).__name__}.{name} = {value!r} is not a finite number > 0", f"set {name} to a positive float")
    return float(value)


def set_eps(module: nn.Module, value: float) -> None:
    """Set the temperature attribute found by :func:`get_eps` (float or tensor)."""
    name = _eps_attribute(module)
    if name is None:
        get_eps(module)  # raises the helpful error
    current = getattr(module, name)
    if isinstance(current, torch.Tensor):
        with torch.no_grad():
            current.fill_(value)
    else:
        setattr(module, name, float(value))


@dataclass
class LSEReadout(Readout):
    """Weights read out of an LSE-type module (a copy in the working dtype).

    ``W`` ``(N, d)`` and ``b`` ``(N,)`` are the effective slopes and offsets of the logits;
    ``fn_args`` holds extra arguments of the generated functions (e.g. the diffusion matrix
    ``A`` of an anisotropic layer), filled by the suite that reads the module; ``names`` maps
    ``W``, ``b`` and ``eps`` to the spec's names for them (attention calls its slopes ``K``).
    """

    module: nn.Module
    linear_name: str
    W: torch.Tensor
    b: torch.Tensor
    eps: float
    fn_args: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)

    def linear(self) -> nn.Module:
        """The module's ``nn.Linear`` (of the module route A runs: a perturbed copy has one of the same name)."""
        return self.module.get_submodule(self.linear_name)

    def parameters_for(self, W: torch.Tensor, b: torch.Tensor) -> dict:
        """Module parameters (for ``torch.func.functional_call``) whose logits are ``W x + b``."""
        return {f"{self.linear_name}.weight": W, f"{self.linear_name}.bias": b}

    def sq_norm(self, x: torch.Tensor) -> torch.Tensor:
        """``|x|^2`` in the geometry of the layer (``|L x|^2`` after an input map)."""
        return (x * x).sum(-1)

    def hj_matrix(self) -> torch.Tensor | None:
        """The diffusion matrix of the layer's PDE from the real weights (None: the identity)."""
        return None

    @property
    def d(self) -> int:
        return self.W.shape[1]

    @property
    def n_atoms(self) -> int:
        return self.W.shape[0]

    def describe(self) -> str:
        return f"{type(self.module).__name__}(d={self.d}, N={self.n_atoms}, eps={self.eps:g})"

    def arguments(self) -> dict:
        n = self.names
        return {n.get("W", "W"): self.W, n.get("b", "b"): self.b, n.get("eps", "eps"): self.eps, "N": self.n_atoms, "d": self.d,
                **self.fn_args}


def read_lse(module: nn.Module, dtype=torch.float64) -> LSEReadout:
    """Copy ``module`` to ``dtype`` and read out its single ``nn.Linear`` and its temperature.

    Raises :class:`~hjsym.ModuleFormError` when the module is not of that form and
    :class:`~hjsym.InputError` for non-finite weights or a bad temperature.
    """
    if not isinstance(module, nn.Module):
        raise ModuleFormError(f"expected a torch.nn.Module, got {type(module).__name__}", "pass an nn.Module instance")
    module = copy.deepcopy(module).to(dtype).eval()
    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        found = ", ".join(n or "<root>" for n, _ in linears) or "none"
        raise ModuleFormError(
            f"an LSE layer has exactly one nn.Linear; {type(module).__name__} has {len(linears)} ({found})",
            "pass a module of the form eps * logsumexp(linear(x) / eps)",
        )
    name, linear = linears[0]
    if linear.bias is None:
        raise ModuleFormError(f"the nn.Linear {name!r} has no bias", "create it with nn.Linear(d, N, bias=True)")
    eps = get_eps(module)
    W, b = linear.weight.detach().clone(), linear.bias.detach().clone()
    for label, t in (("weight", W), ("bias", b)):
        if not bool(torch.isfinite(t).all()):
            raise InputError(f"{name}.{label} contains non-finite values", "train or initialise the module to finite weights")
    probe = torch.zeros(2, linear.in_features, dtype=dtype)
    with torch.no_grad():
        try:
            out = module(probe)
        except Exception as exc:  # the user's forward failed on a plain batch
            raise ModuleFormError(
                f"{type(module).__name__}.forward failed on a (2, {linear.in_features}) batch: {exc}",
                "the module must map a (batch, d) tensor to one value per point",
            ) from exc
    if tuple(out.shape) not in ((2,), (2, 1)):
        raise ModuleFormError(
            f"{type(module).__name__} returns shape {tuple(out.shape)} for a (2, {linear.in_features}) batch",
            "return one value per point, shape (batch,) or (batch, 1)",
        )
    return LSEReadout(module, name, W, b, eps)


@dataclass
class AnisoLSEReadout(LSEReadout):
    """An LSE layer after a bias-free linear map ``L``: effective weights ``W = V L``."""

    map_name: str = ""
    L: torch.Tensor | None = None
    V: torch.Tensor | None = None

    def parameters_for(self, W, b):
        # keep L; the layer's own weight is W L^-1
        V = torch.linalg.solve(self.L.T, W.T).T
        return {f"{self.linear_name}.weight": V, f"{self.linear_name}.bias": b}

    def sq_norm(self, x):
        Lx = x @ self.L.T
        return (Lx * Lx).sum(-1)

    def hj_matrix(self):
        return torch.linalg.inv(self.L.T @ self.L)

    def describe(self) -> str:
        cond = float(torch.linalg.cond(self.L))
        return f"{type(self.module).__name__}(d={self.d}, N={self.n_atoms}, eps={self.eps:g}, cond(L)={cond:.3g})"


def read_aniso_lse(module: nn.Module, dtype=torch.float64) -> AnisoLSEReadout:
    """Read an LSE layer applied after a linear map: exactly two ``nn.Linear``, a bias-free
    ``(d, d)`` map ``L`` first and the layer ``V, b`` second; a temperature attribute.

    Raises :class:`~hjsym.ModuleFormError` naming what is missing, :class:`~hjsym.InputError`
    for a singular ``L`` (no diffusion matrix ``A = (L^T L)^-1`` exists).
    """
    if not isinstance(module, nn.Module):
        raise ModuleFormError(f"expected a torch.nn.Module, got {type(module).__name__}", "pass an nn.Module instance")
    module = copy.deepcopy(module).to(dtype).eval()
    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    maps = [(n, m) for n, m in linears if m.bias is None and m.in_features == m.out_features]
    layers = [(n, m) for n, m in linears if m.bias is not None]
    if len(linears) != 2 or len(maps) != 1 or len(layers) != 1:
        found = ", ".join(f"{n or '<root>'} ({m.in_features}->{m.out_features}, bias={m.bias is not None})" for n, m in linears) or "none"
        raise ModuleFormError(
            f"an anisotropic LSE layer has a bias-free (d, d) nn.Linear map and one nn.Linear layer with bias; "
            f"{type(module).__name__} has {found}",
            "pass a module of the form eps * logsumexp(layer(map(x)) / eps) with map = nn.Linear(d, d, bias=False)",
        )
    (map_name, lin_map), (name, layer) = maps[0], layers[0]
    eps = get_eps(module)
    L = lin_map.weight.detach().clone()
    V, b = layer.weight.detach().clone(), layer.bias.detach().clone()
    for label, t in (("map weight", L), ("weight", V), ("bias", b)):
        if not bool(torch.isfinite(t).all()):
            raise InputError(f"{label} contains non-finite values", "train or initialise the module to finite weights")
    if float(torch.linalg.svdvals(L).min()) <= 1e3 * torch.finfo(dtype).eps * float(torch.linalg.svdvals(L).max()):
        raise InputError(
            f"the map {map_name!r} is singular (cond = {float(torch.linalg.cond(L)):.3g}): A = (L^T L)^-1 does not exist, "
            "so the layer solves no anisotropic HJ equation with a positive definite A",
            "use an invertible map (or the isotropic 'lse' architecture on the mapped inputs)",
        )
    return AnisoLSEReadout(module, name, V @ L, b, eps, map_name=map_name, L=L, V=V)


def scalar_output(module: nn.Module):
    """``x -> module(x)`` with the output flattened to ``(batch,)``."""

    def fn(x):
        out = module(x)
        return out.reshape(out.shape[: x.dim() - 1])

    return fn


# ----------------------------------------------------------------------------- reference networks
#: The dimensions of the reference LSE layers (N = 16, eps = 0.5, 300 Adam steps each).
REFERENCE_DIMS = (1, 2, 8)
ANISO_DIMS = (2, 4)


def lse_references(seed: int = 0, dtype=torch.float64) -> dict:
    """``{label: module}``: an :class:`LSELayer` (N = 16, eps = 0.5) trained 300 Adam steps for each d in REFERENCE_DIMS."""
    return {f"LSELayer d = {d}": train_lse_layer(d, seed=seed * 100 + d, dtype=dtype) for d in REFERENCE_DIMS}


def aniso_references(seed: int = 0, dtype=torch.float64) -> dict:
    """``{label: module}``: an :class:`AnisoLSELayer` (learned L, N = 16, eps = 0.5) trained 300 Adam steps for each d in ANISO_DIMS."""
    return {f"AnisoLSELayer d = {d}": train_aniso_lse_layer(d, seed=seed * 100 + d, dtype=dtype) for d in ANISO_DIMS}
