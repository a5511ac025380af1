"""Training as control checked on networks trained to convergence: the checks pass and their negative controls fail."""

import pytest
import torch
from helpers import assert_all_pass_and_controls_fail
from torch import nn

import hjsym
from hjsym import ModuleFormError
from hjsym.architectures.training_hjb import LinearResidualNetwork, train_linear_resnet
from hjsym.checks.api import context
from hjsym.checks.suites.training import certificate, riccati_solution

TRAINING = ("bias_riccati", "value_function", "pmp_costate", "pmp_stationarity")


@pytest.fixture(scope="module")
def report():
    return hjsym.check("training-hjb", negative_controls=True)


def test_every_check_passes_and_fails_on_its_negative_control(report):
    assert_all_pass_and_controls_fail(report)
    assert set(TRAINING) <= {c.name for c in report.checks}
    for name in TRAINING:
        assert report.check(name).tolerance < 1e-10  # rounding of the terms, not a loose constant


def test_the_trained_networks_are_at_their_optimum_to_rounding():
    ctx = context("training-hjb")
    for train_weights in (False, True):
        r = ctx.suite.read(ctx, train_linear_resnet(0, train_weights=train_weights))
        cert = certificate(r)
        assert cert["hessian_min_eigenvalue"] > 0 and cert["distance"] < 1e-12, cert
        sol = riccati_solution(ctx, r)
        trained = torch.stack([c["b"] for c in r.layers[0].controls])
        assert torch.allclose(sol["b"], trained, atol=1e-12, rtol=0)


def test_a_network_that_has_not_converged_fails_the_optimality_checks():
    m = train_linear_resnet(0, train_weights=True)
    with torch.no_grad():
        m.blocks[1].bias.add_(1e-3)  # moved off the optimum: the controls no longer solve the Pontryagin conditions
    report = hjsym.check("training-hjb", module=m, only=["bias_riccati", "pmp_stationarity", "pmp_costate"])
    assert not report.check("bias_riccati").passed and not report.check("pmp_stationarity").passed
    assert report.check("pmp_costate").passed  # the costate is backprop at any weights


def test_a_module_without_its_training_problem_is_refused_by_name():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])
            self.h = 0.5

        def forward(self, s):
            for blk in self.blocks:
                s = s + self.h * blk(s)
            return s

        def hjsym_controls(self):
            return [{"theta": b.weight, "b": b.bias} for b in self.blocks]

    assert hjsym.check("training-hjb", module=Plain(), only=["forward", "costates"]).passed
    with pytest.raises(ModuleFormError, match="does not state its training problem"):
        hjsym.check("training-hjb", module=Plain(), only=["bias_riccati"])


def test_a_depth_system_with_the_wrong_controls_is_refused():
    class Wrong(LinearResidualNetwork):
        def hjsym_controls(self):
            return [{"theta": b.weight} for b in self.blocks]

    with pytest.raises(ModuleFormError, match="the spec's controls are"):
        hjsym.check("training-hjb", module=Wrong(), only=["forward"])
