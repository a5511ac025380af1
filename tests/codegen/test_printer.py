"""Torch code generation: every printer mapping, shapes, dtypes, streaming over atoms, errors."""

import pytest
import sympy as sp
import torch
from helpers import lse_inputs, reference_f

from hjsym import InputError, SpecError
from hjsym.codegen.generate import generate
from hjsym.codegen.printer import HJTorchPrinter
from hjsym.ir import ArgSpec, FunctionSpec
from hjsym.symbolic.axes import ATOM, DIM, bound_index, free_index
from hjsym.symbolic.calculus import canonical, pdiff
from hjsym.symbolic.reductions import ReduceMax, ReduceMin, TopGap, gibbs_mean, gibbs_weight, lse

d, N = DIM.extent, ATOM.extent
i, j = bound_index(DIM), bound_index(ATOM)
k, l, m = free_index(DIM), free_index(DIM, 1), free_index(ATOM)
x, W, b = (sp.IndexedBase(n) for n in "xWb")
eps = sp.Symbol("eps", positive=True)
ARGS = {
    "x": ArgSpec("x", x, ("dim",), batched=True),
    "W": ArgSpec("W", W, ("atom", "dim")),
    "b": ArgSpec("b", b, ("atom",)),
    "eps": ArgSpec("eps", eps, (), positive=True),
}
LOGITS = (sp.Sum(W[j, i] * x[i], (i, 1, d)) + b[j]) / eps


def gen(expr, names=("x", "W", "b", "eps"), out=()):
    expr = canonical(expr)
    used = [ARGS[n] for n in names if expr.has(ARGS[n].symbol)]
    return generate(FunctionSpec("fn", expr, tuple(used), out))


@pytest.fixture
def data():
    return lse_inputs(7, 5, 3, seed=1)


def test_logsumexp_maps_to_a_stable_logsumexp(data):
    x_, W_, b_ = data
    f = gen(eps * lse(LOGITS, j))
    # a tile of logits the function owns is shifted, exponentiated and summed in place
    assert "_rt.logsumexp_(torch.addmm(" in f.source and "torch.exp(" not in f.source
    torch.testing.assert_close(f(x=x_, W=W_, b=b_, eps=0.3), reference_f(x_, W_, b_, 0.3), rtol=0, atol=1e-13)
    # logits of order 1e4: a literal log(sum(exp)) would overflow
    out = f(x=x_, W=W_ * 1e3, b=b_ * 1e3, eps=1e-1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, reference_f(x_, W_ * 1e3, b_ * 1e3, 1e-1), rtol=1e-14, atol=0)


def test_sum_of_a_product_is_one_matrix_product(data):
    x_, W_, _ = data
    f = gen(sp.Sum(W[m, i] * x[i], (i, 1, d)), out=(m,))
    body = f.source.split('"""', 2)[2]
    # one contraction, never a (batch, N, d) temporary
    assert body.count("torch.matmul(") + body.count("torch.einsum(") == 1
    assert "torch.matmul(x, W.transpose(0, 1))" in body
    torch.testing.assert_close(f(x=x_, W=W_), x_ @ W_.T)


def test_sum_of_one_tensor_is_torch_sum(data):
    x_, _, _ = data
    f = gen(sp.Sum(sp.exp(x[i]), (i, 1, d)))
    assert "torch.sum(" in f.source
    torch.testing.assert_close(f(x=x_), torch.exp(x_).sum(-1))


def test_gibbs_mean_is_softmax_contracted(data):
    x_, W_, b_ = data
    f = gen(gibbs_mean(W[j, k], LOGITS, j), out=(k,))
    p = torch.softmax((x_ @ W_.T + b_) / 0.7, -1)
    torch.testing.assert_close(f(x=x_, W=W_, b=b_, eps=0.7), p @ W_)


def test_gibbs_weight_is_softmax(data):
    x_, W_, b_ = data
    f = gen(gibbs_weight(LOGITS, j, m), out=(m,))
    torch.testing.assert_close(f(x=x_, W=W_, b=b_, eps=0.7), torch.softmax((x_ @ W_.T + b_) / 0.7, -1))


