"""Generated torch *programs*: named intermediates, several outputs, sums over the batch.

A :class:`ProgramSpec` is what the control family's derivation hands to code generation: a
list of :class:`Let` bindings (the forward gates, then the adjoints of the chain rule, each a
tensor computed once) and several :class:`Output` expressions that refer to them. One
statement block covers all of it, so common subexpressions are computed once across outputs
(the costate and every parameter gradient share the recomputed gates). An output marked
``batch_sum`` is summed over the batch inside its contraction (a parameter gradient
``sum_b p_{bk} y_{bl}`` is one matrix product, never a ``(batch, k, l)`` temporary).

Contractions are planned pairwise: operands with the same axes are multiplied first, then the
pair whose result has the fewest axes is contracted (``@`` for matrix products,
``torch.tensordot`` otherwise), which is the order reverse-mode differentiation needs
(``(p W_2) * sigma'`` before ``@ W_1``). Printing of the gate functions (``Tanh``,
``Sigmoid``, ...) is defined on their classes (:mod:`hjsym.symbolic.gates`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from .printer import BATCH, ArgSpec, FunctionSpec, HJTorchPrinter, _Compiler, _wrap, prologue
from .._errors import SpecError
from .generated import GeneratedFunction
from ..symbolic.axes import AXES, axis_of

__all__ = ["BatchSum", "Let", "Output", "ProgramSpec", "generate_program", "generate_program_source"]


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


class _ProgramCompiler(_Compiler):
    def axes(self, e):
        if isinstance(e, BatchSum):
            if e not in self.axes_memo:
                self.axes_memo[e] = tuple(a for a in super().axes(e.args[0]) if a != BATCH)
            return self.axes_memo[e]
        return super().axes(e)


class ProgramPrinter(HJTorchPrinter):
    """The torch printer with a contraction planner, batch sums and local scalars."""

    def __init__(self, compiler, settings=None):
        super().__init__(compiler, settings)
        self.locals: dict = {}

    def _print_Symbol(self, expr):
        if expr in self.locals:
            return self.locals[expr]
        return super()._print_Symbol(expr)

    def _print_Indexed(self, expr):
        """A repeated index (a trace ``P[i, i]``) takes the diagonal; otherwise as usual."""
        labels = [self.c.register(ix) for ix in expr.indices]
        if len(set(labels)) == len(labels):
            return super()._print_Indexed(expr)
        spec = self.c.arg_for(expr.base)
        have = ([BATCH] if spec.batched else []) + labels
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

    def _print_BatchSum(self, expr):
        c = self.c
        want = c.axes(expr)
        codes = []
        for term in sp.Add.make_args(expr.args[0]):
            if BATCH not in c.axes(term):
                codes.append(f"_M * {_wrap(c.align(self._print(term), c.axes(term), want))}")
                continue
            coeff, rest = term.as_coeff_Mul()
            operands, scalars = self._operands(list(sp.Mul.make_args(rest)))
            total = coeff * sp.Mul(*scalars)
            codes.append(self._einsum(operands, want, None if total == 1 else self._print(total)))
        return " + ".join(codes) if len(codes) == 1 else " + ".join(_wrap(code) for code in codes)

    # ------------------------------------------------------------------ sums of matrix products
    def _print_Add(self, expr, order=None):
        """``A1 @ B1 + A2 @ B2 + ...`` with one output shape becomes ``cat(A) @ cat(B)``: one matrix product.

        (The costate of a gated cell sums one product per gate: ``sum_g abar_g U_g``.)
        """
        c = self.c
        groups: dict = {}
        rest = []
        for term in expr.args:
            m = self._matmul_term(term)
            if m is None:
                rest.append(term)
            else:
                groups.setdefault(m[2], []).append((term, m))
        if not any(len(g) > 1 for g in groups.values()):
            return super()._print_Add(expr, order)
        want = c.axes(expr)
        codes = []
        for out_axes, g in groups.items():
            if len(g) == 1:
                rest.append(g[0][0])
                continue
            scales = {m[3] for _, m in g}
            common = scales.pop() if len(scales) == 1 else sp.S.One
            left = ", ".join(m[0] if m[3] == common else f"{_wrap(self._print(m[3]))} * {_wrap(m[0])}" for _, m in g)
            right = ", ".join(m[1] for _, m in g)
            code = f"torch.matmul(torch.cat([{left}], dim=-1), torch.cat([{right}], dim=0))"
            if common != 1:
                code = f"{_wrap(self._print(common))} * {code}"
            codes.append(c.align(code if tuple(out_axes) == tuple(c.order(out_axes)) else f"{code}.transpose(0, 1)",
                                 tuple(c.order(out_axes)), want))
        if rest:
            codes.append(c.align(super()._print_Add(sp.Add(*rest), order) if len(rest) > 1 else self._print(rest[0]),
                                 c.axes(sp.Add(*rest)), want))
        return " + ".join(codes)

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
        ca = ca if xa[-1] == mu else f"{_wrap(ca)}.transpose(0, 1)"
        cb = cb if xb[0] == mu else f"{_wrap(cb)}.transpose(0, 1)"
        return ca, cb, (a_other, b_other), sp.Mul(*scalars)

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
                    code = f"{_wrap(c.align(ca, xa, xb))} * {_wrap(cb)}"
                    ops = [op for n, op in enumerate(ops) if n not in (a, b)] + [(code, xb)]
                    merged = True
                    break
        # 2. the scale goes on the operand with the fewest axes
        if scale is not None:
            k = min(range(len(ops)), key=lambda n: len(ops[n][1]))
            ops[k] = (f"{_wrap(scale)} * {_wrap(ops[k][0])}", ops[k][1])
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
            code = f"{_wrap(code)}.permute({', '.join(str(axes.index(x)) for x in want)})"
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
            left = ca if xa[-1] == s else (f"{_wrap(ca)}.transpose(0, 1)" if len(xa) == 2 else ca)
            right = cb if xb[0] == s else (f"{_wrap(cb)}.transpose(0, 1)" if len(xb) == 2 else cb)
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


def _labels(c: _Compiler, indices) -> list[str]:
    return [c.register(ix) for ix in indices]


def _kinds(indices) -> tuple[str, ...]:
    return tuple(axis_of(ix).name for ix in indices)


def _local_name(target) -> str:
    label = target.label.name if isinstance(target, sp.IndexedBase) else target.name
    return "_v_" + "".join(ch if ch.isalnum() else "_" for ch in str(label))


def generate_program_source(ps: ProgramSpec) -> str:
    """Python source of a torch function computing every output of ``ps``."""
    fspec = FunctionSpec(ps.name, sp.Tuple(*[o.expr for o in ps.outputs]), ps.args, (), ps.doc)
    c = _ProgramCompiler(fspec)
    c.printer = ProgramPrinter(c)
    used = set()
    for e in ps.expressions():
        used |= e.free_symbols | set(e.atoms(sp.IndexedBase))
    for a in ps.args:
        if a.symbol not in used:
            raise SpecError(f"{ps.name}: argument {a.name!r} is used by no output", "drop it from args")
    c.start_block(ps.expressions())
    taken: set[str] = set()
    for let in ps.lets:
        code = c.print(let.expr)
        have = c.axes(let.expr)
        declared = _labels(c, let.indices)
        free = [x for x in have if x != BATCH]
        if sorted(free) != sorted(declared):
            raise SpecError(f"{ps.name}: let {let.target} has free indices {free}, declared {declared}", "declare its free indices")
        want = [BATCH] * (BATCH in have) + declared
        if list(have) != want:
            code = f"{_wrap(code)}.permute({', '.join(str(list(have).index(x)) for x in want)})"
        name = _local_name(let.target)
        if name in taken:
            raise SpecError(f"{ps.name}: two intermediates named {name}", "give every intermediate its own name")
        taken.add(name)
        if isinstance(let.target, sp.IndexedBase):
            c.args[let.target] = ArgSpec(name, let.target, _kinds(let.indices), batched=BATCH in have)
        else:
            c.sym_axes[let.target] = (BATCH,) if BATCH in have else ()
            c.printer.locals[let.target] = name
        c.lines.append(f"{name} = {code}")
    results, shapes = [], []
    for n, out in enumerate(ps.outputs):
        expr = BatchSum(out.expr) if out.batch_sum else out.expr
        code = c.print(expr)
        have = list(c.axes(expr))
        declared = _labels(c, out.indices)
        free = [x for x in have if x != BATCH]
        if sorted(free) != sorted(declared):
            raise SpecError(f"{ps.name}: output {out.name} has free indices {free}, declared {declared}", "declare its free indices")
        want = [BATCH] * (BATCH in have) + declared
        if have != want:
            code = f"{_wrap(code)}.permute({', '.join(str(have.index(x)) for x in want)})"
        var = f"_out{n}"
        c.lines.append(f"{var} = {code}")
        if BATCH in have:
            results.append(f"{var}.reshape(_batch + tuple({var}.shape[1:]))")
        else:
            shape = "".join(f"{c.extent_label(x)}, " for x in declared)
            results.append(f"torch.as_tensor({var}, dtype=dtype, device=device).expand(({shape}))")
        shapes.append(_shape_text(out, BATCH in have))
    body = ["    " + line for line in c.lines]
    body.append("    return " + (results[0] if len(results) == 1 else "(" + ", ".join(results) + ")"))
    lines = prologue(c, fspec, lambda explicit: _docstring(ps, shapes, explicit)) + body
    lines += [""] + _light_prologue(c, fspec) + body
    lines += ["", f"{ps.name}.unchecked = {ps.name}_unchecked"]
    return "\n".join(lines) + "\n"


def _light_prologue(c: _Compiler, fspec: FunctionSpec) -> list[str]:
    """The same function without argument validation (``NAME.unchecked``), for loops that call it many times.

    Tensor arguments must already be tensors of one dtype and device with consistent shapes;
    scalars may be numbers. Only what the body needs is computed: dtype, device, the flattened
    batch and the sizes.
    """
    args = fspec.args
    tensors = [a for a in args if a.is_tensor]
    sources: dict[str, str] = {}
    for a in tensors:
        offset = 1 if a.batched else 0
        for n, kind in enumerate(a.axes):
            sources.setdefault(AXES[kind].extent.name, f"{a.name}.shape[{n + offset}]")
    explicit = sorted(e for e in c.extents_int if e not in sources)
    kw = ", ".join([f"{e}=None" for e in explicit] + ["max_chunk_bytes=None"])
    sig = ", ".join(a.name for a in args)
    lines = [f"def {fspec.name}_unchecked({sig}{', ' if sig else ''}*, {kw}):",
             f'    """{fspec.name} without argument validation (tensors must already agree in dtype, device and shape)."""']
    if tensors:
        lines.append(f"    dtype, device = {tensors[0].name}.dtype, {tensors[0].name}.device")
    else:
        lines.append("    dtype, device = torch.get_default_dtype(), torch.device('cpu')")
    batch_src = next((a for a in tensors if a.batched), None)
    if batch_src is not None:
        n0 = len(batch_src.axes)
        lines.append(f"    _batch = tuple({batch_src.name}.shape[:{batch_src.name}.dim() - {n0}])")
        for a in tensors:
            if a.batched:
                k = len(a.axes)
                lines.append(f"    {a.name} = {a.name}.reshape(-1, *{a.name}.shape[{a.name}.dim() - {k}:])")
        lines.append(f"    _M = {batch_src.name}.shape[0]")
    else:
        lines.append("    _batch, _M = (), 1")
    for a in args:
        if not a.is_tensor:
            lines.append(f"    {a.name} = {a.name} if isinstance({a.name}, torch.Tensor) else torch.tensor({a.name}, dtype=dtype, device=device)")
    for ext in sorted(set(c.extents_int) | set(c.extents_tensor)):
        lines.append(f"    _{ext} = {sources[ext] if ext in sources else ext}")
    for ext in sorted(c.extents_tensor):
        lines.append(f"    _{ext}_t = torch.tensor(float(_{ext}), dtype=dtype, device=device)")
    return lines


def _shape_text(out: Output, batched: bool) -> str:
    dims = (["*batch"] if batched else []) + [str(AXES[axis_of(ix).name].extent) for ix in out.indices]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _docstring(ps: ProgramSpec, shapes, explicit) -> str:
    rows = [f"{a.name}: {a.shape_text()}" + (f" -- {a.doc}" if a.doc else "") for a in ps.args]
    rows += [f"{e}: int -- size not carried by any tensor argument" for e in explicit]
    doc = [ps.doc.strip() or ps.name, "", "Args:"]
    doc += ["    " + r for r in rows]
    doc += ["    max_chunk_bytes: unused (accepted for a uniform signature)"]
    doc += ["", "Returns:" if len(ps.outputs) > 1 else "Returns (one tensor):"]
    for out, shape in zip(ps.outputs, shapes):
        doc.append(f"    {out.name}: {shape}" + (" summed over the batch" if out.batch_sum else "") + (f" -- {out.doc}" if out.doc else ""))
    doc += ["", "in the dtype and on the device of the tensor arguments.", "", "Intermediates:"]
    doc += ["    " + f"{sp.sstr(let.target)}{list(map(str, let.indices)) if let.indices else ''} = {sp.sstr(let.expr)}" for let in ps.lets]
    doc += ["", "Computes:"]
    doc += ["    " + f"{out.name} = {'sum over the batch of ' if out.batch_sum else ''}{sp.sstr(out.expr)}" for out in ps.outputs]
    text = "\n".join(doc).replace("\\", "\\\\").replace('"""', "'''")
    return '"""' + text + '\n"""'


def generate_program(ps: ProgramSpec, latex: str = "") -> GeneratedFunction:
    """Generate and compile ``ps``; ``returns`` lists the output shapes."""
    src = generate_program_source(ps)
    shapes = []
    for out in ps.outputs:
        batched = any(a.batched for a in ps.args) and not out.batch_sum
        shapes.append(_shape_text(out, batched))
    returns = shapes[0] if len(shapes) == 1 else "(" + ", ".join(shapes) + ")"
    return GeneratedFunction(
        name=ps.name,
        source=src,
        signature=tuple({"name": a.name, "shape": a.shape_text(), "doc": a.doc} for a in ps.args),
        returns=returns,
        expression="; ".join(f"{o.name} = {sp.sstr(o.expr)}" for o in ps.outputs),
        doc=ps.doc,
        latex=latex,
        outputs=tuple(o.name for o in ps.outputs),
    )
