"""Batched Hopf-Cole networks, Lipschitz targets and data, shared by the experiments.

A *bank* is ``K`` independent Hopf-Cole (LSE) networks trained at once: atoms ``y`` of shape
``(K, N, d)``, values ``g`` of shape ``(K, N)``, one temperature per network ``eps`` of shape
``(K,)`` and an optional ``mask`` ``(K, N)`` (``False``: the atom is absent; how banks of
different widths, or leave-one-neuron-out copies, share one tensor). Adam acts elementwise, so
training the sum of the ``K`` losses trains each network exactly as if it were alone.
"""

from __future__ import annotations

import math

import torch

__all__ = ["bank_u", "bank_logits", "train_bank", "semiconcave_target", "uniform", "split", "T_MODEL"]

T_MODEL = 0.25  # PDE time of the estimators: semiconcavity constant 1/(2t) = 2 (targets stay below it)


def bank_logits(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, eps: torch.Tensor, t: float, mask=None) -> torch.Tensor:
    """Logits ``-(g_kj + |x_m - y_kj|^2/(4t)) / eps_k``.

    ``x``: ``(M, d)`` shared or ``(K, M, d)``; ``y``: ``(K, N, d)``; ``g``: ``(K, N)``; ``eps``:
    ``(K,)``; ``mask``: ``(K, N)`` bool or None. Returns ``(K, M, N)`` (absent atoms: ``-inf``).
    """
    if x.dim() == 2:
        x = x.expand(y.shape[0], *x.shape)
    sq = (x * x).sum(-1, keepdim=True) - 2 * x @ y.transpose(1, 2) + (y * y).sum(-1)[:, None, :]
    z = -(g[:, None, :] + sq.clamp_min(0) / (4 * t)) / eps[:, None, None]
    if mask is not None:
        z = z.masked_fill(~mask[:, None, :], float("-inf"))
    return z


def bank_u(x, y, g, eps, t: float, mask=None) -> torch.Tensor:
    """Hopf-Cole solutions ``u_k(x) = -eps_k log sum_j exp(logits)`` of a bank: ``(K, M)``."""
    return -eps[:, None] * torch.logsumexp(bank_logits(x, y, g, eps, t, mask), dim=-1)


def train_bank(x, target, y0, g0, eps, *, t: float = T_MODEL, steps: int = 300, lr: float = 0.02, mask=None):
    """Fit every network of a bank to ``target`` by full-batch Adam on the mean squared error.

    ``x``: ``(M, d)``; ``target``: ``(M,)`` or ``(K, M)``; ``y0``: ``(K, N, d)``; ``g0``: ``(K, N)``;
    ``eps``: ``(K,)``. Returns ``(y, g, loss)`` with ``loss`` the final per-network MSE ``(K,)``.
    """
    y = y0.detach().clone().requires_grad_(True)
    g = g0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([y, g], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        per = ((bank_u(x, y, g, eps, t, mask) - target) ** 2).mean(-1)
        per.sum().backward()
        opt.step()
    with torch.no_grad():
        per = ((bank_u(x, y, g, eps, t, mask) - target) ** 2).mean(-1)
    return y.detach(), g.detach(), per


def semiconcave_target(x: torch.Tensor, c: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """A Lipschitz, semiconcave target ``scale * (1 - |x - c| + 0.3 cos(2 x_1))``: ``(*batch, d) -> (*batch,)``.

    Lipschitz constant ``<= 1.6 scale``; its Hessian is ``<= 1.2 scale`` (below ``1/(2t) = 2``), so
    Hopf-Cole networks at ``t = T_MODEL`` can represent it as ``N -> inf``, ``eps -> 0``.
    """
    return scale * (1 - (x - c).norm(dim=-1) + 0.3 * torch.cos(2 * x[..., 0]))


def uniform(n: int, d: int, gen: torch.Generator, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """``n`` points uniform on ``[lo, hi]^d``: ``(n, d)``, float64."""
    return lo + (hi - lo) * torch.rand(n, d, generator=gen, dtype=torch.float64)


def split(n: int, frac_val: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a random train/validation split of ``n`` items (validation: ``ceil(frac_val n)``)."""
    perm = torch.randperm(n, generator=gen)
    k = max(1, math.ceil(frac_val * n))
    return perm[k:], perm[:k]
