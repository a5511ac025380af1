"""Batched Hopf-Cole / LSE networks, Lipschitz targets and data, shared by the experiments.

A *bank* is ``K`` independent networks trained at once. In the LSE form ``f_k(x) = eps_k log
sum_j exp((W_kj . x + b_kj)/eps_k)`` its parameters are slopes ``W`` ``(K, N, d)`` and offsets ``b``
``(K, N)`` (:func:`lse_bank`); in the Hopf-Cole form ``u_k = |x|^2/(4t) - f_k`` they are atoms ``y``
``(K, N, d)`` and values ``g`` ``(K, N)``, with ``W = y/(2t)``, ``b = -g - |y|^2/(4t)`` (:func:`bank_u`).
One temperature per network ``eps`` ``(K,)``, an optional ``mask`` ``(K, N)`` (``False``: the atom is
absent; how banks of different widths, or leave-one-neuron-out copies, share one tensor). Adam acts
elementwise, so training the sum of the ``K`` losses trains each network exactly as if it were alone.
"""

from __future__ import annotations

import math

import torch

__all__ = ["lse_bank", "bank_u", "bank_logits", "fit", "train_bank", "semiconcave_target", "uniform", "split", "T_MODEL", "cell_grid",
           "cone_values", "cone_hopf_lax", "quadrature_u"]

T_MODEL = 0.25  # PDE time of the estimators: semiconcavity constant 1/(2t) = 2 (targets stay below it)


