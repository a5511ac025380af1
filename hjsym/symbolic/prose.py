"""Prose with mathematics in it: the one markup every title, reason and description uses.

A string is text with LaTeX between single dollars, ``"the gradient $\\nabla u$ is an average"``
(``\\$`` is a literal dollar). The reports render the spans with KaTeX (HTML) or as LaTeX math, a
terminal shows them as Unicode (:func:`to_text`, through :mod:`hjsym.symbolic.unicode`). Strings
without a dollar are plain text. :func:`ascii_math` finds the ASCII mathematics that should have
been marked up (``|grad u|^2``, ``eps``, ``<=``), for the tests that keep pages free of it.
"""

from __future__ import annotations

import re

from .unicode import latex_to_unicode

__all__ = ["segments", "to_text", "has_math", "ascii_math", "math_only"]

_SPLIT = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.S)


def segments(text) -> list[tuple[bool, str]]:
    """``[(is_math, content), ...]``: the text split at its ``$...$`` spans (``\\$`` unescaped in text)."""
    text = "" if text is None else str(text)
    out, pos = [], 0
    for m in _SPLIT.finditer(text):
        if m.start() > pos:
            out.append((False, text[pos:m.start()].replace(r"\$", "$")))
        out.append((True, m.group(1)))
        pos = m.end()
    if pos < len(text):
        out.append((False, text[pos:].replace(r"\$", "$")))
    return out


def has_math(text) -> bool:
    return any(is_math for is_math, _ in segments(text))


def to_text(text) -> str:
    """The string for a terminal: every ``$...$`` span as Unicode mathematics."""
    return "".join(latex_to_unicode(c) if is_math else c for is_math, c in segments(text))


def math_only(tex: str) -> str:
    """A LaTeX formula as prose: one ``$...$`` span."""
    return f"${tex}$"


#: ASCII mathematics in running text: what a marked-up string would have put between dollars.
_ASCII_MATH = re.compile(
    r"\^[\w({]|\b(?:grad|Lap|eps|sqrt|nabla|sigma|theta|lambda|Phi|Delta|argmax|argmin)\b|<=|>=|->|\b[A-Za-z]_\{?[A-Za-z0-9]\}?(?!\w)"
    r"|\|[a-z][^|\s]{0,8}\|"
    r"|\b[A-Za-z]'\s*=|\bd[A-Za-z]\w*/d[A-Za-z]\w*|\b\w+bar\b")


def ascii_math(text) -> list[str]:
    """The pieces of ``text`` outside its ``$...$`` spans that look like ASCII mathematics (for tests)."""
    found = []
    for is_math, chunk in segments(text):
        if not is_math:
            found += [m.group(0) for m in _ASCII_MATH.finditer(chunk)]
    return found
