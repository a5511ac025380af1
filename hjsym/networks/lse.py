"""Real torch modules: the reference log-sum-exp layer, reading weights out of a user's module,
loading ``FILE.py:NAME``, and perturbed copies used as negative controls.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .._errors import InputError, ModuleFormError

__all__ = [
    "LSELayer",
    "train_lse_layer",
    "LSEReadout",
    "read_lse",
    "get_eps",
    "set_eps",
    "load_user_module",
    "Perturbed",
    "lipschitz_target",
    "train_regression",
    "cached_training",
    "AnisoLSELayer",
    "train_aniso_lse_layer",
    "AnisoLSEReadout",
    "read_aniso_lse",
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


def train_regression(key: str, make, target, d: int, *, steps: int, seed: int, dtype=torch.float64, n_train: int = 512,
                     lr: float = 2e-2, cache: bool = True) -> nn.Module:
    """Train ``make(generator)`` for ``steps`` Adam steps on ``target`` over ``[-1, 1]^d`` (MSE), cached.

    Shared by the reference networks of the LSE-type suites: weights and data come from one
    seeded generator, so the result is deterministic (see :func:`cached_training`).
    """

    def fit(model, gen):
        x = 2 * torch.rand(n_train, d, generator=gen, dtype=dtype) - 1
        y = target(x)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.mean((model(x).reshape(y.shape) - y) ** 2)
            loss.backward()
            opt.step()
        return float(loss.detach())

    return cached_training(key, make, fit, seed=seed, dtype=dtype, cache=cache)


def cached_training(key: str, make, fit, *, seed: int, dtype=torch.float64, cache: bool = True) -> nn.Module:
    """``make(generator)`` trained by ``fit(model, generator) -> final loss``, cached on disk under ``key``.

    Weights and data come from one generator seeded with ``seed``, so the result is
    deterministic; the trained state is stored as plain lists (exact for float64/float32 and
    free of torch's pickling). ``make(None)`` must build the same architecture to load into.
    The module's ``train_loss`` attribute holds the final loss.
    """
    from .. import _cache

    key = f"{key}-{_cache.version_tag()}"
    if cache:
        hit = _cache.load("trained", key)
        if isinstance(hit, dict) and "state" in hit:
            model = make(None)
            model.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in hit["state"].items()})
            model.train_loss = hit["train_loss"]
            return model.eval()
    gen = torch.Generator().manual_seed(seed)
    model = make(gen)
    threads = torch.get_num_threads()
    # small models train faster on one thread (no contention on a shared machine), and the
    # result does not depend on the machine's core count (reductions keep one order)
    torch.set_num_threads(1)
    try:
        model.train_loss = fit(model, gen)
    finally:
        torch.set_num_threads(threads)
    if cache:
        _cache.store("trained", key, {"state": {k: v.tolist() for k, v in model.state_dict().items()}, "train_loss": model.train_loss})
    return model.eval()


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
class LSEReadout:
    """Weights read out of an LSE-type module (a copy in the working dtype).

    ``W`` ``(N, d)`` and ``b`` ``(N,)`` are the effective slopes and offsets of the logits;
    ``fn_args`` holds extra arguments of the generated functions (e.g. the diffusion matrix
    ``A`` of an anisotropic layer), filled by the suite that reads the module.
    """

    module: nn.Module
    linear_name: str
    W: torch.Tensor
    b: torch.Tensor
    eps: float
    fn_args: dict = field(default_factory=dict)

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


# ----------------------------------------------------------------------------- user modules
def load_user_module(ref: str) -> nn.Module:
    """Load ``FILE.py:NAME``: a module instance, or a zero-argument factory returning one."""
    path_text, sep, name = str(ref).rpartition(":")
    if not sep or not path_text or not name:
        raise InputError(f"--module {ref!r} is not of the form FILE.py:NAME", "write e.g. --module my_net.py:model")
    path = Path(path_text)
    if not path.is_file():
        raise InputError(f"module file {path_text!r} does not exist", "give the path of a Python file")
    if path.suffix != ".py":
        raise InputError(f"module file {path_text!r} is not a .py file", "give the path of a Python file")
    mod_name = f"hjsym_user_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    try:
        spec.loader.exec_module(mod)  # the user's own file, run as they asked
    except Exception as exc:
        raise InputError(f"importing {path_text!r} failed: {type(exc).__name__}: {exc}", "fix the file so that it imports") from exc
    if not hasattr(mod, name):
        candidates = sorted(
            k for k, v in vars(mod).items()
            if not k.startswith("_") and (isinstance(v, nn.Module) or (callable(v) and getattr(v, "__module__", None) == mod_name))
        )
        hint = f" (it defines: {', '.join(candidates)})" if candidates else ""
        raise InputError(f"{path_text!r} does not define {name!r}{hint}", "name a module instance or a zero-argument factory")
    obj = getattr(mod, name)
    if isinstance(obj, nn.Module):
        return obj
    if callable(obj):
        try:
            made = obj()
        except TypeError as exc:
            raise InputError(f"{name}() cannot be called without arguments: {exc}", "give a zero-argument factory or an instance") from exc
        if isinstance(made, nn.Module):
            return made
        raise ModuleFormError(f"{name}() returned {type(made).__name__}, not an nn.Module", "return an nn.Module from the factory")
    raise ModuleFormError(f"{name} is a {type(obj).__name__}, not an nn.Module or a factory", "name an nn.Module instance")


# ----------------------------------------------------------------------------- negative controls
class Perturbed(nn.Module):
    """A copy of an LSE-type module that is no longer exactly an LSE layer.

    ``kind``:
      * ``"offset"``: adds ``delta`` to the output;
      * ``"bump"``: adds ``delta * sum_i sin(x_i)`` (smooth, x-dependent);
      * ``"temperature"``: evaluates the base at ``eps * (1 + delta)`` while reporting ``eps``;
      * ``"quadratic"``: adds ``delta * |x|^2`` (extra curvature ``2 delta``).

    The Linear layer and the reported temperature are the base's, so weights read out of the
    perturbed module are the same as before: only its forward pass is off.
    """

    KINDS = ("offset", "bump", "temperature", "quadratic")

    def __init__(self, base: nn.Module, kind: str, delta: float):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"unknown perturbation {kind!r}; use one of {self.KINDS}")
        self.base = copy.deepcopy(base)
        self.kind, self.delta = kind, float(delta)

    @property
    def eps(self) -> float:
        return get_eps(self.base)

    @eps.setter
    def eps(self, value: float) -> None:
        set_eps(self.base, value)

    def forward(self, x):
        base = scalar_output(self.base)
        if self.kind == "temperature":
            declared = get_eps(self.base)
            set_eps(self.base, declared * (1 + self.delta))
            try:
                return base(x)
            finally:
                set_eps(self.base, declared)
        out = base(x)
        if self.kind == "offset":
            return out + self.delta
        if self.kind == "bump":
            return out + self.delta * torch.sin(x).sum(-1)
        return out + self.delta * (x * x).sum(-1)
