"""The LaTeX printer of indexed expressions."""

import sympy as sp

from hjsym.symbolic.latex import to_latex


def test_an_indexed_base_with_its_own_subscript_is_grouped():
    # F_0 indexed by i must not print as F_{0}_{i} (a TeX "Double subscript" error)
    i = sp.Idx("i")
    assert to_latex(sp.IndexedBase("F_0")[i]) == "{F_{0}}_{i}"
    assert to_latex(sp.IndexedBase("F")[i]) == "F_{i}"
