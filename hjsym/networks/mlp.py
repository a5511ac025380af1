"""Real torch networks of the exact family beyond the single LSE layer, and their readouts.

* MLPs: ``nn.Sequential`` of ``nn.Linear`` layers and activations (``nn.Softplus(beta=1/eps)``,
  ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``, ``nn.SiLU``, ``nn.GELU``), trained on a Lipschitz
  target; :func:`read_mlp` reads their layers and records, by forward hooks, what each layer
  really received and returned;
* attention modules and a small transformer are in :mod:`hjsym.networks.attention`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .._errors import InputError, ModuleFormError
from .lse import lipschitz_target, train_lse_layer
from .readout import Readout
from .trace import describe, trace
from .training import train_regression

__all__ = [
    "ACTIVATION_MODULES",
    "make_mlp",
    "train_mlp",
    "MLPLayer",
    "MLPReadout",
    "read_mlp",
    "relu_twin",
    "set_softplus_eps",
    "activation_references",
    "DEPTHS",
]

#: Softplus's linear cut-off: torch returns z itself when beta z > threshold. At 40 the error
#: eps log(1 + e^{-40}) ~ 4e-18 eps is below float64 rounding; torch's default 20 (2e-9 eps) is not.
SOFTPLUS_THRESHOLD = 40.0

ACTIVATION_MODULES = {
    "softplus": nn.Softplus,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}


def _activation(kind: str, eps: float) -> nn.Module:
    if kind == "softplus":
        return nn.Softplus(beta=1 / eps, threshold=SOFTPLUS_THRESHOLD)
    return ACTIVATION_MODULES[kind]()


def make_mlp(d_in: int, widths, kind: str, eps: float = 1.0, *, dtype=torch.float64, generator=None) -> nn.Sequential:
    """``Linear(d_in, w_1), act, ..., Linear(w_L, 1)`` with seeded uniform(-1/sqrt(fan_in), .) weights."""
    if kind not in ACTIVATION_MODULES:
        raise InputError(f"unknown activation {kind!r}", f"use one of {', '.join(ACTIVATION_MODULES)}")

    def linear(fan_in, fan_out):
        lin = nn.Linear(fan_in, fan_out, dtype=dtype)
        if generator is not None:
            with torch.no_grad():
                bound = 1 / math.sqrt(fan_in)
                lin.weight.uniform_(-bound, bound, generator=generator)
                lin.bias.uniform_(-bound, bound, generator=generator)
        return lin

    layers, fan_in = [], d_in
    for w in widths:
        layers += [linear(fan_in, w), _activation(kind, eps)]
        fan_in = w
    return nn.Sequential(*layers, linear(fan_in, 1))


def train_mlp(kind: str, depth: int, *, width: int = 16, d_in: int = 2, eps: float = 0.5, steps: int = 200, seed: int = 0,
              dtype=torch.float64, cache: bool = True) -> nn.Sequential:
    """An MLP with ``depth`` hidden layers of ``width`` units, trained on :func:`~hjsym.networks.lse.lipschitz_target` (cached)."""
    key = f"mlp-{kind}-{depth}-{width}-{d_in}-{eps!r}-{steps}-{seed}-{str(dtype)[6:]}"
    return train_regression(key, lambda gen: make_mlp(d_in, [width] * depth, kind, eps, dtype=dtype, generator=gen),
                            lipschitz_target, d_in, steps=steps, seed=seed, dtype=dtype, cache=cache)


@dataclass
class MLPLayer:
    """One hidden layer: its weights ``W`` ``(K, d)``, ``b`` ``(K,)`` and the activation that follows."""

    linear_name: str
    W: torch.Tensor
    b: torch.Tensor
    act_name: str
    kind: str
    eps: float
    threshold: float | None = None


@dataclass
class MLPReadout(Readout):
    """An MLP read out of a module: hidden layers, the output layer, and a hooked forward pass."""

    module: nn.Module
    layers: list[MLPLayer]
    out_W: torch.Tensor
    out_b: torch.Tensor
    records: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def d_in(self) -> int:
        return self.layers[0].W.shape[1]

    def kinds(self) -> set[str]:
        return {layer.kind for layer in self.layers}

    def run(self, x: torch.Tensor, module: nn.Module | None = None) -> list[dict]:
        """Forward ``x`` ``(M, d)``; per hidden layer, what it received (``input``), its pre-activation
        ``z`` and its output ``h`` as the real module computed them. ``module`` runs another module of
        the same structure instead (a perturbed copy: the hooks go on the submodules of the same names)."""
        module = self.module if module is None else module
        seen: dict[str, dict] = {}
        handles = []
        named = dict(module.named_modules())
        for n, layer in enumerate(self.layers):
            rec = seen.setdefault(layer.act_name, {})
            handles.append(named[layer.linear_name].register_forward_hook(
                lambda m, inp, out, rec=rec: rec.update(input=inp[0].detach(), z=out.detach())))
            handles.append(named[layer.act_name].register_forward_hook(
                lambda m, inp, out, rec=rec: rec.update(h=out.detach())))
        try:
            with torch.no_grad():
                out = module(x)
        finally:
            for h in handles:
                h.remove()
        self.records["output"] = out.detach().reshape(x.shape[0])
        return [seen[layer.act_name] for layer in self.layers]

    def describe(self) -> str:
        kinds = ", ".join(sorted(self.kinds()))
        widths = "-".join(str(layer.W.shape[0]) for layer in self.layers)
        return f"MLP(d={self.d_in}, widths {widths}, {kinds})"


def read_mlp(module: nn.Module, dtype=torch.float64) -> MLPReadout:
    """Copy ``module`` to ``dtype`` and read its MLP: ``Linear, act, ..., Linear(., 1)`` in forward order.

    The layers are taken from the first ``nn.Sequential`` in the module (or the module itself).
    Softplus's temperature is ``1 / beta``; the other activations have temperature 1.
    """
    if not isinstance(module, nn.Module):
        raise ModuleFormError(f"expected a torch.nn.Module, got {type(module).__name__}", "pass an nn.Module instance")
    module = copy.deepcopy(module).to(dtype).eval()
    seq_name, seq = next(((n, m) for n, m in module.named_modules() if isinstance(m, nn.Sequential)), (None, None))
    if seq is None:
        raise ModuleFormError(f"{type(module).__name__} contains no nn.Sequential", "build the MLP as nn.Sequential(Linear, act, ..., Linear)")
    prefix = f"{seq_name}." if seq_name else ""
    children = list(seq.named_children())
    if seq is not module:
        _only_the_chain(module, [prefix + n for n, _ in children])
    problem = None
    if len(children) < 3 or len(children) % 2 == 0:
        problem = f"{len(children)} modules"
    layers = []
    for n in range(0, len(children) - 1, 2):
        (ln, lin), (an, act) = children[n], children[n + 1]
        kind = next((k for k, cls in ACTIVATION_MODULES.items() if type(act) is cls), None)
        if not isinstance(lin, nn.Linear) or lin.bias is None or kind is None:
            problem = f"module {n} is {type(lin).__name__} and {n + 1} is {type(act).__name__}"
            break
        if kind == "gelu" and getattr(act, "approximate", "none") != "none":
            problem = "nn.GELU(approximate='tanh') is a different function from the erf GELU"
            break
        eps = 1.0 / act.beta if kind == "softplus" else 1.0
        threshold = act.threshold if kind == "softplus" else None
        layers.append(MLPLayer(prefix + ln, lin.weight.detach().clone(), lin.bias.detach().clone(), prefix + an, kind, eps, threshold))
    last = children[-1][1] if children else None
    if problem is None and (not isinstance(last, nn.Linear) or last.out_features != 1):
        problem = "the last module is not an nn.Linear with one output"
    if problem is not None:
        raise ModuleFormError(
            f"not an MLP of the form Linear, activation, ..., Linear(., 1): {problem}",
            f"use nn.Sequential with nn.Linear layers and one of {', '.join(cls.__name__ for cls in ACTIVATION_MODULES.values())}",
        )
    for layer in layers:
        if not (bool(torch.isfinite(layer.W).all()) and bool(torch.isfinite(layer.b).all())):
            raise InputError(f"{layer.linear_name} contains non-finite weights", "train or initialise the module to finite weights")
    return MLPReadout(module, layers, last.weight.detach().clone(), last.bias.detach().clone())


def _only_the_chain(module: nn.Module, paths: list[str]) -> None:
    """Refuse a module whose forward does more than apply ``paths`` one after the other to its input (traced)."""
    gm = trace(module, 1)
    calls = [n for n in gm.graph.nodes if n.op in ("call_module", "call_function", "call_method")]
    placeholder = next(n for n in gm.graph.nodes if n.op == "placeholder")
    output = next(n for n in gm.graph.nodes if n.op == "output")
    expected, prev = iter(paths), placeholder
    for node in calls:
        want = next(expected, None)
        if node.op != "call_module" or node.target != want or node.args[:1] != (prev,):
            raise ModuleFormError(
                f"{type(module).__name__}.forward computes {describe(gm, node)} besides its MLP's layers: that part lies outside the MLP",
                "pass the nn.Sequential itself (or a module whose forward only applies it)")
        prev = node
    if next(expected, None) is not None or output.args[0] is not prev:
        raise ModuleFormError(f"{type(module).__name__}.forward does not return its MLP's output", "pass the nn.Sequential itself")


def relu_twin(r: MLPReadout) -> nn.Sequential:
    """The same weights with every activation replaced by ``nn.ReLU`` (the tropical network)."""
    seq = []
    for layer in r.layers:
        lin = nn.Linear(layer.W.shape[1], layer.W.shape[0], dtype=layer.W.dtype)
        with torch.no_grad():
            lin.weight.copy_(layer.W)
            lin.bias.copy_(layer.b)
        seq += [lin, nn.ReLU()]
    out = nn.Linear(r.out_W.shape[1], 1, dtype=r.out_W.dtype)
    with torch.no_grad():
        out.weight.copy_(r.out_W)
        out.bias.copy_(r.out_b)
    return nn.Sequential(*seq, out).eval()


def set_softplus_eps(module: nn.Module, eps: float) -> None:
    """Set the temperature of every ``nn.Softplus`` in ``module`` (``beta = 1/eps``)."""
    for m in module.modules():
        if isinstance(m, nn.Softplus):
            m.beta = 1.0 / eps


# ----------------------------------------------------------------------------- reference networks
#: The depths of the reference softplus MLPs.
DEPTHS = (1, 2, 3)


def activation_references(seed: int = 0, dtype=torch.float64) -> dict:
    """``{label: module}``: trained MLPs (width 16, d = 2, 200 Adam steps), softplus (eps = 0.5) at depths 1, 2, 3 and every
    other activation at depth 2, and two LSE layers (d = 1, 2) for the semigroup."""
    nets = {f"softplus MLP depth {depth}": train_mlp("softplus", depth, seed=seed * 100 + depth, dtype=dtype) for depth in DEPTHS}
    for kind in ("relu", "sigmoid", "tanh", "silu", "gelu"):
        nets[f"{kind} MLP depth 2"] = train_mlp(kind, 2, seed=seed * 100 + 7, dtype=dtype)
    for d in (1, 2):
        nets[f"LSELayer d = {d}"] = train_lse_layer(d, seed=seed * 100 + d, dtype=dtype)
    return nets
