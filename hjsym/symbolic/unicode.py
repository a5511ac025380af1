"""Unicode mathematics for a terminal: the LaTeX hjsym prints, read back as one line of text.

:func:`latex_to_unicode` turns the LaTeX of :mod:`hjsym.symbolic.latex` (and the ``$...$`` spans
of prose, :mod:`hjsym.symbolic.prose`) into a compact linear form: Greek letters and operators
as their characters (``ε``, ``∇``, ``∂``, ``Σ``, ``𝔼``), sub- and superscripts as Unicode
sub/superscripts where every character has one (``x²``, ``pₖ``, ``Σᵢ₌₁ᵈ``) and as ``_(...)``
/ ``^(...)`` otherwise, fractions as ``a/b`` with parentheses around compound parts. Parsing is
pylatexenc's; only the rendering is hjsym's.

:func:`wrap_math` breaks such a line at the outermost ``=`` and ``+``/``-`` that fit the width.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["latex_to_unicode", "wrap_math"]

_SYMBOLS = {
    "varepsilon": "ε", "epsilon": "ε", "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "Delta": "Δ", "theta": "θ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ",
    "Phi": "Φ", "psi": "ψ", "omega": "ω", "Omega": "Ω", "Sigma": "Σ", "kappa": "κ", "eta": "η", "zeta": "ζ", "chi": "χ",
    "partial": "∂", "nabla": "∇", "infty": "∞", "sum": "Σ", "prod": "Π", "int": "∫", "cdot": "·", "times": "×", "ldots": "…",
    "cdots": "…", "dots": "…", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠", "ne": "≠", "approx": "≈", "to": "→",
    "rightarrow": "→", "mapsto": "↦", "in": "∈", "leftrightarrow": "↔", "Rightarrow": "⇒", "circ": "∘", "top": "ᵀ",
    "log": "log", "exp": "exp", "max": "max", "min": "min", "lim": "lim", "inf": "inf", "sup": "sup", "tanh": "tanh",
    "sinh": "sinh", "cosh": "cosh", "sin": "sin", "cos": "cos", "det": "det", "operatorname": "", "quad": "   ", "qquad": "    ",
    ",": " ", ";": " ", ":": " ", "!": "", " ": " ", "{": "{", "}": "}", "|": "‖", "%": "%", "#": "#", "_": "_", "&": "&",
    "langle": "⟨", "rangle": "⟩", "lfloor": "⌊", "rfloor": "⌋", "vert": "|", "Vert": "‖", "mid": "|", "pm": "±", "ast": "*",
    "sim": "~", "propto": "∝", "equiv": "≡", "forall": "∀", "exists": "∃", "emptyset": "∅", "ell": "ℓ", "hbar": "ħ",
}
_BLACKBOARD = {"E": "𝔼", "R": "ℝ", "N": "ℕ", "Z": "ℤ", "P": "ℙ", "Q": "ℚ", "C": "ℂ"}
_CALLIGRAPHIC = {"H": "𝓗", "R": "ℛ", "L": "ℒ", "N": "𝒩", "F": "ℱ", "O": "𝒪", "D": "𝒟", "S": "𝒮", "C": "𝒞"}
_ACCENTS = {"dot": "\u0307", "ddot": "\u0308", "bar": "\u0304", "hat": "\u0302", "tilde": "\u0303", "vec": "\u20d7", "overline": "\u0305"}
_SUPER = dict(zip("0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWnT*", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂⁿᵀ*"))
_SUPER.update({"ᵀ": "ᵀ", "'": "′", "†": "†", "ε": "ᵋ", "θ": "ᶿ", "φ": "ᵠ", "β": "ᵝ", "γ": "ᵞ", "δ": "ᵟ", "χ": "ᵡ"})
_SUB = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))
_SUB.update({"β": "ᵦ", "γ": "ᵧ", "ρ": "ᵨ", "φ": "ᵩ", "χ": "ᵪ"})
_SKIP = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "displaystyle", "limits", "nolimits",
         "label", "tag", "nonumber", "notag", "textstyle", "mathstrut"}
_TEXT = {"mathrm", "text", "textrm", "mathit", "mathbf", "boldsymbol", "mathsf", "textit", "textbf", "operatorname", "mathtt", "texttt",
         "emph"}


def _script(text: str, table: dict, mark: str) -> str:
    """``text`` as Unicode sub/superscripts when every character has one, else ``mark(text)``."""
    trail = " " if text[-1:].isspace() else ""
    return _script_body(text.strip(), table, mark) + trail


def _script_body(text: str, table: dict, mark: str) -> str:
    if text and all(c in table or c == " " for c in text):
        return "".join(table.get(c, "") for c in text)
    plain = len(text) == 1 or re.fullmatch(r"[\w′]+", text) or _bracketed(text)
    return f"{mark}{text}" if plain else f"{mark}({text})"


def _bracketed(text: str) -> bool:
    """Whether ``text`` is one parenthesised group, ``(Δ)`` (so a script needs no second pair)."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for n, c in enumerate(text):
        depth += c == "("
        depth -= c == ")"
        if depth == 0 and n < len(text) - 1:
            return False
    return True


