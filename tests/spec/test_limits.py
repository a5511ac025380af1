"""Parsing has a cost bound: every hostile string is a SpecError naming the problem within a second, never a hang or a crash."""

import dataclasses
import time

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hjsym import SpecError
from hjsym.spec.limits import MAX_DEPTH, MAX_NODES
from hjsym.spec.parse import FUNCTIONS, Namespace, parse
from hjsym.spec.registry import get

x, p, W, b = (sp.IndexedBase(n) for n in "x p W b".split())
eps = sp.Symbol("eps", positive=True)
NS = Namespace({"eps": eps}, {"x": (x, ("dim",)), "p": (p, ("dim",)), "W": (W, ("atom", "dim")), "b": (b, ("atom",))})

#: (spec string, what the error must name): the audit's strings first
HOSTILE = [
    ("((((((9**64)**64)**64)**64)**64)**64) * norm2(p)", "overflows"),
    ("exp(exp(exp(1000))) * norm2(p)", "overflows"),
    ("exp(" * 190 + "norm2(p)" + ")" * 190, "nested more than"),
    ("-" * 1990 + "norm2(p)", "nested more than"),
    ("norm2(p) / 0", "division by zero"),
    ("\uff4e\uff4f\uff52\uff4d\uff12(p)", "NFKC"),  # fullwidth norm2
    ("norm2(p) * 1e400", "overflows"),
    ("norm2(p) * " + "9" * 400, "overflows"),
    ("norm2(p) * log(0)", "domain"),
    ("norm2(p) * sqrt(-1)", "domain"),
    ("norm2(p) * 0 ** -1", "division by zero"),
    ("norm2(p) / (eps - eps)", "not finite"),
    ("norm2(p) * (-8) ** 0.5", "negative number"),
    ("norm2(p) ** 64 ** 2", "exponent"),
    ("((norm2(p) ** 64) ** 64) ** 64", "degree"),
    ("norm2(p) * 2 ** -64 ** 64", "exponent"),
    ("norm2(p) * " + "-(" * 40 + "eps" + ")" * 40, "nested more than"),
    ("+".join(["eps"] * 450), "terms and operations"),
    ("norm2(p)" + " + 1" * 700, "characters long"),
    ("norm2(\u0440)", "non-ASCII"),  # Cyrillic er, looks like p
    ("norm2(p)\u00a0+ 1", "non-ASCII"),  # no-break space
    ("norm2(p) * \uff12", "NFKC"),  # fullwidth digit
    ("norm2(p)\x00", "not a valid expression"),
    ("exp(exp(exp(exp(exp(9))))) * norm2(p)", "overflows"),
    ("norm2(p) * cosh(1000)", "overflows"),
    ("norm2(p) ** (1/0)", "division by zero"),
    ("__import__('os').system('true')", "only plain function names"),
]


@pytest.mark.parametrize("text, message", HOSTILE, ids=[f"hostile-{n}" for n in range(len(HOSTILE))])
def test_every_hostile_spec_string_is_a_spec_error_within_a_second(text, message):
    spec = dataclasses.replace(get("lse").spec, hamiltonian=text)
    t0 = time.perf_counter()
    with pytest.raises(SpecError) as info:
        spec.validate()
    assert time.perf_counter() - t0 < 1.0
    assert message in info.value.problem, info.value.problem
    assert info.value.fix


def test_the_bounds_leave_room_for_every_registered_architecture():
    from hjsym.spec.registry import all_architectures

    for arch in all_architectures():
        arch.spec.validate()


def test_long_sums_and_products_are_one_level_and_redundant_parentheses_none():
    assert parse(" + ".join(f"{n} * eps" for n in range(1, 100)), NS, "H") == sum(range(1, 100)) * eps
    assert parse("(" * 100 + "eps" + ")" * 100, NS, "H") == eps
    assert MAX_DEPTH >= 16 and MAX_NODES >= 100


_NAMES = st.sampled_from(["p", "x", "eps", "W", "b", "pi", "q"])
_NUMBERS = st.one_of(st.integers(-10**15, 10**15), st.floats(allow_nan=False, allow_infinity=False, width=64)).map(repr)


def _node(children):
    unary = children.map(lambda c: f"-({c})")
    ops = st.sampled_from(["+", "-", "*", "/", "**", "^", "@"])
    binary = st.tuples(children, ops, children).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})")
    call = st.tuples(st.sampled_from(FUNCTIONS), st.lists(children, min_size=1, max_size=2)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})")
    return st.one_of(unary, binary, call)


EXPRESSIONS = st.recursive(st.one_of(_NAMES, _NUMBERS), _node, max_leaves=40)


def _parse_or_spec_error(text):
    t0 = time.perf_counter()
    try:
        parse(text, NS, "H")
    except SpecError:
        pass
    return time.perf_counter() - t0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_random_expression_trees_parse_or_fail_with_a_spec_error_in_time(text):
    """Any other exception fails the test; so does a parse over the time budget."""
    assert _parse_or_spec_error(text) < 1.0


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.one_of(_NAMES, _NUMBERS), _node, max_leaves=120))
def test_random_expression_trees_slow(text):
    assert _parse_or_spec_error(text) < 1.0
