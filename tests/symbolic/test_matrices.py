"""Symmetric matrices and inverses in the index calculus, and their generated code."""

import pytest
import sympy as sp
import torch

from hjsym import InputError
from hjsym.codegen.generate import generate
from hjsym.codegen.runtime import logdet_spd, matrix_inverse, spd_inverse
from hjsym.ir import ArgSpec, FunctionSpec
from hjsym.symbolic.axes import DIM, bound_index, free_index
from hjsym.symbolic.calculus import canonical, index_sum, instantiate, laplacian, pdiff
from hjsym.symbolic.matrices import InverseBase, LogDet, SPDBase, SymmetricBase, inverse_of

i, i1, a = bound_index(DIM), bound_index(DIM, 1), bound_index(DIM, 2)
k, l, n = free_index(DIM), free_index(DIM, 1), free_index(DIM, 2)
A = SPDBase("A")
Ai = InverseBase(A)
L = sp.IndexedBase("L")
p, x = sp.IndexedBase("p"), sp.IndexedBase("x")
d = DIM.extent


def test_symmetric_indices_are_ordered():
    H = canonical(sp.Sum(sp.Sum(A[i, i1] * p[i] * p[i1], (i1, 1, d)), (i, 1, d)))
    assert pdiff(H, p[k]) == canonical(2 * sp.Sum(A[i, k] * p[i], (i, 1, d)))
    assert pdiff(pdiff(H, p[k]), p[l]) == 2 * A[k, l]
    assert canonical(A[l, k]) == A[k, l] and canonical(L[l, k]) == L[l, k]  # a general matrix keeps its order


@pytest.mark.parametrize("expr, expected", [
    (sp.Sum(A[k, i] * Ai[i, l], (i, 1, d)), sp.KroneckerDelta(k, l)),
    (sp.Sum(Ai[i, k] * A[l, i], (i, 1, d)), sp.KroneckerDelta(k, l)),  # symmetric: any orientation
    (sp.Sum(L[k, i] * InverseBase(L)[i, l], (i, 1, d)), sp.KroneckerDelta(k, l)),
    (sp.Sum(InverseBase(L)[k, i] * L[i, l], (i, 1, d)), sp.KroneckerDelta(k, l)),
    (sp.Sum(A[i, k] * sp.Sum(Ai[i, i1] * x[i1], (i1, 1, d)), (i, 1, d)), x[k]),  # through a nested sum
    (sp.Sum(A[k, i] * Ai[i, k], (k, 1, d), (i, 1, d)), d),  # tr(A A^-1) = d
])
def test_inverse_pairs_contract(expr, expected):
    assert canonical(expr) == expected


def test_a_general_matrix_does_not_contract_in_the_wrong_orientation():
    expr = canonical(sp.Sum(L[i, k] * InverseBase(L)[i, l], (i, 1, d)))  # (L^T L^-1), not the identity
    assert expr != sp.KroneckerDelta(k, l) and expr.has(L)


def test_inverse_of_map_times_metric_is_the_identity():
    A_of_L = canonical(sp.Sum(InverseBase(L)[k, a] * InverseBase(L)[l, a], (a, 1, d)))
    metric = canonical(sp.Sum(L[a, k] * L[a, l], (a, 1, d)))
    q = free_index(DIM, 3)
    prod = canonical(sp.Sum(instantiate(A_of_L, {l: q}) * instantiate(metric, {k: q, l: n}), (q, 1, d)))
    assert prod == sp.KroneckerDelta(k, n)


def test_metric_heat_kernel_residual_is_zero():
    eps, t = sp.Symbol("eps", positive=True), sp.Symbol("t", positive=True)
    quad = index_sum(index_sum(Ai[i, i1] * x[i] * x[i1], i1), i)
    K = sp.exp(-d / 2 * sp.log(4 * sp.pi * eps * t) - LogDet(A) / 2 - quad / (4 * eps * t))
    assert canonical(pdiff(K, t) - eps * laplacian(K, x, A)) == 0


def test_bases_print_and_pair():
    assert sp.sstr(Ai[k, l]) == "A^-1[k, l]" and inverse_of(Ai) == A and inverse_of(A) == Ai
    assert isinstance(A, SymmetricBase) and not isinstance(L, SymmetricBase)
    with pytest.raises(TypeError):
        InverseBase(Ai)


def test_generated_code_takes_the_matrix_and_inverts_it_once():
    expr = canonical(sp.Sum(Ai[i, i1] * x[i] * x[i1], (i, 1, d), (i1, 1, d)))
    f = generate(FunctionSpec("quad", expr, (ArgSpec("x", x, ("dim",), batched=True), ArgSpec("A", A, ("dim", "dim")))))
    assert f.arg_names == ("x", "A") and f.source.count("_rt.spd_inverse('A', A)") == 1
    M = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    xs = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(f(x=xs, A=M), torch.einsum("mi,ij,mj->m", xs, torch.linalg.inv(M), xs))


def test_runtime_matrix_helpers_name_the_problem():
    M = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(spd_inverse("A", M), torch.linalg.inv(M))
    torch.testing.assert_close(logdet_spd("A", M), torch.logdet(M))
    with pytest.raises(InputError, match="not positive definite .*smallest eigenvalue -1"):
        spd_inverse("A", torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)))
    with pytest.raises(InputError, match="not symmetric"):
        spd_inverse("A", torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64))
    with pytest.raises(InputError, match="singular"):
        matrix_inverse("L", torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(InputError, match="square"):
        spd_inverse("A", torch.zeros(2, 3, dtype=torch.float64))
