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

import itertools
from collections import Counter

import sympy as sp
from sympy.printing.pytorch import TorchPrinter

from .._errors import SpecError
from ..ir import ArgSpec, BatchSum, FunctionSpec
from ..symbolic.axes import AXES, axis_of
from ..symbolic.gates import DSigmoid, DTanh
from ..symbolic.matrices import InverseBase, SPDBase
from ..symbolic.reductions import GibbsMean, GibbsWeight, LogSumExp, Reduction

__all__ = ["HJTorchPrinter", "Compiler", "BATCH", "wrap"]

BATCH = "@batch"


def derived_arg(base, args: dict):
    """For ``InverseBase(A)`` with ``A`` an argument: ``(name, code)`` of the tensor computed from it."""
    if not isinstance(base, InverseBase) or base.of not in args:
        return None
    src = args[base.of].name
    fn = "spd_inverse" if isinstance(base.of, SPDBase) else "matrix_inverse"
    return f"{src}_inv", f"_rt.{fn}({src!r}, {src})"


def _label(idx) -> str:
    return str(idx.label)


def _sort_key(label: str, kinds: dict[str, str]):
    if label == BATCH:
        return (0, 0, "")
    return (1, AXES[kinds[label]].order, label)


class Compiler:
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
        self.logit_uses: Counter = Counter()
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
        if isinstance(e, BatchSum):
            out = tuple(a for a in self.axes(e.args[0]) if a != BATCH)
        elif isinstance(e, sp.Symbol) and e in self.sym_axes:
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
        return f"{wrap(code)}[{idx}]"

    def fresh(self, prefix: str) -> str:
        self.counter[prefix] += 1
        return f"{prefix}{self.counter[prefix] - 1}"

    def emit(self, name: str, code: str):
        self.lines.append(f"{name} = {code}")

    def named(self, code: str, prefix: str = "_t") -> str:
        """``code`` computed once per block into a variable (e.g. a scaled operand several products read)."""
        if _is_simple(code):
            return code
        key = ("code", code)
        if key not in self.memo:
            name = self.fresh(prefix)
            self.emit(name, code)
            self.memo[key] = name
        return self.memo[key]

    def start_block(self, exprs, streamed=None):
        """New statement block: reset the memo and count repeated subexpressions (CSE)."""
        self.lines, self.memo, self.streamed = [], {}, streamed
        self.logit_uses = Counter()  # how many reductions read each logits expression
        seen = Counter()

        def visit(e):
            if e.is_Atom or isinstance(e, (sp.Idx, sp.Indexed, sp.IndexedBase)):
                return
            seen[e] += 1
            if isinstance(e, (LogSumExp, GibbsMean, GibbsWeight)):
                self.logit_uses[e.logits] += 1
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


