"""Generated functions whose only batch is carried by per-point scalars (a curve's x, y, y'), and the step function."""

from __future__ import annotations

import pytest
import sympy as sp
import torch

from hjsym import InputError
from hjsym.codegen.generate import generate
from hjsym.ir import ArgSpec, FunctionSpec

th, a = sp.Symbol("theta", real=True), sp.Symbol("a", positive=True)
CYCLOID = FunctionSpec("cx", a * (th - sp.sin(th)), (ArgSpec("theta", th, (), per_point=True), ArgSpec("a", a, (), positive=True)))


def test_per_point_scalars_carry_the_batch_shape():
    f = generate(CYCLOID)
    theta = torch.linspace(0, 1, 6, dtype=torch.float64).reshape(2, 3)
    assert torch.allclose(f(theta=theta, a=2.0), 2 * (theta - torch.sin(theta)))
    assert f(theta=0.5, a=2.0).shape == ()
    assert torch.allclose(f.unchecked(theta=theta.reshape(-1), a=torch.tensor(2.0, dtype=torch.float64)), 2 * (theta - torch.sin(theta)).reshape(-1))


def test_per_point_scalars_that_do_not_broadcast_are_refused():
    x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    f = generate(FunctionSpec("s", x + y, (ArgSpec("x", x, (), per_point=True), ArgSpec("y", y, (), per_point=True))))
    assert f(x=torch.ones(3), y=torch.ones(1)).shape == (3,)
    with pytest.raises(InputError, match="do not broadcast"):
        f(x=torch.ones(3), y=torch.ones(2))


def test_heaviside_prints_elementwise_with_sympys_value_at_zero():
    z = sp.Symbol("z", real=True)
    f = generate(FunctionSpec("h", sp.Heaviside(z), (ArgSpec("z", z, (), per_point=True),)))
    assert f(z=torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)).tolist() == [0.0, 0.5, 1.0]
