"""The variational family's derivations: every step computed by SymPy, the checkable ones verified, the generated functions right."""

from __future__ import annotations

import math

import pytest
import torch

import hjsym
from hjsym.derivation.engine import derive_symbolic
from hjsym.spec.spec import Functional, Scalar, Spec


@pytest.fixture(scope="module")
def brachistochrone():
    return hjsym.derive("brachistochrone")


@pytest.fixture(scope="module")
def fokker_planck():
    return hjsym.derive("fokker-planck")


@pytest.fixture(scope="module")
def mean_field():
    return hjsym.derive("mean-field")


def test_brachistochrone_steps_are_verified(brachistochrone):
    status = {s.id: s.status for s in brachistochrone.steps}
    for step in ("euler-lagrange", "beltrami", "parametric-extremal", "variational-legendre", "free-particle"):
        assert status[step] == "verified", step
    assert brachistochrone.classification.kind == "exact"


def test_the_cycloid_and_its_time(brachistochrone):
    f = brachistochrone.functions
    th = torch.linspace(0.1, 3.0, 7, dtype=torch.float64)
    assert torch.allclose(f["extremal_x"](theta=th, a=2.0), 2 * (th - torch.sin(th)))
    assert torch.allclose(f["extremal_y"](theta=th, a=2.0), 2 * (1 - torch.cos(th)))
    # the time of the full arch to the bottom: pi sqrt(a/g)
    assert float(f["extremal_value"](theta=math.pi, a=1.0, g=9.81)) == pytest.approx(math.pi / math.sqrt(9.81), rel=1e-14)
    assert float(f["extremal_start_exponent"]()) == pytest.approx(2 / 3)
    # the Euler-Lagrange residual vanishes on the cycloid: y'' from the parametrisation
    yp = torch.sin(th) / (1 - torch.cos(th))
    ypp = -1 / (2.0 * (1 - torch.cos(th)) ** 2)
    el = f["euler_lagrange"](y=2 * (1 - torch.cos(th)), yp=yp, ypp=ypp, g=9.81)
    assert float(el.abs().max()) < 1e-12


def test_hamiltonian_of_the_travel_time_is_minus_the_slowness_root(brachistochrone):
    y, p = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64), torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64)
    H = brachistochrone.function("hamiltonian")(y=y, p=p, g=9.81)
    assert torch.allclose(H, -torch.sqrt(1 / (2 * 9.81 * y) - p ** 2))


def test_a_mechanical_lagrangian_gives_its_hamiltonian_and_straight_lines():
    spec = Spec(name="particle", title="free particle", family="variational",
                symbols=(Scalar("t_", positive=False), Scalar("q", positive=False), Scalar("qdot", positive=False)),
                functional=Functional("qdot**2 / 4", variable="t_", unknowns=(("q", "qdot"),)))
    d = derive_symbolic(spec)
    assert str(d.results["variational_hamiltonian"]) == "p**2"
    assert str(d.results["euler_lagrange"][0]) == "-qdotp/2"  # q'' = 0: straight characteristics
    assert d.step("beltrami").status == "verified"


def test_a_functional_with_explicit_x_has_no_first_integral():
    spec = Spec(name="weighted", title="weighted length", family="variational",
                symbols=(Scalar("x", positive=False), Scalar("y"), Scalar("yp", positive=False)),
                functional=Functional("x * sqrt(1 + yp**2)", variable="x", unknowns=(("y", "yp"),)))
    d = derive_symbolic(spec)
    assert d.step("beltrami").status == "stated" and "beltrami" not in d.results
    assert d.step("euler-lagrange").status == "verified"


def test_fokker_planck_steps_are_verified(fokker_planck):
    status = {s.id: s.status for s in fokker_planck.steps}
    for step in ("wasserstein-flow", "gibbs-equilibrium", "dissipation", "ornstein-uhlenbeck", "jko-gaussian-step"):
        assert status[step] == "verified", step
    assert str(fokker_planck.results["pressure"]) == "eps*rho"


def test_fokker_planck_closed_forms(fokker_planck):
    f = fokker_planck.functions
    x = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    rho = f["ou_density"](x=x, t=0.7, m0=1.0, v0=0.25, k=1.0, eps=0.5)
    h = float(x[1] - x[0])
    assert float(rho.sum() * h) == pytest.approx(1.0, abs=1e-12)
    var = float(f["ou_variance"](t=0.7, v0=0.25, k=1.0, eps=0.5))
    assert float((x - float(f["ou_mean"](t=0.7, m0=1.0, k=1.0))) ** 2 @ rho * h) == pytest.approx(var, rel=1e-10)
    assert float(f["heat_variance"](t=2.0, v0=0.25, eps=0.5)) == pytest.approx(2.25)
    # one JKO step: implicit Euler of the mean; the variance rate tends to the ODE's as tau -> 0
    assert float(f["jko_mean"](m0=1.0, k=1.0, tau=0.1)) == pytest.approx(1 / 1.1)
    tau = 1e-6
    rate = (float(f["jko_variance"](v0=0.25, k=1.0, eps=0.5, tau=tau)) - 0.25) / tau
    assert rate == pytest.approx(2 * 0.5 - 2 * 1.0 * 0.25, rel=1e-4)
    V = torch.tensor([[0.3, -1.0, 2.0]], dtype=torch.float64)
    assert torch.allclose(f["gibbs_atoms"](V=V, eps=0.5), torch.softmax(-V / 0.5, -1))


def test_mean_field_finite_width_gradient_is_verified(mean_field):
    assert mean_field.step("finite-width-gradient").status == "verified"
    names = set(mean_field.functions)
    for act in ("tanh", "relu"):
        assert {f"network_{act}", f"first_variation_{act}"} | {f"neuron_velocity_{p}_{act}" for p in "awb"} <= names


def test_relu_velocity_uses_the_step_function(mean_field):
    x = torch.tensor([[0.5, -0.2], [-0.3, 0.8]], dtype=torch.float64)
    a, w, b = torch.tensor([1.0, -2.0]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0.1, -1.0])
    vb = mean_field.function("velocity_b_relu")(x=x, f=torch.tensor([0.2, 0.1]), y=torch.tensor([0.0, 0.0]), a=a, w=w, b=b)
    z = x @ w.T + b
    assert torch.allclose(vb, -(torch.tensor([0.2, 0.1])[:, None]) * a * (z > 0))
