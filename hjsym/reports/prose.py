"""Prose with ``$...$`` mathematics (:mod:`hjsym.symbolic.prose`) rendered for each medium.

* HTML: the text escaped, every span a ``<span class="tex">`` that the bundled KaTeX renders;
* LaTeX: the text escaped, every span as inline math;
* PDF bookmarks and the table of contents: ``\\texorpdfstring{$...$}{Unicode}``, so an outline entry
  shows ``N⁻¹ᐟᵈ``-style Unicode instead of raw TeX.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from ..symbolic.prose import segments
from ..symbolic.unicode import latex_to_unicode
from .texescape import tex_escape

__all__ = ["prose_html", "prose_tex", "prose_bookmark"]

#: What a PDF string (an outline entry) cannot hold verbatim; every other character, Unicode included, passes.
_PDF_STRING = {"\\": "", "{": "", "}": "", "%": r"\%", "#": r"\#", "&": r"\&", "~": " ", "^": "", "_": r"\_", "$": r"\$"}


def prose_html(text) -> Markup:
    """HTML: escaped text, mathematics in ``<span class="tex">`` (rendered by KaTeX)."""
    out = []
    for is_math, chunk in segments(text):
        out.append(f'<span class="tex">{escape(chunk)}</span>' if is_math else str(escape(chunk)))
    return Markup("".join(out))


def prose_tex(text) -> str:
    """LaTeX: escaped text, mathematics as ``$...$``."""
    return "".join(f"${chunk}$" if is_math else tex_escape(chunk) for is_math, chunk in segments(text))


def prose_bookmark(text) -> str:
    """LaTeX for a heading that also becomes a PDF bookmark: each formula with its Unicode form for the outline."""
    out = []
    for is_math, chunk in segments(text):
        if is_math:
            pdf = "".join(_PDF_STRING.get(c, c) for c in latex_to_unicode(chunk))
            out.append(rf"\texorpdfstring{{${chunk}$}}{{{pdf}}}")
        else:
            out.append(tex_escape(chunk))
    return "".join(out)

