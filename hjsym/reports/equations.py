"""Displayed equations that fit their column: a width estimate and a line breaker for TeX math.

Both work on the LaTeX string (the output of hjsym's printer, or any math a page shows), so the
same broken lines appear in the HTML (KaTeX) and in the PDF (pdfTeX):

* :func:`tex_width` estimates the rendered width of math in ``em`` (glyph widths of Computer
  Modern / KaTeX's fonts, scripts at 70 %, fractions as wide as their wider part);
* :func:`break_tex` turns ``lhs = t_1 + t_2 + ...`` wider than ``width_em`` into an ``aligned``
  block, one line per group of terms; a single term still too wide is broken inside its widest
  ``\\left( ... \\right)`` group (each line's delimiters keep the full height with a
  ``\\vphantom``).

The estimate errs on the wide side; the browser test (formulas wider than their column) and the
LaTeX log check (overfull display equations) are the ground truth.
"""

from __future__ import annotations

import re

__all__ = ["MAX_EM", "tex_width", "break_tex", "parse_tex", "render_nodes"]

#: Widest displayed line, in em: the PDF's text column (A4, 2 cm margins, 10 pt: about 48 em)
#: less the equation number, with room for the estimate's error. The HTML column is wider.
MAX_EM = 38.0

_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|[{}^_&]|\s+|.", re.S)
_ARITY = {
    **dict.fromkeys(("frac", "dfrac", "tfrac", "binom", "overset", "underset", "stackrel"), 2),
    **dict.fromkeys((
        "sqrt", "mathrm", "mathbb", "mathcal", "mathbf", "mathit", "mathsf", "mathfrak", "mathscr", "boldsymbol", "bm",
        "operatorname", "text", "textrm", "textit", "textbf", "mbox", "dot", "ddot", "hat", "bar", "tilde", "vec", "check",
        "breve", "acute", "grave", "widehat", "widetilde", "overline", "underline", "overbrace", "underbrace", "vphantom",
        "phantom", "hphantom", "tag", "label", "mathop", "mathbin", "mathrel", "mathopen", "mathclose", "color", "substack"), 1),
}
_RELATIONS = {"=", "<", ">", r"\leq", r"\geq", r"\le", r"\ge", r"\neq", r"\approx", r"\equiv", r"\sim", r"\simeq", r"\to",
              r"\mapsto", r"\in", r"\subset", r"\subseteq", r"\propto", r"\ll", r"\gg", r"\coloneqq", r"\Leftrightarrow",
              r"\Rightarrow", r"\iff"}
_BINARY = {"+", "-", r"\pm", r"\mp"}
_BIG_OPS = {r"\sum", r"\prod", r"\max", r"\min", r"\lim", r"\inf", r"\sup", r"\int", r"\bigcup", r"\bigcap", r"\limsup", r"\liminf",
            r"\argmax", r"\argmin"}
_CMD_WIDTH = {
    r"\sum": 1.44, r"\prod": 1.3, r"\int": 0.8, r"\log": 1.25, r"\ln": 0.95, r"\exp": 1.45, r"\max": 1.75, r"\min": 1.6,
    r"\inf": 1.1, r"\sup": 1.3, r"\lim": 1.2, r"\sin": 1.2, r"\cos": 1.3, r"\tan": 1.3, r"\tanh": 2.0, r"\sinh": 1.9,
    r"\cosh": 2.0, r"\det": 1.3, r"\arg": 1.3, r"\partial": 0.57, r"\nabla": 0.83, r"\infty": 1.0, r"\cdot": 0.78,
    r"\times": 1.0, r"\circ": 0.78, r"\odot": 1.0, r"\otimes": 1.0, r"\quad": 1.0, r"\qquad": 2.0, r"\,": 0.17, r"\;": 0.28,
    r"\:": 0.22, r"\!": -0.17, r"\ ": 0.33, r"\|": 0.5, r"\{": 0.5, r"\}": 0.5, r"\langle": 0.39, r"\rangle": 0.39,
    r"\lvert": 0.28, r"\rvert": 0.28, r"\lVert": 0.5, r"\rVert": 0.5, r"\dots": 1.2, r"\ldots": 1.2, r"\cdots": 1.2,
    r"\top": 0.78, r"\star": 0.5, r"\ell": 0.42, r"\hbar": 0.55, r"\prime": 0.3, r"\emptyset": 0.5, r"\forall": 0.56,
    r"\exists": 0.56, r"\neg": 0.67, r"\wedge": 0.67, r"\vee": 0.67, r"\cup": 0.67, r"\cap": 0.67, r"\setminus": 0.5,
    r"\mid": 0.28, r"\displaystyle": 0.0, r"\textstyle": 0.0, r"\limits": 0.0, r"\nolimits": 0.0, r"\left": 0.0,
    r"\right": 0.0,
}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa",
          "lambda", "mu", "nu", "xi", "pi", "varpi", "rho", "varrho", "sigma", "varsigma", "tau", "upsilon", "phi", "varphi",
          "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_CHAR_WIDTH = {"(": 0.39, ")": 0.39, "[": 0.28, "]": 0.28, "|": 0.28, ",": 0.45, ".": 0.28, ";": 0.45, ":": 0.28,
               "'": 0.3, "!": 0.3, "/": 0.5, "*": 0.5, " ": 0.0, "~": 0.33}


