"""The cost bound of parsing: what a spec string may be, checked before SymPy evaluates anything.

:func:`hjsym.spec.parse.parse` hands every string to :func:`checked_tree` first, which refuses,
with a :class:`~hjsym.SpecError` naming the piece and the bound:

* text: at most :data:`MAX_LENGTH` characters, ASCII only (Python reads identifiers after NFKC
  normalisation, so a fullwidth ``ｎｏｒｍ２`` would silently be ``norm2``; hjsym says so instead);
* syntax: at most :data:`MAX_NODES` expression nodes nested at most :data:`MAX_DEPTH` deep
  (a chain ``a + b - c ...`` or ``a * b / c ...`` is one level; measured without recursion, so
  2,000 unary minus signs are an error, not a ``RecursionError``);
* numbers: every constant sub-expression is evaluated first in floating point; it must be finite
  and at most :data:`MAX_MAGNITUDE` in size (``(9**64)**64``, ``exp(exp(1000))``), nothing is
  divided by zero, and ``log``/``sqrt`` of a constant stay in their domain;
* powers: a constant exponent is at most :data:`MAX_EXPONENT` in size, and the polynomial degree
  of the whole expression (powers of powers multiply) at most :data:`MAX_DEGREE`.

SymPy then builds an expression whose size is bounded by these numbers; a non-finite result it
still produces (``p / (eps - eps)``) is refused by :func:`finite_result`.
"""

from __future__ import annotations

import ast
import math
import unicodedata

import sympy as sp

from .._errors import SpecError

__all__ = ["MAX_LENGTH", "MAX_NODES", "MAX_DEPTH", "MAX_EXPONENT", "MAX_DEGREE", "MAX_MAGNITUDE", "checked_tree", "finite_result"]

MAX_LENGTH = 2000
MAX_NODES = 400
MAX_DEPTH = 32
MAX_EXPONENT = 64
MAX_DEGREE = 64
MAX_MAGNITUDE = 1e300

_MATH = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "abs": abs, "tanh": math.tanh, "cosh": math.cosh, "sinh": math.sinh,
         "sin": math.sin, "cos": math.cos, "erf": math.erf, "sigmoid": lambda z: 1 / (1 + math.exp(-z)) if z > -700 else 0.0,
         "softplus": lambda z: z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z)), "max": max, "min": min}
_POLY = {"abs", "max", "min"}  # functions that keep the degree of their arguments (elementwise, piecewise polynomial)


def checked_tree(text, where: str) -> ast.expr:
    """The syntax tree of ``text`` once every bound above holds (else a :class:`~hjsym.SpecError`)."""
    if not isinstance(text, str):
        raise SpecError(f"{where} must be a string, got {type(text).__name__}", "write it as plain mathematics")
    if len(text) > MAX_LENGTH:
        raise SpecError(f"{where} is {len(text)} characters long", f"keep spec expressions under {MAX_LENGTH} characters")
    _ascii(text, where)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(
            f"{where} {_short(text)} is not a valid expression ({exc.msg} at column {exc.offset})",
            "write plain mathematics, e.g. 'norm2(p)' or 'eps * lse((dot(W, x) + b) / eps)'",
        ) from None
    except (RecursionError, MemoryError, ValueError) as exc:  # the parser's own limits
        raise SpecError(f"{where} {_short(text)} is too deeply nested to parse ({type(exc).__name__})",
                        f"nest at most {MAX_DEPTH} levels deep") from None
    _shape(tree.body, text, where)
    _Numbers(text, where).run(tree.body)
    return tree.body


def finite_result(expr: sp.Expr, text: str, where: str) -> sp.Expr:
    """``expr`` unless SymPy made it non-finite (a division by an expression that is zero)."""
    bad = [v for v in (sp.zoo, sp.nan, sp.oo, -sp.oo) if expr.has(v)]
    if bad:
        raise SpecError(f"{where} {_short(text)} is not finite ({bad[0]}: a division by zero or an infinite limit)",
                        "remove the division by an expression that is identically zero")
    return expr


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _ascii(text: str, where: str) -> None:
    for col, ch in enumerate(text, 1):
        if not ch.isascii():
            name = unicodedata.name(ch, "unnamed")
            folded = unicodedata.normalize("NFKC", text)
            read = f"; Python would read it as {unicodedata.normalize('NFKC', ch)!r} (NFKC normalisation), hjsym does not" \
                if folded.isascii() else ""
            raise SpecError(f"{where}: non-ASCII character {ch!r} (U+{ord(ch):04X} {name}) at column {col}{read}",
                            f"write the expression in ASCII{f', e.g. {folded!r}' if folded.isascii() else ''}")


def _shape(root: ast.expr, text: str, where: str) -> None:
    """Count expression nodes and measure their nesting without recursion."""
    count, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SpecError(f"{where} {_short(text)} has more than {MAX_NODES} terms and operations",
                            f"split it into named definitions or simplify it (at most {MAX_NODES})")
        if depth > MAX_DEPTH:
            col = getattr(node, "col_offset", 0) + 1
            raise SpecError(f"{where} {_short(text)} is nested more than {MAX_DEPTH} levels deep (column {col})",
                            f"nest at most {MAX_DEPTH} levels deep")
        stack.extend((child, depth + (0 if _chained(node, child) else 1)) for child in ast.iter_child_nodes(node)
                     if isinstance(child, ast.expr))


