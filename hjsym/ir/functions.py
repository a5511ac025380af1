"""What the derivation hands to code generation: functions and programs as data.

A :class:`FunctionSpec` is one expression with its arguments (:class:`ArgSpec`) and the order of
its free indices; a :class:`ProgramSpec` is a list of named intermediates (:class:`Let`) and
several outputs (:class:`Output`), e.g. a forward step that saves its gates and the adjoint step
that reuses them. The derivation builds these from its results; :mod:`hjsym.codegen` turns them
into torch functions. Nothing here prints or executes code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..symbolic.axes import AXES

__all__ = ["ArgSpec", "FunctionSpec", "BatchSum", "Let", "Output", "ProgramSpec"]


@dataclass(frozen=True)
class ArgSpec:
    """One argument of a generated function.

    ``axes`` names the axis kind of every tensor slot (``("atom", "dim")`` for ``W``); a
    ``batched`` argument has any number of leading batch dimensions in front of them. A
    scalar (``axes == ()``) is a number or 0-d tensor, or one value per batch point when
    ``per_point`` is set.
    """

    name: str
    symbol: sp.Basic
    axes: tuple[str, ...] = ()
    batched: bool = False
    positive: bool = False
    per_point: bool = False
    doc: str = ""

    @property
    def is_tensor(self) -> bool:
        return isinstance(self.symbol, sp.IndexedBase)

    def shape_text(self) -> str:
        dims = [str(AXES[a].extent) for a in self.axes]
        if self.batched:
            dims = ["*batch"] + dims
        if not dims:
            text = "scalar"
            if self.per_point:
                text += " or (*batch,)"
            return text + (" > 0" if self.positive else "")
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


@dataclass(frozen=True)
class FunctionSpec:
    """What to generate: an expression, its arguments (in order) and its output index order."""

    name: str
    expr: sp.Expr
    args: tuple[ArgSpec, ...]
    out_indices: tuple = ()
    doc: str = ""
    extents: tuple[str, ...] = field(default=())  # extents passed explicitly (not readable from tensors)


class BatchSum(sp.Function):
    """``sum over the batch of expr``: a parameter gradient accumulated over samples."""

    nargs = 1

    def _latex(self, printer, exp=None):
        out = rf"\sum_{{b}} {printer.parenthesize(self.args[0], 1000)}"
        return rf"\left({out}\right)^{{{exp}}}" if exp else out


@dataclass(frozen=True)
class Let:
    """``target[indices] = expr``: a named intermediate (``target`` an IndexedBase, or a Symbol for a scalar)."""

    target: sp.Basic
    indices: tuple
    expr: sp.Expr


@dataclass(frozen=True)
class Output:
    """One returned tensor: ``expr`` with free ``indices`` (in this order), optionally summed over the batch."""

    name: str
    expr: sp.Expr
    indices: tuple = ()
    batch_sum: bool = False
    doc: str = ""


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    args: tuple[ArgSpec, ...]
    lets: tuple[Let, ...]
    outputs: tuple[Output, ...]
    doc: str = ""

    def expressions(self):
        return [let.expr for let in self.lets] + [o.expr for o in self.outputs]
