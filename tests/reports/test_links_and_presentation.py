"""Check-to-equation links, the main-result box and the readable (shown) equations, for every architecture."""

import pytest
import sympy as sp

from hjsym.checks.api import context, suite_of
from hjsym.codegen.pipeline import derive
from hjsym.derivation.presentation import clean_indices, verify_shown
from hjsym.reports.main_result import default_key_result
from hjsym.reports.pages import _steps, resolve_step
from hjsym.spec.registry import all_architectures

ARCHS = [a for a in all_architectures()]


def _relation_symbols(check, derivation) -> set[str]:
    """Names the checked relation is made of: the generated functions route B evaluates (their results' free symbols)."""
    names = set()
    for fn in getattr(check.route_b, "functions", ()) or ():
        spec = derivation.function_specs.get(fn)
        if spec is not None:
            names |= {str(s) for s in spec.expr.free_symbols} | {str(b.label) for b in spec.expr.atoms(sp.IndexedBase)}
    return names


def _opaque(equation) -> bool:
    """Whether every symbol of an equation is a LaTeX name (a relation stated in words of LaTeX, not derived terms)."""
    syms = equation.free_symbols
    return bool(syms) and all("\\" in str(s) for s in syms)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_every_check_links_to_an_equation_that_contains_the_checked_relation(arch):
    suite = suite_of(arch)
    if suite is None:
        pytest.skip("no checks")
    d = derive(arch.spec)
    steps = _steps(d)
    for c in suite.applicable(context(arch)):  # the checks that run on this architecture
        assert c.step, f"{arch.name}: check {c.name} declares no equation"
        target = resolve_step(c.step, steps)
        assert target is not None, f"{arch.name}: check {c.name} names {c.step!r}, which is not an equation of the derivation"
        step = d.step(target["id"])
        equation = step.equations[target["k"] - 1]
        # the linked equation contains what route B computes: its symbols appear in the equation (or its step)
        wanted = _relation_symbols(c, d) - {"d", "N", "n_x", "n_h"}
        present = ({str(s) for s in equation.free_symbols} | {str(b.label) for b in equation.atoms(sp.IndexedBase)}
                   | {str(s) for e in step.equations for s in e.free_symbols})
        if wanted and _opaque(equation):
            # an equation written as LaTeX symbols (N dl/da_m + v_a = 0): its text names what route B computes
            tex = str(equation)
            assert any(f"{w}_" in tex for w in wanted if "[" not in w), f"{arch.name}: {c.name} -> {c.step}: {tex}"
        elif wanted:
            assert wanted & present, f"{arch.name}: {c.name} -> {c.step}: none of {sorted(wanted)} in {equation}"


def test_links_that_were_wrong_now_resolve_to_the_right_equation():
    d = derive("gru")
    steps = _steps(d)
    forward = resolve_step(suite_of(next(a for a in ARCHS if a.name == "gru")).check("forward").step, steps)
    assert forward["id"] == "step-map" and forward["k"] == len(d.step("step-map").equations)  # s+ = ..., not a gate
    assert "s^{+}" in forward["equation"]["tex"]
    grad = resolve_step("parameter-gradient:-1", steps)
    assert r"\partial x" in grad["equation"]["tex"]
    att = derive("attention")
    a_steps = _steps(att)
    assert resolve_step("characteristic-step:2", a_steps)["id"] == "characteristic-step"
    assert r"\ldots" not in "".join(e["tex"] for s in a_steps for e in s["equations"])


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_main_result_is_declared_or_defaulted_and_resolves(arch):
    d = derive(arch.spec)
    key = arch.key_result or default_key_result(arch, d)
    assert resolve_step(key.step, _steps(d)) is not None, key
    if key.check is not None and suite_of(arch) is not None:
        assert key.check in {c.name for c in suite_of(arch).checks}


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_every_shown_equation_equals_the_derived_one(arch):
    d = derive(arch.spec)
    for s in d.steps:
        for derived, shown in zip(s.equations, s.display()):
            if shown is not derived and "p^{(k" not in d.latex_of(shown):
                assert verify_shown(derived, shown), (s.id, derived, shown)


def test_presentation_factors_collects_and_renames():
    d = derive("gru")
    tex = d.latex_of(d.step("control-hamiltonian").display()[0])
    assert r"\left(1 - z_{i}\right) \left(n_{i} - s_{i}\right)" in tex  # not -nz + n + sz - s
    costate = d.latex_of(d.step("discrete-costate").display()[0])
    assert costate.startswith("p^{(k)}_{l} =") and "p^{(k+1)}_{l}" in costate  # time indices: p_k on the left only
    hjb = d.latex_of(d.step("value-function").display()[2])
    assert r"\min_{\theta} \mathcal{H}_{c}(s, \nabla_{s} V, \theta)" in hjb
    lse = derive("lse")
    assert all("i_{1}" not in lse.latex_of(e) for s in lse.steps for e in s.display())
    from hjsym.symbolic.axes import DIM, bound_index

    i1, x = bound_index(DIM, 1), sp.IndexedBase("x")
    assert "i_1" not in str(clean_indices(sp.Sum(x[i1] ** 2, (i1, 1, DIM.extent))))
