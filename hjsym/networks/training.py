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
from .._errors import InputError

__all__ = ["train_regression", "cached_training", "seeded", "minimise", "Adam", "validate_seed", "MAX_SEED", "module_dtypes"]


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

#: The largest seed: every generator hjsym seeds adds offsets to ``97 * seed`` and must stay within 64 bits.
MAX_SEED = 2**32 - 1


def validate_seed(seed, name: str = "seed") -> int:
    """``seed`` if it is an integer in ``[0, MAX_SEED]``, else an :class:`~hjsym.InputError` naming the range."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"{name} must be an integer from 0 to {MAX_SEED}, got {seed!r}", f"pass e.g. {name}=0")
    return seed


def module_dtypes(module: nn.Module) -> set[torch.dtype]:
    """The floating dtypes of a module's parameters and buffers."""
    return {t.dtype for t in list(module.parameters()) + list(module.buffers()) if t.is_floating_point()}


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
        hit = _cache.load("trained-json", key)
        if hit is not None:
            model = _restore(make, hit, dtype)
            if isinstance(model, nn.Module):
                return model.eval()
            _cache.reject("trained-json", key, model)
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
        _cache.store("trained-json", key, {"state": {k: v.tolist() for k, v in model.state_dict().items()}, "train_loss": model.train_loss})
    return model.eval()


def _restore(make, entry, dtype):
    """The module stored in a cache entry, or the reason it cannot be (shapes, names, non-finite values).

    The entry is authenticated (written by hjsym), but an entry of another layout must not reach
    the checks: a non-finite weight there would be reported as the user's.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("state"), dict):
        return "not a trained state"
    model = make(None)
    expected = model.state_dict()
    if set(entry["state"]) != set(expected):
        return f"tensors {sorted(entry['state'])} where the network has {sorted(expected)}"
    state = {}
    for name, ref in expected.items():
        try:
            t = torch.tensor(entry["state"][name], dtype=dtype)
        except (TypeError, ValueError, RuntimeError) as exc:
            return f"{name}: {exc}"
        if tuple(t.shape) != tuple(ref.shape):
            return f"{name} has shape {tuple(t.shape)}, the network {tuple(ref.shape)}"
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return f"{name} holds non-finite values"
        state[name] = t
    loss = entry.get("train_loss")
    if not isinstance(loss, (int, float)) or isinstance(loss, bool):
        return "no training loss"
    model.load_state_dict(state)
    model.train_loss = float(loss)
    return model


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