_FAMILIES = ((ast.Add, ast.Sub), (ast.Mult, ast.Div))


def _chained(parent, child) -> bool:
    """``a + b - c + ...`` and ``a * b / c * ...`` are one level, not one per operator (SymPy flattens them)."""
    if not (isinstance(parent, ast.BinOp) and isinstance(child, ast.BinOp)):
        return False
    return any(isinstance(parent.op, fam) and isinstance(child.op, fam) for fam in _FAMILIES)


class _Numbers:
    """Evaluates every constant sub-expression in floating point, and bounds exponents and the degree (post-order, iterative)."""

    def __init__(self, text: str, where: str):
        self.text, self.where = text, where
        self.value: dict[int, float | None] = {}  # id(node) -> value of a constant sub-expression, None otherwise
        self.degree: dict[int, float] = {}

    def fail(self, node, what: str, fix: str):
        raise SpecError(f"{self.where} {_short(self.text)}: {what} at column {getattr(node, 'col_offset', 0) + 1}",
                        f"write plain mathematics: {fix}")

    def run(self, root: ast.expr) -> None:
        order, stack = [], [root]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr))
        for node in reversed(order):  # children before parents
            self.value[id(node)], self.degree[id(node)] = self.visit(node)
            if self.degree[id(node)] > MAX_DEGREE:
                self.fail(node, f"the polynomial degree reaches {self.degree[id(node)]:g} (at most {MAX_DEGREE})",
                          "lower the powers (powers of powers multiply their exponents)")

    def visit(self, node):
        kids = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)]
        vals = [self.value.get(id(c)) for c in kids]
        degs = [self.degree.get(id(c), 0.0) for c in kids]
        if isinstance(node, ast.Constant):
            v = node.value
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return None, 0.0  # not a number: the parser says so
            source = ast.get_source_segment(self.text.strip(), node) or str(v)
            return self.constant(node, lambda: v, f"constant {_short(source)}"), 0.0
        if isinstance(node, ast.Name):
            return (math.pi, 0.0) if node.id == "pi" else (None, 1.0)
        if isinstance(node, ast.UnaryOp):
            return (None if vals[0] is None else -vals[0] if isinstance(node.op, ast.USub) else vals[0]), degs[0]
        if isinstance(node, ast.BinOp):
            return self.binop(node, vals[0], vals[1], degs[0], degs[1])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            args = [self.value.get(id(a)) for a in node.args]
            arg_degs = [self.degree.get(id(a), 0.0) for a in node.args]
            deg = max(arg_degs, default=0.0)
            if name in ("norm2", "quad"):
                deg = 2 * max(deg, 1.0)
            elif name == "dot":
                deg = sum(arg_degs)
            elif name in _MATH and name not in _POLY:
                deg = min(deg, 1.0)  # a transcendental function of anything counts once
            if name in _MATH and args and all(a is not None for a in args):
                return self.constant(node, lambda: _MATH[name](*args), f"{name}() of the constant"), 0.0
            return None, deg
        return None, max(degs, default=0.0)

    def binop(self, node, a, b, da, db):
        op = node.op
        if isinstance(op, (ast.Pow, ast.BitXor)):
            if b is not None and abs(b) > MAX_EXPONENT:
                self.fail(node, f"exponent {b:g} is out of range (|exponent| <= {MAX_EXPONENT})",
                          f"use exponents of size at most {MAX_EXPONENT}")
            deg = da * (abs(b) if b is not None else 1.0) if da else (0.0 if b is not None else min(db, 1.0))
            if a is not None and b is not None:
                if a == 0 and b < 0:
                    self.fail(node, "0 raised to a negative power (a division by zero)", "remove the division by zero")
                if a < 0 and b != int(b):
                    self.fail(node, f"a negative number raised to the non-integer power {b:g}", "use a non-negative base")
                return self.constant(node, lambda: math.pow(a, b), "the power"), 0.0
            return None, deg
        if isinstance(op, ast.Div) and b == 0:
            self.fail(node, "division by zero", "remove the division by zero")
        if a is None or b is None:
            return None, (max(da, db) if isinstance(op, (ast.Add, ast.Sub)) else da + db)
        fns = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b}
        fn = fns.get(type(op))
        return (None if fn is None else self.constant(node, fn, "the constant")), 0.0

    def constant(self, node, compute, what: str) -> float | None:
        try:
            v = float(compute())
        except TypeError:  # a call with the wrong number of arguments: the parser names it
            return None
        except OverflowError:
            self.fail(node, f"{what} overflows a float (|value| > {MAX_MAGNITUDE:g})", "use smaller numbers")
        except ZeroDivisionError:
            self.fail(node, "division by zero", "remove the division by zero")
        except ValueError:
            self.fail(node, f"{what} is outside the function's domain (e.g. log or sqrt of a negative number or of 0)",
                      "use an argument inside the domain")
        if math.isnan(v):
            self.fail(node, f"{what} is not a number", "use finite numbers")
        if not math.isfinite(v) or abs(v) > MAX_MAGNITUDE:
            self.fail(node, f"{what} overflows a float (|value| > {MAX_MAGNITUDE:g})", "use smaller numbers")
        return v
