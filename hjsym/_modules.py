"""Real torch modules: the reference log-sum-exp layer, reading weights out of a user's module,
loading ``FILE.py:NAME``, and perturbed copies used as negative controls.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ._errors import InputError, ModuleFormError

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
    from . import _cache

    key = f"lse-layer-{d}-{n_atoms}-{eps!r}-{steps}-{seed}-{str(dtype)[6:]}-{n_train}-{_cache.version_tag()}"
    if cache:
        hit = _cache.load("trained", key)
        if isinstance(hit, dict) and "state" in hit:
            model = LSELayer(d, n_atoms, eps, dtype=dtype)
            model.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in hit["state"].items()})
            model.train_loss = hit["train_loss"]
            return model.eval()
    gen = torch.Generator().manual_seed(seed)
    model = LSELayer(d, n_atoms, eps, dtype=dtype, generator=gen)
    x = 2 * torch.rand(n_train, d, generator=gen, dtype=dtype) - 1
    target = lipschitz_target(x)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((model(x) - target) ** 2)
        loss.backward()
        opt.step()
    model.train_loss = float(loss.detach())
    if cache:
        # plain lists: exact for float64/float32 and free of torch's pickling
        _cache.store("trained", key, {"state": {k: v.tolist() for k, v in model.state_dict().items()}, "train_loss": model.train_loss})
    return model.eval()


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
    """Weights read out of an LSE-type module (a copy in the working dtype)."""

    module: nn.Module
    linear_name: str
    W: torch.Tensor
    b: torch.Tensor
    eps: float

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
