"""The anisotropic LSE layer: derivation (metric kernel, Legendre, input map), checks, errors."""

import dataclasses

import pytest
import sympy as sp
import torch
from helpers import assert_all_pass_and_controls_fail
from torch import nn

import hjsym
from hjsym import InputError, ModuleFormError
from hjsym.architectures.lse_aniso import SPEC
from hjsym.derivation.anisotropic import solve_indexed
from hjsym.networks.lse import AnisoLSELayer, read_aniso_lse
from hjsym.symbolic.axes import ATOM, DIM, bound_index, free_index
from hjsym.symbolic.calculus import canonical
from hjsym.symbolic.latex import eq
from hjsym.symbolic.matrices import InverseBase, SPDBase

d, N = DIM.extent, ATOM.extent
i, i1, j = bound_index(DIM), bound_index(DIM, 1), bound_index(ATOM)
k, l, m = free_index(DIM), free_index(DIM, 1), free_index(ATOM)
A, L = SPDBase("A"), sp.IndexedBase("L")
Ai = InverseBase(A)
x, y, g, W, b, q, p = (sp.IndexedBase(n) for n in "x y g W b q p".split())
eps, t = sp.Symbol("eps", positive=True), sp.Symbol("t", positive=True)


@pytest.fixture(scope="module")
def der():
    return hjsym.derive("lse-aniso")


def test_every_step_is_derived_or_verified(der):
    statuses = {s.id: s.status for s in der.steps}
    assert "failed" not in statuses.values(), statuses
    for sid in ("heat-kernel", "residual", "identity", "input-map", "hessian", "tropical-limit"):
        assert statuses[sid] == "verified", sid
    assert der.classification.kind == "exact"


def test_closed_forms(der):
    r = der.results
    assert r["hopf_cole_c"] == eps
    assert r["lagrangian"] == canonical(sp.Sum(Ai[i, i1] * q[i] * q[i1], (i, 1, d), (i1, 1, d)) / 4)
    assert r["y_of_weights"] == canonical(2 * t * sp.Sum(A[i, k] * W[m, i], (i, 1, d)))
    assert r["W_of_atoms"] == canonical(sp.Sum(Ai[i, k] * y[m, i], (i, 1, d)) / (2 * t))
    assert r["identity_rhs"] == canonical(sp.Sum(Ai[i, i1] * x[i] * x[i1], (i, 1, d), (i1, 1, d)) / (4 * t))
    assert r["residual"] == -d * eps / (2 * t) and r["residual_exact"] == 0
    assert r["diffusion_of_map"] == canonical(sp.Sum(InverseBase(L)[k, i] * InverseBase(L)[l, i], (i, 1, d)))
    assert r["metric_of_map"] == canonical(sp.Sum(L[i, k] * L[i, l], (i, 1, d)))


def test_solve_indexed_contracts_with_the_inverse():
    grad = canonical(2 * sp.Sum(A[i, k] * p[i], (i, 1, d)))
    assert solve_indexed(eq(q[k], grad), p[k]) == canonical(sp.Sum(Ai[i, k] * q[i], (i, 1, d)) / 2)
    assert solve_indexed(eq(q[k], 3 * p[k]), p[k]) == q[k] / 3


def test_generated_functions_agree_with_linear_algebra(der):
    gen = torch.Generator().manual_seed(0)
    Lm = torch.randn(3, 3, generator=gen, dtype=torch.float64) + 2 * torch.eye(3, dtype=torch.float64)
    Am = der.function("diffusion_from_map")(L=Lm)
    torch.testing.assert_close(Am, torch.linalg.inv(Lm.T @ Lm))
    torch.testing.assert_close(der.function("metric_from_map")(L=Lm), Lm.T @ Lm)
    Wm = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(der.function("atoms_y")(W=Wm, A=Am, t=0.5), Wm @ Am)  # y = 2t A W


def test_an_indefinite_diffusion_matrix_keeps_the_hj_equation_and_stops_at_hopf_lax():
    spec = dataclasses.replace(SPEC, name="aniso-indefinite", symbols=tuple(
        dataclasses.replace(s, positive_definite=False) if s.name == "A" else s for s in SPEC.symbols))
    der = hjsym.derive(spec, cache=False)
    assert der.step("hj-equation").status == "derived" and der.step("hopf-cole-solve").status == "derived"
    step = der.step("hopf-lax")
    assert step.status == "failed" and "not declared positive definite" in step.reason and "A" in step.reason
    assert der.step("heat-kernel").status == "failed"
    fn = hjsym.derive("lse-aniso").function("hopf_lax")
    with pytest.raises(InputError, match="A is not positive definite"):
        fn(x=torch.zeros(1, 2, dtype=torch.float64), y=torch.zeros(3, 2, dtype=torch.float64), g=torch.zeros(3, dtype=torch.float64),
           A=torch.diag(torch.tensor([1.0, -2.0], dtype=torch.float64)), t=1.0)


def test_checks_pass_and_fail_on_perturbed_networks(aniso_report):
    assert_all_pass_and_controls_fail(aniso_report, ["identity", "pde_residual", "tropical_limit", "tropical_bound",
                                                     "tropical_bound_sharp", "hopf_lax", "hessian", "hessian_bound", "attribution"])


def test_a_user_module_is_checked():
    layer = AnisoLSELayer(3, 5, 0.4, generator=torch.Generator().manual_seed(3))
    report = hjsym.check("lse-aniso", module=layer, only=["identity", "hopf_lax"])
    assert report.passed and "cond(L)" in report.network


class NoMap(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear, self.eps = nn.Linear(2, 4, dtype=torch.float64), 0.5

    def forward(self, x):
        return self.eps * torch.logsumexp(self.linear(x) / self.eps, -1)


def test_modules_of_the_wrong_form_are_refused():
    with pytest.raises(ModuleFormError, match="bias-free"):
        read_aniso_lse(NoMap())
    singular = AnisoLSELayer(2, 4, 0.5)
    with torch.no_grad():
        singular.map.weight.copy_(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(InputError, match="singular"):
        read_aniso_lse(singular)


@pytest.mark.parametrize("change, message", [
    (dict(input_map="W"), "input_map 'W' is not a declared"),
    (dict(diffusion=None), "no diffusion matrix"),
])
def test_input_map_fields_are_validated(change, message):
    with pytest.raises(hjsym.SpecError, match=message):
        dataclasses.replace(SPEC, **change).validate()
