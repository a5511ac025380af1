"""Training as optimal control: a linear residual network ``s_{k+1} = s_k + h (theta_k s_k + b_k)`` trained on a
quadratic loss with an L2 penalty on its controls.

The training cost ``J = sum_n |s_K^n - y^n|^2/2 + (rho/2) h sum_k (|theta_k|^2 + |b_k|^2)`` is a control
problem: the ``training-hjb`` pass (:mod:`hjsym.derivation.training`) derives its Pontryagin conditions,
its Bellman (discrete HJB) recursion, that the value function is not quadratic in the weights, and
that in the bias it is, with a Riccati recursion and an affine optimal feedback. The checks
(:mod:`hjsym.checks.suites.training`) compare those with real networks trained to convergence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks.suites.training import TRAINING_CHECKS
from ..networks.training import cached_training, minimise
from ..spec.registry import Architecture
from ..spec.spec import Dynamics, Scalar, Spec, Tensor, Training

SPEC = Spec(
    name="training-hjb",
    title="Training as optimal control (linear residual network)",
    family="control",
    summary="s' = s + h (theta s + b) trained on sum_n |s_K - y|^2/2 + (rho/2) h sum_k (|theta_k|^2 + |b_k|^2): the Bellman "
    "recursion of training, quadratic (Riccati) in the bias and not in the weights, and the Pontryagin conditions at the optimum.",
    state="s",
    symbols=(
        Scalar("h", doc="step size (T / depth)"),
        Scalar("rho", latex=r"\rho", doc="L2 penalty on the controls"),
        Tensor("theta", ("dim", "dim"), latex=r"\theta", doc="weight of a block (nn.Linear.weight)"),
        Tensor("b", ("dim",), doc="bias of a block (nn.Linear.bias)"),
        Tensor("y", ("dim",), doc="target of a sample"),
    ),
    dynamics=Dynamics(field="theta @ s + b", controls=("theta", "b"), step_size="h", training=Training(penalty="rho", target="y")),
    references=("hjdl2026", "bellman1957", "pontryagin1962", "kalman1960", "li2018", "e2017"),
)

WIDTH, DEPTH, SAMPLES, RHO = 3, 4, 24, 0.1


class LinearResidualNetwork(nn.Module):
    """``s <- s + h (W_k s + b_k)`` for ``k = 0..K-1``, each block an ``nn.Linear(width, width)``, with its training set.

    ``train_weights=False`` freezes the weights (only the biases are trained: the linear-quadratic
    case). The training set (``train_inputs``, ``train_targets``, ``(N, width)``) and the penalty are
    buffers, read through :meth:`hjsym_training`.

    Shapes: ``s`` is ``(*batch, width)``; the output too.
    """

    def __init__(self, width: int = WIDTH, depth: int = DEPTH, h: float | None = None, rho: float = RHO, samples: int = SAMPLES,
                 train_weights: bool = True, dtype=torch.float64):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(width, width, dtype=dtype) for _ in range(depth)])
        self.h = float(1.0 / depth if h is None else h)
        for blk in self.blocks:
            blk.weight.requires_grad_(train_weights)
        self.register_buffer("train_inputs", torch.zeros(samples, width, dtype=dtype))
        self.register_buffer("train_targets", torch.zeros(samples, width, dtype=dtype))
        self.register_buffer("penalty", torch.tensor(float(rho), dtype=dtype))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            s = s + self.h * blk(s)
        return s

    def hjsym_controls(self) -> list[dict]:
        """The spec's controls of every block: ``theta_k`` (the weight) and ``b_k`` (the bias)."""
        return [{"theta": blk.weight, "b": blk.bias} for blk in self.blocks]

    def hjsym_training(self) -> dict:
        """The training problem: inputs and targets ``(N, width)`` and the penalty ``rho``."""
        return {"inputs": self.train_inputs, "targets": self.train_targets, "penalty": float(self.penalty)}

    def training_cost(self, params: dict | None = None) -> torch.Tensor:
        """``J = sum_n |f(x_n) - y_n|^2 / 2 + (rho/2) h sum_k (|W_k|^2 + |b_k|^2)``, optionally at other parameter values."""
        values = dict(self.named_parameters())
        if params:
            values.update(params)
        out = torch.func.functional_call(self, values, (self.train_inputs,))
        penalty = sum((values[f"blocks.{k}.weight"] ** 2).sum() + (values[f"blocks.{k}.bias"] ** 2).sum() for k in range(len(self.blocks)))
        return 0.5 * ((out - self.train_targets) ** 2).sum() + 0.5 * float(self.penalty) * self.h * penalty


def train_linear_resnet(seed: int = 0, train_weights: bool = True, dtype=torch.float64, cache: bool = True) -> LinearResidualNetwork:
    """A :class:`LinearResidualNetwork` on a seeded linear regression task, trained to convergence (cached).

    Data: ``x ~ N(0, I)``, ``y = W* x + c* + 0.1 noise``. Training: 400 full-batch Adam steps, then L-BFGS
    and Newton steps until the gradient stops decreasing (:func:`hjsym.networks.training.minimise`);
    ``train_loss`` is the cost.
    """

    def make(gen):
        m = LinearResidualNetwork(train_weights=train_weights, dtype=dtype)
        if gen is None:
            return m
        with torch.no_grad():
            for blk in m.blocks:
                blk.weight.copy_(0.5 * torch.randn(WIDTH, WIDTH, generator=gen, dtype=dtype) / math.sqrt(WIDTH))
                blk.bias.copy_(0.1 * torch.randn(WIDTH, generator=gen, dtype=dtype))
            x = torch.randn(SAMPLES, WIDTH, generator=gen, dtype=dtype)
            W = torch.randn(WIDTH, WIDTH, generator=gen, dtype=dtype) / math.sqrt(WIDTH)
            c = torch.randn(WIDTH, generator=gen, dtype=dtype)
            m.train_inputs.copy_(x)
            m.train_targets.copy_(x @ (torch.eye(WIDTH, dtype=dtype) + W).T + c + 0.1 * torch.randn(SAMPLES, WIDTH, generator=gen, dtype=dtype))
        return m

    def fit(model, gen):
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.02)
        for _ in range(400):
            opt.zero_grad()
            model.training_cost().backward()
            opt.step()
        model.convergence = minimise(model, model.training_cost)
        return float(model.training_cost().detach())

    kind = "weights" if train_weights else "bias"
    return cached_training(f"training-hjb-{kind}-{WIDTH}-{DEPTH}-{SAMPLES}-{RHO}", make, fit, seed=seed, dtype=dtype, cache=cache)


def reference_networks(seed: int = 0, dtype=torch.float64) -> dict:
    """Two trained linear residual networks (width 3, depth 4, h = 1/4, 24 samples, rho = 0.1): biases only, and weights and biases."""
    return {
        f"bias trained (weights fixed), width {WIDTH}, depth {DEPTH}": train_linear_resnet(seed, train_weights=False, dtype=dtype),
        f"weights and bias trained, width {WIDTH}, depth {DEPTH}": train_linear_resnet(seed + 1, train_weights=True, dtype=dtype),
    }


ARCHITECTURE = Architecture(SPEC, networks=reference_networks, position=180, checks=TRAINING_CHECKS)