def test_tropical_reductions(data):
    x_, W_, b_ = data
    z = x_ @ W_.T + b_
    a = sp.Sum(W[j, i] * x[i], (i, 1, d)) + b[j]
    fmax, fmin, fgap = gen(ReduceMax(a, (j, 1, N))), gen(ReduceMin(a, (j, 1, N))), gen(TopGap(a, (j, 1, N)))
    assert "torch.amax" in fmax.source and "torch.amin" in fmin.source and "topk" in fgap.source + _runtime_source()
    torch.testing.assert_close(fmax(x=x_, W=W_, b=b_), z.amax(-1))
    torch.testing.assert_close(fmin(x=x_, W=W_, b=b_), z.amin(-1))
    top = z.topk(2, -1).values
    torch.testing.assert_close(fgap(x=x_, W=W_, b=b_), top[:, 0] - top[:, 1])


def _runtime_source():
    import inspect

    from hjsym.codegen import runtime as _runtime

    return inspect.getsource(_runtime)


def test_elementwise_max_min_are_not_reductions(data):
    x_, _, _ = data
    f = gen(sp.Sum(sp.Max(x[i], 0) + sp.Min(x[i], 0) ** 2, (i, 1, d)))
    assert "torch.maximum" in f.source and "torch.minimum" in f.source
    torch.testing.assert_close(f(x=x_), x_.clamp(min=0).sum(-1) + (x_.clamp(max=0) ** 2).sum(-1))


def test_printer_mappings_standalone():
    P = HJTorchPrinter()
    A = sp.MatrixSymbol("A", 3, 3)
    assert P.doprint(sp.Transpose(A)) == "A.transpose(-2, -1)"  # batch-safe, valid for square matrices
    batch = torch.randn(4, 3, 3)
    torch.testing.assert_close(eval(P.doprint(sp.Transpose(A)), {"A": batch}), batch.transpose(-2, -1))  # noqa: S307 - our own printed code
    a, bb = sp.symbols("a b")
    assert P.doprint(sp.Max(a, bb)) == "torch.maximum(a, b)"
    assert P.doprint(sp.Min(a, bb)) == "torch.minimum(a, b)"
    assert P.doprint(sp.Rational(1, 4) * a) in ("(0.25) * a", "0.25 * a")
    assert P.doprint(sp.pi) == repr(float(sp.pi))
    assert P.doprint(sp.log(2)) == repr(float(sp.log(2)))
    assert P.doprint(sp.sqrt(a)) == "torch.sqrt(a)"
    assert P.doprint(a**2) == "torch.square(a)"


def test_kronecker_delta_is_eye(data):
    x_, _, _ = data
    f = gen(sp.KroneckerDelta(k, l) * sp.Sum(x[i] ** 2, (i, 1, d)), out=(k, l))
    assert "torch.eye" in f.source
    torch.testing.assert_close(f(x=x_), (x_ ** 2).sum(-1)[:, None, None] * torch.eye(3))


def test_piecewise_is_where(data):
    x_, _, _ = data
    f = gen(sp.Piecewise((x[k], x[k] > 0), (0, True)), out=(k,))
    assert "torch.where" in f.source
    torch.testing.assert_close(f(x=x_), x_.clamp(min=0))


def test_hessian_has_declared_output_order(data):
    x_, W_, b_ = data
    H = pdiff(pdiff(eps * lse(LOGITS, j), x[k]), x[l])
    f = gen(H, out=(k, l))
    out = f(x=x_, W=W_, b=b_, eps=0.5)
    assert out.shape == (7, 3, 3)
    torch.testing.assert_close(out, out.transpose(-1, -2))


def test_common_subexpressions_are_computed_once(data):
    f = gen(gibbs_mean(W[j, k], LOGITS, j) * gibbs_mean(W[j, l], LOGITS, j), out=(k, l))
    assert f.source.count("_rt.gibbs_chunk(") == 1  # one softmax shared by both averages


