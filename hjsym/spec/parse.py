"""Parse the plain-mathematics strings of a spec without ``eval``.

``sympy.sympify`` runs ``eval`` on its input, so a spec string such as
``"__import__('os').system('...')"`` would execute. hjsym parses spec strings with
:mod:`ast` instead and accepts only numbers, declared names, ``+ - * / **`` (``^`` means power),
unary minus and calls to the functions listed in :data:`FUNCTIONS`. Anything else is a
:class:`~hjsym.SpecError` naming the offending piece.

Names carry axes: a state vector ``x`` stands for its component ``x_i``, a weight matrix ``W``
for ``W_{ji}``; arithmetic is elementwise with broadcasting by axis, and reductions bind an
axis: ``sum``, ``dot`` and ``norm2`` over the state dimension, ``lse``, ``amax``, ``amin`` and
``sum_atoms`` over the atoms, ``quad(p, A)`` is ``p^T A p``; ``relu(z)`` is ``max(z, 0)``. ``W @ v`` contracts the last axis
of a declared matrix ``W`` with the vector expression ``v`` (``W @ tanh(s)`` is
``sum_l W_{il} tanh(s_l)``): the control family's matrix-vector products.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass

import sympy as sp

from .._errors import SpecError
from ..symbolic.axes import ATOM, AXES, DIM, VALUE
from ..symbolic.calculus import canonical, free_indices, instantiate
from ..symbolic.reductions import LogSumExp, ReduceMax, ReduceMin

__all__ = ["FUNCTIONS", "Namespace", "parse", "placeholder"]

# Placeholder indices for "the current component" along each axis; reductions bind them and
# :func:`canonical` renames bound ones.
I_ = sp.Idx(sp.Symbol("i", integer=True), (1, DIM.extent))
J_ = sp.Idx(sp.Symbol("j", integer=True), (1, ATOM.extent))
C_ = sp.Idx(sp.Symbol("a", integer=True), (1, VALUE.extent))
_PLACEHOLDER = {"dim": I_, "atom": J_, "value": C_}
_matmul_counter = itertools.count()


def placeholder(axis: str) -> sp.Idx:
    """The placeholder index standing for "the current component" along ``axis``."""
    if axis in _PLACEHOLDER:
        return _PLACEHOLDER[axis]
    ax = AXES[axis]
    return sp.Idx(sp.Symbol(ax.bound, integer=True), (1, ax.extent))

_ELEMENTWISE = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "tanh": sp.tanh,
    "cosh": sp.cosh,
    "sinh": sp.sinh,
    "sin": sp.sin,
    "cos": sp.cos,
    "erf": sp.erf,
    "sigmoid": lambda z: 1 / (1 + sp.exp(-z)),
    "softplus": lambda z: sp.log(1 + sp.exp(z)),
    "max": sp.Max,
    "min": sp.Min,
    "relu": lambda z: sp.Max(z, 0),
}


@dataclass(frozen=True)
class Namespace:
    """What names mean while parsing: SymPy objects and the axes of each tensor."""

    scalars: dict  # name -> sympy Symbol
    tensors: dict  # name -> (IndexedBase, axes tuple)

    def component(self, name: str):
        if name in self.scalars:
            return self.scalars[name]
        base, axes = self.tensors[name]
        if len(set(axes)) != len(axes):
            raise SpecError(
                f"tensor {name!r} has two axes of the same kind {axes} and cannot be used elementwise",
                f"use it only inside quad(v, {name})",
            )
        return base[tuple(placeholder(a) for a in axes)]


def _reduce(axis: str, make):
    def fn(expr, where):
        idx = _PLACEHOLDER[axis]
        if idx not in free_indices(expr):
            raise SpecError(
                f"{where}: the argument of this reduction has no {axis} axis",
                f"reduce only expressions that vary over the {axis} axis",
            )
        return make(expr, idx)

    return fn


_REDUCTIONS = {
    "sum": _reduce("dim", lambda e, i: sp.Sum(e, (i, 1, DIM.extent))),
    "norm2": _reduce("dim", lambda e, i: sp.Sum(e**2, (i, 1, DIM.extent))),
    "lse": _reduce("atom", lambda e, j: LogSumExp(e, (j, 1, ATOM.extent))),
    "amax": _reduce("atom", lambda e, j: ReduceMax(e, (j, 1, ATOM.extent))),
    "amin": _reduce("atom", lambda e, j: ReduceMin(e, (j, 1, ATOM.extent))),
    "sum_atoms": _reduce("atom", lambda e, j: sp.Sum(e, (j, 1, ATOM.extent))),
}

#: Every function a spec string may call.
FUNCTIONS = tuple(sorted(set(_ELEMENTWISE) | set(_REDUCTIONS) | {"dot", "quad"}))

_BINOPS = {ast.Add: sp.Add, ast.Sub: lambda a, b: a - b, ast.Mult: sp.Mul, ast.Div: lambda a, b: a / b,
           ast.Pow: sp.Pow, ast.BitXor: sp.Pow}


def parse(text: str, ns: Namespace, where: str) -> sp.Expr:
    """Parse ``text`` (a spec field called ``where``) into a canonical SymPy expression."""
    if not isinstance(text, str):
        raise SpecError(f"{where} must be a string, got {type(text).__name__}", "write it as plain mathematics")
    if len(text) > 2000:
        raise SpecError(f"{where} is {len(text)} characters long", "keep spec expressions under 2000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(
            f"{where} {text!r} is not a valid expression ({exc.msg} at column {exc.offset})",
            "write plain mathematics, e.g. 'norm2(p)' or 'eps * lse((dot(W, x) + b) / eps)'",
        ) from None
    return canonical(_Builder(ns, where, text).visit(tree.body))


class _Builder:
    def __init__(self, ns: Namespace, where: str, text: str):
        self.ns, self.where, self.text = ns, where, text

    def fail(self, node, what):
        col = getattr(node, "col_offset", 0) + 1
        raise SpecError(
            f"{self.where} {self.text!r}: {what} at column {col}",
            "use numbers, declared names, + - * / ** and the functions " + ", ".join(FUNCTIONS),
        )

    def visit(self, node):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self.fail(node, f"constant {node.value!r} is not a number")
            if abs(node.value) > 1e12:
                self.fail(node, f"constant {node.value!r} is out of range (|c| <= 1e12)")
            return sp.Rational(str(node.value)) if isinstance(node.value, float) else sp.Integer(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.ns.scalars or node.id in self.ns.tensors:
                return self.ns.component(node.id)
            if node.id == "pi":
                return sp.pi
            self.fail(node, f"unknown name {node.id!r} (declare it in the spec's symbols)")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.MatMult):
                return self.matmul(node)
            op = _BINOPS.get(type(node.op))
            if op is None:
                self.fail(node, f"operator {type(node.op).__name__} is not allowed")
            left, right = self.visit(node.left), self.visit(node.right)
            if op is sp.Pow and right.is_number and abs(right) > 64:
                self.fail(node, f"exponent {right} is out of range (|exponent| <= 64)")
            return op(left, right)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.visit(node.operand)
            if isinstance(node.op, ast.UAdd):
                return self.visit(node.operand)
            self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.Call):
            return self.call(node)
        self.fail(node, f"{type(node).__name__} syntax is not allowed")

    def call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only plain function names may be called")
        name = node.func.id
        if node.keywords:
            self.fail(node, f"{name}() takes no keyword arguments")
        args = node.args
        if name in _ELEMENTWISE:
            need = 2 if name in ("max", "min") else 1
            if len(args) != need:
                self.fail(node, f"{name}() takes {need} argument(s), got {len(args)}")
            return _ELEMENTWISE[name](*[self.visit(a) for a in args])
        if name in _REDUCTIONS:
            if len(args) != 1:
                self.fail(node, f"{name}() takes 1 argument, got {len(args)}")
            return _REDUCTIONS[name](self.visit(args[0]), f"{self.where} {self.text!r}")
        if name == "dot":
            if len(args) != 2:
                self.fail(node, f"dot() takes 2 arguments, got {len(args)}")
            return _REDUCTIONS["sum"](self.visit(args[0]) * self.visit(args[1]), f"{self.where} {self.text!r}")
        if name == "quad":
            return self.quad(node)
        self.fail(node, f"unknown function {name!r}")

    def matmul(self, node: ast.BinOp):
        """``W @ v``: contract the last axis of the declared matrix ``W`` with the vector ``v``."""
        if not isinstance(node.left, ast.Name) or node.left.id not in self.ns.tensors:
            self.fail(node, "the left operand of @ must be a declared matrix name")
        base, axes = self.ns.tensors[node.left.id]
        if len(axes) != 2:
            self.fail(node, f"{node.left.id!r} has axes {axes}; @ needs a matrix (two axes)")
        right = self.visit(node.right)
        inner = placeholder(axes[1])
        if inner not in free_indices(right):
            self.fail(node, f"the right operand of {node.left.id} @ ... has no {axes[1]} axis to contract")
        ax = AXES[axes[1]]
        bound = sp.Idx(sp.Symbol(f"_mm{next(_matmul_counter)}", integer=True), (1, ax.extent))
        return sp.Sum(base[placeholder(axes[0]), bound] * instantiate(right, {inner: bound}), (bound, 1, ax.extent))

    def quad(self, node: ast.Call):
        if len(node.args) != 2 or not all(isinstance(a, ast.Name) for a in node.args):
            self.fail(node, "quad(v, A) takes a vector name and a matrix name")
        v, m = (a.id for a in node.args)
        if v not in self.ns.tensors or self.ns.tensors[v][1] != ("dim",):
            self.fail(node, f"quad(): {v!r} is not a declared vector over the state dimension")
        if m not in self.ns.tensors or self.ns.tensors[m][1] != ("dim", "dim"):
            self.fail(node, f"quad(): {m!r} is not a declared (d, d) matrix")
        vb, mb = self.ns.tensors[v][0], self.ns.tensors[m][0]
        i, l = I_, sp.Idx(sp.Symbol("i_1", integer=True), (1, DIM.extent))
        return sp.Sum(sp.Sum(mb[i, l] * vb[i] * vb[l], (l, 1, DIM.extent)), (i, 1, DIM.extent))
