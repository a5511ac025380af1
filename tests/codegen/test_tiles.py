"""Tiles: row blocks times atom chunks, hoisted loop invariants, the bias in the product, in-place log-sum-exp."""

import pytest
import torch
from helpers import lse_inputs

import hjsym
from hjsym.codegen import runtime as rt


@pytest.fixture(scope="module")
def u():
    return hjsym.function("lse", "u")


def _reference_u(x, y, g, eps, t):
    z = -(g + ((x[:, None, :] - y[None]) ** 2).sum(-1) / (4 * t)) / eps
    return -eps * torch.logsumexp(z, -1)


def test_u_is_one_addmm_per_tile_with_hoisted_invariants(u):
    body = u.source.split("def u(")[0]
    loop = body[body.index("for _b in"):]
    assert "torch.addmm(_inv" in loop and "_rt.logsumexp_(" in loop
    # the bias and the scaled atoms are computed before the tiles, never per tile
    assert "g / eps" in body[:body.index("for _b in")] and "g[_s]" not in loop and "y[_s] * y[_s]" not in loop


@pytest.mark.parametrize("chunk", [None, 8 * 5 * 3, 8 * 64 * 7])
def test_tiles_of_rows_and_atoms_give_the_one_pass_value(u, chunk):
    gen = torch.Generator().manual_seed(0)
    x, y, g = (torch.randn(*s, generator=gen, dtype=torch.float64) for s in ((200, 3), (70, 3), (70,)))
    ref = _reference_u(x, y, g, 0.3, 0.7)
    torch.testing.assert_close(u(x=x, eps=0.3, y=y, g=g, t=0.7, max_chunk_bytes=chunk), ref, rtol=1e-13, atol=1e-12)


def test_many_row_blocks(u, monkeypatch):
    monkeypatch.setattr(rt, "DEFAULT_TILE_BYTES", 8 * 70 * 4)  # a few rows a tile: many row blocks and atom chunks
    gen = torch.Generator().manual_seed(1)
    x, y, g = (torch.randn(*s, generator=gen, dtype=torch.float64) for s in ((333, 2), (70, 2), (70,)))
    assert len(list(rt.row_blocks(333, 8 * 70, None))) == 11  # 32 rows (the fewest) a block
    torch.testing.assert_close(u(x=x.reshape(9, 37, 2), eps=0.2, y=y, g=g, t=1.0),
                               _reference_u(x, y, g, 0.2, 1.0).reshape(9, 37), rtol=1e-13, atol=1e-12)


def test_generated_u_differentiates_and_vmaps(u):
    gen = torch.Generator().manual_seed(2)
    x, y, g = (torch.randn(*s, generator=gen, dtype=torch.float64) for s in ((5, 3), (11, 3), (11,)))
    xr = x.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(u(x=xr, eps=0.4, y=y, g=g, t=1.0).sum(), xr)
    xs = x.clone().requires_grad_(True)
    (gb,) = torch.autograd.grad(_reference_u(xs, y, g, 0.4, 1.0).sum(), xs)
    torch.testing.assert_close(ga, gb)
    gf = torch.func.vmap(torch.func.grad(lambda p: u(x=p, eps=0.4, y=y, g=g, t=1.0)))(x)
    torch.testing.assert_close(gf, gb)


def test_logsumexp_in_place_matches_torch_and_keeps_minus_infinity():
    x_, W_, b_ = lse_inputs(7, 5, 3, seed=1)
    z = x_ @ W_.T + b_
    torch.testing.assert_close(rt.logsumexp_(z.clone(), 1), torch.logsumexp(z, 1), rtol=0, atol=1e-14)
    inf = torch.full((2, 4), -torch.inf, dtype=torch.float64)
    assert torch.equal(rt.logsumexp_(inf.clone(), 1), torch.logsumexp(inf, 1))
    w = z.clone().requires_grad_(True)
    out = rt.logsumexp_(w * 1.0, 1)  # tracked by autograd: torch.logsumexp, logits untouched
    (g,) = torch.autograd.grad(out.sum(), w)
    torch.testing.assert_close(g, torch.softmax(z, 1))


def test_tile_budget_is_the_cache_size_under_the_memory_ceiling(monkeypatch):
    monkeypatch.setattr(rt, "DEFAULT_TILE_BYTES", 2**21)
    assert rt.tile_budget(None) == min(2**21, rt.DEFAULT_CHUNK_BYTES)
    assert rt.tile_budget(1000) == 1000 and rt.tile_budget(2**30) == 2**21


def test_concatenated_weights_are_cached_until_they_change():
    a, b = (torch.randn(3, 2, dtype=torch.float64) for _ in range(2))
    first = rt.cat_constant([a.T, b.T], 0)
    assert rt.cat_constant([a.T, b.T], 0) is first  # new view objects of the same tensors: a hit
    a.add_(1.0)
    again = rt.cat_constant([a.T, b.T], 0)
    assert again is not first and torch.equal(again, torch.cat([a.T, b.T], 0))
    w = torch.randn(3, 2, requires_grad=True)
    assert rt.cat_constant([w, w], 0).requires_grad  # tracked tensors are concatenated afresh