def wrap(code: str) -> str:
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

    def __init__(self, compiler: Compiler | None = None, settings=None):
        super().__init__(settings or {})
        # standalone (no function being generated): symbols print by name, no CSE
        self.standalone = compiler is None
        self.c = compiler if compiler is not None else Compiler(FunctionSpec("standalone", sp.S.Zero, ()), printer=self)
        self.locals: dict = {}  # scalar intermediates of a program (Let targets that are Symbols) -> variable name

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
        if expr in self.locals:
            return self.locals[expr]
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
            return self._diagonal(expr, spec, have)
        code = spec.name
        if c.streamed is not None and c.streamed in expr.indices:
            pos = list(expr.indices).index(c.streamed) + (1 if spec.batched else 0)
            code = f"{code}[{', '.join([':'] * pos + ['_s'])}]"
        want = list(c.order(have))
        if want != have:
            code = f"{code}.permute({', '.join(str(have.index(a)) for a in want)})"
        return code

    def _diagonal(self, expr, spec, have):
        """A repeated index (a trace ``P[i, i]``) takes the diagonal."""
        if self.c.streamed is not None and self.c.streamed in expr.indices:
            raise SpecError(f"repeated atom index in {expr}", "write the diagonal over the atoms explicitly (not supported)")
        code = spec.name
        while len(set(have)) != len(have):
            lab = next(x for x in have if have.count(x) > 1)
            a = have.index(lab)
            b = have.index(lab, a + 1)
            code = f"torch.diagonal({code}, dim1={a}, dim2={b})"
            have = [x for n, x in enumerate(have) if n not in (a, b)] + [lab]
        want = list(self.c.order(have))
        if want != have:
            code = f"{code}.permute({', '.join(str(have.index(x)) for x in want)})"
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
    def _print_BatchSum(self, expr):
        c = self.c
        want = c.axes(expr)
        codes = []
        for term in sp.Add.make_args(expr.args[0]):
            if BATCH not in c.axes(term):
                codes.append(f"_M * {wrap(c.align(self._print(term), c.axes(term), want))}")
                continue
            coeff, rest = term.as_coeff_Mul()
            operands, scalars = self._operands(list(sp.Mul.make_args(rest)))
            total = coeff * sp.Mul(*scalars)
            codes.append(self._einsum(operands, want, None if total == 1 else self._print(total)))
        return " + ".join(codes) if len(codes) == 1 else " + ".join(wrap(code) for code in codes)

    def _print_Add(self, expr, order=None):
        """``A1 @ B1 + A2 @ B2 + ...`` with one output shape becomes ``cat(A) @ cat(B)``: one matrix product.

        (The costate of a gated cell sums one product per gate: ``sum_g abar_g U_g``.)
        """
        c = self.c
        lerp = self._lerp(expr)
        if lerp is not None:
            return lerp
        groups: dict = {}
        rest = []
        for term in expr.args:
            m = self._matmul_term(term)
            if m is None:
                rest.append(term)
            else:
                groups.setdefault(m[2], []).append((term, m))
        if not any(len(g) > 1 for g in groups.values()):
            fused = self._addmm(expr, groups, rest)
            return fused if fused is not None else self._print_plain_add(expr, order)
        want = c.axes(expr)
        codes = []
        for out_axes, g in groups.items():
            if len(g) == 1:
                rest.append(g[0][0])
                continue
            scales = {m[3] for _, m in g}
            common = scales.pop() if len(scales) == 1 else sp.S.One
            left = ", ".join(m[0] if m[3] == common else f"{wrap(self._print(m[3]))} * {wrap(m[0])}" for _, m in g)
            right = ", ".join(m[1] for _, m in g)
            # the concatenated weights do not change from step to step: concatenated once and cached
            right_cat = (f"_rt.cat_constant([{right}], 0)" if all(BATCH not in self._right_axes(m) for _, m in g)
                         else f"torch.cat([{right}], dim=0)")
            code = f"torch.matmul({c.named(f'torch.cat([{left}], dim=-1)', '_cat')}, {right_cat})"
            if common != 1:
                code = f"{wrap(self._print(common))} * {code}"
            codes.append(c.align(code if tuple(out_axes) == tuple(c.order(out_axes)) else f"{code}.transpose(0, 1)",
                                 tuple(c.order(out_axes)), want))
        if rest:
            codes.append(c.align(self._print_plain_add(sp.Add(*rest), order) if len(rest) > 1 else self._print(rest[0]),
                                 c.axes(sp.Add(*rest)), want))
        return " + ".join(codes)

    def _lerp(self, expr):
        """``a - h a + h (b1 + b2 ...)`` (a gated or explicit Euler step, and its costate) as ``torch.lerp(a, b, h)``.

        One fused pass instead of a scaling, a negation and three additions; ``h`` is a scalar.
        """
        c = self.c
        want = c.axes(expr)
        if not want:
            return None
        split = []
        for term in expr.args:
            coeff, rest = term.as_coeff_Mul()
            factors = sp.Mul.make_args(rest)
            scalar = coeff * sp.Mul(*[f for f in factors if not c.axes(f)])
            tensor = sp.Mul(*[f for f in factors if c.axes(f)])
            split.append((scalar, tensor))
        for scalar, a in split:
            if scalar != 1 or c.axes(a) != want:
                continue
            minus = [s for s, t in split if t == a and s != 1]
            if len(minus) != 1 or not c.axes(a):
                continue
            h = -minus[0]
            if h.is_number or c.axes(h):
                continue
            others = [(s / h, t) for s, t in split if t != a]  # b = sum of r t over the terms r h t
            if not others or not all(r.is_number for r, _ in others):
                continue
            b = sp.Add(*[r * t for r, t in others])
            if c.axes(b) != want:
                return None
            return f"torch.lerp({self._print(a)}, {self._print(b)}, {self._print(h)})"
        return None

    def _addmm(self, expr, groups, rest):
        """``bias + sum_mu L[b, mu] R[mu, j]`` as one ``torch.addmm(bias, L, R)``: the bias is added by the product.

        Only for a 2-D product in the output's own axis order and a bias that is a tensor
        broadcasting against it (a row over ``j`` or a column over ``b``).
        """
        c = self.c
        want = c.axes(expr)
        if len(groups) != 1 or not rest or len(want) != 2:
            return None
        ((out_axes, g),) = groups.items()
        if len(g) != 1 or tuple(out_axes) != tuple(want):
            return None
        bias = sp.Add(*rest)
        if not c.axes(bias) or not set(c.axes(bias)) <= set(want):
            return None
        _, (left, right, _, scale, _) = g[0]
        if scale != 1:
            left = c.named(f"{wrap(self._print(scale))} * {wrap(left)}")
        bias_code = self._print_plain_add(bias) if bias.is_Add else self._print(bias)
        bias_axes = c.axes(bias)
        if bias_axes == (want[0],):
            bias_code = f"{wrap(bias_code)}[:, None]"
        return f"torch.addmm({bias_code}, {left}, {right})"

    def _matmul_term(self, term):
        """``(left code, right code, (left axis, right axis))`` when ``term`` is ``coeff * sum_mu L[x, mu] R[mu, y]``."""
        c = self.c
        outer = [f for f in sp.Mul.make_args(term) if not isinstance(f, sp.Sum)]
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) != 1 or len(sums[0].limits) != 1 or any(c.axes(f) for f in outer):
            return None
        s = sums[0]
        factors = sp.Mul.make_args(s.function)
        tensors = [f for f in factors if c.axes(f)]
        scalars = [f for f in factors if not c.axes(f)] + outer
        if len(tensors) != 2 or any(f.is_Pow for f in tensors):
            return None
        mu = c.register(s.limits[0][0])
        (ca, xa), (cb, xb) = [(None, c.axes(f)) for f in tensors]
        if len(xa) != 2 or len(xb) != 2 or mu not in xa or mu not in xb or set(xa) & set(xb) != {mu}:
            return None
        want = c.axes(s)
        a_other = next(x for x in xa if x != mu)
        fa, fb = tensors
        if want[0] != a_other:
            fa, fb = fb, fa
            xa, xb = xb, xa
            a_other = next(x for x in xa if x != mu)
        b_other = next(x for x in xb if x != mu)
        ca, cb = self._print(fa), self._print(fb)
        ca = ca if xa[-1] == mu else f"{wrap(ca)}.transpose(0, 1)"
        cb = cb if xb[0] == mu else f"{wrap(cb)}.transpose(0, 1)"
        return ca, cb, (a_other, b_other), sp.Mul(*scalars), tuple(xb)

    @staticmethod
    def _right_axes(m) -> tuple:
        """Axes of the right operand of a :meth:`_matmul_term`."""
        return m[4]

    # ------------------------------------------------------------------ contraction planning
    def _einsum(self, operands, want_out, scale=None) -> str:
        c = self.c
        ops = [(code, tuple(axes)) for code, axes in operands]
        want = tuple(want_out)
        # 1. operands whose axes are contained in another's: multiply them in elementwise
        merged = True
        while merged and len(ops) > 1:
            merged = False
            for a, b in itertools.permutations(range(len(ops)), 2):
                (ca, xa), (cb, xb) = ops[a], ops[b]
                if set(xa) <= set(xb):
                    code = f"{wrap(c.align(ca, xa, xb))} * {wrap(cb)}"
                    ops = [op for n, op in enumerate(ops) if n not in (a, b)] + [(code, xb)]
                    merged = True
                    break
        # 2. the scale goes on the operand with the fewest axes; on the result when the batch is
        #    summed out (a parameter gradient: the result is far smaller than any operand)
        scale_result = scale is not None and BATCH not in want and any(BATCH in axes for _, axes in ops)
        if scale is not None and not scale_result:
            k = min(range(len(ops)), key=lambda n: len(ops[n][1]))
            ops[k] = (c.named(f"{wrap(scale)} * {wrap(ops[k][0])}"), ops[k][1])
        # 3. sum out axes that only one operand has and the output does not keep
        ops = [self._sum_alone(op, ops, want) for op in ops]
        # 4. contract pairwise, smallest intermediate first
        while len(ops) > 1:
            best = None
            for a, b in itertools.combinations(range(len(ops)), 2):
                others = set().union(*[set(ops[n][1]) for n in range(len(ops)) if n not in (a, b)])
                union = list(dict.fromkeys(ops[a][1] + ops[b][1]))
                summed = [x for x in union if x in ops[a][1] and x in ops[b][1] and x not in want and x not in others]
                key = (len(union) - len(summed), -len(summed), a, b)
                if best is None or key < best[0]:
                    best = (key, a, b, summed)
            _, a, b, summed = best
            new = self._contract2(ops[a], ops[b], summed)
            ops = [op for n, op in enumerate(ops) if n not in (a, b)] + [new]
            ops = [self._sum_alone(op, ops, want) for op in ops]
        code, axes = ops[0]
        if tuple(axes) != want:
            if set(axes) != set(want):
                raise SpecError(f"contraction produced axes {axes}, expected {want}", "report this as a bug in hjsym")
            code = f"{wrap(code)}.permute({', '.join(str(axes.index(x)) for x in want)})"
        if scale_result:
            code = f"{wrap(scale)} * {wrap(code)}"
        return code

    def _sum_alone(self, op, ops, want):
        code, axes = op
        others = set().union(*[set(o[1]) for o in ops if o is not op])
        alone = [n for n, x in enumerate(axes) if x not in want and x not in others]
        if not alone:
            return op
        dims = alone[0] if len(alone) == 1 else tuple(alone)
        return f"torch.sum({code}, dim={dims})", tuple(x for x in axes if x not in [axes[n] for n in alone])

    def _contract2(self, A, B, summed):
        (ca, xa), (cb, xb) = A, B
        shared_kept = [x for x in xa if x in xb and x not in summed]
        if not shared_kept and len(summed) == 1 and len(xa) <= 2 and len(xb) <= 2:
            (s,) = summed
            left = ca if xa[-1] == s else (f"{wrap(ca)}.transpose(0, 1)" if len(xa) == 2 else ca)
            right = cb if xb[0] == s else (f"{wrap(cb)}.transpose(0, 1)" if len(xb) == 2 else cb)
            out = tuple(x for x in xa if x != s) + tuple(x for x in xb if x != s)
            return f"torch.matmul({left}, {right})", out
        if not shared_kept and summed:
            dims_a = [xa.index(x) for x in summed]
            dims_b = [xb.index(x) for x in summed]
            out = tuple(x for x in xa if x not in summed) + tuple(x for x in xb if x not in summed)
            return f"torch.tensordot({ca}, {cb}, dims=({dims_a}, {dims_b}))", out
        # shared axes kept (or an outer product): einsum over the two
        letters: dict = {}

        def sub(axes):
            return "".join(letters.setdefault(x, "abcdefghijklmnopqrstuvwxyz"[len(letters)]) for x in axes)

        out = tuple(dict.fromkeys(x for x in xa + xb if x not in summed))
        out = self.c.order(out)
        return f"torch.einsum({(sub(xa) + ',' + sub(xb) + '->' + sub(out))!r}, {ca}, {cb})", out

    def _print_plain_add(self, expr, order=None):
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
                out = f"-{wrap(code)}" if neg else code
            else:
                out += f" - {wrap(code)}" if neg else f" + {code}"
        return out

    def _gate_backward(self, expr):
        """``DTanh(y) * g`` / ``DSigmoid(y) * g`` as torch's fused ``tanh_backward`` / ``sigmoid_backward``
        (one pass reading the saved gate value, as autograd's own backward does)."""
        c = self.c
        factors = sp.Mul.make_args(expr)
        gates = [f for f in factors if isinstance(f, (DTanh, DSigmoid)) and c.axes(f)]
        if len(gates) != 1:
            return None
        (gate,) = gates
        rest = sp.Mul(*[f for f in factors if f is not gate])
        want = c.axes(expr)
        if not c.axes(rest) or c.axes(gate) != want:
            return None
        op = "tanh_backward" if isinstance(gate, DTanh) else "sigmoid_backward"
        grad = c.align(self._print(rest), c.axes(rest), want)
        if c.axes(rest) != want:
            grad = f"{wrap(grad)}.expand_as({self._print(gate.args[0])})"
        return f"torch.ops.aten.{op}({grad}, {self._print(gate.args[0])})"

    def _print_Mul(self, expr):
        c = self.c
        lit = self._number(expr)
        if lit is not None:
            return lit
        fused = self._gate_backward(expr)
        if fused is not None:
            return fused
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
        top = " * ".join(wrap(c.align(self._print(f), c.axes(f), want)) for f in num) or "1"
        if den:
            bottom = " * ".join(wrap(c.align(self._print(f), c.axes(f), want)) for f in den)
            top = f"{top} / {bottom if len(den) == 1 else '(' + bottom + ')'}"
        if coeff.is_negative:
            return f"-{wrap(top)}" if (" " in top) else f"-{top}"
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
        return f"{wrap(b)} ** {wrap(self._print(ex))}"

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

    def _print_Heaviside(self, expr):
        # SymPy's convention H(0) = 1/2 (or the node's own second argument); torch.heaviside wants it as a tensor
        h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
        return f"_rt.heaviside({self._print(expr.args[0])}, {float(h0)!r})"

    def _print_Max(self, expr):
        return self._fold("torch.maximum", expr)

    def _print_Min(self, expr):
        return self._fold("torch.minimum", expr)

    def _print_MatrixSymbol(self, expr):
        return self._print_Symbol(sp.Symbol(expr.name))

    def _print_Transpose(self, expr):
        return f"{wrap(self._print(expr.arg))}.transpose(-2, -1)"

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

    def _owned(self, z) -> bool:
        """True when the tensor holding ``z`` is computed afresh and read by nothing else in the block."""
        c = self.c
        return (z not in c.cse and c.logit_uses[z] == 1 and ("lse", z) not in c.memo
                and not isinstance(z, (sp.Indexed, sp.Symbol)) and z not in c.memo)

    def _print_LogSumExp(self, expr):
        z, var = expr.logits, expr.index
        if self.c.streamed is not None and self._owned(z):
            # a tile of logits no one else reads: shift, exponentiate and sum it in place
            return f"_rt.logsumexp_({self._print(z)}, {self._dim(self.c.axes(z), var)})"
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


