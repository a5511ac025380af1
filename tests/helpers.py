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


def assert_all_pass_and_controls_fail(report, checks, negatives, identity_tol=1e-10):
    """Every check passes (identities at float64 within ``identity_tol``) and fails on its perturbed network."""
    assert report.passed, report.table()
    assert [c.name for c in report.checks] == list(checks)
    assert set(negatives) == set(checks)
    for c in report.checks:
        if c.kind == "identity":
            assert c.tolerance <= identity_tol and c.max_abs_err <= c.tolerance, c.name
        neg = c.details["negative_control"]
        assert not neg["passed"], f"{c.name} passed on a network perturbed by {neg['perturbation']}"
        assert neg["max_abs_err"] > c.tolerance, c.name