# ----------------------------------------------------------------------------- parsing
# Nodes: ("tok", text) | ("group", [nodes]) | ("cmd", name, [arg nodes]) | ("script", "^"/"_", node)
#        | ("left", open, [nodes], close) | ("env", raw text)
#: Commands whose argument is text: kept verbatim (spaces matter there).
_TEXT_ARGS = (r"\text", r"\textrm", r"\textit", r"\textbf", r"\mbox", r"\mathrm", r"\operatorname")


def parse_tex(tex: str) -> list:
    """Parse math TeX into a small tree (groups, commands with arguments, scripts, delimiters)."""
    tokens = _tokens(tex)
    nodes, pos = _parse_seq(tokens, 0, stop=None)
    return nodes


def _tokens(tex: str) -> list[str]:
    """Tokens without spaces; the braced argument of a text command stays one verbatim token."""
    raw = _TOKEN.findall(tex)
    out, i = [], 0
    while i < len(raw):
        tok = raw[i]
        i += 1
        if tok.isspace():
            continue
        out.append(tok)
        if tok in _TEXT_ARGS:
            while i < len(raw) and raw[i].isspace():
                i += 1
            if i < len(raw) and raw[i] == "{":
                depth, j = 0, i
                while j < len(raw):
                    depth += {"{": 1, "}": -1}.get(raw[j], 0)
                    j += 1
                    if depth == 0:
                        break
                out.append("".join(raw[i:j]))
                i = j
    return out


def _parse_seq(tokens, pos, stop):
    out = []
    while pos < len(tokens):
        tok = tokens[pos]
        if tok == stop or (stop == r"\right" and tok == r"\right"):
            return out, pos
        if tok == "}":
            return out, pos  # unbalanced: let the caller close
        node, pos = _parse_one(tokens, pos)
        out.append(node)
    return out, pos


def _parse_one(tokens, pos):
    tok = tokens[pos]
    if tok == "{":
        inner, pos = _parse_seq(tokens, pos + 1, stop="}")
        return ("group", inner), pos + 1
    if tok in ("^", "_"):
        if pos + 1 >= len(tokens):
            return ("tok", tok), pos + 1
        arg, pos = _parse_one(tokens, pos + 1)
        return ("script", tok, arg), pos
    if tok == r"\left":
        opening = tokens[pos + 1] if pos + 1 < len(tokens) else "."
        inner, pos = _parse_seq(tokens, pos + 2, stop=r"\right")
        closing = tokens[pos + 1] if pos + 1 < len(tokens) else "."
        return ("left", opening, inner, closing), pos + 2
    if tok == r"\begin":  # an environment is kept whole: \begin{name} ... \end{name}
        depth, start = 0, pos
        while pos < len(tokens):
            if tokens[pos] in (r"\begin", r"\end"):
                depth += 1 if tokens[pos] == r"\begin" else -1
                if depth == 0:
                    close = tokens.index("}", pos) if "}" in tokens[pos:] else len(tokens) - 1
                    return ("env", _join(tokens[start:close + 1])), close + 1
            pos += 1
        return ("env", _join(tokens[start:])), pos
    if tok.startswith("\\") and tok[1:] in _ARITY:
        pos += 1
        args = []
        if tok == r"\sqrt" and pos < len(tokens) and tokens[pos] == "[":
            end = tokens.index("]", pos)
            args.append(("tok", "".join(tokens[pos:end + 1])))
            pos = end + 1
        for _ in range(_ARITY[tok[1:]]):
            if pos >= len(tokens):
                break
            arg, pos = _parse_one(tokens, pos)
            args.append(arg)
        return ("cmd", tok, args), pos
    return ("tok", tok), pos + 1


def _join(tokens) -> str:
    """Tokens back to TeX: a space only where a control word would run into a letter."""
    out = ""
    for tok in tokens:
        if out and re.search(r"\\[A-Za-z]+$", out) and tok[:1].isalpha():
            out += " "
        out += tok
    return out


