"""Spec strings are parsed without eval: plain mathematics in, SymPy out, anything else refused."""

import builtins

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from hjsym import SpecError
from hjsym.spec.parse import FUNCTIONS, Namespace, parse
from hjsym.symbolic.axes import DIM
from hjsym.symbolic.calculus import canonical
from hjsym.symbolic.reductions import LogSumExp

d = DIM.extent
x, p, W, b, A = (sp.IndexedBase(n) for n in "x p W b A".split())
eps = sp.Symbol("eps", positive=True)
NS = Namespace({"eps": eps}, {"x": (x, ("dim",)), "p": (p, ("dim",)), "W": (W, ("atom", "dim")), "b": (b, ("atom",)), "A": (A, ("dim", "dim"))})


def test_parses_the_lse_layer():
    e = parse("eps * lse((dot(W, x) + b) / eps)", NS, "network")
    assert len(e.atoms(LogSumExp)) == 1
    scalars = {s.name for s in e.free_symbols if isinstance(s, sp.Symbol)}
    assert scalars <= {"eps", "d", "N", "x", "W", "b"}  # IndexedBase labels are symbols too
    assert {base.label.name for base in e.atoms(sp.IndexedBase)} == {"x", "W", "b"}


def test_norm2_sum_dot_and_power_spellings_agree():
    forms = ["norm2(p)", "sum(p**2)", "sum(p^2)", "dot(p, p)"]
    values = {canonical(parse(f, NS, "H")) for f in forms}
    assert len(values) == 1


def test_quad_form():
    e = parse("quad(p, A)", NS, "H")
    i, i1 = (sp.Idx(sp.Symbol(n, integer=True), (1, d)) for n in ("i", "i_1"))
    assert e == canonical(sp.Sum(A[i, i1] * p[i] * p[i1], (i, 1, d), (i1, 1, d)))
    with pytest.raises(SpecError, match="not a declared"):
        parse("quad(W, A)", NS, "H")


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('echo pwned')", "only plain function names"),
        ("p.__class__", "Attribute"),
        ("(lambda: 1)()", "only plain function names"),
        ("x[0]", "Subscript"),
        ("'abc'", "not a number"),
        ("foo(p)", "unknown function"),
        ("q + 1", "unknown name 'q'"),
        ("exp(p, p)", "takes 1 argument"),
        ("lse(p, dim=1)", "keyword"),
        ("p ** 100000", "out of range"),
        ("p +", "not a valid expression"),
        ("p @ p", "needs a matrix"),
        ("lse(eps)", "no atom axis"),
        ("True", "not a number"),
    ],
)
def test_refuses_anything_but_mathematics(text, message):
    with pytest.raises(SpecError, match=message) as info:
        parse(text, NS, "hamiltonian")
    assert "use numbers, declared names" in info.value.fix or "write plain mathematics" in info.value.fix or "reduce" in info.value.fix


def test_never_calls_eval(monkeypatch):
    # sympify of a string ends in builtins.eval; parsing must never get there
    def boom(*a, **k):
        raise AssertionError("eval/exec was called")

    text = "norm2(p) + eps * sum(max(p, 0) * exp(-p))"
    parse(text, NS, "H")  # SymPy imports some modules lazily (by exec): import them first
    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)
    assert parse(text, NS, "H") is not None


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_()[]{}.,:'\"+-*/^%@!=<> 0123456789", max_size=40))
def test_arbitrary_text_is_parsed_or_refused(text):
    try:
        parse(text, NS, "field")
    except SpecError:
        pass


def test_every_listed_function_is_documented():
    assert {"lse", "norm2", "dot", "quad", "sum", "exp", "log", "amax"} <= set(FUNCTIONS)
