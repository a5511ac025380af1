"""Mutations of derived results: what the formula controls and the mutation-testing harness change.

A :class:`Mutation` changes the expression behind one function spec (a
:class:`~hjsym.ir.FunctionSpec`, or one output of a :class:`~hjsym.ir.ProgramSpec`) and returns
a new spec with the same arguments, which code generation turns into the mutated function:

* ``widen``: the whole result times ``1 + delta`` (a bound widened by a factor);
* ``scale``: one term of the top-level sum times ``1 + delta`` (a factor changed);
* ``sign``: one term's sign flipped;
* ``drop``: one term dropped;
* ``substitute``: a symbol replaced by ``(1 + delta)`` times itself (``N -> 2N`` turns the bound
  ``eps log N`` into ``eps log 2N``);
* ``multiply``: the whole result times a symbol (``max_j |W_j|^2 / eps`` times ``eps``: its ``1/eps`` dropped).

Terms are numbered in SymPy's order of the top-level sum (deterministic for a given
expression); a result that is not a sum has one term, itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import sympy as sp

from .functions import FunctionSpec, ProgramSpec

__all__ = ["Mutation", "KINDS", "terms_of", "mutations_of"]

KINDS = ("widen", "scale", "sign", "drop", "substitute", "multiply")


def terms_of(expr: sp.Expr) -> tuple:
    """The terms of the top-level sum of ``expr`` (``(expr,)`` when it is not a sum)."""
    return sp.Add.make_args(expr)


def _factor(delta: float):
    return sp.nsimplify(1 + delta, rational=True)


@dataclass(frozen=True)
class Mutation:
    """One change of a derived result (see the module docstring).

    ``term`` numbers a term of the top-level sum (for ``scale``, ``sign``, ``drop``); ``output``
    names a program's output (default: its first); ``symbol`` the symbol ``substitute`` replaces.
    """

    kind: str
    delta: float = 0.0
    term: int = 0
    output: str | None = None
    symbol: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown mutation {self.kind!r}; use one of {', '.join(KINDS)}")

    # ------------------------------------------------------------------ applying
    def expression(self, expr: sp.Expr) -> sp.Expr:
        """The mutated expression (``ValueError`` when the site does not exist or the mutation changes nothing)."""
        if self.kind == "widen":
            return sp.Mul(_factor(self.delta), expr)
        if self.kind in ("substitute", "multiply"):
            sym = next((s for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.name == self.symbol), None)
            if sym is None:
                raise ValueError(f"the expression has no symbol {self.symbol!r}")
            return sp.Mul(expr, sym) if self.kind == "multiply" else _substitute(expr, sym, _factor(self.delta) * sym)
        parts = list(terms_of(expr))
        if not 0 <= self.term < len(parts):
            raise ValueError(f"the expression has {len(parts)} term(s), no term {self.term}")
        if self.kind == "drop":
            if len(parts) == 1:
                raise ValueError("dropping the only term leaves nothing")
            del parts[self.term]
        elif self.kind == "sign":
            parts[self.term] = -parts[self.term]
        else:
            parts[self.term] = sp.Mul(_factor(self.delta), parts[self.term])
        return sp.Add(*parts)

    def apply(self, spec):
        """The spec with the mutated expression (same name and arguments)."""
        if isinstance(spec, FunctionSpec):
            expr = self.expression(spec.expr)
            # an argument the mutation removed (a dropped factor) is no longer taken: calls go by name
            return dataclasses.replace(spec, expr=expr, args=tuple(a for a in spec.args if expr.has(a.symbol)))
        if isinstance(spec, ProgramSpec):
            outputs = list(spec.outputs)
            n = self._output_index(spec)
            outputs[n] = dataclasses.replace(outputs[n], expr=self.expression(outputs[n].expr))
            mutated = dataclasses.replace(spec, outputs=tuple(outputs))
            used = set()
            for e in mutated.expressions():
                used |= e.free_symbols | set(e.atoms(sp.IndexedBase))
            return dataclasses.replace(mutated, args=tuple(a for a in spec.args if a.symbol in used))
        raise TypeError(f"cannot mutate a {type(spec).__name__}")

    def _output_index(self, spec: ProgramSpec) -> int:
        names = [o.name for o in spec.outputs]
        if self.output is None:
            return 0
        if self.output not in names:
            raise ValueError(f"program {spec.name} has no output {self.output!r} (it has {', '.join(names)})")
        return names.index(self.output)

    # ------------------------------------------------------------------ describing
    def describe(self, spec) -> str:
        """One line: what was changed, in which function (and output), with the term it touched."""
        where = spec.name
        expr = spec.expr if isinstance(spec, FunctionSpec) else spec.outputs[self._output_index(spec)].expr
        if isinstance(spec, ProgramSpec):
            where += f" (output {spec.outputs[self._output_index(spec)].name})"
        if self.kind == "widen":
            return f"{where} times 1 + {self.delta:g}"
        if self.kind == "substitute":
            return f"{self.symbol} -> {_times(self.delta)}{self.symbol} in {where}"
        if self.kind == "multiply":
            return f"{where} times {self.symbol}"
        parts = terms_of(expr)
        term = _short(parts[self.term]) if 0 <= self.term < len(parts) else "?"
        what = {"scale": f"term {term} times 1 + {self.delta:g}", "sign": f"sign of term {term} flipped",
                "drop": f"term {term} dropped"}[self.kind]
        return f"{where}: {what}"

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def _substitute(expr, sym, new):
    """``expr`` with ``sym`` replaced by ``new`` where it is a value, not where it bounds an index (``N`` in ``j = 1..N``
    keeps counting the atoms)."""
    if expr == sym:
        return new
    if expr.is_Atom or isinstance(expr, sp.Idx):
        return expr
    if isinstance(expr, sp.Tuple) and len(expr) == 3 and isinstance(expr[0], (sp.Idx, sp.Symbol)) and expr[0] != sym:
        return expr  # the limits (index, lower, upper) of a sum or a reduction
    args = [_substitute(a, sym, new) for a in expr.args]
    return expr.func(*args) if any(a is not b for a, b in zip(args, expr.args)) else expr


def _times(delta: float) -> str:
    return f"{1 + delta:g} " if float(delta).is_integer() else f"(1 + {delta:g}) "


def _short(expr, width: int = 60) -> str:
    text = sp.sstr(expr)
    return text if len(text) <= width else text[: width - 3] + "..."


def mutations_of(spec, delta: float = 1e-3) -> list[Mutation]:
    """Every structural mutation of a spec's result: each term's sign flipped, dropped and scaled by ``1 + delta``, and the
    whole result widened (for a program: of each output)."""
    if isinstance(spec, FunctionSpec):
        sites = [(None, spec.expr)]
    else:
        sites = [(o.name, o.expr) for o in spec.outputs]
    out = []
    for output, expr in sites:
        n = len(terms_of(expr))
        out.append(Mutation("widen", delta, output=output))
        for k in range(n):
            out.append(Mutation("sign", term=k, output=output))
            out.append(Mutation("scale", delta, term=k, output=output))
            if n > 1:
                out.append(Mutation("drop", term=k, output=output))
    return out
