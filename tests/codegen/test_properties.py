"""Property tests (hypothesis): random weights, temperatures, dimensions and large logits."""

import math

import torch
from helpers import reference_f
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


@st.composite
def layers(draw):
    d = draw(st.integers(1, 8))
    n = draw(st.integers(1, 64))
    eps = draw(st.floats(1e-3, 1e2))
    scale = draw(st.sampled_from([1e-2, 1.0, 1e2, 1e3]))  # 1e3 gives logits up to ~1e6 at small eps
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(6, d, generator=gen)
    W = scale * torch.randn(n, d, generator=gen)
    b = scale * torch.randn(n, generator=gen)
    return x, W, b, eps


@SETTINGS
@given(layers())
def test_generated_network_matches_torch_logsumexp(lse_fns, layer):
    x, W, b, eps = layer
    out = lse_fns["f"](x=x, eps=eps, W=W, b=b)
    ref = reference_f(x, W, b, eps)
    assert torch.isfinite(out).all()
    assert float((out - ref).abs().max()) <= 1e-12 * max(1.0, float(ref.abs().max()))


@SETTINGS
@given(layers(), st.floats(0.1, 10.0))
def test_identity_holds_for_any_weights(lse_fns, layer, t):
    x, W, b, eps = layer
    y, g = lse_fns["atoms_y"](W=W, t=t), lse_fns["atoms_g"](W=W, b=b, t=t)
    lhs = reference_f(x, W, b, eps) + lse_fns["u"](x=x, eps=eps, y=y, g=g, t=t)
    rhs = (x * x).sum(-1) / (4 * t)
    scale = max(1.0, float(rhs.abs().max()), float((W.abs().max() * t) ** 2), float(b.abs().max()))
    assert float((lhs - rhs).abs().max()) <= 1e-10 * scale


@SETTINGS
@given(layers())
def test_attributions_are_a_probability_vector(lse_fns, layer):
    x, W, b, eps = layer
    pi = lse_fns["attribution"](x=x, eps=eps, W=W, b=b)
    assert pi.shape == (6, W.shape[0]) and (pi >= 0).all()
    torch.testing.assert_close(pi.sum(-1), torch.ones(6), rtol=0, atol=1e-12)


@SETTINGS
@given(layers())
def test_tropical_bounds_hold(lse_fns, layer):
    x, W, b, eps = layer
    gap = reference_f(x, W, b, eps) - lse_fns["f0"](x=x, W=W, b=b)
    tol = 1e-12 * max(1.0, float(lse_fns["f0"](x=x, W=W, b=b).abs().max()))
    assert (gap >= -tol).all()
    assert (gap <= eps * math.log(W.shape[0]) + tol).all()
    assert (gap <= lse_fns["tropical_bound_sharp"](x=x, eps=eps, W=W, b=b) + tol).all()


@SETTINGS
@given(layers())
def test_hessian_is_symmetric_psd_and_bounded(lse_fns, layer):
    x, W, b, eps = layer
    H = lse_fns["hessian_f"](x=x, eps=eps, W=W, b=b)
    torch.testing.assert_close(H, H.transpose(-1, -2))
    ev = torch.linalg.eigvalsh(H)
    bound = float(lse_fns["hessian_bound"](eps=eps, W=W))
    assert (ev >= -1e-9 * bound).all() and (ev <= bound * (1 + 1e-9)).all()


@SETTINGS
@given(layers(), st.integers(1, 5))
def test_streaming_equals_one_pass(lse_fns, layer, atoms_per_chunk):
    x, W, b, eps = layer
    whole = lse_fns["f"](x=x, eps=eps, W=W, b=b)
    chunked = lse_fns["f"](x=x, eps=eps, W=W, b=b, max_chunk_bytes=6 * 8 * atoms_per_chunk)
    torch.testing.assert_close(chunked, whole, rtol=1e-14, atol=1e-12)
