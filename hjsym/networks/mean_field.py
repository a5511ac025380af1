"""Two-layer networks in the mean-field scaling ``f(x) = (1/m) sum_i a_i sigma(w_i . x + b_i)``, their readout and training.

:class:`MeanFieldNet` is two ``nn.Linear`` layers around an activation module (``nn.Tanh`` or
``nn.ReLU``) with the output divided by the width ``m``; :func:`read_mean_field` reads its neurons
``(a, w, b)`` (``a`` the output layer's weights, ``w``, ``b`` the hidden layer's) and refuses any other
form by name. :func:`train_mean_field` runs full-batch gradient descent with the step ``m * lr``: the
mean-field time scaling, under which every neuron moves ``O(1)`` whatever the width.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from .._errors import InputError, ModuleFormError
from .readout import Readout
from .training import cached_training

__all__ = ["MeanFieldNet", "MeanFieldReadout", "read_mean_field", "train_mean_field", "mean_field_target", "mean_field_references",
           "ACTIVATIONS"]

#: Activation name -> torch module class.
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class MeanFieldNet(nn.Module):
    """``f(x) = (1/m) sum_i a_i sigma(w_i . x + b_i)``: ``hidden = nn.Linear(d, m)``, ``act``, ``out = nn.Linear(m, 1, bias=False)``.

    ``x`` is ``(*batch, d)``; the output is ``(*batch,)``. ``scaling="mean-field"`` divides by ``m``;
    ``"ntk"`` by ``sqrt(m)`` (the lazy-training parametrisation of Jacot et al., for comparison).
    """

    def __init__(self, d: int, m: int, activation: str = "tanh", *, scaling: str = "mean-field", dtype=torch.float64,
                 generator: torch.Generator | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}", f"use one of {', '.join(ACTIVATIONS)}")
        if scaling not in ("mean-field", "ntk"):
            raise InputError(f"unknown scaling {scaling!r}", "use 'mean-field' or 'ntk'")
        self.hidden = nn.Linear(d, m, dtype=dtype)
        self.act = ACTIVATIONS[activation]()
        self.out = nn.Linear(m, 1, bias=False, dtype=dtype)
        self.activation, self.scaling, self.width = activation, scaling, m
        if generator is not None:  # i.i.d. standard normal neurons: the initial measure does not depend on m
            with torch.no_grad():
                for p in (self.hidden.weight, self.hidden.bias, self.out.weight):
                    p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64).to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.width if self.scaling == "mean-field" else math.sqrt(self.width)
        return self.out(self.act(self.hidden(x))).squeeze(-1) / scale


def mean_field_target(x: torch.Tensor) -> torch.Tensor:
    """The regression target of the reference networks: ``sin(pi x_1) + 0.5 cos(2 x_2)`` (``x_1`` alone in d = 1)."""
    y = torch.sin(math.pi * x[..., 0])
    return y + 0.5 * torch.cos(2 * x[..., 1]) if x.shape[-1] > 1 else y


@dataclass
class MeanFieldReadout(Readout):
    """The neurons of a :class:`MeanFieldNet`-form module: ``a`` ``(m,)``, ``w`` ``(m, d)``, ``b`` ``(m,)`` and the activation."""

    module: nn.Module
    a: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor
    activation: str

    @property
    def width(self) -> int:
        return self.w.shape[0]

    @property
    def d(self) -> int:
        return self.w.shape[1]

    def describe(self) -> str:
        return f"{type(self.module).__name__}(d={self.d}, m={self.width}, {self.activation}, output / m)"

    def arguments(self) -> dict:
        return {"a": self.a, "w": self.w, "b": self.b}

    def parameters_of(self, module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a, w, b)`` as the parameter tensors of ``module`` (a copy of the same form): for autograd."""
        return module.out.weight, module.hidden.weight, module.hidden.bias


def read_mean_field(module: nn.Module, dtype=torch.float64) -> MeanFieldReadout:
    """Copy ``module`` to ``dtype`` and read its neurons; it must have ``hidden`` (``nn.Linear`` with bias), ``act``
    (``nn.Tanh``/``nn.ReLU``), ``out`` (``nn.Linear(m, 1, bias=False)``) and divide by the width (``scaling="mean-field"``)."""
    if not isinstance(module, nn.Module):
        raise ModuleFormError(f"expected a torch.nn.Module, got {type(module).__name__}", "pass an nn.Module instance")
    module = copy.deepcopy(module).to(dtype).eval()
    hidden, act, out = (getattr(module, n, None) for n in ("hidden", "act", "out"))
    kinds = {cls: name for name, cls in ACTIVATIONS.items()}
    if not (isinstance(hidden, nn.Linear) and hidden.bias is not None and isinstance(out, nn.Linear) and out.bias is None
            and out.out_features == 1 and out.in_features == hidden.out_features and type(act) in kinds):
        raise ModuleFormError(
            f"{type(module).__name__} is not a two-layer network hidden (nn.Linear with bias) -> act (nn.Tanh or nn.ReLU) "
            "-> out (nn.Linear(m, 1, bias=False))",
            "build it like hjsym.networks.mean_field.MeanFieldNet",
        )
    if getattr(module, "scaling", "mean-field") != "mean-field":
        raise ModuleFormError(f"{type(module).__name__} uses the {module.scaling!r} scaling", "check a network whose output is divided by m")
    a, w, b = out.weight.detach()[0].clone(), hidden.weight.detach().clone(), hidden.bias.detach().clone()
    for label, t in (("out.weight", a), ("hidden.weight", w), ("hidden.bias", b)):
        if not bool(torch.isfinite(t).all()):
            raise InputError(f"{label} contains non-finite values", "train or initialise the module to finite weights")
    return MeanFieldReadout(module, a, w, b, kinds[type(act)])


def train_mean_field(model: MeanFieldNet, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float, record=None) -> list[float]:
    """Full-batch gradient descent on ``0.5 mean (f(x) - y)^2`` with the step ``lr * m`` (mean field) or ``lr`` (NTK).

    ``record(step, model)`` is called before the first and after every step when given. Returns the loss before each step
    and after the last.
    """
    step = lr * (model.width if model.scaling == "mean-field" else 1.0)
    params = list(model.parameters())
    losses = []
    if record is not None:
        record(0, model)
    for k in range(steps):
        loss = 0.5 * torch.mean((model(x) - y) ** 2)
        grads = torch.autograd.grad(loss, params)
        losses.append(float(loss.detach()))
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(step * g)
        if record is not None:
            record(k + 1, model)
    with torch.no_grad():
        losses.append(float(0.5 * torch.mean((model(x) - y) ** 2)))
    return losses


def mean_field_references(seed: int = 0, dtype=torch.float64) -> dict:
    """``{label: MeanFieldNet}``: tanh and ReLU networks (d = 2, m = 64) trained 200 mean-field GD steps on
    :func:`mean_field_target` (seeded, cached)."""
    out = {}
    for n, act in enumerate(ACTIVATIONS):
        def make(gen, act=act):
            return MeanFieldNet(2, 64, act, dtype=dtype, generator=gen)

        def fit(model, gen):
            x = 2 * torch.rand(128, 2, generator=gen, dtype=torch.float64).to(dtype) - 1
            return train_mean_field(model, x, mean_field_target(x), steps=200, lr=0.05)[-1]

        out[f"MeanFieldNet {act} (d = 2, m = 64)"] = cached_training(f"mean-field-{act}-2-64-200", make, fit, seed=seed * 10 + n, dtype=dtype)
    return out
