"""The check criteria: identities and bounds, pass and fail, non-finite values."""

import math

import pytest
import torch

from hjsym.checks.engine import bound, compare, grad_and_hessian, jacobian_rows, scalar_derivative, tolerance


def test_identity_criterion_is_absolute_then_relative():
    b = torch.tensor([1.0, 2.0])
    assert compare("c", "", b + 1e-11, b, 1e-10, "A", "B").passed
    assert not compare("c", "", b + 1e-9, b, 1e-10, "A", "B").passed
    big = torch.tensor([1e6])
    assert compare("c", "", big + 1e-5, big, 1e-10, "A", "B").passed  # relative to |B| = 1e6
    r = compare("c", "", b + 1e-9, b, 1e-10, "A", "B")
    assert r.max_abs_err == pytest.approx(1e-9) and r.max_rel_err == pytest.approx(1e-9 / 2)
    assert r.example["route_b"] == 1.0


def test_non_finite_values_fail_and_say_so():
    r = compare("c", "", torch.tensor([math.nan]), torch.tensor([1.0]), 1e-10, "A", "B")
    assert not r.passed and r.max_abs_err == math.inf and r.details["non_finite"] == "route A"
    assert r.to_dict()["max_abs_err"] == "inf"


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        compare("c", "", torch.zeros(2), torch.zeros(3), 1e-10, "A", "B")


def test_bound_criterion():
    assert bound("c", "", torch.tensor([0.0, 0.5]), torch.tensor([1.0, 1.0]), 1e-12, "A", "B").passed
    r = bound("c", "", torch.tensor([0.0, 1.1]), torch.tensor(1.0), 1e-12, "A", "B")
    assert not r.passed and r.max_abs_err == pytest.approx(0.1)
    assert not bound("c", "", torch.tensor([-1e-9]), torch.tensor(1.0), 1e-12, "A", "B").passed  # below the lower bound
    assert r.details["min_slack"] == pytest.approx(-0.1)


def test_tolerances_are_stated_per_dtype():
    assert tolerance("identity", torch.float64) == 1e-10
    assert tolerance("identity", torch.float32) > tolerance("identity", torch.float64)
    with pytest.raises(ValueError):
        tolerance("identity", torch.float16)


def test_autograd_helpers_on_a_quadratic():
    A = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    val, grad, hess = grad_and_hessian(lambda z: 0.5 * ((z @ A) * z).sum(-1), x)
    torch.testing.assert_close(grad, x @ A)
    torch.testing.assert_close(hess, A.expand(5, 2, 2))
    out, dt = scalar_derivative(lambda t: t**2 * x[:, 0], 3.0, torch.float64)
    torch.testing.assert_close(dt, 6 * x[:, 0])
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    torch.testing.assert_close(jacobian_rows(torch.stack([p[0] * p[1], p[0] ** 2]), p), torch.tensor([[2.0, 1.0], [2.0, 0.0]]))
