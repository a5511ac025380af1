"""Attention checks against real torch modules; each fails on a perturbed module."""

import pytest
import torch
from helpers import assert_all_pass_and_controls_fail
from torch import nn

import hjsym
from hjsym import ModuleFormError
from hjsym.checks.suites.attention import D_K
from hjsym.networks.attention import MHA_CONFIGS, LSEFeedForward, causal_mask, read_mha, toy_task


def test_checks_pass_and_fail_on_perturbed_modules(attention_report):
    assert_all_pass_and_controls_fail(attention_report, ["mha", "sdpa", "attention_jacobian", "l2_attention", "transformer_block", "entropy"])


def test_coverage_of_heads_masks_and_layouts(attention_report):
    cases = attention_report.check("mha").details["cases"]
    assert {c["d_k"] for c in cases} == set(D_K) and {c["mode"] for c in cases} == {"self", "causal", "cross"}
    assert len(cases) == 3 * len(MHA_CONFIGS) and {bf for _, _, bf in MHA_CONFIGS} == {True, False}
    modes = {(c["d_k"], c["mode"]) for c in attention_report.check("sdpa").details["cases"]}
    assert modes == {(dk, m) for dk in D_K for m in ("plain", "causal", "additive mask")}


def test_the_trained_transformer_has_a_particle_and_a_wave_head(attention_report):
    details = attention_report.check("entropy").details
    per_head = details["normalised_entropy_per_head"]
    assert min(per_head) < 0.3 < 0.7 < max(per_head)
    assert sorted(details["reading"]) == ["particle", "wave"]


def test_a_user_multihead_attention_is_checked():
    mha = nn.MultiheadAttention(12, 3, batch_first=False, dtype=torch.float64)
    report = hjsym.check("attention", module=mha, negative_controls=True)
    assert report.passed and [c.name for c in report.checks] == ["mha"] and "num_heads=3" in report.network
    assert any("sdpa not run" in n for n in report.notes)  # what was not checked is said
    assert not report.check("mha").details["negative_control"]["passed"]


def test_modules_of_the_wrong_form_are_refused():
    with pytest.raises(ModuleFormError, match="add_bias_kv"):
        read_mha(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ModuleFormError, match="is not an nn.MultiheadAttention"):
        read_mha(nn.Linear(2, 2))


def test_readout_handles_separate_projections():
    mha = nn.MultiheadAttention(8, 2, kdim=5, vdim=6, batch_first=True, dtype=torch.float64)
    r = read_mha(mha)
    q, kk, v = torch.randn(1, 3, 8, dtype=torch.float64), torch.randn(1, 4, 5, dtype=torch.float64), torch.randn(1, 4, 6, dtype=torch.float64)
    with torch.no_grad():
        out = mha(q, kk, v, need_weights=False)[0]
        qh = (q @ r.Wq.T + r.bq).reshape(1, 3, 2, 4).transpose(1, 2)
        kh = (kk @ r.Wk.T + r.bk).reshape(1, 4, 2, 4).transpose(1, 2)
        vh = (v @ r.Wv.T + r.bv).reshape(1, 4, 2, 4).transpose(1, 2)
        ref = r.merge(torch.softmax(qh @ kh.transpose(-1, -2) / 2.0, -1) @ vh)
    torch.testing.assert_close(out, ref)


def test_lse_feed_forward_channels_and_toy_task():
    ffn = LSEFeedForward(4, 3, 0.5)
    with torch.no_grad():
        ffn.linear.weight.normal_(generator=torch.Generator().manual_seed(0))
    z = torch.randn(2, 4, dtype=torch.float64)
    W, b = ffn.channel(1)
    torch.testing.assert_close(ffn(z)[:, 1], 0.5 * torch.logsumexp((z @ W.T + b) / 0.5, -1))
    x, y = toy_task(3, 5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(y[:, 1:, 0], x[:, :-1])
    torch.testing.assert_close(y[:, -1, 1], x.mean(1))
    assert torch.isinf(causal_mask(3)[0, 1]) and causal_mask(3)[1, 0] == 0
