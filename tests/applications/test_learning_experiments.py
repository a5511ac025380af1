"""The learning-theory and control experiments: attention-width, diagonal-net, msa (their derivations and routes)."""

import math

import torch

from hjsym.experiments import attention_width as aw
from hjsym.experiments import diagonal_net as dn
from hjsym.experiments import msa


# ----------------------------------------------------------------------------- attention-width
def test_the_limit_covariances_are_derived():
    d = aw.derive_limit()
    assert d["cov_logits_is_Sigma_ik_Sigma_jl"] and d["cov_values_is_Sigma_jl"]


def test_the_binned_cdf_is_the_rao_blackwellised_mean_to_rounding():
    gen = torch.Generator().manual_seed(0)
    v = 0.5 + torch.rand(20_000, generator=gen, dtype=torch.float64)
    t = torch.linspace(-3, 3, 41, dtype=torch.float64)
    exact = torch.special.ndtr(t[None, :] / v.sqrt()[:, None]).mean(0)
    binned, se = aw._cdf(v, t)
    assert float((binned - exact).abs().max()) < 1e-9 and float(se.max()) > 0


def test_the_in_law_sampler_has_the_law_of_the_layer_with_full_weight_matrices():
    F = aw.token_factor(3)
    t = aw.grid(F)
    _, v_full = aw.layer_samples(F, 8, 20_000, torch.Generator().manual_seed(1), full=True)
    _, v_red = aw.layer_samples(F, 8, 20_000, torch.Generator().manual_seed(2))
    (a, sa), (b, sb) = aw._cdf(v_full, t), aw._cdf(v_red, t)
    assert float((a - b).abs().max()) < aw._noise(sa.tolist(), sb)
    # and the layer really is torch's attention: SDPA equals softmax(q k^T / sqrt(n)) v
    out, v = aw.layer_samples(F, 8, 64, torch.Generator().manual_seed(4))
    assert out.shape == v.shape == (64,) and bool((v > 0).all())


# ----------------------------------------------------------------------------- diagonal-net
def test_the_implicit_bias_is_derived():
    d = dn.derive()
    assert d["verified"] and d["limit_alpha_to_inf_of_alpha^2 Q"] == "w**2/4"


def test_the_trained_network_converges_to_the_implicit_bias_and_plain_gd_does_not():
    X, y, _ = dn.problems(0, 2)
    wb = dn.implicit_bias(1.0, X, y)
    wa, m = dn.train_flow(1.0, X, y, 3000)
    with torch.no_grad():
        residual = float(((m(X) - y).norm(dim=-1) / y.norm(dim=-1)).max())
        assert float((m.u * m.v - 1).abs().max()) < 1e-12  # the invariant u v = alpha^2 is kept
    assert residual < 1e-10 and max(dn._rel(wa, wb)) < 1e-8
    assert max(dn._rel(dn.train_gd(1.0, X, y, 0.2, 3000), wb)) > 1e-6  # the step moves the limit
    l1, l2 = dn.interpolants(X, y)
    for w in (wb, l1, l2):
        assert float((torch.einsum("bnd,bd->bn", X, w) - y).abs().max()) < 1e-8
    assert bool((l1.abs().sum(-1) <= wb.abs().sum(-1) + 1e-9).all()) and bool((l2.norm(dim=-1) <= wb.norm(dim=-1) + 1e-9).all())


def test_wilson_intervals_stay_in_the_unit_interval():
    for k, n in ((0, 10), (10, 10), (3, 7)):
        lo, hi = dn.wilson(k, n)
        assert 0 <= lo <= k / n <= hi <= 1


# ----------------------------------------------------------------------------- msa
def test_one_emsa_step_tends_to_the_metric_gradient_step_with_order_one():
    ok = msa.limit_check(0, rhos=(1e5, 1e6, 1e7))
    assert abs(ok["order"] - 1) < 0.1, ok
    bad = msa.limit_check(0, negative=True, rhos=(1e5, 1e6, 1e7))
    assert abs(bad["order"]) < 0.3 and min(bad["relative_difference"]) > 100 * min(ok["relative_difference"])


def test_the_digits_split_uses_training_statistics_only():
    xtr, ytr, xval, yval, xte, yte = msa.load_digits_split(0, quick=True)
    assert len(xtr) + len(xval) + len(xte) == 600 and math.isclose(float(xtr.mean()), 0.0, abs_tol=1e-9)
    assert set(ytr.tolist()) <= set(range(10))
