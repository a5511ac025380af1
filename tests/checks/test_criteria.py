"""The check criteria: identities and bounds within k u S, statistics, non-finite values, and the autograd helpers."""

import math

import pytest
import torch

from hjsym.checks.autograd import grad_and_hessian, jacobian_rows, scalar_derivative
from hjsym.checks.criteria import K, bound, compare, statistic, tolerances, unit_roundoff

U64 = 2.0**-53


def test_unit_roundoff_of_each_dtype():
    assert unit_roundoff(torch.float64) == U64 and unit_roundoff(torch.float32) == 2.0**-24


def test_the_tolerance_follows_the_scale_of_the_terms():
    b = torch.tensor([1.0, 2.0])
    scale = torch.tensor([1.0, 1e6])  # the second value came out of terms a million times its size
    off = b + torch.tensor([0.0, 1e3 * U64])
    assert not compare("c", "", off, b, torch.ones(2), dtype=torch.float64).passed  # k u * 1 is far below 1e3 u
    r = compare("c", "", off, b, scale, dtype=torch.float64)
    assert r.passed and r.scale == 1e6 and r.k == K["forward"] and r.unit_roundoff == U64
    assert r.tolerance == pytest.approx(K["forward"] * (U64 * 1e6 + torch.finfo(torch.float64).tiny))
    assert r.margin == pytest.approx(r.tolerance / (1e3 * U64), rel=1e-12)


def test_equal_routes_have_an_infinite_margin_and_a_flat_scale_broadcasts():
    b = torch.tensor([1.0, 2.0])
    r = compare("c", "", b, b, 3.0, dtype=torch.float64)
    assert r.passed and r.margin == math.inf and r.max_abs_err == 0


def test_float32_tolerances_use_its_own_unit_roundoff():
    b = torch.ones(3, dtype=torch.float32)
    assert compare("c", "", b + 1e-7, b, 1.0, dtype=torch.float32).passed
    assert not compare("c", "", b.double() + 1e-7, b.double(), 1.0, dtype=torch.float64).passed


def test_underflowed_values_get_the_absolute_floor():
    tiny = torch.finfo(torch.float64).tiny
    a, b = torch.tensor([3e-321]), torch.tensor([0.0])  # a subnormal against an exact zero
    assert compare("c", "", a, b, 0.0, dtype=torch.float64).passed
    assert not compare("c", "", torch.tensor([10 * K["forward"] * tiny]), b, 0.0, dtype=torch.float64).passed


def test_non_finite_values_fail_and_say_so():
    r = compare("c", "", torch.tensor([math.nan]), torch.tensor([1.0]), 1.0, dtype=torch.float64)
    assert not r.passed and r.max_abs_err == math.inf and r.details["non_finite"] == "route A"
    assert r.to_dict()["max_abs_err"] == "inf"
    s = compare("c", "", torch.tensor([1.0]), torch.tensor([1.0]), math.inf, dtype=torch.float64)
    assert not s.passed and s.details["non_finite"] == "scale"


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="values"):
        compare("c", "", torch.zeros(2), torch.zeros(3), 1.0, dtype=torch.float64)


def test_bound_criterion():
    assert bound("c", "", torch.tensor([0.0, 0.5]), torch.tensor([1.0, 1.0]), 1.0, dtype=torch.float64).passed
    r = bound("c", "", torch.tensor([0.0, 1.1]), torch.tensor(1.0), 1.0, dtype=torch.float64)
    assert not r.passed and r.max_abs_err == pytest.approx(0.1)
    assert not bound("c", "", torch.tensor([-1e-9]), torch.tensor(1.0), 1.0, dtype=torch.float64).passed  # below the lower bound
    assert r.details["min_slack"] == pytest.approx(-0.1)
    # a violation within rounding of the terms passes; the same violation with small terms does not
    over = torch.tensor([1.0 + 4 * U64 * 100])
    assert bound("c", "", over, torch.tensor(1.0), 100.0, dtype=torch.float64).passed
    assert not bound("c", "", over, torch.tensor(1.0), 1.0, dtype=torch.float64).passed


def test_statistics_state_their_own_tolerance():
    r = statistic("c", "", torch.tensor([1.0]), torch.tensor([1.05]), 0.1, criterion="within 3 standard errors")
    assert r.passed and r.kind == "statistic" and r.margin == pytest.approx(2.0)
    assert not statistic("c", "", torch.tensor([1.0]), torch.tensor([1.2]), 0.1).passed


def test_tolerances_grow_with_k_by_kind():
    assert float(tolerances(1.0, torch.float64, "autograd")) > float(tolerances(1.0, torch.float64, "forward"))


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
