"""Torch code generation from index-calculus expressions.

Every tensor in generated code has *named axes*: the batch of query points and the free
indices of the expression it holds (``x[i]`` is a ``(batch, i)`` tensor, ``W[j, i]`` a
``(j, i)`` one). Axes are kept in one canonical order, so broadcasting two operands only
inserts singleton axes. A sum over an index of a product is printed as one ``torch.einsum``
contraction (``sum_i x_i y_{ji}`` is a matrix product, never a ``(batch, N, d)`` temporary);
``LogSumExp`` prints as ``torch.logsumexp``, a Gibbs average as a softmax contracted with its
values, ``Max``/``Min`` elementwise as ``torch.maximum``/``torch.minimum``.

Reductions over the atoms at the top of an expression are *streamed*: the atoms are cut into
chunks whose largest intermediate fits a memory budget, each chunk gives a partial state,
and the states are combined exactly (see :mod:`hjsym.codegen.runtime`). Common subexpressions are
computed once per block.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass, field

import sympy as sp
from sympy.printing.pytorch import TorchPrinter

from .._errors import SpecError
from .generated import GeneratedFunction
from ..symbolic.axes import AXES, axis_of
from ..symbolic.matrices import derived_arg
from ..symbolic.reductions import GibbsMean, GibbsWeight, LogSumExp, ReduceMax, ReduceMin, Reduction, TopGap

__all__ = ["ArgSpec", "FunctionSpec", "HJTorchPrinter", "generate_source", "generate"]

BATCH = "@batch"


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


def _label(idx) -> str:
    return str(idx.label)


def _sort_key(label: str, kinds: dict[str, str]):
    if label == BATCH:
        return (0, 0, "")
    return (1, AXES[kinds[label]].order, label)


class _Compiler:
    """Axis bookkeeping and emitted statements while one function is printed."""

    def __init__(self, fspec: FunctionSpec, printer=None):
        self.fspec = fspec
        self.args = {a.symbol: a for a in fspec.args}
        self.kinds: dict[str, str] = {}  # index label -> axis kind
        self.axes_memo: dict = {}
        self.sym_axes: dict[sp.Symbol, tuple[str, ...]] = {}
        self.lines: list[str] = []
        self.memo: dict = {}
        self.cse: set = set()
        self.counter = Counter()
        self.streamed: sp.Idx | None = None
        self.extents_int: set[str] = set()  # sizes needed as Python ints (shapes, chunking)
        self.extents_tensor: set[str] = set()  # sizes used in arithmetic (0-d tensors)
        self.derived: list[tuple[str, str]] = []  # (name, code) of tensors computed from arguments
        self.printer = printer if printer is not None else HJTorchPrinter(self)

    # ------------------------------------------------------------------ axes
    def register(self, idx) -> str:
        lab = _label(idx)
        kind = axis_of(idx).name
        if self.kinds.setdefault(lab, kind) != kind:
            raise SpecError(f"index {lab} is used over two axes", "use distinct index names per axis")
        return lab

    def order(self, labels) -> tuple[str, ...]:
        return tuple(sorted(set(labels), key=lambda s: _sort_key(s, self.kinds)))

    def axes(self, e) -> tuple[str, ...]:
        """Named axes of the tensor that holds ``e``, in canonical order."""
        if e in self.axes_memo:
            return self.axes_memo[e]
        if isinstance(e, sp.Symbol) and e in self.sym_axes:
            out = self.sym_axes[e]
        elif isinstance(e, sp.Idx):
            out = (self.register(e),)
        elif isinstance(e, sp.Indexed):
            spec = self.arg_for(e.base)
            labs = [BATCH] if spec.batched else []
            for ix in e.indices:
                if not isinstance(ix, sp.Idx):
                    raise SpecError(f"index expression {ix} in {e}", "index tensors by plain ranged indices only")
                labs.append(self.register(ix))
            out = self.order(labs)
        elif isinstance(e, sp.Symbol):
            spec = self.args.get(e)
            out = (BATCH,) if spec is not None and spec.per_point else ()
        elif isinstance(e, GibbsWeight):
            lab = self.register(e.index)
            out = self.order([a for a in self.axes(e.logits) if a != lab] + [self.register(e.at)])
        elif isinstance(e, (sp.Sum, Reduction)):
            labs = {self.register(lim[0]) for lim in e.limits}
            out = self.order(a for a in self.axes(e.function) if a not in labs)
        elif isinstance(e, sp.Tuple):
            out = self.order(a for part in e for a in self.axes(part))
        else:
            out = self.order(a for arg in e.args for a in self.axes(arg))
        self.axes_memo[e] = out
        return out

    def arg_for(self, base) -> ArgSpec:
        spec = self.args.get(base)
        if spec is None and (derived := derived_arg(base, self.args)) is not None:
            # a tensor computed from an argument once per call (e.g. the inverse of a matrix)
            name, code = derived
            spec = self.args[base] = ArgSpec(name, base, ("dim", "dim"))
            self.derived.append((name, code))
        if spec is None:
            raise SpecError(
                f"tensor {base} appears in {self.fspec.name} but is not one of its arguments",
                "add it to the function's arguments",
            )
        return spec

    def extent_label(self, label: str) -> str:
        """Python int variable holding the size of an axis label."""
        if label == BATCH:
            return "_M"
        name = AXES[self.kinds[label]].extent.name
        self.extents_int.add(name)
        return f"_{name}"

    # ------------------------------------------------------------------ emission
    def align(self, code: str, have: tuple[str, ...], want: tuple[str, ...]) -> str:
        """Insert singleton axes so a ``have``-tensor broadcasts against ``want``."""
        if have == want or not have:
            return code
        idx = ", ".join(":" if a in have else "None" for a in want)
        return f"{_wrap(code)}[{idx}]"

    def fresh(self, prefix: str) -> str:
        self.counter[prefix] += 1
        return f"{prefix}{self.counter[prefix] - 1}"

    def emit(self, name: str, code: str):
        self.lines.append(f"{name} = {code}")

    def start_block(self, exprs, streamed=None):
        """New statement block: reset the memo and count repeated subexpressions (CSE)."""
        self.lines, self.memo, self.streamed = [], {}, streamed
        seen = Counter()

        def visit(e):
            if e.is_Atom or isinstance(e, (sp.Idx, sp.Indexed, sp.IndexedBase)):
                return
            seen[e] += 1
            if seen[e] > 1:
                return
            children = (e.function,) if isinstance(e, (sp.Sum, Reduction)) else e.args
            for a in children:
                visit(a)

        for e in exprs:
            visit(e)
        self.cse = {e for e, n in seen.items() if n > 1 and not isinstance(e, sp.Tuple)}

    def print(self, e) -> str:
        return self.printer.doprint(e)


def _wrap(code: str) -> str:
    """Parenthesise ``code`` unless it is a name or a single call/subscript."""
    if code.isidentifier() or _single_term(code):
        return code
    return f"({code})"


def _single_term(code: str) -> bool:
    head = 0
    while head < len(code) and (code[head].isalnum() or code[head] in "._"):
        head += 1
    if head == 0 or head == len(code):
        return False
    depth = 0
    for n in range(head, len(code)):
        ch = code[n]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0:
            return False
        if depth == 0 and n + 1 < len(code) and code[n + 1] not in "([.":
            return False
    return depth == 0


class HJTorchPrinter(TorchPrinter):
    """SymPy's torch printer with hjsym's mappings; every mapping is covered by a test.

    * ``LogSumExp`` -> ``torch.logsumexp`` (stable; never ``log(exp + exp)``)
    * ``GibbsMean`` -> softmax weights contracted with the values by ``torch.einsum``
    * ``GibbsWeight`` -> softmax weights
    * ``Sum`` of a product -> ``torch.einsum``; of a single tensor -> ``torch.sum``
    * ``ReduceMax``/``ReduceMin`` -> ``torch.amax``/``torch.amin``; ``TopGap`` -> ``torch.topk``
    * ``Max``/``Min`` -> elementwise ``torch.maximum``/``torch.minimum`` (not reductions)
    * ``log(1 + exp(a))`` -> ``_rt.log1pexp(a)``, ``log(exp(a) + exp(b))`` -> ``torch.logaddexp`` (stable)
    * ``Transpose`` -> ``.transpose(-2, -1)`` (batch-safe); ``KroneckerDelta`` -> ``torch.eye``
    * numbers and number-only subexpressions -> Python float literals
    """

    printmethod = "_hjsym_torchcode"

    def __init__(self, compiler: _Compiler | None = None, settings=None):
        super().__init__(settings or {})
        # standalone (no function being generated): symbols print by name, no CSE
        self.standalone = compiler is None
        self.c = compiler if compiler is not None else _Compiler(FunctionSpec("standalone", sp.S.Zero, ()), printer=self)

    # -- CSE hook
    def _print(self, expr, **kwargs):
        c = self.c
        if expr in c.memo:
            return c.memo[expr]
        code = super()._print(expr, **kwargs)
        if expr in c.cse and not _is_simple(code):
            name = c.fresh("_t")
            c.emit(name, code)
            c.memo[expr] = name
            return name
        return code

    # -- leaves
    def _print_Symbol(self, expr):
        c = self.c
        if self.standalone:
            return expr.name
        if expr in c.args:
            return c.args[expr].name
        if expr in c.sym_axes:
            return expr.name
        for axis in AXES.values():
            if expr == axis.extent:
                c.extents_int.add(axis.extent.name)
                c.extents_tensor.add(axis.extent.name)
                return f"_{axis.extent.name}_t"
        raise SpecError(
            f"symbol {expr} in {c.fspec.name} is not bound to any argument",
            "add it to the spec's parameters or substitute a value before generating code",
        )

    def _print_Indexed(self, expr):
        c = self.c
        spec = c.arg_for(expr.base)
        have = ([BATCH] if spec.batched else []) + [c.register(ix) for ix in expr.indices]
        if len(set(have)) != len(have):
            raise SpecError(f"repeated index in {expr}", "write the diagonal explicitly (not supported)")
        code = spec.name
        if c.streamed is not None and c.streamed in expr.indices:
            pos = list(expr.indices).index(c.streamed) + (1 if spec.batched else 0)
            code = f"{code}[{', '.join([':'] * pos + ['_s'])}]"
        want = list(c.order(have))
        if want != have:
            code = f"{code}.permute({', '.join(str(have.index(a)) for a in want)})"
        return code

    def _print_Idx(self, expr):
        raise SpecError(f"bare index {expr} in an expression", "indices may only appear inside tensors or deltas")

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_NumberSymbol(self, expr):
        return repr(float(expr))

    _print_Pi = _print_NumberSymbol
    _print_Exp1 = _print_NumberSymbol

    def _print_Infinity(self, expr):
        return "math.inf"

    def _print_NegativeInfinity(self, expr):
        return "(-math.inf)"

    def _number(self, expr):
        if expr.is_number and not expr.has(sp.zoo, sp.nan):
            value = complex(expr.evalf(30))
            if value.imag == 0:
                return repr(float(value.real))
        return None

    # -- arithmetic with broadcasting
    def _print_Add(self, expr, order=None):
        c = self.c
        lit = self._number(expr)
        if lit is not None:
            return lit
        want = c.axes(expr)
        # Small tensors first: Python adds left to right, so cheap terms combine before
        # the one (batch x atoms) addition.
        terms = sorted(expr.args, key=lambda t: (len(c.axes(t)), sp.default_sort_key(t)))
        out = ""
        for n, term in enumerate(terms):
            neg = term.could_extract_minus_sign()
            code = c.align(self._print(-term if neg else term), c.axes(term), want)
            if n == 0:
                out = f"-{_wrap(code)}" if neg else code
            else:
                out += f" - {_wrap(code)}" if neg else f" + {code}"
        return out

    def _print_Mul(self, expr):
        c = self.c
        lit = self._number(expr)
        if lit is not None:
            return lit
        want = c.axes(expr)
        coeff, rest = expr.as_coeff_Mul()
        factors = list(sp.Mul.make_args(rest))
        scalars = [f for f in factors if not c.axes(f)]
        tensors = [f for f in factors if c.axes(f)]
        # Fold scalar factors into a contraction's smallest operand instead of scaling its result.
        if len(tensors) == 1 and isinstance(tensors[0], (sp.Sum, GibbsMean)) and (scalars or coeff != 1):
            scale = coeff * sp.Mul(*scalars)
            return self._contraction_of(tensors[0], scale)
        num, den = [], []
        for f in scalars + tensors:
            if f.is_Pow and f.exp.is_number and f.exp.is_negative:
                den.append(f.base ** (-f.exp))
            else:
                num.append(f)
        if coeff not in (1, -1):
            num.insert(0, abs(coeff) if coeff.is_negative else coeff)
        top = " * ".join(_wrap(c.align(self._print(f), c.axes(f), want)) for f in num) or "1"
        if den:
            bottom = " * ".join(_wrap(c.align(self._print(f), c.axes(f), want)) for f in den)
            top = f"{top} / {bottom if len(den) == 1 else '(' + bottom + ')'}"
        if coeff.is_negative:
            return f"-{_wrap(top)}" if (" " in top) else f"-{top}"
        return top

    def _print_Pow(self, expr, rational=False):
        lit = self._number(expr)
        if lit is not None:
            return lit
        base, ex = expr.args
        b = self._print(base)
        if ex == 2:
            return f"torch.square({b})"
        if ex == sp.S.Half:
            return f"torch.sqrt({b})"
        if ex == -1:
            return f"torch.reciprocal({b})"
        if ex == -sp.S.Half:
            return f"torch.rsqrt({b})"
        return f"{_wrap(b)} ** {_wrap(self._print(ex))}"

    def _print_Function(self, expr):
        lit = self._number(expr)
        if lit is not None:
            return lit
        return super()._print_Function(expr)

    def _print_log(self, expr):
        # log(1 + e^a) and log(e^a + e^b) are log-sum-exps: print them stably (never log(exp + exp))
        lit = self._number(expr)
        if lit is not None:
            return lit
        arg = expr.args[0]
        if arg.is_Add:
            exps = [t for t in arg.args if isinstance(t, sp.exp)]
            rest = [t for t in arg.args if not isinstance(t, sp.exp)]
            want = self.c.axes(expr)
            if len(exps) == 1 and rest == [sp.S.One]:
                return f"_rt.log1pexp({self._print(exps[0].args[0])})"
            if len(exps) == 2 and not rest:
                a, b = (self.c.align(self._print(e.args[0]), self.c.axes(e.args[0]), want) for e in exps)
                return f"torch.logaddexp({a}, {b})"
        return f"torch.log({self._print(arg)})"

    def _fold(self, op, expr):
        c = self.c
        want = c.axes(expr)
        codes = []
        for a in expr.args:
            code = c.align(self._print(a), c.axes(a), want)
            if a.is_number and not self.standalone:  # torch.maximum takes tensors only
                code = f"torch.tensor({code}, dtype=dtype, device=device)"
            codes.append(code)
        out = codes[0]
        for code in codes[1:]:
            out = f"{op}({out}, {code})"
        return out

    def _print_Max(self, expr):
        return self._fold("torch.maximum", expr)

    def _print_Min(self, expr):
        return self._fold("torch.minimum", expr)

    def _print_MatrixSymbol(self, expr):
        return self._print_Symbol(sp.Symbol(expr.name))

    def _print_Transpose(self, expr):
        return f"{_wrap(self._print(expr.arg))}.transpose(-2, -1)"

    def _print_KroneckerDelta(self, expr):
        a, b = expr.args
        if axis_of(a) != axis_of(b):
            return "0.0"
        self.c.register(b)
        return f"torch.eye({self.c.extent_label(self.c.register(a))}, dtype=dtype, device=device)"

    def _print_Piecewise(self, expr):
        c = self.c
        want = c.axes(expr)
        out = None
        for value, cond in reversed(expr.args):
            v = c.align(self._print(value), c.axes(value), want)
            out = v if cond == sp.true else f"torch.where({self._print(cond)}, {v}, {out})"
        return out

    def _print_Derivative(self, expr):
        raise SpecError(
            f"unevaluated derivative {expr} cannot be turned into code",
            "differentiate with hjsym's calculus (pdiff) before generating code",
        )

    # -- reductions
    def _dim(self, axes, var) -> int:
        return axes.index(_label(var))

    def _operands(self, factors):
        """(code, axes) of tensor operands; squares become two operands of one contraction."""
        out, scalars = [], []
        for f in factors:
            if isinstance(f, tuple):
                out.append(f)
            elif f.is_Pow and f.exp == 2 and self.c.axes(f.base):
                code = self._print(f.base)
                out += [(code, self.c.axes(f.base))] * 2
            elif self.c.axes(f):
                out.append((self._print(f), self.c.axes(f)))
            else:
                scalars.append(f)
        return out, scalars

    def _einsum(self, operands, want_out, scale=None) -> str:
        letters: dict[str, str] = {}

        def sub(axes):
            return "".join(letters.setdefault(a, "abcdefghijklmnopqrstuvwxyz"[len(letters)]) for a in axes)

        if scale is not None:
            # scale the operand with the fewest axes (it has the fewest elements)
            k = min(range(len(operands)), key=lambda n: len(operands[n][1]))
            code, axes = operands[k]
            operands = list(operands)
            operands[k] = (f"{_wrap(scale)} * {_wrap(code)}", axes)
        specs = [sub(axes) for _, axes in operands]
        out = sub(want_out)
        if len(operands) == 1:
            (code, axes), = operands
            dims = [n for n, a in enumerate(axes) if a not in want_out]
            if not dims:
                return code
            return f"torch.sum({code}, dim={dims[0] if len(dims) == 1 else tuple(dims)})"
        return f"torch.einsum({(','.join(specs) + '->' + out)!r}, {', '.join(code for code, _ in operands)})"

    def _contraction_of(self, expr, scale=sp.S.One) -> str:
        """Print a Sum or GibbsMean as one contraction, optionally scaled by a scalar."""
        c = self.c
        if isinstance(expr, GibbsMean):
            a, z, var = expr.value, expr.logits, expr.index
            probs = (self._probs(z, var), c.axes(z))
            coeff, rest = a.as_coeff_Mul()
            operands, scalars = self._operands([probs] + list(sp.Mul.make_args(rest)))
        else:
            f = expr.function
            for lim in expr.limits:
                if c.register(lim[0]) not in c.axes(f):
                    raise SpecError(f"the summand of {expr} does not depend on {lim[0]}", "canonicalise before generating code")
            coeff, rest = f.as_coeff_Mul()
            operands, scalars = self._operands(list(sp.Mul.make_args(rest)))
        total = scale * coeff * sp.Mul(*scalars)
        if not operands:
            return self._print(total * expr)
        scale_code = None if total == 1 else self._print(total)
        return self._einsum(operands, c.axes(expr), scale_code)

    def _print_Sum(self, expr):
        lit = self._number(expr)
        if lit is not None:
            return lit
        return self._contraction_of(expr)

    def _print_GibbsMean(self, expr):
        return self._contraction_of(expr)

    def _named(self, z) -> str:
        """``z`` printed once into a variable (logits are read by several reductions)."""
        c = self.c
        zc = self._print(z)
        if not zc.isidentifier():
            name = c.fresh("_z")
            c.emit(name, zc)
            zc = name
            c.memo[z] = zc
        return zc

    def _lse(self, z, var) -> str:
        """Name of ``logsumexp(z)`` along ``var`` with the reduced axis kept (memoised)."""
        c = self.c
        key = ("lse", z, _label(var))
        if key not in c.memo:
            zc = self._named(z)
            lse = c.fresh("_lse")
            c.emit(lse, f"torch.logsumexp({zc}, dim={self._dim(c.axes(z), var)}, keepdim=True)")
            c.memo[key] = lse
        return c.memo[key]

    def _gibbs_chunk(self, z, var) -> str:
        """In a streamed block: name of the chunk's log-sum-exp, its softmax registered as ``z``'s weights.

        ``_rt.gibbs_chunk`` returns one fused softmax, and the log-sum-exp only when there is
        more than one chunk to merge (None otherwise), so the common single-chunk case makes
        one pass less over the ``(batch x atoms)`` logits.
        """
        c = self.c
        key = ("gibbs-chunk", z, _label(var))
        if key not in c.memo:
            zc = self._named(z)
            lse, p = c.fresh("_lse"), c.fresh("_p")
            whole = f"_s.stop - _s.start == {c.extent_label(c.register(var))}"
            c.emit(f"{lse}, {p}", f"_rt.gibbs_chunk({zc}, {self._dim(c.axes(z), var)}, whole={whole})")
            c.memo[("probs", z, _label(var))] = p
            c.memo[key] = lse
        return c.memo[key]

    def _probs(self, z, var) -> str:
        """Name of ``softmax(z)`` along ``var`` (memoised; shares the log-sum-exp)."""
        c = self.c
        key = ("probs", z, _label(var))
        if key not in c.memo:
            lse = self._lse(z, var)
            p = c.fresh("_p")
            c.emit(p, f"torch.exp({self._print(z)} - {lse})")
            c.memo[key] = p
        return c.memo[key]

    def _print_LogSumExp(self, expr):
        z, var = expr.logits, expr.index
        return f"{self._lse(z, var)}.squeeze({self._dim(self.c.axes(z), var)})"

    def _print_GibbsWeight(self, expr):
        c = self.c
        z, var, at = expr.logits, expr.index, expr.at
        p = self._probs(z, var)
        lab_j, lab_m = c.register(var), c.register(at)
        have = [lab_m if a == lab_j else a for a in c.axes(z)]
        want = list(c.axes(expr))
        if have == want:
            return p
        return f"{p}.permute({', '.join(str(have.index(a)) for a in want)})"

    def _print_ReduceMax(self, expr):
        return f"torch.amax({self._print(expr.function)}, dim={self._dim(self.c.axes(expr.function), expr.index)})"

    def _print_ReduceMin(self, expr):
        return f"torch.amin({self._print(expr.function)}, dim={self._dim(self.c.axes(expr.function), expr.index)})"

    def _print_TopGap(self, expr):
        dim = self._dim(self.c.axes(expr.function), expr.index)
        return f"_rt.finish_top_gap(_rt.top_two({self._print(expr.function)}, {dim}))"


def _is_simple(code: str) -> bool:
    return code.isidentifier() or code.replace(".", "", 1).lstrip("-").isdigit()


# ---------------------------------------------------------------------- whole functions
_STREAMABLE = (LogSumExp, GibbsMean, ReduceMax, ReduceMin, TopGap)


def _top_reductions(expr, out: list):
    """Reductions over an atom index not nested in another one, in first-seen order."""
    is_atom_sum = isinstance(expr, sp.Sum) and len(expr.limits) == 1 and axis_of(expr.limits[0][0]).name == "atom"
    if is_atom_sum or (isinstance(expr, _STREAMABLE) and axis_of(expr.index).name == "atom"):
        if expr not in out:
            out.append(expr)
        return
    for a in expr.args:
        if not a.is_Atom:
            _top_reductions(a, out)


def _partial(c: _Compiler, r):
    """(chunk value code, combine template, finish template) of one streamed reduction."""
    p = c.printer
    var = r.limits[0][0]
    if isinstance(r, LogSumExp):
        return p._print_LogSumExp(r), "_rt.combine_lse({state}, {value})", "{state}"
    if isinstance(r, GibbsMean):
        lse = p._gibbs_chunk(r.logits, var)
        mean = c.fresh("_mean")
        c.emit(mean, p._contraction_of(r))
        lse_axes = tuple(a for a in c.axes(r.logits) if a != _label(var))
        view = c.align("_v", lse_axes, c.axes(r))
        return (
            f"({lse}, {mean})",
            "_rt.combine_gibbs({state}, *{value}, lse_view=lambda _v: " + view + ")",
            "_rt.finish_gibbs({state})",
        )
    if isinstance(r, ReduceMax):
        return p._print_ReduceMax(r), "_rt.combine_max({state}, {value})", "{state}"
    if isinstance(r, ReduceMin):
        return p._print_ReduceMin(r), "_rt.combine_min({state}, {value})", "{state}"
    if isinstance(r, TopGap):
        dim = p._dim(c.axes(r.function), var)
        return (
            f"_rt.top_two({p._print(r.function)}, {dim})",
            "_rt.combine_top_two({state}, {value})",
            "_rt.finish_top_gap({state})",
        )
    return p._print_Sum(r), "_rt.combine_sum({state}, {value})", "{state}"


def _materialised(c: _Compiler, e, out: list):
    """Subexpressions that generated code holds as tensors (a contraction's summand is not one)."""
    if e.is_Atom or isinstance(e, sp.Tuple):
        return
    out.append(e)
    if isinstance(e, (sp.Sum, GibbsMean)):
        summand = e.value if isinstance(e, GibbsMean) else e.function
        if isinstance(e, GibbsMean):
            _materialised(c, e.logits, out)
        for f in sp.Mul.make_args(summand):
            _materialised(c, f.base if (f.is_Pow and f.exp == 2) else f, out)
        return
    for a in (e.function,) if isinstance(e, Reduction) else e.args:
        _materialised(c, a, out)


def _bytes_per_atom(c: _Compiler, exprs, atom_label: str) -> str:
    """Python expression: bytes per atom of the largest tensor a chunk body materialises."""
    terms = set()
    subs: list = []
    for e in exprs:
        _materialised(c, e, subs)
    for sub in subs:
        axes = c.axes(sub)
        if atom_label in axes:
            dims = sorted(c.extent_label(a) for a in axes if a != atom_label)
            terms.add("*".join(dims) or "1")
    inner = "1" if not terms else (terms.pop() if len(terms) == 1 else f"max({', '.join(sorted(terms))})")
    return f"_itemsize * {inner}"


def generate_source(fspec: FunctionSpec) -> str:
    """Python source of a torch function computing ``fspec.expr``."""
    c = _Compiler(fspec)
    expr = sp.sympify(fspec.expr)
    for a in fspec.args:
        if not expr.has(a.symbol):
            raise SpecError(f"{fspec.name}: argument {a.name!r} does not occur in the expression", "drop it from args")
    out_axes = c.axes(expr)
    declared = [c.register(ix) for ix in fspec.out_indices]
    free = [a for a in out_axes if a != BATCH]
    if sorted(free) != sorted(declared):
        raise SpecError(
            f"{fspec.name}: the expression has free indices {free} but the output declares {declared}",
            "declare exactly the free indices of the expression as out_indices",
        )
    body: list[str] = []
    placeholders: dict = {}
    # Streaming only pays when the output has no atom axis (otherwise it is N-sized anyway).
    reductions: list = []
    if all(c.kinds[a] != "atom" for a in free):
        _top_reductions(expr, reductions)
    groups: dict[str, list] = {}
    for r in reductions:
        groups.setdefault(_label(r.limits[0][0]), []).append(r)
    for label, group in groups.items():
        c.start_block([r.function for r in group], streamed=group[0].limits[0][0])
        states, finish = [], []
        for r in group:
            ph = sp.Symbol(c.fresh("_r"))
            placeholders[r] = ph
            c.sym_axes[ph] = c.axes(r)
            state = c.fresh("_state")
            value, combine, done = _partial(c, r)
            c.lines.append(f"{state} = {combine.format(state=state, value=value)}")
            states.append(state)
            finish.append(f"{ph.name} = {done.format(state=state)}")
        loop_lines = c.lines
        per_atom = _bytes_per_atom(c, group, label)  # the reductions themselves: a Gibbs average counts its logits and values
        atoms = c.extent_label(label)
        body += [f"{s} = None" for s in states]
        body.append(f"for _s in _rt.atom_slices({atoms}, {per_atom}, max_chunk_bytes):")
        body += ["    " + line for line in loop_lines]
        body += finish
    outer = expr.xreplace(placeholders)
    c.start_block([outer])
    code = c.print(outer)
    body += c.lines
    want = [BATCH] * (BATCH in out_axes) + declared
    if list(out_axes) != want:
        code = f"{_wrap(code)}.permute({', '.join(str(list(out_axes).index(a)) for a in want)})"
    body.append(f"_out = {code}")
    return _assemble(c, fspec, body, out_axes, want)


def _assemble(c: _Compiler, fspec: FunctionSpec, body, out_axes, want) -> str:
    lines = prologue(c, fspec, lambda explicit: _docstring(fspec, out_axes, explicit))
    lines += ["    " + line for line in body]
    if BATCH in out_axes:
        lines.append("    return _out.reshape(_batch + tuple(_out.shape[1:]))")
    else:
        shape = "".join(f"{c.extent_label(a)}, " for a in want)
        lines.append(f"    return torch.as_tensor(_out, dtype=dtype, device=device).expand(({shape}))")
    return "\n".join(lines) + "\n"


def prologue(c: _Compiler, fspec: FunctionSpec, docstring) -> list[str]:
    """The signature, docstring and argument validation of a generated function.

    ``docstring(explicit)`` returns the docstring given the sizes passed explicitly. Batched
    arguments are flattened to ``(_M, ...)`` with their common leading shape kept in ``_batch``.
    """
    args = fspec.args
    sources: dict[str, list[str]] = {}
    for a in args:
        if a.is_tensor:
            offset = 1 if a.batched else 0
            for n, kind in enumerate(a.axes):
                sources.setdefault(AXES[kind].extent.name, []).append(f"({a.name!r}, {a.name}, {n + offset})")
    explicit = sorted(e for e in c.extents_int if e not in sources)
    kw = ", ".join([f"{e}=None" for e in explicit] + ["max_chunk_bytes=None"])
    sig = ", ".join(a.name for a in args)
    lines = [f"def {fspec.name}({sig}{', ' if sig else ''}*, {kw}):"]
    lines.append(textwrap.indent(docstring(explicit), "    "))
    lines.append("    dtype, device = _rt.resolve_dtype_device({" + ", ".join(f"{a.name!r}: {a.name}" for a in args) + "})")
    batch_src = next((a for a in args if a.is_tensor and a.batched), None)
    for a in args:
        if a.is_tensor:
            lines.append(f"    {a.name} = _rt.tensor_arg({a.name!r}, {a.name}, {len(a.axes)}, dtype, device, batched={a.batched})")
    if batch_src is not None:
        n0 = len(batch_src.axes)
        lines.append(f"    _batch = tuple({batch_src.name}.shape[:{batch_src.name}.dim() - {n0}])")
        for a in args:
            if a.is_tensor and a.batched:
                k = len(a.axes)
                if a is not batch_src:
                    lines.append(f"    if tuple({a.name}.shape[:{a.name}.dim() - {k}]) != _batch:")
                    lines.append(
                        f"        raise _rt.InputError(f'{a.name} has batch shape {{tuple({a.name}.shape[:{a.name}.dim() - {k}])}}"
                        f" but {batch_src.name} has {{_batch}}', 'give every batched argument the same leading shape')"
                    )
                lines.append(f"    {a.name} = {a.name}.reshape(-1, *{a.name}.shape[{a.name}.dim() - {k}:])")
        lines.append(f"    _M = {batch_src.name}.shape[0]")
    else:
        lines.append("    _batch, _M = (), 1")
    for a in args:
        if not a.is_tensor:
            bs = "_batch" if a.per_point else "None"
            lines.append(f"    {a.name} = _rt.scalar_arg({a.name!r}, {a.name}, dtype, device, positive={a.positive}, batch_shape={bs})")
    for ext in sorted(set(sources) | set(explicit)):
        given = ext if ext in explicit else "None"
        lines.append(f"    _{ext} = _rt.extent({ext!r}, [{', '.join(sources.get(ext, []))}], given={given})")
    for a in args:
        if a.is_tensor:
            offset = 1 if a.batched else 0
            for n, kind in enumerate(a.axes):
                ext = AXES[kind].extent.name
                lines.append(f"    if {a.name}.shape[{n + offset}] != _{ext}:")
                lines.append(
                    f"        raise _rt.InputError(f'{a.name} has shape {{tuple({a.name}.shape)}}; axis {n + offset} should have size {ext}={{_{ext}}}', 'make the shapes of the arguments agree')"
                )
    for name, code in c.derived:
        lines.append(f"    {name} = {code}")
    for ext in sorted(c.extents_tensor):
        lines.append(f"    _{ext}_t = torch.tensor(float(_{ext}), dtype=dtype, device=device)")
    lines.append("    _itemsize = torch.empty((), dtype=dtype).element_size()")
    return lines


def _docstring(fspec: FunctionSpec, out_axes, explicit) -> str:
    rows = [f"{a.name}: {a.shape_text()}" + (f" -- {a.doc}" if a.doc else "") for a in fspec.args]
    rows += [f"{e}: int -- size not carried by any tensor argument" for e in explicit]
    out_dims = (["*batch"] if BATCH in out_axes else []) + [
        str(AXES[axis_of(ix).name].extent) for ix in fspec.out_indices
    ]
    ret = ("(" + ", ".join(out_dims) + ("," if len(out_dims) == 1 else "") + ")") if out_dims else "a 0-d tensor"
    doc = [fspec.doc.strip() or fspec.name, "", "Args:"]
    doc += ["    " + r for r in rows]
    doc += ["    max_chunk_bytes: memory budget of one chunk of atoms (default: hjsym's DEFAULT_CHUNK_BYTES)"]
    doc += ["", f"Returns: {ret}, in the dtype and on the device of the tensor arguments."]
    doc += ["", "Computes: " + sp.sstr(fspec.expr)]
    text = "\n".join(doc).replace("\\", "\\\\").replace('"""', "'''")
    return '"""' + text + '\n"""'


def generate(fspec: FunctionSpec, latex: str = "") -> GeneratedFunction:
    """Generate and compile ``fspec``."""
    src = generate_source(fspec)
    out_dims = [str(AXES[axis_of(ix).name].extent) for ix in fspec.out_indices]
    batched = any(a.batched or a.per_point for a in fspec.args)
    returns = "(" + ", ".join((["*batch"] if batched else []) + out_dims) + ")"
    return GeneratedFunction(
        name=fspec.name,
        source=src,
        signature=tuple({"name": a.name, "shape": a.shape_text(), "doc": a.doc} for a in fspec.args),
        returns=returns,
        expression=sp.sstr(fspec.expr),
        doc=fspec.doc,
        latex=latex,
    )