def _compound(text: str) -> bool:
    """Whether ``text`` needs parentheses as a numerator, denominator or radicand."""
    depth = 0
    for n, c in enumerate(text):
        if c in "([{⟨":
            depth += 1
        elif c in ")]}⟩":
            depth -= 1
        elif depth == 0 and (c in "+=<>≤≥/" or (c == "-" and n > 0) or (c == " " and n > 0)):
            return True
    return False


def _wrap(text: str) -> str:
    return f"({text})" if _compound(text) else text


@lru_cache(maxsize=1)
def _context():
    from pylatexenc.latexwalker import get_default_latex_context_db
    from pylatexenc.macrospec import MacroSpec

    db = get_default_latex_context_db()
    db.add_context_category("hjsym", prepend=True, macros=[
        MacroSpec(name, "{") for name in ("mathbb", "mathcal", "mathrm", "text", "mathit", "mathbf", "boldsymbol", "mathsf",
                                         "operatorname", "mathtt", "dot", "ddot", "bar", "hat", "tilde", "vec", "overline", "label",
                                         "tag", "textrm", "texttt", "substack")
    ] + [MacroSpec("frac", "{{"), MacroSpec("dfrac", "{{"), MacroSpec("tfrac", "{{"), MacroSpec("sqrt", "[{")])
    return db


class _Renderer:
    def render(self, nodes) -> str:
        tokens = []
        for node in nodes or []:
            if node is None:
                continue
            if node.isNodeType(_nodes().LatexCharsNode):
                tokens.extend(node.chars)
            else:
                tokens.append(node)
        out, i = [], 0
        while i < len(tokens):
            tok = tokens[i]
            if isinstance(tok, str) and tok in ("_", "^") and i + 1 < len(tokens):
                nxt = tokens[i + 1]
                arg = self.node(nxt) if not isinstance(nxt, str) else nxt
                out.append(_script(arg, _SUB if tok == "_" else _SUPER, tok))
                i += 2
                continue
            out.append(tok if isinstance(tok, str) else self.node(tok))
            i += 1
        return "".join(out)

    def node(self, node) -> str:
        n = _nodes()
        if node.isNodeType(n.LatexGroupNode):
            return self.render(node.nodelist)
        if node.isNodeType(n.LatexMathNode):
            return self.render(node.nodelist)
        if node.isNodeType(n.LatexCommentNode):
            return ""
        if node.isNodeType(n.LatexSpecialsNode):
            return {"&": " ", "~": " ", "''": "″", "--": "–", "---": "—"}.get(node.specials_chars, node.specials_chars)
        if node.isNodeType(n.LatexEnvironmentNode):
            return self.render(node.nodelist).replace("\\\\", "; ")
        if node.isNodeType(n.LatexMacroNode):
            return self.macro(node)
        return ""

    def arg(self, node, k: int) -> str:
        args = node.nodeargd.argnlist if node.nodeargd is not None else []
        a = args[k] if k < len(args) else None
        return "" if a is None else self.node(a)

    def macro(self, node) -> str:
        name = node.macroname
        if name in _SKIP:
            if name in ("label", "tag"):
                return ""
            return ""
        if name == "frac" or name in ("dfrac", "tfrac"):
            return f"{_wrap(self.arg(node, 0).strip())}/{_wrap(self.arg(node, 1).strip())}"
        if name == "sqrt":
            inner = self.arg(node, 1).strip()
            root = self.arg(node, 0).strip()
            prefix = {"3": "∛", "4": "∜"}.get(root, "√")
            return f"{prefix}{_wrap(inner)}" if len(inner) > 1 else f"{prefix}{inner}"
        if name == "mathbb":
            inner = self.arg(node, 0).strip()
            return "".join(_BLACKBOARD.get(c, c) for c in inner)
        if name == "mathcal":
            inner = self.arg(node, 0).strip()
            return "".join(_CALLIGRAPHIC.get(c, c) for c in inner)
        if name in _TEXT:
            return self.arg(node, 0)
        if name in _ACCENTS:
            inner = self.arg(node, 0).strip()
            return inner + _ACCENTS[name] if len(inner) == 1 else f"{inner}{_ACCENTS[name]}"
        if name == "\\":
            return "; "
        if name == "substack":  # the rows of a multi-index sum's range
            return self.arg(node, 0).replace("; ", ", ")
        out = _SYMBOLS.get(name, name)
        # "\\varepsilon \\sum": the space after a macro name is the separator LaTeX swallows
        return out + " " if node.macro_post_space else out


