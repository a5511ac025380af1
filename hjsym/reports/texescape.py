"""Plain text into LaTeX: special characters escaped, the few non-ASCII symbols hjsym's texts use translated."""

from __future__ import annotations

import re

__all__ = ["tex_escape", "tex_breakable"]

_TEX_SPECIALS = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "<": r"\textless{}",
                 ">": r"\textgreater{}", "\u2212": "-", "\u2013": "--", "\u2014": "---", "\u2192": r"$\to$",
                 "\u2264": r"$\le$", "\u2265": r"$\ge$", "\u03b5": r"$\varepsilon$", "\u00d7": r"$\times$"}


def tex_escape(text) -> str:
    """Escape plain text for LaTeX (also the few non-ASCII symbols hjsym's texts use)."""
    return "".join(_TEX_SPECIALS.get(ch, ch) for ch in str(text))


def tex_breakable(text) -> str:
    """Escape text for LaTeX and let it break after ``_ - / ( | = ,`` and a dot before a letter (code written as text)."""
    return re.sub(r"(\\_|[-/(|=,]|\.(?=[A-Za-z]))(?!\s)", r"\1\\allowbreak{}", tex_escape(text))
