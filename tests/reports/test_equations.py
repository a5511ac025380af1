"""Displayed equations: the width estimate and the line breaker of hjsym.reports.equations."""

import pytest

from hjsym.reports.equations import MAX_EM, break_tex, parse_tex, render_nodes, tex_width
from hjsym.reports.pages import display_tex


def _lines(tex: str) -> list[str]:
    body = tex.replace(r"\begin{aligned}", "").replace(r"\end{aligned}", "")
    return [ln.replace("&", "") for ln in body.split(r"\\")]


def test_every_lse_equation_fits_the_column(lse_derivation):
    for step in lse_derivation.steps:
        for e in step.equations:
            for line in _lines(display_tex(lse_derivation, e)):
                assert tex_width(line) <= MAX_EM + 1, (step.id, line)


def test_long_right_hand_sides_are_broken_into_lines_that_fit(lse_derivation):
    for step_id, k in (("derivatives", 2), ("atomic-solution", 1), ("hopf-lax", 0), ("tropical-bounds", 0)):
        tex = display_tex(lse_derivation, lse_derivation.step(step_id).equations[k], max_em=14)
        assert tex.startswith(r"\begin{aligned}") and r"\\" in tex, step_id
        lines = _lines(tex)
        assert len(lines) >= 2
        for line in lines[1:]:
            assert tex_width(line) <= 14 + 8, (step_id, line)  # a single unbreakable term may exceed a little


def test_a_single_wide_term_is_broken_inside_its_parentheses(lse_derivation):
    tex = display_tex(lse_derivation, lse_derivation.step("unnormalised-solution").equations[0], max_em=14)
    assert r"\right." in tex and r"\left." in tex and r"\vphantom" in tex  # the log-sum-exp argument spans lines


def test_breaking_keeps_the_formula(lse_derivation):
    """Removing the layout (alignment, line breaks, invisible struts) gives back the same symbols."""

    def symbols(tex):
        import re

        tex = re.sub(r"\\vphantom\s*\{", "{", tex)  # keep the phantom's braces, drop its content below
        tex = re.sub(r"\\(begin|end)\{aligned\}|\\\\|&|\\quad|\\left\.|\\right\.|\\left|\\right|[{}\s]", "", tex)
        return tex

    for step in lse_derivation.steps:
        for e in step.equations:
            plain = lse_derivation.latex_of(e)
            broken = break_tex(plain, 12)
            if broken == plain:
                continue
            # every symbol of the original appears, in order, in the broken form (phantoms only add)
            it = iter(symbols(broken))
            assert all(ch in it for ch in symbols(plain).replace(r"\left", "").replace(r"\right", "")), step.id


@pytest.mark.parametrize("tex", [r"u_{\mathrm{exact}} + \text{a b} = \operatorname{Cov}_{\pi}(x)", r"\sqrt[3]{x + 1}",
                                 r"\frac{\partial^{2} f}{\partial x_{k} \partial x_{l}} = 2 \delta_{k l}"])
def test_parse_and_render_round_trip(tex):
    again = render_nodes(parse_tex(tex))
    assert tex_width(again) == pytest.approx(tex_width(tex))
    assert again.replace(" ", "") == tex.replace(" ", "") or r"\text{a b}" in again


def test_width_grows_with_content_and_scripts_are_smaller():
    assert tex_width("a + b") < tex_width("a + b + c")
    assert tex_width("x^{abc}") < tex_width("x abc")
    assert tex_width(r"\frac{a + b + c}{d}") == pytest.approx(tex_width("a + b + c") + 0.3, abs=0.01)
    assert break_tex(r"\frac{a + b}{c}", 1) == r"\frac{a + b}{c}"  # nothing to break at the top level: left alone
    assert break_tex("a + b", 1) == r"\begin{aligned} & a \\ &\quad + b \end{aligned}"
