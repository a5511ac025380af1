"""Helpers shared by several test modules."""

from __future__ import annotations

import torch


def lse_inputs(M: int, N: int, d: int, seed: int = 0, scale: float = 1.0):
    """Seeded query points, weights and offsets of an LSE layer."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(M, d, generator=gen)
    W = scale * torch.randn(N, d, generator=gen)
    b = scale * torch.randn(N, generator=gen)
    return x, W, b


def reference_f(x, W, b, eps):
    """The LSE layer written by hand with torch (the stable logsumexp)."""
    return eps * torch.logsumexp((x @ W.T + b) / eps, dim=-1)


def write_module_file(path, body: str):
    """Write a Python file defining a user module for ``--module`` tests."""
    path.write_text("import torch\nfrom torch import nn\nimport hjsym\n\n" + body)
    return path


def assert_all_pass_and_controls_fail(report, names=None):
    """Every check passes within its tolerance (k u S for identities and bounds) and fails on its negative control."""
    assert report.passed, report.table()
    if names is not None:
        assert [c.name for c in report.checks] == list(names)
    for c in report.checks:
        assert c.error <= c.tolerance and c.margin >= 1, c.name
        if c.kind in ("identity", "bound"):
            assert c.unit_roundoff == torch.finfo(getattr(torch, report.dtype)).eps / 2, c.name
        neg = c.details["negative_control"]
        assert not neg["passed"], f"{c.name} passed on a network perturbed by {neg['perturbation']}"
        assert neg["margin"] < 1, c.name


def lse_module(d: int, N: int, eps: float, *, bump: float = 0.0, seed: int = 0, dtype=torch.float64, scale: float = 1.0):
    """A user-style LSE layer (a plain ``nn.Linear`` and a logsumexp, temperature ``eps``), optionally with its output
    bumped by the relative amount ``bump``: ``f (1 + bump sin(sum x))``."""
    from torch import nn

    class UserLSE(nn.Module):
        def __init__(self):
            super().__init__()
            gen = torch.Generator().manual_seed(seed)
            self.linear = nn.Linear(d, N, dtype=dtype)
            with torch.no_grad():
                self.linear.weight.copy_(scale * torch.randn(N, d, generator=gen, dtype=torch.float64).to(dtype))
                self.linear.bias.copy_(scale * torch.randn(N, generator=gen, dtype=torch.float64).to(dtype))
            self.eps = eps

        def forward(self, x):
            f = self.eps * torch.logsumexp(self.linear(x) / self.eps, dim=-1)
            return f * (1 + bump * torch.sin(x.sum(-1))) if bump else f

    return UserLSE()