def render_nodes(nodes) -> str:
    """TeX text of parsed nodes (spacing normalised; meaning unchanged)."""
    out = []
    for n in nodes:
        out.append(_render(n))
    text = " ".join(p for p in out if p)
    return re.sub(r" (?=[\^_])", "", text)


def _render(n) -> str:
    kind = n[0]
    if kind == "tok":
        return n[1]
    if kind == "group":
        return "{" + render_nodes(n[1]) + "}"
    if kind == "script":
        arg = n[2]
        body = _render(arg) if arg[0] == "group" else "{" + _render(arg) + "}"
        return n[1] + body
    if kind == "cmd":
        parts = [n[1]]
        for a in n[2]:
            verbatim = a[0] == "tok" and a[1][:1] in "[{"  # an optional argument, or a text argument kept whole
            parts.append(_render(a) if a[0] == "group" or verbatim else "{" + _render(a) + "}")
        return "".join(parts)
    if kind == "left":
        return rf"\left{n[1]} {render_nodes(n[2])} \right{n[3]}"
    return n[1]  # env


# ----------------------------------------------------------------------------- width
def tex_width(tex_or_nodes, scale: float = 1.0) -> float:
    """Estimated rendered width in em of display math (``tex`` string or parsed nodes)."""
    nodes = parse_tex(tex_or_nodes) if isinstance(tex_or_nodes, str) else tex_or_nodes
    return _width(nodes, scale, depth=0)


def _width(nodes, scale, depth) -> float:
    total, prev = 0.0, None
    for i, n in enumerate(nodes):
        kind = n[0]
        if kind == "tok":
            total += scale * _tok_width(n[1], prev, i)
        elif kind == "group":
            total += _width(n[1], scale, depth)
        elif kind == "script":
            w = 0.7 * _width([n[2]], scale, depth + 1) + 0.05 * scale
            if prev is not None and prev[0] == "tok" and prev[1] in _BIG_OPS:
                w = max(0.0, w - _CMD_WIDTH.get(prev[1], 1.0) * scale)  # limits sit under the operator
            total += w
        elif kind == "left":
            total += 0.8 * scale + _width(n[2], scale, depth)
        elif kind == "cmd":
            total += _cmd_width(n, scale, depth)
        else:  # an environment: its widest line, roughly
            lines = n[1].split(r"\\")
            total += max(tex_width(re.sub(r"\\(begin|end)\s*\{\s*\w+\s*\}", "", ln).replace("&", ""), scale) for ln in lines)
        prev = n
    return total


def _tok_width(tok, prev, index) -> float:
    if tok in _RELATIONS:
        return 1.33
    if tok in _BINARY:
        unary = index == 0 or (prev is not None and prev[0] == "tok" and (prev[1] in _RELATIONS or prev[1] in _BINARY or prev[1] in "(["))
        return 0.78 if unary else 1.22
    if tok.startswith("\\"):
        if tok[1:] in _GREEK:
            return 0.62
        return _CMD_WIDTH.get(tok, 0.8)
    if tok.isdigit():
        return 0.5
    if tok.isalpha():
        return 0.55
    return _CHAR_WIDTH.get(tok, 0.6)


def _cmd_width(n, scale, depth) -> float:
    name, args = n[1], n[2]
    if name in (r"\frac", r"\dfrac", r"\binom"):
        inner = scale if depth == 0 else 0.8 * scale
        return max(_width([a], inner, depth + 1) for a in args) + 0.3 * scale if args else 0.0
    if name == r"\tfrac":
        return max(_width([a], 0.7 * scale, depth + 1) for a in args) + 0.2 * scale if args else 0.0
    if name in (r"\vphantom", r"\tag", r"\label", r"\color"):
        return 0.0
    if name in (r"\mathrm", r"\operatorname", r"\text", r"\textrm", r"\textit", r"\textbf", r"\mbox", r"\mathsf"):
        text = _plain(args[-1]) if args else ""
        return scale * (0.5 * len(text) + (0.3 if name == r"\operatorname" else 0.0))
    if name in (r"\mathbb", r"\mathcal", r"\mathscr", r"\mathfrak"):
        return scale * 0.75 * max(1, len(_plain(args[0]))) if args else 0.0
    if name == r"\substack":  # lines stacked under an operator: as wide as the widest
        inner = args[0][1] if args and args[0][0] == "group" else []
        lines, cur = [], []
        for node in inner:
            if node == ("tok", r"\\"):
                lines.append(cur)
                cur = []
            else:
                cur.append(node)
        return max((_width(line, scale, depth) for line in lines + [cur]), default=0.0)
    if name == r"\sqrt":
        return scale * 1.0 + sum(_width([a], scale, depth) for a in args if a[0] != "tok" or not a[1].startswith("["))
    return sum(_width([a], scale, depth) for a in args)


