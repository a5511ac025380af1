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

__all__ = ["train_regression", "cached_training", "seeded"]


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
