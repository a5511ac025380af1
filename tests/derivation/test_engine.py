"""The derivation engine: known closed forms for the LSE layer and for other Hamiltonians."""

import dataclasses
import json

import networkx as nx
import pytest
import sympy as sp

import hjsym
from hjsym.architectures.lse import SPEC
from hjsym.symbolic.axes import ATOM, DIM, bound_index, free_index
from hjsym.symbolic.calculus import canonical
from hjsym.symbolic.jets import Dt, Dxx
from hjsym.symbolic.reductions import ReduceMax, ReduceMin, lse

d, N = DIM.extent, ATOM.extent
i, j = bound_index(DIM), bound_index(ATOM)
k, m = free_index(DIM), free_index(ATOM)
x, y, g, W, b, q = (sp.IndexedBase(n) for n in "x y g W b q".split())
eps, t = sp.Symbol("eps", positive=True), sp.Symbol("t", positive=True)


def status(der, step_id):
    return der.step(step_id).status


def test_every_lse_step_is_derived_or_verified(lse_derivation):
    statuses = {s.id: s.status for s in lse_derivation.steps}
    assert "failed" not in statuses.values()
    for sid in ("heat-kernel", "residual", "identity", "hessian", "tropical-limit", "relu"):
        assert statuses[sid] == "verified", sid
    assert lse_derivation.classification.kind == "exact" and lse_derivation.classification.gap == 0


def test_hopf_cole_is_found_not_assumed(lse_derivation):
    r = lse_derivation.results
    assert r["hopf_cole_c"] == eps
    w = sp.Symbol("w", positive=True)
    assert r["linear_equation"] == sp.Eq(Dt(w), eps * sp.Sum(Dxx(w, i, i), (i, 1, d)))


def test_legendre_and_hopf_lax(lse_derivation):
    r = lse_derivation.results
    assert r["lagrangian"] == canonical(sp.Sum(q[i] ** 2, (i, 1, d)) / 4)
    assert r["hopf_lax"] == canonical(ReduceMin(g[j] + sp.Sum((x[i] - y[j, i]) ** 2, (i, 1, d)) / (4 * t), (j, 1, N)))


def test_atomic_solution_and_residual(lse_derivation):
    r = lse_derivation.results
    u = canonical(-eps * lse(-(g[j] + sp.Sum((x[i] - y[j, i]) ** 2, (i, 1, d)) / (4 * t)) / eps, j))
    assert r["u"] == u
    assert r["residual"] == -d * eps / (2 * t)
    assert r["residual_exact"] == 0


def test_parameter_map_and_identity(lse_derivation):
    r = lse_derivation.results
    assert r["W_of_atoms"] == y[m, k] / (2 * t)
    assert r["b_of_atoms"] == canonical(-g[m] - sp.Sum(y[m, i] ** 2, (i, 1, d)) / (4 * t))
    assert r["y_of_weights"] == 2 * t * W[m, k]
    assert r["g_of_weights"] == canonical(-b[m] - t * sp.Sum(W[m, i] ** 2, (i, 1, d)))
    assert r["identity_rhs"] == canonical(sp.Sum(x[i] ** 2, (i, 1, d)) / (4 * t))


def test_curvature_attribution_and_tropical_limit(lse_derivation):
    r = lse_derivation.results
    assert r["hessian_bound"] == canonical(ReduceMax(sp.Sum(W[j, i] ** 2, (i, 1, d)), (j, 1, N)) / eps)
    assert r["f0"] == canonical(ReduceMax(sp.Sum(W[j, i] * x[i], (i, 1, d)) + b[j], (j, 1, N)))
    assert r["tropical_bound"] == eps * sp.log(N)
    assert r["u0"] == r["hopf_lax"]
    xs = sp.Symbol("x", real=True)
    assert r["relu_f0"] == sp.Max(0, xs)


def spec_with(hamiltonian, viscosity="eps", name="test-h"):
    return dataclasses.replace(SPEC, name=name, hamiltonian=hamiltonian, viscosity=viscosity, network=SPEC.network)


@pytest.mark.parametrize("hamiltonian, viscosity, c", [("2 * norm2(p)", "eps", eps / 2), ("norm2(p)", "2 * eps", 2 * eps), ("norm2(p) / 2", "eps", 2 * eps)])
def test_hopf_cole_constant_for_other_quadratic_hamiltonians(hamiltonian, viscosity, c):
    der = hjsym.derive(spec_with(hamiltonian, viscosity), cache=False)
    assert der.results["hopf_cole_c"] == c
    assert status(der, "residual") == "verified"


def test_quartic_hamiltonian_does_not_linearise():
    der = hjsym.derive(spec_with("norm2(p)**2"), cache=False)
    step = der.step("hopf-cole-solve")
    assert step.status == "failed" and "no constant $c$" in step.reason
    leftover = der.results["hopf_cole_leftover"]
    assert leftover != 0 and leftover.has(sp.Symbol("w", positive=True))
    assert der.classification.kind == "open" and der.classification.gap == leftover


def test_inviscid_equation_does_not_linearise():
    der = hjsym.derive(spec_with("norm2(p)", viscosity="0"), cache=False)
    assert der.step("hopf-cole-solve").status == "failed"


def test_graph_is_acyclic_and_follows_uses(lse_derivation):
    graph = lse_derivation.graph()
    assert nx.is_directed_acyclic_graph(graph)
    assert graph.has_edge("hj-equation", "hopf-cole-ansatz") and graph.has_edge("parameter-map", "identity")
    assert set(graph.nodes) == {s.id for s in lse_derivation.steps}


def test_renderings(lse_derivation):
    data = lse_derivation.to_dict()
    json.dumps(data)
    assert data["classification"]["kind"] == "exact"
    text = lse_derivation.text()
    assert "(1) Viscous Hamilton-Jacobi equation" in text and "because:" in text
    tex = hjsym.latex_fragment(lse_derivation)
    assert r"\label{eq:lse:identity:1}" in tex and r"\tag{" in tex


def test_function_lookup_errors(lse_derivation):
    with pytest.raises(hjsym.InputError, match="use one of"):
        lse_derivation.function("nope")


def test_derivation_is_cached_by_spec(lse_derivation):
    again = hjsym.derive("lse")
    assert again.results["u"] == lse_derivation.results["u"]
    from hjsym.codegen.pipeline import cache_key

    assert cache_key(spec_with("2 * norm2(p)")) != cache_key(SPEC)