def _plain(node) -> str:
    return re.sub(r"[{}\\ ]", "", _render(node))


# ----------------------------------------------------------------------------- breaking
def break_tex(tex: str, width_em: float = MAX_EM) -> str:
    """``tex`` unchanged when it fits in ``width_em``, else an ``aligned`` block of lines that do.

    Breaks at the top-level ``+``/``-`` of the right-hand side (and at further relations); a
    term wider than a line is broken inside its widest ``\\left(...\\right)`` group.
    """
    nodes = parse_tex(tex)
    if any(n[0] == "env" or n == ("tok", r"\\") for n in nodes):
        return tex  # already laid out by hand
    if _width(nodes, 1.0, 0) <= width_em:
        return tex
    rel_at = next((i for i, n in enumerate(nodes) if n[0] == "tok" and n[1] in _RELATIONS and i > 0), None)
    if rel_at is None:
        lhs, rel, rhs = [], None, nodes
    else:
        lhs, rel, rhs = nodes[:rel_at], nodes[rel_at], nodes[rel_at + 1:]
    w_lhs = _width(lhs, 1.0, 0)
    if not lhs:  # an expression, not a relation: lines at the margin, continuations indented
        lines = _pack(_terms(rhs), width_em, width_em - 1.0)
        start, sep = "& ", r" \\ &\quad "
    elif width_em - w_lhs - 1.0 >= width_em / 3:  # continuation lines start under the right-hand side
        lines = _pack(_terms(rhs), width_em - w_lhs - (1.33 if rel else 0.0), width_em - w_lhs - 1.0)
        start, sep = render_nodes(lhs) + " &" + rel[1] + " ", r" \\ &\quad "
    else:  # a very wide left-hand side: the right-hand side starts on the next line, at the margin
        lines = _pack(_terms(rhs), width_em - 2.0, width_em - 2.0)
        start, sep = "&" + render_nodes(lhs) + " " + rel[1] + r" \\ &\qquad ", r" \\ &\qquad "
    if len(lines) <= 1:
        return tex
    return r"\begin{aligned} " + start + sep.join(render_nodes(line) for line in lines) + r" \end{aligned}"


def _is_break(node, index, nodes) -> bool:
    if node[0] != "tok":
        return False
    if node[1] in _RELATIONS:
        return index > 0
    if node[1] in _BINARY and index > 0:
        prev = nodes[index - 1]
        return not (prev[0] == "tok" and (prev[1] in _RELATIONS or prev[1] in _BINARY))
    return False


def _terms(nodes) -> list[list]:
    """Split a node list before each top-level binary operator or relation (the sign stays with its term)."""
    terms, cur = [], []
    for i, n in enumerate(nodes):
        if cur and _is_break(n, i, nodes):
            terms.append(cur)
            cur = []
        cur.append(n)
    if cur:
        terms.append(cur)
    return terms


def _pack(terms, first: float, rest: float) -> list[list]:
    """Greedy lines of terms; an over-wide term is broken inside its widest delimited group."""
    lines, cur, budget = [], [], first
    for term in terms:
        w_term = _width(term, 1.0, 0)
        w_cur = _width(cur, 1.0, 0)
        if cur and w_cur + w_term <= budget:
            cur += term
            continue
        if cur:
            lines.append(cur)
            cur, budget = [], rest
        if w_term <= budget:
            cur = list(term)
            continue
        pieces = _split_inside(term, budget, rest)
        lines += pieces[:-1]
        cur = pieces[-1]
        budget = rest
    if cur:
        lines.append(cur)
    return lines


def _split_inside(term, budget: float, rest: float) -> list[list]:
    """Break one term inside its widest ``\\left ... \\right`` group whose content is a sum."""
    candidates = [(i, n) for i, n in enumerate(term) if n[0] == "left" and len(_terms(n[2])) > 1]
    if not candidates:
        return [list(term)]
    i, (_, opening, inner, closing) = max(candidates, key=lambda c: _width(c[1][2], 1.0, 0))
    prefix, suffix = term[:i], term[i + 1:]
    phantom = ("cmd", r"\vphantom", [("group", inner)])
    w_prefix = _width(prefix, 1.0, 0) + 0.4
    chunks = _pack(_terms(inner), budget - w_prefix, rest - 0.8)
    if len(chunks) <= 1:
        return [list(term)]
    out = []
    for k, chunk in enumerate(chunks):
        open_d = opening if k == 0 else "."
        close_d = closing if k == len(chunks) - 1 else "."
        piece = [("left", open_d, [phantom, *chunk], close_d)]
        if k == 0:
            piece = list(prefix) + piece
        if k == len(chunks) - 1:
            piece = piece + list(suffix)
        out.append(piece)
    return out