class _LSEBank(torch.autograd.Function):
    """``eps_k log sum_j exp((W_kj . x_m + b_kj) / eps_k)`` with a hand-written backward.

    The backward reuses the Gibbs weights ``pi`` of the forward pass (one ``(K, M, N)`` tensor, updated in
    place), so a training step makes about half the passes over that tensor that autograd through
    ``torch.logsumexp`` makes (2-4x faster on the CPU). ``eps`` is not differentiated.
    """

    @staticmethod
    def forward(ctx, x, W, b, eps):
        xb = x if x.dim() == 3 else x.expand(W.shape[0], *x.shape)
        z = torch.baddbmm(b[:, None, :], xb, W.transpose(1, 2)).div_(eps[:, None, None])
        top = z.amax(-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # every atom absent: keep -inf, not nan
        # exp near and below log(tiny) (subnormal or zero results) takes a slow path, 10-100x slower on the CPU; flooring the
        # arguments at log(tiny) + 2 changes the sum (>= 1) by at most N e^2 tiny, far below one rounding
        pi = z.sub_(top).clamp_(min=math.log(torch.finfo(z.dtype).tiny) + 2).exp_()
        total = pi.sum(-1, keepdim=True)
        pi.div_(total)
        ctx.save_for_backward(x, W, pi)
        return eps[:, None] * (top[..., 0] + total[..., 0].log())

    @staticmethod
    def backward(ctx, grad):
        x, W, pi = ctx.saved_tensors
        gp = pi * grad[:, :, None]  # d out / d logit, (K, M, N)
        gx = gW = gb = None
        if ctx.needs_input_grad[0]:
            gx = gp @ W
            if x.dim() == 2:
                gx = gx.sum(0)
        if ctx.needs_input_grad[1]:  # (x^T gp)^T: a product with gp contiguous (gp^T @ x is a slow strided path)
            gW = (x.transpose(-1, -2) @ gp).transpose(1, 2)
        if ctx.needs_input_grad[2]:
            gb = gp.sum(1)
        return gx, gW, gb, None


def lse_bank(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """LSE networks of a bank: ``f_k(x_m)``, ``(K, M)``.

    ``x``: ``(M, d)`` shared or ``(K, M, d)``; ``W``: ``(K, N, d)``; ``b``: ``(K, N)`` (``-inf``: an absent atom);
    ``eps``: ``(K,)``, positive, not trained (differentiable in ``x``, ``W`` and ``b``).
    """
    if eps.requires_grad:
        from .._errors import InputError

        raise InputError("lse_bank does not differentiate the temperature eps", "pass eps.detach(); train eps by a grid and validation")
    return _LSEBank.apply(x, W, b, eps)


def bank_logits(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, eps: torch.Tensor, t: float, mask=None) -> torch.Tensor:
    """Logits ``-(g_kj + |x_m - y_kj|^2/(4t)) / eps_k`` of a Hopf-Cole bank (its Gibbs weights are their softmax).

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
    """Hopf-Cole solutions ``u_k(x) = -eps_k log sum_j exp(-(g_kj + |x - y_kj|^2/(4t))/eps_k)`` of a bank: ``(K, M)``.

    Computed as ``|x|^2/(4t) - f_k(x)`` with the LSE network ``f_k`` of slopes ``y/(2t)`` and offsets
    ``-g - |y|^2/(4t)`` (the parameter map), through :func:`lse_bank`; shapes as in :func:`bank_logits`.
    """
    W = y / (2 * t)
    b = -g - (y * y).sum(-1) / (4 * t)
    if mask is not None:
        b = b.masked_fill(~mask, float("-inf"))
    return (x * x).sum(-1) / (4 * t) - lse_bank(x, W, b, eps)


def fit(forward, params: list, target: torch.Tensor, *, steps: int, lr: float, checkpoints=(), opt=None):
    """Full-batch Adam on the mean squared error of every network of a bank.

    ``forward()`` returns the bank's outputs ``(K, M)``; ``target``: ``(M,)`` or ``(K, M)``; ``params``: leaf
    tensors (trained in place). Returns the per-network MSE ``(K,)`` after training and, for each step
    in ``checkpoints``, the per-network MSE before that step (``{step: (K,)}``): how far training has converged.
    ``opt``: an Adam optimiser over ``params`` to continue with (its moments carry over), instead of a fresh one.
    """
    opt = opt if opt is not None else torch.optim.Adam(params, lr=lr)
    history = {}
    marks = set(checkpoints)
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        per = ((forward() - target) ** 2).mean(-1)
        if step in marks:
            history[step] = per.detach().clone()
        per.sum().backward()
        opt.step()
    with torch.no_grad():
        per = ((forward() - target) ** 2).mean(-1)
    return per, history


def train_bank(x, target, y0, g0, eps, *, t: float = T_MODEL, steps: int = 300, lr: float = 0.02, mask=None):
    """Fit every network of a bank to ``target`` by full-batch Adam on the mean squared error.

    ``x``: ``(M, d)``; ``target``: ``(M,)`` or ``(K, M)``; ``y0``: ``(K, N, d)``; ``g0``: ``(K, N)``;
    ``eps``: ``(K,)``. Returns ``(y, g, loss)`` with ``loss`` the final per-network MSE ``(K,)``.
    """
    y = y0.detach().clone().requires_grad_(True)
    g = g0.detach().clone().requires_grad_(True)
    per, _ = fit(lambda: bank_u(x, y, g, eps, t, mask), [y, g], target, steps=steps, lr=lr)
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


# ----------------------------------------------------------------------------- quadrature networks of cone data
def cell_grid(n: int, d: int, endpoints: bool = False, half_width: float = 2.0) -> torch.Tensor:
    """The ``n^d`` nodes of a grid on ``[-w, w]^d``: cell midpoints, or ``linspace`` with endpoints. ``(n^d, d)``."""
    w = half_width
    side = torch.linspace(-w, w, n, dtype=torch.float64) if endpoints else -w + (torch.arange(n, dtype=torch.float64) + 0.5) * 2 * w / n
    return torch.cartesian_prod(*([side] * d)).reshape(-1, d)


def cone_values(y: torch.Tensor, c: torch.Tensor, L: float) -> torch.Tensor:
    """Lipschitz initial data with kinks at the points ``c`` ``(K, d)``: ``L min_k |y - c_k|``, ``(N, d) -> (N,)``."""
    return L * torch.cdist(y, c).min(-1).values


def cone_hopf_lax(x: torch.Tensor, c: torch.Tensor, L: float, t: float) -> torch.Tensor:
    """The exact Hopf-Lax solution ``u_0(x, t)`` of :func:`cone_values` data on ``R^d``: ``(M, d) -> (M,)``.

    The min over k of the closed form of one cone: ``r^2/(4t)`` within ``r <= 2Lt`` of its apex, ``L r - L^2 t``
    beyond. The minimiser lies on the segment from x to the apex, so it is the solution on any convex
    domain holding both.
    """
    r = torch.cdist(x, c)
    return torch.where(r <= 2 * L * t, r * r / (4 * t), L * r - L * L * t).min(-1).values


def quadrature_u(x, nodes, weight: float, values, eps: float, t: float) -> torch.Tensor:
    """The midpoint rule of the normalised Hopf-Cole integral, as an LSE network (the generated ``u``).

    ``u(x) ~ -eps log sum_j weight (4 pi eps t)^{-d/2} exp(-(values_j + |x - nodes_j|^2/(4t))/eps)``: atoms at
    the nodes ``(N, d)`` with values shifted by the log of the quadrature weight. ``x``: ``(M, d) -> (M,)``.
    """
    from ..checks.api import function

    shift = eps * math.log(weight * (4 * math.pi * eps * t) ** (-nodes.shape[1] / 2))
    return function("lse", "u")(x=x, eps=eps, y=nodes, g=values - shift, t=t)