def test_batch_dims_dtype_and_device_follow_inputs(data):
    x_, W_, b_ = data
    f = gen(eps * lse(LOGITS, j))
    out = f(x=x_.reshape(7, 1, 3).expand(7, 2, 3), W=W_, b=b_, eps=0.3)
    assert out.shape == (7, 2)
    out32 = f(x=x_.float(), W=W_.float(), b=b_.float(), eps=0.3)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), reference_f(x_, W_, b_, 0.3), rtol=1e-5, atol=1e-5)


def test_streaming_over_atoms_matches_one_pass():
    x_, W_, b_ = lse_inputs(9, 50, 4, seed=3)
    for expr, out in [(eps * lse(LOGITS, j), ()), (pdiff(pdiff(eps * lse(LOGITS, j), x[k]), x[l]), (k, l)),
                      (TopGap(sp.Sum(W[j, i] * x[i], (i, 1, d)) + b[j], (j, 1, N)), ())]:
        f = gen(expr, out=out)
        args = {k_: v for k_, v in {"x": x_, "W": W_, "b": b_, "eps": 0.2}.items() if k_ in f.arg_names}
        whole = f(**args)
        chunked = f(**args, max_chunk_bytes=9 * 8 * 7)  # 7 atoms a chunk
        torch.testing.assert_close(chunked, whole, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eps": -1.0}, "must be > 0"),
        ({"eps": float("nan")}, "not finite"),
        ({"W": torch.zeros(5, 4)}, "inconsistent size d"),
        ({"b": torch.zeros(6)}, "inconsistent size N"),
        ({"x": torch.zeros(())}, "expected \\(\\*batch"),
        ({"W": torch.zeros(5, 3, dtype=torch.float32)}, "cast every tensor"),
        ({"b": torch.zeros(5, dtype=torch.long)}, "integer dtype"),
    ],
)
def test_bad_arguments_raise_clear_errors(data, kwargs, message):
    x_, W_, b_ = data
    f = gen(eps * lse(LOGITS, j))
    args = {"x": x_[:, :3], "W": W_, "b": b_, "eps": 0.5} | kwargs
    with pytest.raises(InputError, match=message):
        f(**args)


def test_generation_refuses_unbound_symbols_and_wrong_outputs():
    with pytest.raises(SpecError, match="not bound"):
        gen(eps * lse(LOGITS, j) + sp.Symbol("sigma"))
    with pytest.raises(SpecError, match="free indices"):
        gen(gibbs_mean(W[j, k], LOGITS, j), out=())
    with pytest.raises(SpecError, match="does not occur"):
        generate(FunctionSpec("fn", canonical(eps * b[m]), (ARGS["eps"], ARGS["b"], ARGS["x"]), (m,)))


def test_signature_is_documented_as_data_and_docstring(lse_fns):
    u = lse_fns["u"]
    assert [s["name"] for s in u.signature] == ["x", "eps", "y", "g", "t"]
    assert u.signature[0]["shape"] == "(*batch, d)" and u.returns == "(*batch)"
    assert "x: (*batch, d)" in u.__doc__ and "Returns:" in u.__doc__


def test_a_function_loaded_from_its_data_compiles_on_first_call(lse_fns):
    """The cache holds source and signature; a loaded function keeps its docstring and compiles when first called."""
    import inspect

    from hjsym.codegen.generated import GeneratedFunction

    for f in lse_fns.values():
        loaded = GeneratedFunction.from_dict(f.to_dict())
        assert loaded._fn is None and loaded.__doc__ == inspect.getdoc(f.fn)  # read from the source, not compiled
    u = GeneratedFunction.from_dict(lse_fns["u"].to_dict())
    x_, W_, b_ = lse_inputs(4, 3, 2, seed=2)
    y, g = lse_fns["atoms_y"](W=W_, t=1.0), lse_fns["atoms_g"](W=W_, b=b_, t=1.0)
    torch.testing.assert_close(u(x=x_, eps=0.3, y=y, g=g, t=1.0), lse_fns["u"](x=x_, eps=0.3, y=y, g=g, t=1.0), rtol=0, atol=0)
    assert u._fn is not None
