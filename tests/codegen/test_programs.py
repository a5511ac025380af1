"""Generated programs: named intermediates, several outputs, batch sums, contraction planning."""

import pytest
import sympy as sp
import torch

import hjsym
from hjsym import SpecError
from hjsym.codegen.generate import generate as generate_program
from hjsym.ir import ArgSpec, Let, Output, ProgramSpec
from hjsym.symbolic.axes import DIM, HIDDEN, bound_index, free_index

d, m = DIM.extent, HIDDEN.extent
i, mu = bound_index(DIM), bound_index(HIDDEN)
k, l, nu = free_index(DIM), free_index(DIM, 1), free_index(HIDDEN)
s, p, W1, W2, a, abar = (sp.IndexedBase(n) for n in ("s", "p", "W1", "W2", "a", "abar"))
ARGS = (ArgSpec("s", s, ("dim",), batched=True), ArgSpec("p", p, ("dim",), batched=True),
        ArgSpec("W1", W1, ("hidden", "dim")), ArgSpec("W2", W2, ("dim", "hidden")))


def _data(B=5, D=4, M=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"s": torch.randn(B, D, generator=g), "p": torch.randn(B, D, generator=g),
            "W1": torch.randn(M, D, generator=g), "W2": torch.randn(D, M, generator=g)}


def _program():
    lets = (Let(a, (mu,), sp.tanh(sp.Sum(W1[mu, i] * s[i], (i, 1, d)))),
            Let(abar, (mu,), (1 - a[mu] ** 2) * sp.Sum(W2[i, mu] * p[i], (i, 1, d))))
    outs = (Output("p_k", p[k] + sp.Sum(W1[mu, k] * abar[mu], (mu, 1, m)), (k,)),
            Output("d_W1", abar[nu] * s[k], (nu, k), batch_sum=True),
            Output("d_W2", p[k] * a[nu], (k, nu), batch_sum=True))
    return generate_program(ProgramSpec("resblock_adjoint", ARGS, lets, outs, "adjoint of one residual block"))


def test_a_program_computes_every_output_once_with_shared_intermediates():
    f = _program()
    x = _data()
    got = f(**x)
    assert f.outputs == ("p_k", "d_W1", "d_W2") and len(got) == 3
    sg = x["s"].clone().requires_grad_(True)
    W1g, W2g = x["W1"].clone().requires_grad_(True), x["W2"].clone().requires_grad_(True)
    out = (torch.tanh(sg @ W1g.T) @ W2g.T * x["p"]).sum()
    want = torch.autograd.grad(out, (sg, W1g, W2g))
    torch.testing.assert_close(got[0], x["p"] + want[0])
    torch.testing.assert_close(got[1], want[1])
    torch.testing.assert_close(got[2], want[2])
    # the batch sums are matrix products, the (batch, d, M) outer product is never formed
    assert "torch.einsum" not in f.source and f.source.count("torch.matmul") >= 2
    assert f.source.count("torch.tanh") == 1  # once: the checked function validates, then calls the unchecked body


def test_leading_batch_shapes_are_summed_over():
    f = _program()
    x = _data(B=6)
    flat = f(**x)
    stacked = f(s=x["s"].reshape(2, 3, 4), p=x["p"].reshape(2, 3, 4), W1=x["W1"], W2=x["W2"])
    assert stacked[0].shape == (2, 3, 4)
    torch.testing.assert_close(stacked[1], flat[1])


def test_unchecked_variant_agrees_and_checked_one_validates():
    f = _program()
    x = _data()
    for a_, b_ in zip(f(**x), f.unchecked(**x)):
        torch.testing.assert_close(a_, b_, rtol=0, atol=0)
    with pytest.raises(hjsym.InputError, match="inconsistent size d"):
        f(**{**x, "W1": torch.randn(3, 5)})


def test_a_trace_takes_the_diagonal():
    P = sp.IndexedBase("P")
    f = generate_program(ProgramSpec("tr", (ArgSpec("P", P, ("dim", "dim")),), (),
                                     (Output("t", sp.Sum(P[i, i], (i, 1, d)), ()),)))
    M = torch.randn(4, 4)
    torch.testing.assert_close(f(P=M), torch.trace(M))
    assert "torch.diagonal" in f.source


def test_a_sum_of_gate_products_is_one_matrix_product():
    U1, U2, g1, g2 = (sp.IndexedBase(n) for n in ("U1", "U2", "g1", "g2"))
    args = tuple(ArgSpec(n, b, ("dim", "dim")) for n, b in (("U1", U1), ("U2", U2))) + tuple(
        ArgSpec(n, b, ("dim",), batched=True) for n, b in (("g1", g1), ("g2", g2)))
    expr = sp.Sum(g1[i] * U1[i, k], (i, 1, d)) + sp.Sum(g2[i] * U2[i, k], (i, 1, d))
    f = generate_program(ProgramSpec("two", args, (), (Output("o", expr, (k,)),)))
    gen = torch.Generator().manual_seed(1)
    U1_, U2_, G1, G2 = torch.randn(4, 4, generator=gen), torch.randn(4, 4, generator=gen), torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen)
    torch.testing.assert_close(f(U1=U1_, U2=U2_, g1=G1, g2=G2), G1 @ U1_ + G2 @ U2_)
    assert "torch.cat" in f.source


def test_declared_output_indices_must_match():
    with pytest.raises(SpecError, match="free indices"):
        generate_program(ProgramSpec("bad", ARGS[:1], (), (Output("o", s[k], (l,)),)))
