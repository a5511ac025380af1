"""The Gibbs passes: attention as a gradient, entropy, the characteristic step, the convex view, the semigroup."""

import math

import pytest
import sympy as sp
import torch

import hjsym
from hjsym import SpecError
from hjsym.architectures.attention import SPEC
from hjsym.symbolic.axes import ATOM, DIM, VALUE, bound_index, free_index
from hjsym.symbolic.calculus import canonical
from hjsym.symbolic.reductions import GibbsMean, gibbs_mean, gibbs_weight

d, N = DIM.extent, ATOM.extent
i, j = bound_index(DIM), bound_index(ATOM)
k, m, c = free_index(DIM), free_index(ATOM), free_index(VALUE)
x, K, b, V, y = (sp.IndexedBase(n) for n in "x K b V y".split())
eps = sp.Symbol("eps", positive=True)
Z = (sp.Sum(K[j, i] * x[i], (i, 1, d)) + b[j]) / eps


@pytest.fixture(scope="module")
def der():
    return hjsym.derive("attention")


def test_a_sum_against_a_gibbs_weight_is_a_gibbs_average():
    assert canonical(sp.Sum(gibbs_weight(Z, j, m) * V[m, c], (m, 1, N))) == canonical(gibbs_mean(V[j, c], Z, j))


@pytest.mark.parametrize("step", ["attention", "entropy", "characteristic-step"])
def test_attention_steps_are_verified(der, step):
    assert der.step(step).status == "verified"


def test_attention_results(der):
    r = der.results
    assert r["attention"] == canonical(gibbs_mean(V[j, c], Z, j))
    jac = r["attention_jacobian"]
    assert jac.atoms(GibbsMean) and canonical(jac - (gibbs_mean(K[j, k] * V[j, c], Z, j) - gibbs_mean(K[j, k], Z, j) * gibbs_mean(V[j, c], Z, j)) / eps) == 0


def test_generated_attention_matches_softmax_and_streams(der):
    gen = torch.Generator().manual_seed(0)
    q, keys = torch.randn(7, 4, generator=gen, dtype=torch.float64), torch.randn(33, 4, generator=gen, dtype=torch.float64)
    vals, offs = torch.randn(33, 3, generator=gen, dtype=torch.float64), torch.randn(33, generator=gen, dtype=torch.float64)
    att = der.function("attention")
    expected = torch.softmax((q @ keys.T + offs) / 2.0, -1) @ vals
    torch.testing.assert_close(att(x=q, eps=2.0, K=keys, b=offs, V=vals), expected)
    # chunks of a few atoms: the partial (log-sum-exp, mean) pairs merge exactly
    torch.testing.assert_close(att(x=q, eps=2.0, K=keys, b=offs, V=vals, max_chunk_bytes=8 * 7 * 5), expected)
    assert "_rt.gibbs_chunk" in att.source


def test_entropy_and_characteristic_foot(der):
    gen = torch.Generator().manual_seed(1)
    q, keys = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.randn(6, 3, generator=gen, dtype=torch.float64)
    pi = torch.softmax(q @ keys.T / 0.7, -1)
    H = der.function("entropy")(x=q, eps=0.7, K=keys, b=torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(H, -(pi * pi.log()).sum(-1))
    assert float(H.max()) <= math.log(6) and float(H.min()) >= 0
    foot = der.function("characteristic_foot")(x=q, eps=1.0, y=keys, g=torch.zeros(6, dtype=torch.float64), t=0.5)
    w = torch.softmax(-torch.cdist(q, keys) ** 2 / 2.0, -1)
    torch.testing.assert_close(foot, w @ keys)


def test_convex_view_and_semigroup_are_verified():
    der = hjsym.derive("diagram")
    assert der.step("convex-view").status == "verified" and der.step("semigroup").status == "verified"
    assert der.step("diagram").status == "stated" and len(der.step("diagram").equations) == 9
    assert "log_kernel" in der.functions


def test_spec_extension_fields_are_validated():
    import dataclasses

    with pytest.raises(SpecError, match="unknown derivation pass.*'entropie'.*use some of entropy"):
        hjsym.derive(dataclasses.replace(SPEC, name="attention-typo", passes=("entropie",)), cache=False)
    with pytest.raises(SpecError, match="values 'b' is not a declared tensor"):
        dataclasses.replace(SPEC, values="b").validate()
