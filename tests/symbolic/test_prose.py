"""Prose with $...$ mathematics: splitting, Unicode for terminals, and no ASCII mathematics left in what pages show."""

import pytest

from hjsym.symbolic.prose import ascii_math, segments, to_text
from hjsym.symbolic.unicode import latex_to_unicode, wrap_math


def test_segments_and_unicode():
    assert segments(r"the gradient $\nabla u$ costs \$1") == [(False, "the gradient "), (True, r"\nabla u"), (False, " costs $1")]
    assert to_text(r"$u_t + |\nabla u|^2 = \varepsilon \Delta u$") == "uₜ + |∇u|² = ε Δ u"
    assert latex_to_unicode(r"\frac{\sum_{i=1}^{d} x_{i}^{2}}{4 t}") == "(Σᵢ₌₁ᵈ xᵢ²)/(4 t)"
    assert latex_to_unicode(r"\mathbb{E}_{\pi}\left[W_{j k}\right]") == "𝔼_π[Wⱼₖ]"
    # a multi-index sum's range and a parenthesised superscript (no second pair of brackets)
    assert latex_to_unicode(r"\sum_{\substack{1 \leq \alpha \leq n\\ 1 \leq \beta \leq n}} a^{(\Delta)}_{k}") == "Σ_(1 ≤ α ≤ n, 1 ≤ β ≤ n) a^(Δ)ₖ"


def test_wrap_breaks_at_relations_and_signs():
    line = "u = " + " + ".join(f"a{k} b{k} c{k}" for k in range(30))
    lines = wrap_math(line, 60, "  ")
    assert all(len(x) <= 60 for x in lines) and lines[1].lstrip()[0] in "=+"


def test_ascii_mathematics_is_found_outside_dollars_only():
    assert ascii_math("s' = dH/dp, gbar = dH/dg") == ["s' =", "dH/dp", "gbar", "dH/dg"]
    assert ascii_math("u_t + |grad u|^2 = eps Lap u") and not ascii_math(r"$u_t + |\nabla u|^2 = \varepsilon \Delta u$ holds")


@pytest.mark.parametrize("kind", ["steps", "checks", "specs"])
def test_what_pages_show_has_no_ascii_mathematics(kind):
    from hjsym.checks.api import suite_of
    from hjsym.codegen.pipeline import derive
    from hjsym.spec.registry import all_architectures

    found = []
    for arch in all_architectures():
        if kind == "steps":
            d = derive(arch.spec)
            texts = [t for s in d.steps for t in (s.title, s.reason)] + [d.classification.statement]
        elif kind == "checks":
            suite = suite_of(arch)
            texts = [] if suite is None else [t for c in suite.checks for t in (c.title, c.route_a_text, c.route_b_text)]
        else:
            texts = [arch.spec.summary, arch.spec.title] + [getattr(s, "doc", "") for s in arch.spec.symbols]
        found += [(arch.name, t, ascii_math(t)) for t in texts if ascii_math(t)]
    assert not found, found[:5]
