"""Other Hamiltonians against hand derivations: the Hopf-Cole split, convexity, Legendre, Hopf-Lax, the drifted kernel.

Hand derivations (u = -c log w, so u_t = -c w_t/w, grad u = -c grad w/w, Lap u = -c Lap w/w + c |grad w|^2/w^2):

* ``3|p|^2``: (3c^2 - eps c) |grad w|^2/w^2 = 0 gives c = eps/3, then w_t = eps Lap w; L(q) = |q|^2/12.
* ``|p|^4`` = phi(|p|), phi = r^4: phi' = 4r^3 >= 0, phi'' = 12 r^2 > 0, convex; phi'(r) = s gives r = (s/4)^(1/3),
  L(q) = 3 (|q|/4)^(4/3); Hopf-Cole leaves eps^4 |grad w|^4/w^4 - eps^2 |grad w|^2/w^2 (c = eps): no constant removes it.
* ``|p|``: H(grad u) = |c| |grad w|/w is degree one in w but not linear: with eps the nonlinear part is
  |c||grad w| - c eps |grad w|^2/w (times w), no c cancels it; with eps = 0 no step may call w_t = |grad w| linear.
  A norm: convex, not strictly; L is the indicator of |q| <= 1; Hopf-Lax is the minimum of g over |x - y| <= t.
* ``|p|^2 + a.p``: c = eps, w_t = eps Lap w - a.grad w, whose kernel is the heat kernel centred at a t.
* ``p^T A p`` with A not positive definite: convexity not established, no Legendre transform, no Hopf-Lax.
"""

import dataclasses

import sympy as sp

import hjsym
from hjsym import Tensor
from hjsym.architectures.lse import SPEC
from hjsym.derivation.hamilton_jacobi import split_linear
from hjsym.symbolic.axes import DIM, bound_index
from hjsym.symbolic.calculus import canonical
from hjsym.symbolic.jets import Dt, Dx, Dxx

eps, t = sp.Symbol("eps", positive=True), sp.Symbol("t", positive=True)
w = sp.Symbol("w", positive=True)
i, d = bound_index(DIM), DIM.extent
x, q, a = sp.IndexedBase("x"), sp.IndexedBase("q"), sp.IndexedBase("a")
grad_sq = sp.Sum(Dx(w, i) ** 2, (i, 1, d))
lap = sp.Sum(Dxx(w, i, i), (i, 1, d))


def derive(hamiltonian, viscosity="eps", extra=(), **changes):
    spec = dataclasses.replace(SPEC, name="test-h", hamiltonian=hamiltonian, viscosity=viscosity, symbols=SPEC.symbols + extra, **changes)
    return hjsym.derive(spec, cache=False)


def same(a_, b_):
    return canonical(sp.expand(a_ - b_)) == 0


def test_three_norm_squared():
    der = derive("3 * norm2(p)")
    assert der.results["hopf_cole_c"] == eps / 3
    assert der.results["linear_equation"] == sp.Eq(Dt(w), eps * lap)
    assert same(der.results["lagrangian"], sp.Sum(q[i] ** 2, (i, 1, d)) / 12)
    assert der.step("residual").status == "verified"


def test_quartic_is_convex_with_a_hopf_lax_formula_and_does_not_linearise():
    der = derive("norm2(p)**2")
    assert "strictly convex" in der.step("convexity").reason
    L = der.results["lagrangian"]
    assert same(L, 3 * sp.Sum(q[i] ** 2, (i, 1, d)) ** sp.Rational(2, 3) / 4 ** sp.Rational(4, 3))
    assert "hopf_lax" in der.functions and der.step("hopf-lax-atomic").status == "derived"
    assert der.step("hopf-cole-solve").status == "failed"
    assert same(der.results["hopf_cole_leftover"], eps**4 * grad_sq**2 / w**4 - eps**2 * grad_sq / w**2)
    # the generated Hopf-Lax solution at one atom is t L((x - y)/t) + g: check a number
    u0 = der.function("hopf_lax")
    import torch
    xs, ys, gs = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([0.5])
    s = float(torch.linalg.norm(xs[0] - ys[0])) / 2.0
    assert abs(float(u0(x=xs, y=ys, g=gs, t=2.0)) - (0.5 + 2.0 * 3 * (s / 4) ** (4 / 3))) < 1e-12


def test_a_norm_is_convex_not_strictly_and_does_not_linearise():
    der = derive("sqrt(norm2(p))")
    assert "convex (not strictly)" in der.step("convexity").reason
    assert "indicator" in der.step("legendre").reason and "ball" in der.step("hopf-lax").title
    assert "lagrangian" not in der.results
    linear, nonlinear = (e.rhs for e in der.step("hopf-cole-split").equations)
    c = sp.Symbol("c", nonzero=True, real=True)
    assert same(nonlinear, sp.Abs(c) * sp.sqrt(grad_sq) - c * eps * grad_sq / w)
    assert same(linear, c * eps * lap - c * Dt(w))
    assert der.step("hopf-cole-solve").status == "failed"
    assert same(der.results["hopf_cole_leftover"], eps * sp.sqrt(grad_sq) / w - eps**2 * grad_sq / w**2)
    assert der.classification.kind == "open"


def test_a_norm_without_viscosity_is_never_called_linear():
    der = derive("sqrt(norm2(p))", viscosity="0")
    assert der.step("hopf-cole-solve").status == "failed"
    assert not any(s.title == "The linear equation for w" for s in der.steps)
    assert same(der.results["hopf_cole_leftover"], sp.sqrt(grad_sq) / w)


def test_a_drift_finds_the_shifted_heat_kernel():
    der = derive("norm2(p) + dot(a, p)", extra=(Tensor("a", ("dim",)),))
    assert der.results["hopf_cole_c"] == eps
    assert der.results["linear_equation"] == sp.Eq(Dt(w), canonical(eps * lap - sp.Sum(a[i] * Dx(w, i), (i, 1, d))))
    assert der.step("heat-kernel").status == "verified" and "drift" in der.step("heat-kernel").title
    kernel = der.results["kernel"]
    hand = (4 * sp.pi * eps * t) ** (-d / 2) * sp.exp(-sp.Sum((x[i] - a[i] * t) ** 2, (i, 1, d)) / (4 * eps * t))
    assert same(sp.expand(sp.log(kernel)), sp.expand(sp.log(hand))) or same(kernel, hand)
    assert der.step("residual").status == "verified"
    assert same(der.results["lagrangian"], sp.Sum((q[i] - a[i]) ** 2, (i, 1, d)) / 4)


def test_an_indefinite_quadratic_form_is_not_called_convex():
    der = derive("quad(p, A)", extra=(Tensor("A", ("dim", "dim"), symmetric=True),), diffusion="A")
    assert "not declared positive definite" in der.step("convexity").reason
    assert der.step("hopf-lax").status == "failed" and "lagrangian" not in der.results
    der = derive("quad(p, A)", extra=(Tensor("A", ("dim", "dim"), symmetric=True),))
    assert "not recognisably positive definite" in der.step("convexity").reason
    assert der.step("hopf-cole-solve").status == "failed"


def test_split_linear_is_not_fooled_by_abs_or_sqrt():
    terms = Dt(w) + 2 * lap + sp.sqrt(grad_sq) + sp.Abs(Dx(w, i)) + grad_sq / w + 3 + w
    linear, nonlinear = split_linear(terms, w)
    assert same(linear, Dt(w) + 2 * lap + w)
    assert same(nonlinear, sp.sqrt(grad_sq) + sp.Abs(Dx(w, i)) + grad_sq / w + 3)
