"""Checks of a two-layer network in the mean-field scaling against the derived velocity field of its neuron measure.

Route A is the real module (``nn.Linear -> nn.Tanh/nn.ReLU -> nn.Linear``, output divided by the width
``m``): its forward pass, and ``torch.autograd`` of the loss ``R = mean_j (f(x_j) - y_j)^2 / 2`` on a
data batch with respect to every neuron's parameters ``(a_i, w_i, b_i)``; route B the generated
functions of the activation the module uses, on the neurons read out of it:

* ``network``: ``f(x) = (1/m) sum_i a_i sigma(w_i . x + b_i)`` (generated ``network_<act>``);
* ``velocity``: ``-m dR/dtheta_i = E_data[v(theta_i)]``, the mean-field velocity field at each neuron
  (generated ``neuron_velocity_{a,w,b}_<act>``, averaged over the batch).

Both within ``k (u S + tiny)``, ``S`` the generated magnitude of the terms (averaged over the batch
for the velocity). The negative control adds ``delta sin(z)`` to the activation module's output
(``activations``), which the generated functions do not have: both checks must fail.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from ...networks.mean_field import ACTIVATIONS, mean_field_target, read_mean_field
from ..engine import Case, Check, Negative, Operator, RouteB, Suite

__all__ = ["SUITE", "N_DATA", "PARAMETERS", "data_cases", "NeuronGradients", "Velocity"]

N_DATA = 64
PARAMETERS = ("a", "w", "b")


def data_cases(ctx, net):
    """The data batch of the checks: x uniform on [-1, 1]^d, y the target plus 0.1 N(0, 1) (seeded)."""
    gen = ctx.gen(70_000 + net.readout.d)
    x = 2 * torch.rand(N_DATA, net.readout.d, generator=gen, dtype=ctx.dtype) - 1
    y = mean_field_target(x) + 0.1 * torch.randn(N_DATA, generator=gen, dtype=ctx.dtype)
    yield Case({"x": x, "y": y}, point=x[0], info={"d": net.readout.d, "m": net.readout.width, "activation": net.readout.activation})


class Forward(Operator):
    description = "the module's forward pass f(x)"

    def __call__(self, ctx, net, case):
        with torch.no_grad():
            return net.module(case["x"])


class Network(RouteB):
    description = "generated network_<activation>(x, a, w, b) = (1/m) sum_i a_i sigma(w_i . x + b_i)"
    functions = tuple(f"network_{a}" for a in ACTIVATIONS)

    def __call__(self, ctx, net, case):
        return ctx.call(f"network_{net.readout.activation}", ctx.arguments(net, case))

    def scale(self, ctx, net, case):
        return ctx.magnitude(f"network_{net.readout.activation}", ctx.arguments(net, case))


class NeuronGradients(Operator):
    """``-m dR/dtheta_i`` by autograd through the real module, for a, w, b in turn, flattened: ``(m (d + 2),)``."""

    description = "-m x torch.autograd gradient of the batch loss mean (f - y)^2/2 with respect to every neuron's a, w, b"

    def __call__(self, ctx, net, case):
        module, r = net.module, net.a
        names = {"a": "out.weight", "w": "hidden.weight", "b": "hidden.bias"}
        params = {n: p.detach().clone().requires_grad_(True) for n, p in module.named_parameters()}
        loss = 0.5 * ((functional_call(module, params, (case["x"],)) - case["y"]) ** 2).mean()
        grads = torch.autograd.grad(loss, [params[names[p]] for p in PARAMETERS])
        return torch.cat([(-r.width * g).reshape(-1) for g in grads]).detach()


class Velocity(RouteB):
    """``E_data[v(theta_i)]`` from the generated per-sample velocities, flattened like :class:`NeuronGradients`."""

    description = "generated neuron_velocity_{a,w,b}_<activation>(x, y, a, w, b) averaged over the batch"
    functions = tuple(f"neuron_velocity_{p}_{a}" for a in ACTIVATIONS for p in PARAMETERS)

    def _terms(self, ctx, net, case, magnitude):
        act, args = net.readout.activation, ctx.arguments(net, case)
        call = ctx.magnitude if magnitude else ctx.call
        return torch.cat([call(f"neuron_velocity_{p}_{act}", args).mean(0).reshape(-1) for p in PARAMETERS])

    def __call__(self, ctx, net, case):
        return self._terms(ctx, net, case, False)

    def scale(self, ctx, net, case):
        return self._terms(ctx, net, case, True)


CHECKS = (
    Check("network", "f(x) = (1/m) sum_i a_i sigma(w_i . x + b_i): the module is the integral over its neuron measure",
          "measure-network:4", Forward(), Network(), cases=data_cases, negative=Negative("activations")),
    Check("velocity", "derived velocity field v(theta_i) = -m x autograd gradient of the loss at every neuron",
          "finite-width-gradient:1", NeuronGradients(), Velocity(), cases=data_cases, rounding="autograd", negative=Negative("activations"),
          ),
)


def read(ctx, module):
    return read_mean_field(module, ctx.dtype)


SUITE = Suite("mean-field", CHECKS, applies=lambda spec: spec.mean_field is not None, read=read)