@lru_cache(maxsize=1)
def _nodes():
    from pylatexenc import latexwalker

    return latexwalker


def latex_to_unicode(tex: str) -> str:
    """One line of Unicode mathematics for the LaTeX ``tex`` (see the module docstring)."""
    walker = _nodes().LatexWalker(str(tex), latex_context=_context(), tolerant_parsing=True)
    nodes, _, _ = walker.get_latex_nodes()
    text = _Renderer().render(nodes)
    text = re.sub(r"\s+", " ", text).strip()
    # tidy the spacing SymPy's LaTeX leaves around operators and brackets
    text = re.sub(r"\(\s+", "(", text)
    text = re.sub(r"\s+\)", ")", text)
    text = re.sub(r"\[\s+", "[", text)
    text = re.sub(r"\s+\]", "]", text)
    text = re.sub(r"(^|[(\[{=≤≥,] ?)- (?=\S)", r"\1-", text)  # a unary minus hugs its operand
    text = re.sub(r"(?<=[∇∂√]) (?=\w)", "", text)  # a prefix operator hugs its operand
    text = text.replace(") (", ")(")  # a product of brackets
    text = re.sub(r"(?<=[=+≤≥<>→↦↔∈])(?=\S)", " ", text)
    text = re.sub(r"(?<=\S)(?=[=≤≥→↦↔∈])", " ", text)
    return re.sub(r" {2,}", " ", text)


def _break_points(text: str) -> list[tuple[int, int]]:
    """``(position, priority)`` of the places a line of mathematics may break: before a top-level relation or sign."""
    out, depth = [], 0
    for n, c in enumerate(text):
        if c in "([{⟨":
            depth += 1
        elif c in ")]}⟩":
            depth = max(0, depth - 1)
        elif c == " " and n + 1 < len(text):
            nxt = text[n + 1]
            if nxt in "=≤≥<>→" and depth == 0:
                out.append((n, 30))
            elif nxt in "+-" and n + 2 < len(text) and text[n + 2] == " ":
                out.append((n, 20 if depth == 0 else max(1, 10 - depth)))
            elif depth == 0:
                out.append((n, 0))
    return out


def wrap_math(text: str, width: int, indent: str = "") -> list[str]:
    """Lines of at most ``width`` columns (where a break point allows), continuation lines indented by ``indent`` + 4."""
    lines, first = [], True
    cont = indent + "    "
    while True:
        prefix = indent if first else cont
        room = width - len(prefix)
        if len(text) <= room or room < 12:
            lines.append(prefix + text)
            return lines
        points = [(p, pr) for p, pr in _break_points(text) if 0 < p <= room]
        if not points:
            far = [(p, pr) for p, pr in _break_points(text) if p > room]
            if not far:
                lines.append(prefix + text)
                return lines
            cut = far[0][0]
        else:
            best = max(pr for _, pr in points)
            cut = max(p for p, pr in points if pr == best) if best > 0 else max(p for p, _ in points)
        lines.append(prefix + text[:cut].rstrip())
        text = text[cut:].lstrip()
        first = False
