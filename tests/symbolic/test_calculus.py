"""The index calculus: canonical form rules and derivative rules, against known closed forms."""

import pickle

import pytest
import sympy as sp

from hjsym.symbolic.axes import ATOM, DIM, axis_of, bound_index, free_index
from hjsym.symbolic.calculus import canonical, free_indices, index_sum, instantiate, laplacian, pdiff, substitute_indexed
from hjsym.symbolic.reductions import (
    GibbsMean,
    GibbsWeight,
    LogSumExp,
    ReduceMax,
    ReduceMin,
    TopGap,
    gibbs_mean,
    gibbs_weight,
    lse,
)

d, N = DIM.extent, ATOM.extent
i, i1 = bound_index(DIM), bound_index(DIM, 1)
j = bound_index(ATOM)
k, l = free_index(DIM), free_index(DIM, 1)
m = free_index(ATOM)
x, y, W, b, g = (sp.IndexedBase(n) for n in "x y W b g".split())
eps, t, c = sp.symbols("epsilon t c", positive=True)


def lse_layer():
    return eps * lse((sp.Sum(W[j, i] * x[i], (i, 1, d)) + b[j]) / eps, j)


def test_axes_of_indices():
    assert axis_of(i) is DIM and axis_of(m) is ATOM
    with pytest.raises(TypeError):
        axis_of(sp.Symbol("i"))


def test_sum_is_linear_and_constants_come_out():
    e = canonical(sp.Sum(c * x[i] + 3 * y[j, i], (i, 1, d)))
    assert e == c * sp.Sum(x[i], (i, 1, d)) + 3 * sp.Sum(y[j, i], (i, 1, d))
    assert canonical(sp.Sum(c, (i, 1, d))) == c * d


def test_delta_contracts():
    assert canonical(sp.Sum(sp.KroneckerDelta(i, k) * x[i] * y[j, i], (i, 1, d))) == x[k] * y[j, k]


def test_alpha_equivalent_sums_cancel():
    e = sp.Sum(x[i] ** 2, (i, 1, d)) - sp.Sum(x[k] ** 2, (k, 1, d))
    assert canonical(e) == 0


def test_gibbs_mean_is_linear_and_normalised():
    z = b[j] / eps
    assert canonical(gibbs_mean(sp.S.One, z, j)) == 1
    assert canonical(gibbs_mean(c * W[j, k] + x[k], z, j)) == c * gibbs_mean(W[j, k], z, j) + x[k]


def test_gibbs_mean_of_delta_is_a_weight():
    z = b[j] / eps
    assert canonical(gibbs_mean(sp.KroneckerDelta(j, m) * W[j, k], z, j)) == gibbs_weight(z, j, m) * W[m, k]


def test_softmax_logits_are_shift_invariant():
    z = b[j] / eps
    assert canonical(gibbs_mean(W[j, k], z + x[k], j)) == canonical(gibbs_mean(W[j, k], z, j))


def test_lse_shift_equivariance():
    assert canonical(lse(b[j] + c, j)) == LogSumExp(b[j], (j, 1, N)) + c
    assert canonical(lse(c, j)) == c + sp.log(N)


def test_max_min_rules():
    assert canonical(ReduceMax(b[j] + c, (j, 1, N))) == ReduceMax(b[j], (j, 1, N)) + c
    assert canonical(ReduceMax(eps * b[j], (j, 1, N))) == eps * ReduceMax(b[j], (j, 1, N))
    # max of negatives is minus the min
    assert canonical(ReduceMax(-b[j], (j, 1, N))) == -ReduceMin(b[j], (j, 1, N))
    assert canonical(TopGap(b[j] + c, (j, 1, N))) == TopGap(b[j], (j, 1, N))


def test_canonical_is_idempotent():
    f = lse_layer()
    e = canonical(pdiff(pdiff(f, x[k]), x[l]))
    assert canonical(e) == e


def test_gradient_of_lse_layer_is_a_gibbs_average():
    z = canonical((sp.Sum(W[j, i] * x[i], (i, 1, d)) + b[j]) / eps)
    assert pdiff(lse_layer(), x[k]) == gibbs_mean(W[j, k], z, j)


def test_hessian_of_lse_layer_is_a_covariance():
    z = canonical((sp.Sum(W[j, i] * x[i], (i, 1, d)) + b[j]) / eps)
    H = pdiff(pdiff(lse_layer(), x[k]), x[l])
    cov = gibbs_mean(W[j, k] * W[j, l], z, j) - gibbs_mean(W[j, k], z, j) * gibbs_mean(W[j, l], z, j)
    assert canonical(H - cov / eps) == 0


def test_derivative_wrt_offset_is_the_gibbs_weight():
    z = canonical((sp.Sum(W[j, i] * x[i], (i, 1, d)) + b[j]) / eps)
    assert pdiff(lse_layer(), b[m]) == gibbs_weight(z, j, m)


def test_gibbs_weight_derivative():
    z = b[j] * x[k] / eps
    pi = gibbs_weight(z, j, m)
    # d pi_m / d x_k = pi_m (dz_m - E[dz])
    expected = pi * (b[m] / eps - gibbs_mean(b[j] / eps, z, j))
    assert canonical(pdiff(pi, x[k]) - expected) == 0


def test_hopf_cole_residual_closed_form():
    u = -eps * lse(-(g[j] + sp.Sum((x[i] - y[j, i]) ** 2, (i, 1, d)) / (4 * t)) / eps, j)
    gk = pdiff(u, x[k])
    res = pdiff(u, t) + index_sum(gk ** 2, k) - eps * laplacian(u, x)
    assert canonical(res) == -d * eps / (2 * t)


def test_laplacian_of_quadratic():
    assert laplacian(index_sum(x[i] ** 2, i), x) == 2 * d


def test_substitution_is_capture_free():
    # template with a bound i substituted where the context binds i as well
    template = sp.Sum(W[k, i] * x[i], (i, 1, d))  # free k
    expr = sp.Sum(y[j, i] * sp.IndexedBase("p")[i], (i, 1, d))
    out = substitute_indexed(expr, sp.IndexedBase("p"), template, (k,))
    # sum_i y_ji sum_i' W_i i' x_i' : the two sums must stay distinct
    expected = canonical(sp.Sum(y[j, i] * sp.Sum(W[i, i1] * x[i1], (i1, 1, d)), (i, 1, d)))
    assert out == expected


def test_instantiate_renames_binders():
    e = instantiate(sp.Sum(W[k, i] * x[i], (i, 1, d)), {k: i})
    assert i in free_indices(e)  # the new free i is not captured by the sum
    assert canonical(e) == canonical(sp.Sum(W[i, i1] * x[i1], (i1, 1, d)))


def test_nodes_pickle_and_free_indices():
    nodes = [lse_layer(), gibbs_mean(W[j, k], b[j], j), gibbs_weight(b[j], j, m), ReduceMax(b[j], (j, 1, N)),
             ReduceMin(b[j], (j, 1, N)), TopGap(b[j], (j, 1, N))]
    for n in nodes:
        assert pickle.loads(pickle.dumps(n)) == n
    assert free_indices(nodes[1]) == {k}
    assert free_indices(nodes[2]) == {m}
    assert isinstance(nodes[1], GibbsMean) and isinstance(nodes[2], GibbsWeight)
