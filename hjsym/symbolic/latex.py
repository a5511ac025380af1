"""LaTeX for hjsym's expressions: every custom node prints as a reader expects.

``LogSumExp`` prints as ``\\log\\sum_j \\exp(\\cdot)``, a Gibbs average as
``\\mathbb{E}_{\\pi}[\\cdot]`` (one label per distinct softmax in a derivation), a Gibbs
weight as ``\\pi_m``, indices by their letter alone.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .matrices import InverseBase

__all__ = ["HJLatexPrinter", "to_latex", "Partial", "InfOver", "Limit0", "Tex", "eq", "le"]


class HJLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with hjsym's nodes; ``gibbs`` maps logits to their label."""


    def __init__(self, settings=None, gibbs: dict | None = None):
        settings = dict(settings or {})
        settings.setdefault("symbol_names", {})
        super().__init__(settings)
        self.gibbs = {} if gibbs is None else gibbs

    def _label(self, logits, index) -> str:
        key = (logits, index)
        if key not in self.gibbs:
            self.gibbs[key] = r"\pi" + "'" * len(self.gibbs)
        return self.gibbs[key]

    def _print_Idx(self, expr):
        return self._print(expr.label)

    def _print_Indexed(self, expr):
        # an inverse prints as (A^{-1}); other bases by their label
        base = self._print(expr.base) if isinstance(expr.base, InverseBase) else self._print(expr.base.label)
        if "_" in base and not base.startswith("("):  # a base with its own subscript (F_0): a second one is a TeX error
            base = f"{{{base}}}"
        return f"{base}_{{{' '.join(self._print(i) for i in expr.indices)}}}"

    def _limits(self, expr):
        var, lo, hi = expr.limits[0]
        return f"{self._print(var)}={self._print(lo)}", self._print(hi)

    def _print_LogSumExp(self, expr):
        lo, hi = self._limits(expr)
        return rf"\log \sum_{{{lo}}}^{{{hi}}} \exp\left({self._print(expr.logits)}\right)"

    def _print_GibbsMean(self, expr):
        label = self._label(expr.logits, expr.index)
        return rf"\mathbb{{E}}_{{{label}}}\left[{self._print(expr.value)}\right]"

    def _print_GibbsWeight(self, expr):
        label = self._label(expr.logits, expr.index)
        return rf"{label}_{{{self._print(expr.at)}}}"

    def _print_ReduceMax(self, expr):
        return rf"\max_{{{self._print(expr.index)}}} \left({self._print(expr.function)}\right)"

    def _print_ReduceMin(self, expr):
        return rf"\min_{{{self._print(expr.index)}}} \left({self._print(expr.function)}\right)"

    def _print_TopGap(self, expr):
        return rf"\Delta_{{{self._print(expr.index)}}} \left({self._print(expr.function)}\right)"

    def _print_KroneckerDelta(self, expr, exp=None):
        a, b = expr.args
        out = rf"\delta_{{{self._print(a)} {self._print(b)}}}"
        return f"{out}^{{{exp}}}" if exp else out


def to_latex(expr, symbol_names: dict | None = None, gibbs: dict | None = None) -> str:
    """LaTeX of ``expr`` (an expression, an ``Eq``, or a list of them joined by commas)."""
    printer = HJLatexPrinter({"symbol_names": symbol_names or {}}, gibbs=gibbs)
    if isinstance(expr, (list, tuple)):
        return r",\quad ".join(printer.doprint(e) for e in expr)
    return printer.doprint(expr)


class Partial(sp.Function):
    """Display only: ``partial^n f / partial v_1 ... partial v_n``."""

    def _latex(self, printer, exp=None):
        f, *vs = self.args
        order = "" if len(vs) == 1 else f"^{{{len(vs)}}}"
        den = " ".join(rf"\partial {printer._print(v)}" for v in vs)
        return rf"\frac{{\partial{order} {printer._print(f)}}}{{{den}}}"


class InfOver(sp.Function):
    """Display only: ``inf_{v in R^d} { expr }``."""

    nargs = 2

    def _latex(self, printer, exp=None):
        expr, v = self.args
        return rf"\inf_{{{printer._print(v)} \in \mathbb{{R}}^{{d}}}} \left\{{{printer._print(expr)}\right\}}"


class Limit0(sp.Function):
    """Display only: ``lim_{v -> 0} expr``."""

    nargs = 2

    def _latex(self, printer, exp=None):
        expr, v = self.args
        return rf"\lim_{{{printer._print(v)} \to 0}} {printer._print(expr)}"


class Tex(sp.Symbol):
    """Display only: a symbol whose LaTeX is given verbatim (``Tex(r"u_{\\mathrm{exact}}")``)."""

    def _latex(self, printer, exp=None):
        return f"{{{self.name}}}^{{{exp}}}" if exp else self.name


def eq(lhs, rhs):
    """An unevaluated ``lhs = rhs`` for display (evaluating an equality can be expensive)."""
    return sp.Eq(lhs, rhs, evaluate=False)


def le(lhs, rhs):
    """An unevaluated ``lhs <= rhs`` for display."""
    return sp.Le(lhs, rhs, evaluate=False)
