"""Training the reference networks: seeded, deterministic, cached on disk.

Every reference network is made and trained from one ``torch.Generator`` seeded by the caller,
on one torch thread, so the result does not depend on the machine; the trained state is cached
as plain lists (exact for float64 and float32, free of torch's pickling).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .. import _cache

__all__ = ["train_regression", "cached_training", "seeded", "minimise", "Adam"]


class Adam:
    """``torch.optim.Adam`` with its defaults on CPU tensors (``foreach=False``), step for step the same numbers.

    The reference networks train with this instead of ``torch.optim`` because constructing any
    ``torch.optim`` optimizer imports ``torch._dynamo`` (about a CPU-second, most of a cold
    ``hjsym check``'s start-up beyond torch itself). The update is torch's single-tensor Adam
    (``betas=(0.9, 0.999)``, ``eps=1e-8``, no weight decay), operation for operation, so the trained
    weights are bit-identical (``tests/networks/test_training.py``).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params]
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.n = 0
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.n += 1
        step_size = self.lr / (1 - beta1**self.n)
        bias_correction2_sqrt = (1 - beta2**self.n) ** 0.5
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            grad = p.grad
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-step_size)


@contextlib.contextmanager
def seeded(seed: int):
    """Run torch's own initialisers deterministically without touching the global generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def train_regression(key: str, make, target, d: int, *, steps: int, seed: int, dtype=torch.float64, n_train: int = 512,
                     lr: float = 2e-2, cache: bool = True) -> nn.Module:
    """Train ``make(generator)`` for ``steps`` Adam steps on ``target`` over ``[-1, 1]^d`` (MSE), cached.

    Shared by the reference networks of the LSE-type suites: weights and data come from one
    seeded generator, so the result is deterministic (see :func:`cached_training`).
    """

    def fit(model, gen):
        x = 2 * torch.rand(n_train, d, generator=gen, dtype=dtype) - 1
        y = target(x)
        opt = Adam(model.parameters(), lr=lr)
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


def minimise(model: nn.Module, objective, *, lbfgs_rounds: int = 3, max_newton: int = 30) -> dict:
    """Minimise ``objective`` over ``model``'s trainable parameters to the level of its rounding: L-BFGS, then Newton.

    ``objective(params) -> scalar`` evaluates the training cost with the parameters given as a dict
    ``{name: tensor}`` (empty: the module's own; e.g. through ``torch.func.functional_call``).
    L-BFGS with a strong-Wolfe line search brings the parameters near a minimum; Newton steps
    (Cholesky, Levenberg-Marquardt damping where the Hessian is not positive definite) then run
    until the gradient stops decreasing, which near a strict minimum is the level of its own
    rounding. Returns ``{"gradient_norm", "iterations", "hessian_min_eigenvalue"}`` at the final
    point (the distance to the minimum is at most ``gradient_norm / hessian_min_eigenvalue`` for a
    quadratic cost, and asymptotically otherwise).
    """
    from torch.func import grad, hessian

    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.LBFGS(list(named.values()), lr=1, max_iter=500, tolerance_grad=1e-15, tolerance_change=1e-20, history_size=50,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = objective({})
        loss.backward()
        return loss

    for _ in range(lbfgs_rounds):
        opt.step(closure)
    shapes = {n: p.shape for n, p in named.items()}
    sizes = [p.numel() for p in named.values()]

    def unflat(v):
        return {n: t.reshape(shapes[n]) for n, t in zip(named, torch.split(v, sizes))}

    def f(v):
        return objective(unflat(v))

    v = torch.cat([p.detach().reshape(-1) for p in named.values()])
    best, stall, it = None, 0, 0
    for it in range(1, max_newton + 1):
        g = grad(f)(v)
        gn = float(g.norm())
        if best is not None and gn >= best[0]:
            stall += 1
            if stall >= 2:
                break
        else:
            best, stall = (gn, v.clone()), 0
        H = hessian(f)(v)
        damping = 0.0
        while True:
            L, info = torch.linalg.cholesky_ex(H + damping * torch.eye(len(v), dtype=v.dtype))
            if int(info) == 0:
                break
            damping = max(2 * damping, 1e-8 * float(H.diagonal().abs().max()))
        v = v - torch.cholesky_solve(g[:, None], L)[:, 0]
    gn, v = best
    lam = float(torch.linalg.eigvalsh(hessian(f)(v)).min())
    with torch.no_grad():
        for n, t in unflat(v).items():
            named[n].copy_(t)
    return {"gradient_norm": gn, "iterations": it, "hessian_min_eigenvalue": lam}
