"""Training as control: the training-hjb pass (Pontryagin, Bellman, Riccati in the bias) and its generated functions."""

import pytest
import sympy as sp
import torch

import hjsym
from hjsym import Dynamics, Scalar, Spec, SpecError, Tensor, Training


@pytest.fixture(scope="module")
def derivation():
    return hjsym.derive("training-hjb")


def _spec(field="theta @ s + b", controls=("theta", "b"), training=Training(penalty="rho", target="y"), bias=True):
    symbols = (Scalar("h"), Scalar("rho"), Tensor("theta", ("dim", "dim"))) + ((Tensor("b", ("dim",)),) if bias else ()) + (
        Tensor("y", ("dim",)),)
    return Spec(name="training-test", title="t", family="control", state="s", symbols=symbols,
                dynamics=Dynamics(field=field, controls=controls, step_size="h", training=training))


def test_every_step_of_the_training_pass_is_derived_or_verified(derivation):
    status = {s.id: s.status for s in derivation.steps}
    for step in ("training-cost", "training-bellman", "training-mean", "bias-feedback"):
        assert step in status and status[step] != "failed", step
    assert status["training-pmp"] == "verified" and status["bias-riccati"] == "verified"
    assert status["training-weights-bellman"] == "derived"


def test_in_the_weights_the_bellman_minimum_is_the_rational_function_derived(derivation):
    """Route A: the minimum over theta found numerically (a fine grid, then Newton); route B: the derived V_k(s)."""
    V = derivation.results["weights_value_d1"]
    names = {str(s): s for s in V.free_symbols}
    vals = {"P": 1.7, "q": 0.4, "c": 0.2, "rho": 0.3, "h": 0.25}
    f = sp.lambdify(names["s"], V.subs({names[k]: v for k, v in vals.items()}))
    for s in (-1.3, 0.2, 0.9, 2.5):
        th = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
        Q = vals["rho"] * vals["h"] / 2 * th**2 + vals["P"] / 2 * (s + vals["h"] * th * s) ** 2 - vals["q"] * (s + vals["h"] * th * s) + vals["c"]
        assert abs(float(Q.min()) - f(s)) < 1e-8
    # and it is not a quadratic: its third derivative at s = 1 is not 0
    assert abs(float(sp.diff(V, names["s"], 3).subs({names[k]: v for k, v in vals.items()}).subs(names["s"], 1))) > 1e-3


def _direct_bias_optimum(thetas, x, y, rho, h):
    """The biases minimising the mean problem, by one linear solve over all of them (route independent of the recursion)."""
    K, d = len(thetas), x.shape[0]
    N = 5.0
    A = [torch.eye(d) + h * t for t in thetas]

    def final(bs):
        m = x
        for k in range(K):
            m = A[k] @ m + h * bs[k]
        return m

    # s_K is affine in the biases: s_K = G b + f
    f = final([torch.zeros(d)] * K)
    G = torch.stack([final([torch.eye(d)[j] if k == kk else torch.zeros(d) for kk in range(K)]) - f
                     for k in range(K) for j in range(d)], 1)
    H = N * G.T @ G + rho * h * torch.eye(K * d)
    b = torch.linalg.solve(H, -N * G.T @ (f - y))
    J = 0.5 * N * ((G @ b + f - y) ** 2).sum() + 0.5 * rho * h * (b**2).sum()
    return b.reshape(K, d), J


def test_the_generated_riccati_recursion_gives_the_direct_optimum(derivation):
    gen = torch.Generator().manual_seed(4)
    d, K, rho, h, N = 3, 5, 0.2, 0.2, 5.0
    thetas = [0.6 * torch.randn(d, d, generator=gen) for _ in range(K)]
    x, y = torch.randn(d, generator=gen), torch.randn(d, generator=gen)
    fn = derivation.function
    P, q, c = N * torch.eye(d), N * y, 0.5 * N * (y @ y)
    Ms, qs = [None] * K, [None] * K
    for k in range(K - 1, -1, -1):
        Ms[k], qs[k] = fn("bellman_curvature")(P=P, rho=rho, h=h), q
        P, q, c = (fn("riccati_step")(Mb=Ms[k], theta=thetas[k], rho=rho, h=h), fn("riccati_linear")(Mb=Ms[k], q=q, theta=thetas[k], rho=rho, h=h),
                   fn("riccati_constant")(Mb=Ms[k], q=q, c=c, h=h))
    m, bs = x, []
    for k in range(K):
        bs.append(fn("optimal_bias")(s=m, Mb=Ms[k], q=qs[k], theta=thetas[k], rho=rho, h=h))
        m = fn("step")(s=m, theta=thetas[k], b=bs[-1], h=h)
    b_direct, J_direct = _direct_bias_optimum(thetas, x, y, rho, h)
    assert torch.allclose(torch.stack(bs), b_direct, atol=1e-12, rtol=0)
    assert abs(float(fn("quadratic_value")(s=x, P=P, q=q, c=c)) - float(J_direct)) < 1e-12 * max(1.0, float(J_direct))
    assert torch.allclose(P, P.T, atol=1e-13)  # the recursion keeps P symmetric (positive definite too)
    assert float(torch.linalg.eigvalsh(P).min()) > 0


def test_pmp_controls_are_the_stationary_point_of_the_augmented_hamiltonian(derivation):
    gen = torch.Generator().manual_seed(1)
    s, p, rho = torch.randn(7, 3, generator=gen), torch.randn(7, 3, generator=gen), 0.3
    theta, b = derivation.function("pmp_controls")(s=s, p=p, rho=rho)
    assert torch.allclose(theta, -p.T @ s / rho) and torch.allclose(b, -p.sum(0) / rho)


def test_a_field_nonlinear_in_the_controls_or_without_a_bias_says_what_does_not_apply():
    d = hjsym.derive(_spec(field="tanh(theta @ s) + b"))
    assert next(s for s in d.steps if s.id == "training-pmp").status == "failed"
    d = hjsym.derive(_spec(field="theta @ s", controls=("theta",), bias=False))
    step = next(s for s in d.steps if s.id == "bias-riccati")
    assert step.status == "failed" and "additively" in step.reason


@pytest.mark.parametrize("training, message", [
    (Training(penalty="eta", target="y"), "penalty 'eta' is not a declared positive scalar"),
    (Training(penalty="rho", target="theta"), "target 'theta' is not a declared tensor over the state dimension"),
    (("rho", "y"), "is not an hjsym.Training"),
])
def test_a_bad_training_field_is_a_spec_error_that_names_it(training, message):
    with pytest.raises(SpecError, match=message):
        _spec(training=training).validate()
